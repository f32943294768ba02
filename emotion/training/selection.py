"""Choosing what to ship, on validation only: the best epoch, its batch-norm statistics
recomputed, or the weight average; then whether it may replace the model already in `out`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ..data import Split
from ..evaluate import evaluate_model
from ..model import build_model, load_model
from ..preprocess import normalise
from .callbacks import WeightAverager, log


def recompute_batch_norm(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> None:
    """Set every BatchNormalization layer's moving statistics to their mean over `images`, as
    the network sees them at inference: no augmentation and no dropout.

    During training the statistics follow augmented faces with dropout on, which is not what a
    photo looks like; averaged weights need new statistics in any case. A momentum of
    (i - 1) / i at batch i turns Keras' moving average into an exact running mean.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    momenta, rates = [layer.momentum for layer in norms], [layer.rate for layer in drops]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))
    for layer in drops:
        layer.rate = 0.0
    try:
        for i, start in enumerate(range(0, len(images), batch_size), start=1):
            for layer in norms:
                layer.momentum = (i - 1) / i
            model(normalise(images[start:start + batch_size]), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        for layer, rate in zip(drops, rates):
            layer.rate = rate


def choose_model(blocks: tuple[tuple[int, int], ...], *, best: keras.Model,
                 averager: WeightAverager, train_split: Split, val_split: Split,
                 verbose: int = 0) -> tuple[keras.Model, dict]:
    """The best epoch as trained, the same with its batch-norm statistics recomputed, or the
    averaged weights: whichever scores highest on validation, and every candidate's score."""
    candidates = {"best epoch": best}
    recomputed = build_model(blocks)
    recomputed.set_weights(best.get_weights())
    candidates["best epoch, batch norm recomputed"] = recomputed
    if averager.mean is not None:
        averaged = build_model(blocks)
        averaged.set_weights(averager.mean)
        candidates[f"average of epochs {averager.epochs[0]}-{averager.epochs[-1]}"] = averaged
    log(verbose, "recomputing the batch-norm statistics on the training faces")
    for model in candidates.values():
        if model is not best:
            recompute_batch_norm(model, train_split.images)
    scores = {name: evaluate_model(model, val_split.images, val_split.labels).accuracy
              for name, model in candidates.items()}
    kept = max(scores, key=scores.get)  # ties keep the earlier, simpler candidate
    log(verbose, "validation accuracy: " + ", ".join(f"{n} {a:.4f}" for n, a in scores.items())
        + f": keeping the {kept}")
    return candidates[kept], {"val_accuracy": scores, "kept": kept}


def is_finite(model: keras.Model, faces: np.ndarray) -> bool:
    """Whether every weight, and the probabilities for a few `faces`, are finite numbers."""
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        return False
    return bool(np.isfinite(model.predict(normalise(faces[:64]), verbose=0)).all())


def keeps_previous(*, new_score: float | None, previous: Path, val_split: Split,
                   force: bool = False) -> tuple[float, float] | None:
    """(old, new) validation accuracy when the model already at `previous` scores better than
    the new one's `new_score` and so stays; None when the new one may replace it (no usable old
    model, no validation faces or score, a tie or better, or --force)."""
    if force or new_score is None or not previous.is_file() or not len(val_split):
        return None
    try:
        old = load_model(previous)
    except (OSError, ValueError):  # damaged, or not a classifier of faces: nothing worth keeping
        return None
    old_score = evaluate_model(old, val_split.images, val_split.labels).accuracy
    return (old_score, new_score) if old_score > new_score else None


def load_initial_weights(model: keras.Model, path: Path) -> None:
    """Start `model` from the weights of the saved model at `path` (--init)."""
    source = load_model(path)
    shapes = [w.shape for w in source.get_weights()]
    if shapes != [w.shape for w in model.get_weights()]:
        raise ValueError(f"{path}: its layers do not match the network being trained, so its "
                         "weights cannot be the starting point (train without --init)")
    model.set_weights(source.get_weights())
