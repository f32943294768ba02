"""Training a model: `train(config)` in `loop`, the rest in the modules it reads top to bottom.

`config` holds what a run is given and reports, with no Keras, so the command line, the
Training page and its jobs import it cheaply; every other module here imports Keras.
"""

from .config import Progress, Stage, TrainConfig, TrainError, TrainResult

__all__ = ["Progress", "Stage", "TrainConfig", "TrainError", "TrainResult"]
