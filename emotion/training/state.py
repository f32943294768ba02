"""An unfinished run's folder in `out` (`.train-state`): what --resume carries on from.

It holds the settings, Keras' per-epoch backup, the best epoch so far, the history, the epoch
plan, the weight average, and a ledger of the commands and seconds spent, so metrics.json tells
the whole cost of a run that was resumed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import keras

# A saved epoch holds EvenLighting, EvenSharpness and, inside its augmentation, RandomGamma:
# importing their modules registers them for loading.
from .. import lighting, sharpness  # noqa: F401
from . import datasets  # noqa: F401
from ..errors import StateError, TrainError, sentence
from ..files import write_atomically, write_text_atomic
from ..model import NAME, save_model_atomic
from .artifacts import command_line, read_history
from .callbacks import log
from .config import STATE_DIR, TrainConfig


def damaged(path: Path, what: str) -> StateError:
    """The one line for a state file that is damaged or was edited."""
    return StateError(f"{path}: the interrupted run's saved state is damaged ({what}); train "
                      "without --resume to start afresh (which discards it)")


def _read_json(path: Path, kind: type) -> object:
    """The JSON in `path`, which must be a `kind` (dict); StateError naming the file otherwise."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(path, f"not readable JSON: {getattr(exc, 'msg', None) or exc}") from None
    if not isinstance(value, kind):
        raise damaged(path, f"expected a JSON {kind.__name__ if kind is not dict else 'object'}, "
                            f"found {type(value).__name__}")
    return value


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@contextlib.contextmanager
def run_lock(out: Path):
    """Holds `out` for one training run: TrainError at once when another run holds it.

    Two runs into one folder would write over each other's state and model (one died with "Bad
    CRC-32", another with an HDF5 lock error). The lock is an flock on the folder itself, so it
    goes when the process does, however it ends; `out` is made if missing, and removed again if
    the run leaves it empty.
    """
    try:
        import fcntl
    except ImportError:  # not on Windows: no lock
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        out.mkdir()
        made = True
    except FileExistsError:
        made = False
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TrainError(f"--out {out}: another run is using this folder; wait for it to "
                             "finish (or stop it), or train into another --out") from None
        try:
            yield
        finally:
            if made:
                with contextlib.suppress(OSError):
                    out.rmdir()  # only when empty
    finally:
        os.close(fd)  # and with it the lock


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """Keras's per-epoch backup, each file written whole and renamed into place.

    Keras writes latest.weights.h5 in place: Ctrl-C during the write left a truncated file in 4
    of 17 tries, and every --resume then failed. A damaged backup is one line naming it.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        write_atomically(self._weights_path,
                         lambda tmp: self.model.save_weights(str(tmp), overwrite=True))
        # The epoch is recorded only once its weights are in place.
        write_text_atomic(self._training_metadata_path, json.dumps(
            {"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except Exception as exc:
            raise damaged(Path(self._weights_path),
                          f"the weights cannot be loaded: {sentence(exc)}") from None


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model, atomically, after each epoch whose validation accuracy beats every earlier
    one, those of the run it resumes included (`best`): a resumed epoch scoring 0.18 once
    replaced an earlier 0.25."""

    def __init__(self, path: Path, best: float | None = None):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get("val_accuracy")
        if current is None or not math.isfinite(float(current)):
            return
        if self.best is None or float(current) > self.best:
            self.best = float(current)
            save_model_atomic(self.model, self.path)

# What a resumed run must keep: the weights' shapes and the recipe they were fitted by.
MUST_MATCH = ("blocks", "optimizer", "augment", "robust", "precision", "mixup", "balance",
              "teachers", "distill")
# What runs saved before a setting existed used.
SAVED_BEFORE = {"robust": False, "mixup": 0.0, "balance": 0.0, "teachers": [], "distill": 0.5}


class RunState:
    def __init__(self, out: Path):
        self.folder = out / STATE_DIR
        self.backup = self.folder / "backup"  # Keras' BackupAndRestore: the last finished epoch
        self.best = self.folder / "best.keras"
        self.history = self.folder / "history.csv"
        self.plan = self.folder / "plan.json"
        self.average = self.folder / "average.npz"
        self._config = self.folder / "config.json"
        self._ledger = self.folder / "ledger.json"
        self.commands: list[str] = []
        self.prior_seconds = 0.0  # spent by the runs this one resumes

    def check_resumable(self, config: TrainConfig) -> None:
        """TrainError unless this folder holds an interrupted run that `config` can carry on."""
        if not self._config.is_file() or not self.backup.is_dir():
            raise TrainError(f"--resume: {config.out} holds no interrupted run (no finished epoch "
                             f"in {self.folder}); train without --resume to start afresh")
        saved = _read_json(self._config, dict)
        self.check_files(config.epochs)
        mine = json.loads(json.dumps(asdict(config)))  # tuples as lists, as the saved file has them
        for key in MUST_MATCH:
            theirs = saved.get(key, SAVED_BEFORE.get(key))
            if theirs != mine[key]:
                raise TrainError(
                    f"--resume: the interrupted run in {config.out} used "
                    f"{_setting(key, theirs)}, not {_setting(key, mine[key])}; resume with "
                    "the same settings, or train without --resume to start afresh (which discards it)")

    def check_files(self, epochs: int) -> None:
        """StateError naming the first state file that is damaged or was edited: the finished
        epoch out of range (1 to the plan's epochs, at most `epochs`), JSON cut off or of the
        wrong kind, a history or average unreadable."""
        metadata = self.backup / "training_metadata.json"
        weights = self.backup / "latest.weights.h5"
        if not weights.is_file() or not metadata.is_file():
            raise damaged(self.backup, "no saved weights or no epoch number")
        epoch = _read_json(metadata, dict).get("epoch")
        planned = epochs
        if self.plan.is_file():
            plan_epochs = _read_json(self.plan, dict).get("epochs")
            if not _whole(plan_epochs) or not 1 <= plan_epochs <= epochs:
                raise damaged(self.plan, f"planned epochs {plan_epochs!r}, expected 1 to "
                                         f"{epochs}")
            planned = plan_epochs
        if not _whole(epoch) or not 1 <= epoch <= planned:
            raise damaged(metadata, f"finished epoch {epoch!r}, expected 1 to {planned}")
        if self._ledger.is_file():
            ledger = _read_json(self._ledger, dict)
            seconds = ledger.get("seconds", 0.0)
            if not isinstance(ledger.get("commands", []), list) or not (
                    isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
                raise damaged(self._ledger, "expected a list of commands and the seconds spent")
        try:
            rows = read_history(self.history)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise damaged(self.history, f"not a readable history: {exc}") from None
        if len(rows) > epoch or any(row["epoch"] != i + 1 for i, row in enumerate(rows)):
            raise damaged(self.history, f"its epochs do not follow 1..{epoch}")
        if self.average.is_file():
            try:
                import numpy as np

                with np.load(self.average) as saved:
                    saved["epochs"]
            except Exception as exc:
                raise damaged(self.average, f"not a readable weight average: {exc}") from None

    def best_so_far(self) -> float | None:
        """The best validation accuracy of the epochs already run, when their best model is
        saved; None for a fresh run."""
        if not self.best.is_file():
            return None
        scores = [row["val_accuracy"] for row in read_history(self.history)
                  if math.isfinite(row.get("val_accuracy", math.nan))]
        return max(scores, default=None)

    def begin(self, config: TrainConfig) -> None:
        """A fresh run replaces any interrupted one's state; either way, this command is recorded."""
        if not config.resume:
            self.discard()
            self.folder.mkdir(parents=True)
            write_text_atomic(self._config, json.dumps(asdict(config), indent=2))
        ledger = _read_json(self._ledger, dict) if self._ledger.is_file() else {}
        self.commands = ledger.get("commands", []) + [command_line()]
        self.prior_seconds = ledger.get("seconds", 0.0)

    def record(self, seconds: float) -> None:
        """The seconds of every run so far, this one's `seconds` included."""
        # Atomic: a kill mid-write must not leave a ledger that --resume cannot read.
        write_text_atomic(self._ledger, json.dumps(
            {"commands": self.commands, "seconds": self.prior_seconds + seconds}))

    def best_model(self) -> keras.Model | None:
        """The network of the epoch with the best validation accuracy, if one was saved."""
        if not self.best.is_file():
            return None
        model = keras.models.load_model(self.best, compile=False)
        return model if model.name == NAME else model.get_layer(NAME)  # inside its augmentation

    def after_failure(self, verbose: int = 0) -> None:
        """After a crash or Ctrl-C: keep what --resume needs, or leave nothing behind."""
        if isinstance(sys.exc_info()[1], StateError):
            return  # the state itself is what failed: its message says what to do
        if self.backup.is_dir():
            log(verbose, f"stopped: run the same command with --resume to carry on from the last "
                         f"finished epoch (saved in {self.folder})")
        else:
            self.discard()  # not one epoch finished: nothing to resume

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _setting(key: str, value) -> str:
    """A saved setting as the command line gives it."""
    if key == "blocks" and isinstance(value, list):
        return "--blocks " + ",".join(f"{w}x{n}" for w, n in value)
    if key == "augment":
        return "augmentation" if value else "--no-augment"
    if key == "robust":
        return "the robust augmentation" if value else "--basic-augment"
    if key == "teachers":
        return " ".join(f"--teacher {t}" for t in value) if value else "no --teacher"
    return f"--{key} {value}"
