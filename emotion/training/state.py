"""An unfinished run's folder in `out` (`.train-state`): what --resume carries on from.

It holds the settings, Keras' per-epoch backup, the best epoch so far, the history, the epoch
plan, the weight average, and a ledger of the commands and seconds spent, so metrics.json tells
the whole cost of a run that was resumed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import keras

from ..files import write_text_atomic
from ..model import NAME
from .artifacts import command_line
from .callbacks import log
from .config import STATE_DIR, TrainConfig, TrainError

# What the saved weights' shapes depend on: a resumed run must use the same.
MUST_MATCH = ("blocks", "optimizer", "augment", "robust", "precision")


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
        saved = json.loads(self._config.read_text())
        mine = json.loads(json.dumps(asdict(config)))  # tuples as lists, as the saved file has them
        for key in MUST_MATCH:
            if saved.get(key) != mine[key]:
                raise TrainError(
                    f"--resume: the interrupted run in {config.out} used "
                    f"{_setting(key, saved.get(key))}, not {_setting(key, mine[key])}; resume with "
                    "the same settings, or train without --resume to start afresh (which discards it)")

    def begin(self, config: TrainConfig) -> None:
        """A fresh run replaces any interrupted one's state; either way, this command is recorded."""
        if not config.resume:
            self.discard()
            self.folder.mkdir(parents=True)
            write_text_atomic(self._config, json.dumps(asdict(config), indent=2))
        ledger = json.loads(self._ledger.read_text()) if self._ledger.is_file() else {}
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

    def after_failure(self, config: TrainConfig) -> None:
        """After a crash or Ctrl-C: keep what --resume needs, or leave nothing behind."""
        if self.backup.is_dir():
            log(config, f"stopped: run the same command with --resume to carry on from the last "
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
        # A run saved before the setting existed trained with the basic augmentation.
        return "the robust augmentation" if value else "--basic-augment"
    return f"--{key} {value}"
