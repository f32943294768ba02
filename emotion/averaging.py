"""Two trained models of the same network averaged weight by weight (a "model soup", WiSE-FT):
`python -m emotion average A B --share 0.5 --data ../shared/fer2013 --out DIR`.

A model fine-tuned for other cameras (`train --init`) and the model it started from often sit in
one basin of the loss: their average keeps most of what each is good at, at the cost of one model.
The average gets batch-norm statistics of its own, recomputed on the training faces, then is
calibrated and scored like any trained model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import data as data_module
from .config import MODEL_FILE
from .errors import ModelError
from .files import utc_stamp, write_text_atomic
from .model import load_model, save_model_atomic


@dataclass(frozen=True)
class AveragedModel:
    """Where the average went and how it scored on the validation faces that chose it."""

    model_path: Path
    share: float
    val_accuracy: float
    test_accuracy: float | None
    tta_accuracy: float | None


def check_share(share: float) -> float:
    """The second model's share of the average: strictly between 0 and 1."""
    if not 0 < share < 1:
        raise ModelError(f"--share {share:g}: give the second model's share, between 0 and 1 "
                         "(0.5 for the plain mean)")
    return share


def average_weights(first, second, share: float):
    """`second`'s network with (1 - share) x first's weights + share x second's.

    The network is the second's, layers without weights included: the average of a model without
    `EvenLighting` and its fine-tune with it has it, as the fine-tune learnt to expect."""
    a, b = first.get_weights(), second.get_weights()
    if [w.shape for w in a] != [w.shape for w in b]:
        raise ModelError("the two models' layers differ, so their weights cannot be averaged: "
                         "give a model and one fine-tuned from it (train --init)")
    second.set_weights([(1 - share) * x + share * y for x, y in zip(a, b)])
    return second


def _how_made(model_path: Path) -> dict | None:
    """How a model was trained, from its metrics.json: the commands, their time, the machine."""
    from .registry import metrics_path, read_metrics

    metrics = read_metrics(metrics_path(model_path)) or {}
    made = {k: metrics[k] for k in ("commands", "train_seconds", "machine", "hyperparameters")
            if k in metrics}
    return made or None


def average_models(first: Path, second: Path, share: float, data: str | Path,
                   out: Path) -> AveragedModel:
    """Average two saved models, recompute its batch-norm statistics on the training faces of
    `data`, calibrate it on the validation faces, score it on test (one pass and TTA), and
    write it with its metrics.json and plots into `out`."""
    from .calibration import calibrate_saved
    from .evaluate import evaluate_model
    from .training.selection import recompute_batch_norm

    started = time.monotonic()
    check_share(share)
    dataset = data_module.load(data)
    train, val, test = data_module.training_splits(dataset)
    model = average_weights(load_model(first), load_model(second), share)
    recompute_batch_norm(model, train.images)
    val_score = evaluate_model(model, val.images, val.labels)
    out.mkdir(parents=True, exist_ok=True)
    target = save_model_atomic(model, out / MODEL_FILE)
    metrics = {"saved_at": utc_stamp(),
               "averaged": {"models": [str(first), str(second)], "share": share,
                            "val_accuracy": round(val_score.accuracy, 4),
                            "val_faces": val_score.n_images,
                            "made_by": [_how_made(first), _how_made(second)]},
               "data": {"source": str(data), "train": len(train), "validation": len(val),
                        "test": len(test) if test else 0}}
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    # Adds "test", "test_tta" and "calibration", reliability.png and confusion_matrix.png.
    calibrate_saved(target, data)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["averaged"]["seconds"] = round(time.monotonic() - started, 1)
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    return AveragedModel(target, share, val_score.accuracy,
                         metrics["test"]["accuracy"] if metrics.get("test") else None,
                         (metrics.get("test_tta") or {}).get("accuracy"))
