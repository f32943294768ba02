"""A newly trained model against the app's model, scored on the same faces, before one replaces
the other; and those scores kept in the new model's metrics.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .data import Dataset, Split, training_splits
from .evaluate import Evaluation, evaluate_model
from .files import write_text_atomic
from .model import load_model

VALIDATION, TEST = "validation", "test"


@dataclass
class SplitComparison:
    """Both models' accuracy and macro-F1 on one split's faces; the app's are None when it could
    not be scored."""

    split: str  # VALIDATION or TEST
    n_images: int
    new_accuracy: float
    new_macro_f1: float
    app_accuracy: float | None = None
    app_macro_f1: float | None = None

    def to_dict(self) -> dict:
        return {"split": self.split, "n_images": self.n_images,
                "accuracy": self.new_accuracy, "macro_f1": self.new_macro_f1,
                "app_model_accuracy": self.app_accuracy, "app_model_macro_f1": self.app_macro_f1}

    @classmethod
    def from_dict(cls, data: dict) -> SplitComparison:
        return cls(str(data["split"]), int(data["n_images"]), float(data["accuracy"]),
                   float(data["macro_f1"]), _number(data.get("app_model_accuracy")),
                   _number(data.get("app_model_macro_f1")))


@dataclass
class Comparison:
    """The new model and the app's model on the run's validation faces and, when the data has
    them, its test faces. The test split decides (more faces, and no part in choosing the epoch)."""

    new_model: str
    app_model: str
    splits: list[SplitComparison] = field(default_factory=list)
    app_problem: str | None = None  # why the app's model could not be scored (none yet, damaged)
    app_stamp: tuple[int, int] | None = None  # the app's model file (size, mtime_ns) when scored

    @property
    def deciding(self) -> SplitComparison | None:
        by_split = {s.split: s for s in self.splits}
        return by_split.get(TEST) or by_split.get(VALIDATION)

    @property
    def app_scored(self) -> bool:
        return self.deciding is not None and self.deciding.app_accuracy is not None

    @property
    def worse(self) -> bool:
        """Whether the new model scores lower than the app's on the deciding split."""
        d = self.deciding
        return d is not None and d.app_accuracy is not None and d.new_accuracy < d.app_accuracy

    @property
    def verdict(self) -> str:
        """One sentence for the page: better, as good or worse, with both figures and the faces."""
        d = self.deciding
        if d is None:
            return "This model could not be scored: the run has no validation or test faces."
        if d.app_accuracy is None:
            return (f"This model scores {d.new_accuracy:.1%} on {d.n_images:,} {d.split} faces; "
                    f"the app's model could not be scored ({self.app_problem}).")
        word = ("worse than" if d.new_accuracy < d.app_accuracy
                else "better than" if d.new_accuracy > d.app_accuracy else "as good as")
        return (f"This model is {word} the app's model: {d.new_accuracy:.1%} against "
                f"{d.app_accuracy:.1%} on the same {d.n_images:,} {d.split} faces.")

    def is_current(self, app_model: Path) -> bool:
        """Whether the app's model is still the file that was scored."""
        return file_stamp(app_model) == self.app_stamp

    def to_dict(self) -> dict:
        return {"app_model": self.app_model, "app_problem": self.app_problem,
                "app_stamp": list(self.app_stamp) if self.app_stamp else None,
                "splits": [s.to_dict() for s in self.splits]}

    @classmethod
    def from_dict(cls, data: dict, new_model: str = "") -> Comparison:
        stamp = data.get("app_stamp")
        return cls(new_model, str(data.get("app_model", "")),
                   [SplitComparison.from_dict(s) for s in data.get("splits", [])],
                   data.get("app_problem"), tuple(stamp) if stamp else None)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None when there is none: tells whether it was replaced."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def compare_models(new_model: Path, app_model: Path, val: Split, test: Split | None = None,
                   known: dict[str, Evaluation] | None = None) -> Comparison:
    """Score both models on `val` and `test` (the same faces for both). `known` gives scores of
    the new model already measured on a split (train measures the test split), so they are not
    measured twice. A missing or unusable app's model is recorded in `app_problem`."""
    known = known or {}
    stamp = file_stamp(app_model)
    new = load_model(new_model)
    try:
        app, problem = load_model(app_model), None
    except FileNotFoundError:
        app, problem = None, "there is no app's model yet"
    except (OSError, ValueError) as exc:  # damaged, or not a face classifier
        app, problem = None, str(exc)
    comparison = Comparison(str(new_model), str(app_model), app_problem=problem, app_stamp=stamp)
    for name, split in ((VALIDATION, val), (TEST, test)):
        if split is None or not len(split):
            continue
        mine = known.get(name) or evaluate_model(new, split.images, split.labels)
        theirs = evaluate_model(app, split.images, split.labels) if app is not None else None
        comparison.splits.append(SplitComparison(
            name, len(split), mine.accuracy, mine.macro_f1,
            theirs.accuracy if theirs else None, theirs.macro_f1 if theirs else None))
    return comparison


def compare_on_data(new_model: Path, app_model: Path, dataset: Dataset,
                    known: dict[str, Evaluation] | None = None) -> Comparison:
    """`compare_models` on a dataset's faces as a training run splits them: its validation split
    (held out from train with the fixed seed, as `train` does) and its test split."""
    _, val, test = training_splits(dataset)
    return compare_models(new_model, app_model, val, test, known)


def record(comparison: Comparison, metrics_file: Path) -> dict:
    """Write the comparison into the new model's metrics.json (atomically), so a promoted model
    keeps the figures it was judged by: under "comparison", and as its "test" section when the
    run wrote none (a test split scored only here). Returns the metrics as written."""
    metrics_file = Path(metrics_file)
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, ValueError):
        metrics = {}
    if not isinstance(metrics, dict):
        metrics = {}
    metrics["comparison"] = comparison.to_dict()
    test = next((s for s in comparison.splits if s.split == TEST), None)
    if test is not None and not metrics.get("test"):
        metrics["test"] = {"accuracy": test.new_accuracy, "macro_f1": test.new_macro_f1,
                           "n_images": test.n_images}
    write_text_atomic(metrics_file, json.dumps(metrics, indent=2))
    return metrics


def recorded(metrics: dict | None, new_model: str = "") -> Comparison | None:
    """The comparison kept in a metrics.json dict, or None when it has none (or a damaged one)."""
    try:
        return Comparison.from_dict(metrics["comparison"], new_model)
    except (KeyError, TypeError, ValueError):
        return None
