"""The spawned process of a training job: load the data, train, score, compare with the app's
model, and report each step through the job's queue; a failure is told in words for the page."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from .. import data as data_module
from ..compare import Comparison, compare_on_data, record
from ..data import training_splits
from ..errors import EmotionError, sentence
from ..evaluate import Evaluation, evaluate_model
from ..model import load_model
from ..training.config import Progress, TrainConfig, TrainResult


def _child(config: TrainConfig, messages, stop, app_model: str | None = None,
           faces: int | None = None) -> None:
    """The training process: train, score, compare with the app's model at `app_model`, and
    report everything through `messages`."""
    last = [0.0]

    def on_progress(progress: Progress) -> None:
        # A few updates a second are plenty for the page; every batch would flood the pipe.
        now = time.monotonic()
        if progress.epoch_end or now - last[0] > 0.25:
            last[0] = now
            messages.put(("progress", progress))

    try:
        from ..training.loop import train  # Keras loads here: a failure is reported like any other

        dataset = run_dataset(config.data, faces)
        result = train(config, on_progress, stop.is_set, dataset=dataset)
        evaluation, evaluated_on = result.evaluation, "test"
        if evaluation is None and not result.cancelled:
            evaluation, evaluated_on = _evaluate_validation(result, dataset)
        comparison, comparison_error = None, None
        if app_model and not result.cancelled:
            messages.put(("comparing", None))
            comparison, comparison_error = _compare(result, dataset, Path(app_model),
                                                    {evaluated_on: evaluation})
        messages.put(("done", (result, evaluation, evaluated_on, comparison, comparison_error)))
    except (EmotionError, FileNotFoundError) as exc:
        # A mistake in the data or the settings: the sentence says it all.
        messages.put(("error", (sentence(exc), None)))
    except Exception as exc:  # noqa: BLE001 - the page must show any failure, not lose it
        messages.put(("error", (failure_message(exc, Path(config.out)), traceback.format_exc())))


def run_dataset(data: str, faces: int | None = None):
    """The faces a run trains on: the source, with at most `faces` training faces (a quick test)."""
    dataset = data_module.load(data)
    return data_module.limit_training_faces(dataset, faces) if faces else dataset


def _compare(result: TrainResult, dataset, app_model: Path,
             known: dict[str, Evaluation]) -> tuple[Comparison | None, str | None]:
    """The new model against the app's on the same faces, kept in the run's metrics.json; or
    why that could not be done (the page then asks for the deliberate step)."""
    try:
        comparison = compare_on_data(result.model_path, app_model, dataset, known)
        record(comparison, result.model_path.with_name("metrics.json"))
        return comparison, None
    except Exception as exc:  # noqa: BLE001 - the run's model is fine; say why it was not compared
        return None, f"{type(exc).__name__}: {sentence(exc)}"


def failure_message(exc: Exception, run_dir: Path) -> str:
    """What stopped a training run and what to do about it, in words for the page; the
    exception's own text and traceback go to the job's details, not here.

    An EmotionError, or a file the run could not write, is the user's to fix: its sentence.
    Anything else is a fault in this package or a library: named by its class, its text and
    traceback kept for the details."""
    if isinstance(exc, MemoryError):
        return ("the computer ran out of memory while training: choose a smaller batch size or "
                "close other programs, then start again")
    if isinstance(exc, EmotionError):
        return sentence(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return sentence(exc, failed="the run could not write its files", folder=run_dir.parent)
    return (f"an unexpected error ({type(exc).__name__}) stopped the run; it is not a problem "
            "found in the data or the settings, and nothing was written to the app's model. "
            "Start it again; if it fails again, check that the packages in requirements.txt are "
            "installed, and keep the technical details below for a bug report")


def _evaluate_validation(result: TrainResult, dataset) -> tuple[Evaluation, str]:
    """Score the run's model on its validation split (for data without a test split)."""
    _, val, _ = training_splits(dataset)  # the same seeded split that training held out
    return evaluate_model(load_model(result.model_path), val.images, val.labels), "validation"
