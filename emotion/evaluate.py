"""Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix of a model on a split."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import calibration
from .config import UNCERTAIN_BELOW
from .data import Dataset, Split, training_splits
from .errors import DataError, ModelError
from .labels import EMOTIONS, NUM_CLASSES
from .preprocess import normalise
from .tta import predict as over_views


@dataclass
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Uncertain:
    """The faces the app shows as "uncertain" (confidence under `below`) and how often the
    model's label was right for them and for the rest: what the threshold costs and buys."""

    below: float
    share: float  # of the faces
    accuracy: float  # of the uncertain faces' labels (0 when there are none)
    accuracy_rest: float  # of the other faces' labels (0 when there are none)


def uncertain_split(probs: np.ndarray, y_true: np.ndarray,
                    below: float = UNCERTAIN_BELOW) -> Uncertain:
    """How the faces under `below` confidence and the rest fare (`Uncertain`)."""
    probs = np.asarray(probs)
    low = probs.max(axis=1) < below
    right = probs.argmax(axis=1) == np.asarray(y_true)
    return Uncertain(below, round(float(low.mean()), 4),
                     round(float(right[low].mean()), 4) if low.any() else 0.0,
                     round(float(right[~low].mean()), 4) if (~low).any() else 0.0)


@dataclass
class Evaluation:
    """Scores of predictions against true labels; `confusion_matrix[i][j]` counts true i predicted j."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassScore]
    confusion_matrix: list[list[int]]
    n_images: int
    tta: bool = False
    # How far the shown confidence is from the accuracy (calibration.ece) and the mean negative
    # log-likelihood of the true labels; None where only labels, not probabilities, were scored.
    ece: float | None = None
    nll: float | None = None
    uncertain: Uncertain | None = None  # with probabilities: the "uncertain" faces' share

    @property
    def confusion_normalised(self) -> list[list[float]]:
        """Rows of the confusion matrix divided by their totals (recall on the diagonal)."""
        cm = np.asarray(self.confusion_matrix, dtype=float)
        totals = cm.sum(axis=1, keepdims=True)
        return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0).round(4).tolist()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["confusion_matrix_normalised"] = self.confusion_normalised
        out["labels"] = list(EMOTIONS)
        return out


def score(y_true: np.ndarray, y_pred: np.ndarray, tta: bool = False,
          probs: np.ndarray | None = None) -> Evaluation:
    """Score predicted label ids against true ones; with `probs`, their calibration too."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    actual = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = actual > 0  # macro-F1 over the classes the data has, as scikit-learn does by default
    per_class = {
        name: ClassScore(round(float(precision[i]), 4), round(float(recall[i]), 4),
                         round(float(f1[i]), 4), int(actual[i]))
        for i, name in enumerate(EMOTIONS)
    }
    n = int(len(y_true))
    return Evaluation(
        accuracy=round(float(tp.sum() / n), 4) if n else 0.0,
        macro_f1=round(float(f1[present | (predicted > 0)].mean()), 4) if n else 0.0,
        per_class=per_class,
        confusion_matrix=cm.tolist(),
        n_images=n,
        tta=tta,
        ece=round(calibration.ece(probs, y_true), 4) if probs is not None and n else None,
        nll=round(calibration.nll(probs, y_true), 4) if probs is not None and n else None,
        uncertain=uncertain_split(probs, y_true) if probs is not None and n else None,
    )


def predict_probabilities(model, images: np.ndarray, tta: bool = False, batch_size: int = 512) -> np.ndarray:
    """Class probabilities for uint8 48x48 faces; with `tta` averaged over the test-time views
    (`emotion.tta`: mirrored, framed tighter and looser), as a photo gets them."""
    x = np.asarray(normalise(images))
    one_pass = lambda v: model.predict(v, batch_size=batch_size, verbose=0)  # noqa: E731
    if tta:
        # In parts, so that the views of a whole training set need not be in memory at once.
        probs = (np.concatenate([over_views(one_pass, x[i:i + 4096])
                                 for i in range(0, len(x), 4096)]) if len(x)
                 else one_pass(x))
    else:
        probs = one_pass(x)
    if np.shape(probs) != (len(x), NUM_CLASSES):
        # load_model refuses such a model; one built in code must not be scored on the wrong labels
        raise ModelError(f"the model gave outputs of shape {np.shape(probs)} for {len(x)} faces, "
                         f"not ({len(x)}, {NUM_CLASSES}): one probability per emotion")
    return probs


def choose_split(dataset: Dataset, which: str | None = None) -> tuple[str, Split]:
    """The split to evaluate on: `which` ("test", or "val": the validation faces that training
    holds out), else test, else validation, else train; DataError when it has no faces."""
    if which == "val":
        return "val", training_splits(dataset)[1]
    if which == "test":
        split = dataset.splits.get("test")
        if split is None or not len(split):
            raise DataError(f"{dataset.report.source}: no test faces (a test/ folder or "
                            "PublicTest rows); give --split val, or data with a test split")
        return "test", split
    if which is not None:
        raise DataError(f"--split {which}: expected test or val")
    for name in ("test", "val", "train"):
        split = dataset.splits.get(name)
        if split is not None and len(split):
            return name, split
    raise DataError(f"{dataset.report.source}: no faces to evaluate on (no test, validation "
                    "or training faces); give FER2013's test/ folder or a fer2013.csv")


def evaluate_model(model, images: np.ndarray, labels: np.ndarray, tta: bool = False) -> Evaluation:
    """Evaluate a model on uint8 faces and their label ids."""
    if not len(labels):
        raise DataError("no faces to evaluate on")
    probs = predict_probabilities(model, images, tta=tta)
    return score(labels, probs.argmax(axis=1), tta=tta, probs=probs)
