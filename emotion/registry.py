"""The app's model: what it is, promoting a trained run to it, and restoring the one before."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import partial, wraps
from pathlib import Path
from typing import TYPE_CHECKING

from . import config
from .compare import VALIDATION, record, recorded
from .config import MODEL_FILE, app_model_path  # the model the app uses now
from .errors import EmotionError, PromotionError, sentence
from .files import write_atomically
from .model import load_model

if TYPE_CHECKING:
    from .compare import Comparison

# What travels with a model: the page shows these beside it, so they move together.
COMPANIONS = ("metrics.json", "history.csv", "training_curves.png", "confusion_matrix.png",
              "reliability.png")
BACKUP_DIR = "backup"


@dataclass
class ModelInfo:
    """The model at a path and what its metrics.json says about it (None where it says nothing)."""

    path: Path
    exists: bool
    size_mb: float | None = None
    modified: datetime | None = None
    test_accuracy: float | None = None
    macro_f1: float | None = None
    test_images: int | None = None
    tta_accuracy: float | None = None  # test accuracy with TTA, what a photo gets by default
    # Without test scores: the validation scores measured when the model was compared with the
    # app's model before it was used (metrics.json "comparison").
    val_accuracy: float | None = None
    val_images: int | None = None
    epochs_run: int | None = None
    data_source: str | None = None
    init: str | None = None  # the model whose weights that training started from, if any
    averaged: int | None = None  # how many models it is the weight average of (`average`)
    sharpened: bool = False  # given EvenSharpness after it was made (`calibrate --sharpen`)

    @property
    def shown_path(self) -> str:
        """The path as the pages show it: relative to the project for a model inside it (the
        machine's own folders are no visitor's business), as it was given otherwise."""
        path = Path(self.path)
        try:
            return path.resolve().relative_to(config.PROJECT_ROOT).as_posix()
        except ValueError:
            return str(path)

    @property
    def accuracy_label(self) -> str:
        """What `accuracy_text` measures: test accuracy, or validation accuracy without a test."""
        if self.test_accuracy is None and self.val_accuracy is not None:
            return "Validation accuracy"
        return "Test accuracy"

    @property
    def accuracy_text(self) -> str:
        if self.test_accuracy is not None:
            return f"{self.test_accuracy:.1%}"
        if self.val_accuracy is not None:
            return f"{self.val_accuracy:.1%} on {self.val_images:,} validation faces"
        return "not measured"


def metrics_path(model_path: Path) -> Path:
    """A model's metrics: train writes metrics.json beside the model it measured."""
    return Path(model_path).with_name("metrics.json")


def read_metrics(path: Path) -> dict | None:
    """metrics.json as a dict, or None when it is missing or not valid JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def saved_at(metrics: dict) -> datetime | None:
    """When metrics.json says its model was saved (`files.utc_stamp`), in local time; None where
    it does not say (older models: their file's time is all there is)."""
    try:
        return datetime.fromisoformat(str(metrics["saved_at"])).astimezone().replace(tzinfo=None)
    except (KeyError, ValueError, TypeError, OverflowError):
        return None


def model_info(model_path: Path | None = None) -> ModelInfo:
    """Describe a model file (default: the app's) from its file and its metrics.json."""
    path = Path(model_path or app_model_path())
    if not path.is_file():
        return ModelInfo(path, False)
    stat = path.stat()
    info = ModelInfo(
        path, True, round(stat.st_size / 1e6, 1), datetime.fromtimestamp(stat.st_mtime)
    )
    metrics = read_metrics(metrics_path(path)) or {}
    info.modified = saved_at(metrics) or info.modified
    test = metrics.get("test") or {}
    if isinstance(test.get("accuracy"), (int, float)):
        info.test_accuracy = float(test["accuracy"])
    if isinstance(test.get("macro_f1"), (int, float)):
        info.macro_f1 = float(test["macro_f1"])
    if isinstance(test.get("n_images"), int):
        info.test_images = test["n_images"]
    models = (metrics.get("averaged") or {}).get("models")
    if isinstance(models, list):
        info.averaged = len(models)
    views = metrics.get("test_tta") or {}
    if isinstance(views.get("accuracy"), (int, float)):
        info.tta_accuracy = float(views["accuracy"])
    if info.test_accuracy is None:
        comparison = recorded(metrics)
        val = next((s for s in comparison.splits if s.split == VALIDATION), None) if comparison else None
        if val is not None:
            info.val_accuracy, info.val_images = val.new_accuracy, val.n_images
    if isinstance(metrics.get("epochs_run"), int):
        info.epochs_run = metrics["epochs_run"]
    source = (metrics.get("data") or {}).get("source")
    info.data_source = str(source) if source else None
    init = (metrics.get("hyperparameters") or {}).get("init")
    info.init = str(init) if init else None
    info.sharpened = isinstance(metrics.get("sharpening_added"), dict)
    return info


def _current_files(target: Path) -> dict[str, Path]:
    """The app's model and its companions, by the name each has in a backup folder."""
    files = {MODEL_FILE: target} if target.is_file() else {}
    files.update({n: target.parent / n for n in COMPANIONS if (target.parent / n).is_file()})
    return files


def _snapshot(target: Path) -> Path:
    """A copy of the app's model and companions in a new hidden folder beside it."""
    folder = Path(tempfile.mkdtemp(prefix=".backup-", dir=target.parent))
    for name, path in _current_files(target).items():
        shutil.copy2(path, folder / name)
    return folder


def _install(folder: Path, target: Path) -> None:
    """Copy a model folder's files over the app's, the model last.

    copy2 keeps each file's modification time: the model shows when it was saved by its run, not
    when it was copied (with plain copies a restored model and the one it replaced, both copied
    a moment apart, showed the same "saved" time)."""
    for name in COMPANIONS:
        if (folder / name).is_file():
            write_atomically(target.parent / name, partial(shutil.copy2, folder / name))
        else:
            # Metrics of the old model must not be shown as the new model's.
            (target.parent / name).unlink(missing_ok=True)
    # The model last: until here the app still has the old one whole.
    write_atomically(target, partial(shutil.copy2, folder / MODEL_FILE))


def backup_dir(model_path: Path | None = None) -> Path:
    return Path(model_path or app_model_path()).parent / BACKUP_DIR


def has_backup(model_path: Path | None = None) -> bool:
    return (backup_dir(model_path) / MODEL_FILE).is_file()


def is_app_model(run_dir: Path, model_path: Path | None = None) -> bool:
    """Whether the model in `run_dir` is the app's model now (it was promoted)."""
    source, target = Path(run_dir) / MODEL_FILE, Path(model_path or app_model_path())
    try:
        return filecmp.cmp(source, target, shallow=True)
    except OSError:
        return False


def _check_model(path: Path) -> None:
    try:
        load_model(path)
    except EmotionError as exc:  # missing, unreadable, damaged or the wrong shape
        raise PromotionError(f"not promoted: {exc}") from exc


def _copy_failures_said(function):
    """`function` with an OSError (a full disk, a folder it may not write) raised as a
    PromotionError saying which file and what to do."""
    @wraps(function)
    def said(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except OSError as exc:
            raise PromotionError(sentence(exc, failed="the model could not be copied",
                                          folder="the models folder")) from exc
    return said


@_copy_failures_said
def promote(run_dir: Path, model_path: Path | None = None, verify: bool = True,
            comparison: Comparison | None = None) -> Path:
    """Make the model in `run_dir` the app's model; the current one and its files go to backup/.

    `comparison` (the scores it was judged by against the app's model) is first written into the
    run's metrics.json, so the app's model keeps them: its test (or validation) accuracy."""
    run_dir = Path(run_dir)
    target = Path(model_path or app_model_path())
    source = run_dir / MODEL_FILE
    if not source.is_file():
        raise PromotionError(f"{run_dir} has no {MODEL_FILE}: the run did not finish, train again")
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        # Promoting twice would back up this same model and lose the real previous one.
        raise PromotionError("this model is already the app's model")
    if verify:
        _check_model(source)  # never replace a working model with one that cannot load
    if comparison is not None:
        record(comparison, run_dir / "metrics.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    backup = backup_dir(target)
    if target.is_file():
        # A fresh backup folder each time: files of an older backup must not mix with this one.
        snapshot = _snapshot(target)
        if backup.exists():
            shutil.rmtree(backup)
        os.replace(snapshot, backup)
    _install(run_dir, target)
    return target


@_copy_failures_said
def restore(model_path: Path | None = None) -> Path:
    """Swap the app's model with the backup, so a restore can itself be undone."""
    target = Path(model_path or app_model_path())
    backup = backup_dir(target)
    if not (backup / MODEL_FILE).is_file():
        raise PromotionError(f"no previous model to restore: {backup} holds no {MODEL_FILE}")
    current = _snapshot(target)
    try:
        _install(backup, target)
    except BaseException:
        shutil.rmtree(current, ignore_errors=True)
        raise
    shutil.rmtree(backup)
    os.replace(current, backup)
    return target
