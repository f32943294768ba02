"""What a run leaves: the per-epoch history (kept on disk as it goes), metrics.json, and the model
with its plots, written into `out` only once all of them are complete."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from ..config import MODEL_FILE
from ..data import Dataset, Split
from ..evaluate import Evaluation
from ..files import replace_atomically, utc_stamp
from ..labels import EMOTIONS
from ..model import save_model_atomic
from ..plots import plot_confusion, plot_history, plot_reliability
from .config import TrainConfig


def read_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = int(row["epoch"])
    return rows


def append_history(path: Path, row: dict[str, float]) -> None:
    """Add one epoch's row and push it to disk at once: a killed run keeps every finished epoch.

    (Keras' CSVLogger buffers its file, so a killed run lost its rows before a --resume.)
    """
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def command_line() -> str:
    """How this process was started, as a user would type it."""
    if sys.argv and sys.argv[0].endswith(("emotion/__main__.py", "emotion\\__main__.py")):
        return " ".join(["python -m emotion", *sys.argv[1:]])
    return " ".join(sys.argv) or "python"


def build_metrics(*, config: TrainConfig, dataset: Dataset, splits: tuple[Split, Split, Split | None],
                  evaluation: Evaluation | None, history: list[dict[str, float]], seconds: float,
                  stopped_early: bool, commands: list[str], epochs: int, averaged: list[int],
                  choice: dict | None, calibration: dict | None = None,
                  views: Evaluation | None = None) -> dict:
    """metrics.json: the test scores, the data, every setting and command, the time, the versions."""
    train_split, val_split, test_split = splits
    best = max(history, key=lambda r: r.get("val_accuracy", 0)) if history else {}
    metrics = {
        "saved_at": utc_stamp(),
        "test": evaluation.to_dict() if evaluation else None,
        "best_epoch": int(best.get("epoch", 0)),
        "best_val_accuracy": round(float(best.get("val_accuracy", 0)), 4),
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "data": {
            "source": dataset.report.source,
            "train": len(train_split), "validation": len(val_split),
            "test": len(test_split) if test_split else 0,
            "train_per_class": train_split.counts(),
            "resized": dataset.report.resized,
            "unreadable": len(dataset.report.unreadable),
        },
        "hyperparameters": {
            "optimizer": config.optimizer, "epochs": epochs, "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "schedule": schedule_text(config.per_epoch_schedule, averaged),
            "minutes": config.minutes, "average": config.average,
            "augment": config.augment, "robust_augment": config.robust,
            "precision": config.precision,
            "label_smoothing": config.label_smoothing, "mixup": config.mixup,
            "balance": config.balance, "teachers": list(config.teachers),
            "distill": config.distill if config.teachers else None,
            "patience": config.patience, "blocks": [list(b) for b in config.blocks],
            "init": config.init,
            "seed": config.seed,
        },
        # Every command that worked on this model, the first and any --resume after it.
        "commands": commands,
        "train_seconds": round(seconds, 1),
        "versions": {"python": platform.python_version(), "keras": keras.__version__,
                     "numpy": np.__version__,
                     "backend": keras.backend.backend(), **_backend_version()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "labels": list(EMOTIONS),
    }
    if choice:
        metrics["model_choice"] = choice
    if calibration:
        metrics["calibration"] = calibration
    if views:
        metrics["test_tta"] = tta_summary(views)
    return metrics


def tta_summary(views: Evaluation) -> dict:
    """metrics.json's "test_tta": the test scores with TTA (`emotion.tta`), what a photo gets by
    default, and the views they were measured with."""
    from ..tta import SCALES

    return {"accuracy": views.accuracy, "macro_f1": views.macro_f1, "ece": views.ece,
            "recall": {e: c.recall for e, c in views.per_class.items()},
            "n_images": views.n_images, "views": {"scales": list(SCALES), "mirrored": True}}


def schedule_text(per_epoch: bool, averaged: list[int]) -> str:
    """The learning-rate schedule in words, for metrics.json."""
    text = "cosine decay to 1%" + (", set each epoch" if per_epoch else "")
    if averaged:
        # From the epochs really averaged: a run the clock stopped early planned more of them.
        text += f", held from epoch {averaged[0]} while the weights are averaged"
    return text


def _backend_version() -> dict[str, str]:
    name = keras.backend.backend()  # tensorflow, jax or torch: each is also its module's name
    return {name: __import__(name).__version__}


def write_artifacts(model: keras.Model, *, metrics: dict, history: list[dict[str, float]],
                    out: Path) -> None:
    """Write model, metrics.json, history.csv and plots into a staging folder, then move each in."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        save_model_atomic(model, staging / MODEL_FILE)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if history:
            with (staging / "history.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(history[0]))
                writer.writeheader()
                writer.writerows(history)
            plot_history(history, staging / "training_curves.png")
        if metrics.get("test"):
            plot_confusion(metrics["test"]["confusion_matrix"], staging / "confusion_matrix.png")
        if metrics.get("calibration"):
            plot_reliability(metrics["calibration"], staging / "reliability.png")
        # Everything is written: only now do the old files get replaced, each by one rename.
        for f in staging.iterdir():
            replace_atomically(f, out / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
