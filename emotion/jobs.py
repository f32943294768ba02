"""Training jobs in a background thread, one at a time, that outlive page reruns and switches."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from .config import DATA_DIR, MODELS_DIR
from .evaluate import Evaluation
from .train import Progress, TrainConfig, TrainResult

# Each run trains into its own folder here; EMOTION_RUNS_DIR moves them (screenshots, demos).
RUNS_DIR = Path(os.environ.get("EMOTION_RUNS_DIR", MODELS_DIR / "runs"))
UPLOADS_DIR = DATA_DIR / "uploads"

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"


class JobError(RuntimeError):
    """A job that cannot be started; the message says why."""


@dataclass
class Job:
    """One training run: its settings, folder, live progress and, at the end, result or error."""

    config: TrainConfig
    run_dir: Path
    state: str = QUEUED
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
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    @property
    def fraction(self) -> float:
        """How far the run is, 0..1, counting batches over all epochs."""
        p = self.progress
        if self.state == DONE:
            return 1.0
        if p is None or not p.epochs or not p.steps:
            return 0.0
        return min(1.0, ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps))

    @property
    def status_text(self) -> str:
        p = self.progress
        if self.state == QUEUED or (self.state == RUNNING and p is None):
            return "loading data and building the model..."
        if self.state == RUNNING:
            loss = p.logs.get("loss")
            acc = p.logs.get("accuracy")
            parts = [f"epoch {p.epoch}/{p.epochs}", f"batch {p.step}/{p.steps}"]
            if loss is not None:
                parts.append(f"loss {loss:.3f}")
            if acc is not None:
                parts.append(f"accuracy {acc:.1%}")
            parts.append(f"{p.elapsed_s:.0f} s")
            return ", ".join(parts)
        if self.state == DONE and self.evaluation:
            return f"finished: {self.evaluated_on} accuracy {self.evaluation.accuracy:.1%}"
        if self.state == DONE:
            return "finished"
        if self.state == CANCELLED:
            return "cancelled: nothing was written to the app's model"
        return f"failed: {self.error}"

    def cancel(self) -> None:
        """Ask the run to stop after the current batch."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (or `timeout` seconds pass); True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.active

    # -- called from the training thread

    def _on_progress(self, progress: Progress) -> None:
        # One assignment each: the page thread reads whole objects, never half-updated ones.
        self.state = RUNNING
        self.progress = progress
        if progress.epoch_end or len(progress.history) != len(self.history):
            self.history = list(progress.history)

    def _run(self, dataset=None) -> None:
        from . import data as data_module
        from .data import DataError
        from .train import train

        self.state = RUNNING
        try:
            # Loaded here, not in the page: a large folder takes a while and must not block it.
            dataset = dataset or data_module.load(self.config.data)
            result = train(self.config, self._on_progress, self._stop.is_set, dataset=dataset)
            self.evaluation, self.evaluated_on = result.evaluation, "test"
            if result.evaluation is None and not result.cancelled:
                self.evaluation, self.evaluated_on = _evaluate_validation(result, dataset)
        except (DataError, FileNotFoundError) as exc:
            self.error = str(exc)  # a mistake in the data given: the message says it all
            self.state = FAILED
        except Exception as exc:  # the page must show any failure, not lose it in a thread
            self.error = f"{type(exc).__name__}: {exc}"
            self.details = traceback.format_exc()
            self.state = FAILED
        else:
            self.result = result
            self.history = result.history or self.history
            self.state = CANCELLED if result.cancelled else DONE
        finally:
            self.finished = datetime.now()


def _evaluate_validation(result: TrainResult, dataset) -> tuple[Evaluation, str]:
    """Score the run's model on its validation split (for data without a test split)."""
    from .data import training_splits
    from .evaluate import evaluate_model
    from .model import load_model

    _, val, _ = training_splits(dataset)  # the same seeded split that training held out
    return evaluate_model(load_model(result.model_path), val.images, val.labels), "validation"


class JobManager:
    """Holds the current training job; one runs at a time (training takes the whole CPU)."""

    def __init__(self, runs_dir: Path = RUNS_DIR):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()
        self._job: Job | None = None

    @property
    def current(self) -> Job | None:
        return self._job

    def start(self, config: TrainConfig, dataset=None) -> Job:
        """Start training `config` into a new run folder; JobError while another job runs."""
        with self._lock:
            if self._job is not None and self._job.active:
                raise JobError("a training run is already going: wait for it or cancel it first")
            run_dir = self._new_run_dir()
            job = Job(replace(config, out=str(run_dir), resume=False, verbose=0), run_dir)
            job._thread = threading.Thread(target=job._run, args=(dataset,), name="emotion-training",
                                           daemon=True)
            self._job = job
            job._thread.start()
            return job

    def clear(self) -> None:
        """Forget a finished job (its run folder stays on disk)."""
        with self._lock:
            if self._job is not None and not self._job.active:
                self._job = None

    def _new_run_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(100):
            run_dir = self.runs_dir / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                run_dir.mkdir(parents=True)
                return run_dir
            except FileExistsError:
                continue
        raise JobError(f"could not create a new run folder in {self.runs_dir}")


def history_frame(history: list[dict[str, float]]):
    """Per-epoch history as a DataFrame indexed by epoch (for live charts), or None when empty."""
    import pandas as pd

    if not history:
        return None
    return pd.DataFrame(history).set_index("epoch")


def per_class_frame(evaluation: Evaluation):
    """Precision, recall, F1 and support per emotion as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(
        [{"emotion": name, "precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support}
         for name, s in evaluation.per_class.items()]
    ).set_index("emotion")


# The process-wide manager: Streamlit re-runs page scripts, but imported modules stay loaded,
# so a job started here is still here after a rerun or a page switch.
MANAGER = JobManager()


def save_upload(data: bytes, name: str, folder: Path = UPLOADS_DIR) -> Path:
    """Keep an uploaded data file under a content-derived name (the same file is stored once)."""
    if not data:
        raise JobError(f"{name}: the file is empty")
    suffix = re.sub(r"[^.a-z0-9]", "", Path(name).suffix.lower()) or ".csv"
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:40]  # no paths or odd characters
    path = folder / f"{stem}-{digest}{suffix}"
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
