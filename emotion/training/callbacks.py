"""The callbacks a run trains with: progress and cancelling, the learning-rate schedule, the
weight average, the time budget and the per-epoch randomness."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from ..files import write_atomically
from .artifacts import append_history, read_history
from .config import COSINE_FLOOR, EpochPlan, Progress, Stage
from .datasets import Batches


def cosine(lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of `epoch` (0-based) on a cosine from `lr` down to COSINE_FLOOR * lr."""
    return lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + np.cos(np.pi * epoch / max(1, epochs))))


def averaging_start(average: float, epochs: int) -> int:
    """The first epoch (0-based) whose weights go into the average of the last fraction `average`
    of the epochs: `epochs` when not averaging."""
    if average <= 0:
        return epochs
    return min(epochs - 1, max(0, round(epochs * (1 - average))))


def log(verbose: int, message: str) -> None:
    """`message` on stderr when the run is `verbose` (the command line's; the app's runs are not)."""
    if verbose:
        print(message, file=sys.stderr, flush=True)


class TrainingCancelled(Exception):
    """Raised between batches when the caller asks a run to stop; `train` returns cancelled."""


class ProgressReporter(keras.callbacks.Callback):
    """Relays progress to a plain function, keeps the history on disk, and stops when asked to."""

    def __init__(self, *, plan: EpochPlan, steps: int, history_path: Path,
                 on_progress: Callable[[Progress], None] | None,
                 should_stop: Callable[[], bool] | None):
        super().__init__()
        self.plan, self.steps, self.history_path = plan, steps, history_path
        self.on_progress, self.should_stop = on_progress, should_stop
        self.history: list[dict[str, float]] = read_history(history_path)  # a resumed run's too
        self.epoch = 0
        self.cancelled = False
        self.start = time.monotonic()

    def _send(self, step: int, logs: dict | None, epoch_end: bool = False) -> None:
        if self.on_progress:
            self.on_progress(Progress(
                epoch=self.epoch + 1, epochs=self.plan.epochs, step=step, steps=self.steps,
                logs={k: float(v) for k, v in (logs or {}).items()}, history=list(self.history),
                epoch_end=epoch_end, elapsed_s=time.monotonic() - self.start,
            ))

    def announce(self, stage: Stage) -> None:
        """After the last epoch: tell the caller what the run is doing before it writes."""
        if self.on_progress:
            self.on_progress(Progress(
                epoch=len(self.history), epochs=self.plan.epochs, step=self.steps, steps=self.steps,
                logs={}, history=list(self.history), epoch_end=True,
                elapsed_s=time.monotonic() - self.start, stage=stage))

    def _check_stop(self) -> None:
        # Raising, not `stop_training`: Keras would still validate the epoch and run every
        # epoch-end callback (checkpoints, the backup) before it stopped, which took most of the
        # ~13 s a cancel used to take on the full data.
        if self.should_stop and self.should_stop():
            self.cancelled = True
            raise TrainingCancelled()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._check_stop()

    def on_train_batch_begin(self, batch, logs=None):
        self._check_stop()

    def on_train_batch_end(self, batch, logs=None):
        self._send(batch + 1, logs)
        self._check_stop()

    def on_test_batch_end(self, batch, logs=None):
        self._check_stop()  # the validation of a large split takes seconds too

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["lr"] = float(self.model.optimizer.learning_rate)
        self.history.append(row)
        append_history(self.history_path, row)
        self._send(self.steps, logs, epoch_end=True)


class CosineSchedule(keras.callbacks.Callback):
    """Sets each epoch's learning rate on a cosine over the planned epochs; while the weights are
    averaged the rate holds where it was, so the averaged points differ (as SWA does)."""

    def __init__(self, learning_rate: float, average: float, plan: EpochPlan):
        super().__init__()
        self.learning_rate, self.average, self.plan = learning_rate, average, plan

    def on_epoch_begin(self, epoch, logs=None):
        hold = averaging_start(self.average, self.plan.epochs)
        self.model.optimizer.learning_rate.assign(
            cosine(self.learning_rate, min(epoch, hold), self.plan.epochs))


class WeightAverager(keras.callbacks.Callback):
    """Keeps the running mean of the network's weights over the epochs from `averaging_start`,
    saved after each epoch so that --resume carries on with it."""

    def __init__(self, *, average: float, network: keras.Model, plan: EpochPlan, path: Path):
        super().__init__()
        self.average, self.network, self.plan, self.path = average, network, plan, path
        self.mean: list[np.ndarray] | None = None
        self.epochs: list[int] = []
        if path.is_file():
            with np.load(path) as saved:
                self.epochs = saved["epochs"].tolist()
                self.mean = [saved[f"w{i}"] for i in range(len(saved.files) - 1)]

    def on_epoch_end(self, epoch, logs=None):
        if epoch < averaging_start(self.average, self.plan.epochs) or epoch + 1 in self.epochs:
            return
        weights = self.network.get_weights()
        n = len(self.epochs)
        self.mean = weights if self.mean is None else [
            m + (w - m) / (n + 1) for m, w in zip(self.mean, weights)]
        self.epochs.append(epoch + 1)
        write_atomically(self.path, lambda tmp: np.savez(
            tmp, epochs=np.array(self.epochs), **{f"w{i}": m for i, m in enumerate(self.mean)}))


def typical_epoch_s(epoch_s: float, batch_s: list[float]) -> float:
    """An epoch's seconds had every batch taken the median batch's time: a spell of other work
    on the machine slows some batches, and the plan should not shrink for it."""
    if not batch_s:
        return epoch_s
    rest = max(0.0, epoch_s - sum(batch_s))  # validation and the callbacks
    return float(np.median(batch_s)) * len(batch_s) + rest


class TimeBudget(keras.callbacks.Callback):
    """For --minutes: plans the epochs from how long the second one took (the first compiles),
    at its median batch's pace, and stops after the last."""

    def __init__(self, *, minutes: float, max_epochs: int, plan: EpochPlan, spent_s: float,
                 verbose: int = 0):
        super().__init__()
        self.minutes, self.max_epochs, self.plan, self.verbose = minutes, max_epochs, plan, verbose
        self.budget_s = minutes * 60 - spent_s  # a resumed run has spent some already
        self.ends: list[float] = []
        self.batch_s: list[float] = []

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.batch_s = []

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.batch_s.append(time.monotonic() - self.batch_start)

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.monotonic())
        if len(self.ends) == 2 and not self.plan.fixed:
            per_epoch = typical_epoch_s(self.ends[1] - self.ends[0], self.batch_s)
            left = self.budget_s - (self.ends[1] - self.start)
            fit = epoch + 1 + int(left // per_epoch)
            self.plan.epochs = max(epoch + 1, min(self.max_epochs, fit))
            self.plan.save()
            log(self.verbose, f"\n{self.minutes:g} minutes: {self.plan.epochs} epochs "
                              f"of {per_epoch:.1f} s")
        if time.monotonic() - self.start > self.budget_s:
            # Out of time: the first epoch took it all, or later ones ran slower than planned.
            self.plan.epochs = epoch + 1
        if epoch + 1 >= self.plan.epochs:
            self.model.stop_training = True


class EpochRandomness(keras.callbacks.Callback):
    """Draws each epoch's randomness from (seed, epoch): the batch order, the augmentation and
    the dropout masks.

    A resumed process starts its random streams afresh, so without this its first epoch replayed
    epoch 1's batches, augmentations and dropout masks in the same order, and the network, which
    had already fitted that sequence, scored far above the uninterrupted run on it (training
    accuracy 0.92 against 0.11 on the test's tiny set) until the replay ran past the restart
    point. Keyed by epoch, a resumed epoch sees what the uninterrupted run's did.
    """

    def __init__(self, batches: Batches):
        super().__init__()
        self.batches = batches

    def on_train_begin(self, logs=None):
        # Not saved with the weights, so a resumed run holds the construction-time seeds: the
        # same ones, since the seed is set before the model is built.
        self.states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        self.bases = [int(np.asarray(v.numpy())[0]) for v in self.states]

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch
        for state, base in zip(self.states, self.bases):
            # [seed, counter]: each draw adds 1 to the counter; an epoch takes far fewer than
            # 2**20 draws, so the epochs' streams never overlap.
            state.assign(np.array([base, epoch << 20], dtype=state.dtype))
