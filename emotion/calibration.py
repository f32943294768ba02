"""Calibrated confidence: temperature scaling, and how far confidence is from accuracy (ECE, NLL).

A network trained with cross-entropy is over-confident: said "98%", it is right less often. One
scalar T, fitted on validation faces by negative log-likelihood, divides the logits: probabilities
become softmax(z / T). Dividing never reorders the logits, so every label (and so the accuracy)
stays what it was. The model's last layer is a Dense with softmax, so T is folded into that layer's
weights: the saved `.keras` file carries its own calibration, and every runtime (ONNX Runtime,
Keras) and every path (photo, live, video, `predict`, `evaluate`) gives calibrated probabilities
without knowing about it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import data as data_module
from .errors import DataError, ModelError
from .files import utc_stamp, write_atomically, write_text_atomic
from .model import load_model, save_model_atomic
from .plots import plot_confusion, plot_reliability

BINS = 15  # the usual number for ECE; fewer bins hide miscalibration, more make it noisy
_EPS = 1e-12


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the same as dividing the logits by T, from probabilities alone."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), _EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = np.asarray(probs, np.float64)[np.arange(len(labels)), np.asarray(labels, np.int64)]
    return float(-np.log(np.clip(p, _EPS, 1.0)).mean())


@dataclass(frozen=True)
class ReliabilityBin:
    """Faces whose confidence fell in [low, high): how sure the model was, and how often right."""

    low: float
    high: float
    count: int
    confidence: float  # mean confidence in the bin (0 when empty)
    accuracy: float    # share right in the bin (0 when empty)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[ReliabilityBin]:
    """Confidence against accuracy in `bins` equal-width bins of confidence."""
    probs = np.asarray(probs, np.float64)
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == np.asarray(labels, np.int64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 cannot occur with 7 classes.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        mask = index == i
        n = int(mask.sum())
        out.append(ReliabilityBin(round(float(edges[i]), 4), round(float(edges[i + 1]), 4), n,
                                  float(confidence[mask].mean()) if n else 0.0,
                                  float(right[mask].mean()) if n else 0.0))
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: the gap between confidence and accuracy, weighted by bin size."""
    table = reliability(probs, labels, bins)
    total = sum(b.count for b in table)
    if not total:
        return 0.0
    return float(sum(b.count * abs(b.confidence - b.accuracy) for b in table) / total)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of `labels` under apply_temperature(probs, T).

    NLL is convex in 1/T, so a golden-section search over log T finds the minimum; no optimiser
    library is needed for one number.
    """
    if not len(labels):
        raise DataError("no faces to fit the temperature on")
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(apply_temperature(probs, float(np.exp(log_t))), labels)

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2))


@dataclass(frozen=True)
class CalibrationScores:
    """ECE and NLL of some faces before and after a temperature."""

    n: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def measure(probs: np.ndarray, labels: np.ndarray, temperature: float) -> CalibrationScores:
    """How much `temperature` changes the ECE and NLL of `probs` on these faces."""
    after = apply_temperature(probs, temperature)
    return CalibrationScores(len(labels), ece(probs, labels), ece(after, labels),
                             nll(probs, labels), nll(after, labels))


def fold_temperature(model, temperature: float) -> None:
    """Divide the logits of `model` (a Keras model ending in Dense + softmax) by T, in place."""
    import keras

    last = model.layers[-1]
    if not (isinstance(last, keras.layers.Dense)
            and getattr(last.activation, "__name__", "") == "softmax"):
        raise ModelError("calibration needs a model whose last layer is a Dense with softmax")
    last.set_weights([w / temperature for w in last.get_weights()])


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did to the faces it was fitted on."""

    temperature: float
    fitted_on: CalibrationScores


def calibrate(model, images: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit T on these (validation) faces and fold it into `model`; its labels do not change."""
    from .evaluate import predict_probabilities  # not at the top: evaluate imports this module

    probs = predict_probabilities(model, images)
    temperature = fit_temperature(probs, labels)
    fold_temperature(model, temperature)
    return Calibration(temperature, measure(probs, labels, temperature))


def summary(calibration: Calibration, test_probs: np.ndarray | None = None,
            test_labels: np.ndarray | None = None) -> dict:
    """metrics.json's "calibration": T, the validation scores and, given the calibrated model's
    test probabilities, the test scores and reliability table before and after."""
    out = {"temperature": round(calibration.temperature, 4), "bins": BINS,
           "val": calibration.fitted_on.to_dict()}
    if test_probs is not None and test_labels is not None and len(test_labels):
        # The calibrated probabilities with T undone are exactly the model's before it.
        before = apply_temperature(test_probs, 1.0 / calibration.temperature)
        out["test"] = measure(before, test_labels, calibration.temperature).to_dict()
        out["reliability_test"] = {
            "before": [asdict(b) for b in reliability(before, test_labels)],
            "after": [asdict(b) for b in reliability(test_probs, test_labels)],
        }
    return out


def calibrate_saved(model_path, data, *, out=None, sharpen: bool = False) -> dict:
    """Calibrate the `.keras` model at `model_path` on the validation faces of `data` (the split
    training holds out, drawn from the same seed), write it to `out` (default: in place) with
    its metrics.json's test scores (one pass and with TTA), confusion matrix and calibration
    updated, and return that "calibration".

    `sharpen` first gives a model without `EvenSharpness` the layer (it has no weights, so no
    training is needed), which is why its temperature is fitted anew.

    Fitting again on a calibrated model gives T close to 1, so running this twice is harmless;
    the temperature recorded is the product of both.
    """
    # Not at the top: evaluate imports this module, and registry does through compare.
    from .evaluate import evaluate_model, predict_probabilities, score
    from .registry import metrics_path, read_metrics
    from .sharpness import EvenSharpness, with_even_sharpness
    from .training.artifacts import tta_summary

    model_path = Path(model_path)
    out = Path(out) if out else model_path
    dataset = data_module.load(data)
    _, val_split, test_split = data_module.training_splits(dataset)
    if not len(val_split):
        raise data_module.DataError(f"{data}: no validation faces to calibrate on")
    model = load_model(model_path)
    metrics = read_metrics(metrics_path(model_path)) or {}
    sharpened = with_even_sharpness(model) if sharpen else model
    if sharpened is not model:
        layer = next(layer for layer in sharpened.layers if isinstance(layer, EvenSharpness))
        metrics["sharpening_added"] = {"reference": layer.reference,
                                       "max_amount": layer.max_amount, "at": utc_stamp()}
    model = sharpened
    fitted = calibrate(model, val_split.images, val_split.labels)
    previous = (metrics.get("calibration") or {}).get("temperature")
    test_probs = None
    if test_split is not None and len(test_split):
        test_probs = predict_probabilities(model, test_split.images)
        metrics["test"] = score(test_split.labels, test_probs.argmax(axis=1),
                                probs=test_probs).to_dict()
    result = summary(fitted, test_probs, test_split.labels if test_probs is not None else None)
    if isinstance(previous, (int, float)) and previous > 0:
        result["temperature"] = round(previous * fitted.temperature, 4)
    result["data"] = str(data)
    metrics["calibration"] = result
    metrics["saved_at"] = utc_stamp()

    if test_probs is not None:
        # What a photo gets: its figures move with the temperature (and any new layer) too.
        views = evaluate_model(model, test_split.images, test_split.labels, tta=True)
        metrics["test_tta"] = tta_summary(views)

    save_model_atomic(model, out)
    write_text_atomic(metrics_path(out), json.dumps(metrics, indent=2))
    if result.get("reliability_test"):
        write_atomically(out.with_name("reliability.png"), lambda tmp: plot_reliability(result, tmp))
    if metrics.get("test"):
        write_atomically(out.with_name("confusion_matrix.png"),
                         lambda tmp: plot_confusion(metrics["test"]["confusion_matrix"], tmp))
    return result
