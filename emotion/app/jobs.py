"""Training jobs, one at a time, followed by a background thread that outlives page reruns."""

from __future__ import annotations

import multiprocessing
import queue
import sys
import threading
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from ..compare import Comparison, compare_on_data, record
from ..config import runs_dir as default_runs_dir
from ..evaluate import Evaluation
from ..training.config import Progress, Stage, TrainConfig, TrainResult
from ..training.timing import duration_text
from .training_process import _child, run_dataset


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


# The Training page's settings start from these, as the command line's do.
TRAIN_DEFAULTS = TrainConfig(data="")


@dataclass(frozen=True)
class Preset:
    """A run the Training page offers in one click."""

    name: str
    epochs: int
    faces: int | None  # at most this many training faces; None: all of them


QUICK_TEST = Preset("Quick test", epochs=2, faces=2000)
FULL_RUN = Preset("Full training", epochs=TRAIN_DEFAULTS.epochs, faces=None)

# After Cancel, the training process has this long to stop by itself (it checks between
# batches); one busy elsewhere (loading data, compiling its first batch, choosing the model) is
# then ended, so the page never waits on it for longer.
CANCEL_GRACE_S = 2.0


def default_learning_rate(optimizer: str) -> float:
    """The learning rate a run with this optimizer ("Adam", "sgd") starts from when none is given."""
    return replace(TRAIN_DEFAULTS, optimizer=optimizer.lower(), lr=None).learning_rate


@contextmanager
def _neutral_main():
    """Hide the parent's __main__ while a spawned child starts.

    spawn re-runs the parent's __main__ script in the child. Under AppTest that script is a
    page, which must not run again inside the training process.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class JobError(RuntimeError):
    """A job that cannot be started; the message says why."""


@dataclass
class Job:
    """One training run: its settings, folder, live progress and, at the end, result or error."""

    config: TrainConfig
    run_dir: Path
    state: JobState = JobState.QUEUED
    progress: Progress | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    result: TrainResult | None = None
    error: str | None = None
    details: str | None = None  # the traceback of a failure, for a "details" expander
    # Scores of the finished model: on the test split, or on validation when the data has no test.
    evaluation: Evaluation | None = None
    evaluated_on: str | None = None
    started: datetime = field(default_factory=datetime.now)
    finished: datetime | None = None
    faces: int | None = None  # a quick test: at most this many training faces
    estimate_s: float | None = None  # how long the page estimated the run to take
    # The new model against the app's model on the same faces, measured after training.
    comparison: Comparison | None = None
    comparison_error: str | None = None
    comparing: bool = False
    epoch_ends: list[float] = field(default_factory=list)  # elapsed_s at each epoch's end
    cancel_requested: float | None = None  # time.monotonic() of the click on Cancel
    _first_step: tuple[int, float] | None = field(default=None, repr=False)
    _compare_lock: Any = field(default_factory=threading.Lock, repr=False)
    _stop: Any = field(default=None, repr=False)  # a multiprocessing Event
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    @property
    def stopping(self) -> bool:
        """Cancel was asked for and the run has not stopped yet."""
        return self.active and self.cancel_requested is not None

    @property
    def fraction(self) -> float:
        """How far the run is, 0..1, counting batches over all epochs; a cancelled run stays
        where it stopped."""
        p = self.progress
        if self.state == JobState.DONE:
            return 1.0
        if p is None or not p.epochs or not p.steps:
            return 0.0
        return min(1.0, ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps))

    @property
    def time_left_s(self) -> float | None:
        """Seconds of training left, from the epochs (or, in the first one, batches) done so far;
        None before there is anything to go by, or once training proper is over."""
        p = self.progress
        if self.state != JobState.RUNNING or p is None or p.stage != Stage.TRAINING or self.stopping:
            return None
        ends = self.epoch_ends
        if ends:
            per_epoch = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else ends[0]
            into_epoch = min(max(0.0, p.elapsed_s - ends[-1]), per_epoch)
            left = max(0, p.epochs - len(ends)) * per_epoch - into_epoch
        elif self._first_step is not None and p.step > self._first_step[0]:
            # Within the first epoch: batches timed after the first one seen (which compiles).
            step0, elapsed0 = self._first_step
            per_batch = (p.elapsed_s - elapsed0) / (p.step - step0)
            left = ((p.steps - p.step) + (p.epochs - 1) * p.steps) * per_batch
        elif self.estimate_s is not None:
            left = self.estimate_s - p.elapsed_s  # nothing timed yet: the page's estimate
        else:
            return None
        if self.config.minutes:
            left = min(left, self.config.minutes * 60 - p.elapsed_s)
        return max(0.0, left)

    @property
    def status_text(self) -> str:
        p = self.progress
        if self.stopping:
            return "stopping..."
        if self.comparing and self.state == JobState.RUNNING:
            return "scoring the new model and the app's model on the same faces..."
        if self.state == JobState.QUEUED or (self.state == JobState.RUNNING and p is None):
            return "loading data and building the model..."
        if self.state == JobState.RUNNING and p.stage != Stage.TRAINING:
            return f"{p.stage.text}, {p.elapsed_s:.0f} s"
        if self.state == JobState.RUNNING:
            loss = p.logs.get("loss")
            acc = p.logs.get("accuracy")
            parts = [f"epoch {p.epoch}/{p.epochs}", f"batch {p.step}/{p.steps}"]
            if loss is not None:
                parts.append(f"loss {loss:.3f}")
            if acc is not None:
                parts.append(f"accuracy {acc:.1%}")
            parts.append(f"{p.elapsed_s:.0f} s")
            if (left := self.time_left_s) is not None:
                parts.append(f"{duration_text(left)} left")
            return ", ".join(parts)
        if self.state == JobState.DONE and self.evaluation:
            return f"finished: {self.evaluated_on} accuracy {self.evaluation.accuracy:.1%}"
        if self.state == JobState.DONE:
            return "finished"
        if self.state == JobState.CANCELLED:
            if p is None or p.stage != Stage.TRAINING:
                return "cancelled"
            return f"stopped at epoch {p.epoch}/{p.epochs}, batch {p.step}/{p.steps}"
        return f"failed: {self.error}"

    def cancel(self) -> None:
        """Ask the run to stop after the current batch (it is ended if it has not stopped
        CANCEL_GRACE_S later)."""
        if self._stop is not None and self.active and self.cancel_requested is None:
            self.cancel_requested = time.monotonic()
            self._stop.set()

    def compare_again(self, app_model: Path) -> Comparison:
        """Score this run's model and the app's model at `app_model` again on the run's faces
        (the app's model changed since the run ended), in this process; kept in metrics.json."""
        with self._compare_lock:  # two sessions on the page compare once
            if self.comparison is None or not self.comparison.is_current(app_model):
                dataset = run_dataset(self.config.data, self.faces)
                known = {self.evaluated_on: self.evaluation} if self.evaluation else None
                self.comparison = compare_on_data(self.result.model_path, app_model, dataset, known)
                record(self.comparison, self.result.model_path.with_name("metrics.json"))
                self.comparison_error = None
            return self.comparison

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (or `timeout` seconds pass); True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.active

    def _watch(self, process, messages, poll_s: float = 0.2) -> None:
        """Runs in the background thread: relay the child's messages into this job until it ends."""
        try:
            while True:
                if (self.cancel_requested is not None
                        and time.monotonic() - self.cancel_requested > CANCEL_GRACE_S):
                    process.terminate()  # busy where it cannot check: its files are its own
                    self.state = JobState.CANCELLED
                    return
                try:
                    kind, payload = messages.get(timeout=poll_s)
                except queue.Empty:
                    if not process.is_alive():
                        # Messages sent just before exiting may still be in the pipe.
                        try:
                            kind, payload = messages.get(timeout=2)
                        except queue.Empty:
                            self._fail(
                                f"the training process ended unexpectedly (exit code "
                                f"{process.exitcode}); it may have run out of memory: choose a "
                                "smaller batch size or close other programs, then start again"
                            )
                            return
                    else:
                        continue
                if kind == "progress":
                    self.state = JobState.RUNNING
                    if self.progress is None and not payload.epoch_end:
                        self._first_step = (payload.step, payload.elapsed_s)
                    self.progress = payload
                    if payload.epoch_end or len(payload.history) != len(self.history):
                        self.history = list(payload.history)
                    if payload.stage == Stage.TRAINING and len(payload.history) > len(self.epoch_ends):
                        self.epoch_ends.append(payload.elapsed_s)
                elif kind == "comparing":
                    self.comparing = True
                elif kind == "done":
                    result, evaluation, evaluated_on, comparison, comparison_error = payload
                    self.result, self.evaluation, self.evaluated_on = (
                        result,
                        evaluation,
                        evaluated_on,
                    )
                    self.comparison, self.comparison_error = comparison, comparison_error
                    self.comparing = False
                    self.history = result.history or self.history
                    self.state = JobState.CANCELLED if result.cancelled else JobState.DONE
                    return
                elif kind == "error":
                    self._fail(*payload)
                    return
        finally:
            self.finished = datetime.now()
            process.join(10)

    def _fail(self, message: str, details: str | None = None) -> None:
        self.error, self.details, self.state = message, details, JobState.FAILED


class JobManager:
    """Holds the current training job; one runs at a time (training takes the whole CPU)."""

    def __init__(self, runs_dir: Path | None = None):
        # Each run trains into a folder of its own in `runs_dir`; None: config.runs_dir() at each
        # start ($EMOTION_RUNS_DIR moves them: screenshots, demos).
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self._lock = threading.Lock()
        self._job: Job | None = None

    @property
    def current(self) -> Job | None:
        return self._job

    def start(self, config: TrainConfig, *, faces: int | None = None,
              app_model: Path | None = None, estimate_s: float | None = None) -> Job:
        """Start training `config` into a new run folder, on at most `faces` training faces, and
        compare the new model with `app_model` when it ends; JobError while another job runs."""
        with self._lock:
            if self._job is not None and self._job.active:
                raise JobError("a training run is already going: wait for it or cancel it first")
            run_dir = self._new_run_dir()
            job = Job(replace(config, out=str(run_dir), resume=False, verbose=0), run_dir,
                      faces=faces, estimate_s=estimate_s)
            # Training runs in its own process: Streamlit calls keras.backend.clear_session()
            # after every script run, which would reset Keras' state under a training thread.
            # spawn, not fork: forking a process that has TensorFlow loaded can deadlock.
            context = multiprocessing.get_context("spawn")
            messages, job._stop = context.Queue(), context.Event()
            process = context.Process(
                target=_child,
                args=(job.config, messages, job._stop,
                      str(app_model) if app_model is not None else None, faces),
                name="emotion-training",
                daemon=True,
            )
            with _neutral_main():
                process.start()
            # A thread in this process follows the child and keeps the job up to date.
            job._thread = threading.Thread(
                target=job._watch,
                args=(process, messages),
                name="emotion-training-watch",
                daemon=True,
            )
            self._job = job
            job._thread.start()
            return job

    def clear(self) -> None:
        """Forget a finished job (its run folder stays on disk)."""
        with self._lock:
            if self._job is not None and not self._job.active:
                self._job = None

    def _new_run_dir(self) -> Path:
        runs_dir = self.runs_dir or default_runs_dir()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(100):
            run_dir = runs_dir / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                run_dir.mkdir(parents=True)
                return run_dir
            except FileExistsError:
                continue
        raise JobError(f"could not create a new run folder in {runs_dir}")


# The process-wide manager: Streamlit re-runs page scripts, but imported modules stay loaded,
# so a job started here is still here after a rerun or a page switch.
MANAGER = JobManager()
