"""The network's first layer: each face's brightness and contrast set to FER2013's average, so a
face in dim, harsh or washed-out light reaches the convolutions as it would in ordinary light.

A layer of the model (not a step of `preprocess`), so a model carries whether it expects it: the
ONNX and Keras runtimes, training and every older model file stay as they are.
"""

from __future__ import annotations

import keras
from keras import ops

# The mean and the standard deviation of a FER2013 training face's pixels in [0, 1], averaged over
# the 25,838 faces of the training split (validation held out): the light the network learnt on.
FER2013_MEAN = 0.514
FER2013_STD = 0.304
# A face flatter than this (about 5 grey levels) is not stretched further: its contrast is noise.
STD_FLOOR = 0.02


def centred_and_spread(x, floor: float):
    """Each face (N, H, W, C) minus its mean, and its pixels' SD, at least `floor`, (N, 1, 1, 1)."""
    centred = x - ops.mean(x, axis=(1, 2, 3), keepdims=True)
    spread = ops.sqrt(ops.mean(ops.square(centred), axis=(1, 2, 3), keepdims=True))
    return centred, ops.maximum(spread, floor)


@keras.saving.register_keras_serializable(package="emotion")
class EvenLighting(keras.layers.Layer):
    """(x - face mean) / face std, rescaled to FER2013's average mean and std; no weights."""

    def __init__(self, mean: float = FER2013_MEAN, std: float = FER2013_STD,
                 floor: float = STD_FLOOR, **kwargs):
        # float32 even in mixed bfloat16 training: a mean over 2,304 pixels needs the bits.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mean, self.std, self.floor = float(mean), float(std), float(floor)

    def call(self, x):
        centred, spread = centred_and_spread(x, self.floor)
        return centred / spread * self.std + self.mean

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mean": self.mean, "std": self.std, "floor": self.floor}
