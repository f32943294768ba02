"""Training jobs and model promotion, all inside tmp_path (the real models/ is never touched)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotion import config, registry
from emotion.app import jobs, training_process, uploads
from emotion.training import TrainConfig


def write_model_dir(folder: Path, model: bytes, accuracy: float | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / registry.MODEL_FILE).write_bytes(model)
    if accuracy is not None:
        (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": accuracy}}))
    return folder


def test_promote_keeps_a_backup_and_restore_swaps_back_and_forth(tmp_path):
    app = write_model_dir(tmp_path / "models", b"old model", 0.5) / registry.MODEL_FILE
    (app.parent / "training_curves.png").write_bytes(b"old curves")
    run = write_model_dir(tmp_path / "runs" / "r1", b"new model", 0.6)

    registry.promote(run, app, verify=False)
    assert app.read_bytes() == b"new model"
    assert registry.model_info(app).test_accuracy == pytest.approx(0.6)
    # The old curves belonged to the old model: they moved to the backup with it.
    assert not (app.parent / "training_curves.png").exists()
    backup = registry.backup_dir(app)
    assert (backup / registry.MODEL_FILE).read_bytes() == b"old model"
    assert (backup / "training_curves.png").read_bytes() == b"old curves"
    assert registry.has_backup(app)

    registry.restore(app)
    assert app.read_bytes() == b"old model"
    assert registry.model_info(app).test_accuracy == pytest.approx(0.5)
    assert (app.parent / "training_curves.png").read_bytes() == b"old curves"
    assert (backup / registry.MODEL_FILE).read_bytes() == b"new model"

    registry.restore(app)  # a restore can itself be undone
    assert app.read_bytes() == b"new model"
    assert not [p for p in app.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_promoting_the_same_model_twice_keeps_the_real_backup(tmp_path):
    app = write_model_dir(tmp_path / "models", b"old model", None) / registry.MODEL_FILE
    run = write_model_dir(tmp_path / "run", b"new model", None)
    registry.promote(run, app, verify=False)
    with pytest.raises(registry.PromotionError, match="already"):
        registry.promote(run, app, verify=False)
    assert (registry.backup_dir(app) / registry.MODEL_FILE).read_bytes() == b"old model"


def test_an_unreadable_model_is_never_promoted(tmp_path):
    app = write_model_dir(tmp_path / "models", b"working model", 0.5) / registry.MODEL_FILE
    run = write_model_dir(tmp_path / "run", b"not a keras file", 0.9)
    with pytest.raises(registry.PromotionError, match="not promoted"):
        registry.promote(run, app)
    assert app.read_bytes() == b"working model"
    assert not registry.has_backup(app)
    with pytest.raises(registry.PromotionError, match="no emotion_cnn.keras"):
        registry.promote(tmp_path / "empty-run", app)
    with pytest.raises(registry.PromotionError, match="no previous model"):
        registry.restore(app)


def test_first_promotion_into_an_empty_models_folder(tmp_path):
    app = tmp_path / "models" / registry.MODEL_FILE
    assert registry.model_info(app).exists is False
    registry.promote(write_model_dir(tmp_path / "run", b"m", None), app, verify=False)
    assert app.read_bytes() == b"m" and not registry.has_backup(app)
    assert registry.model_info(app).accuracy_text == "not measured"


def test_app_model_path_follows_config(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_MODEL", str(tmp_path / "x.keras"))
    assert registry.app_model_path() == tmp_path / "x.keras"


def test_a_job_with_missing_data_fails_with_the_loader_message(tmp_path):
    manager = jobs.JobManager(tmp_path / "runs")
    job = manager.start(TrainConfig(data=str(tmp_path / "nowhere.csv"), epochs=1))
    assert job.wait(60)
    assert job.state == jobs.JobState.FAILED
    assert "nowhere.csv" in job.error and "no such file" in job.error
    assert job.details is None  # a data mistake needs no traceback
    assert job.run_dir.parent == tmp_path / "runs"
    manager.clear()
    assert manager.current is None


def test_a_job_that_fails_unexpectedly_says_what_happened_and_what_to_do(tmp_path, monkeypatch):
    """Not the exception's raw text ("ValueError: Unable to import backend : nope"): what went
    wrong and what to do on the page, the technical text in the details."""
    from hostile import HEADER, face_row

    data = tmp_path / "faces.csv"
    rows = [face_row(label=str(i % 2), value=str(10 + i)) for i in range(40)]
    data.write_text("\n".join([HEADER, *rows]) + "\n")
    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    # The training process cannot load Keras: an error in a library, not in the data or settings.
    monkeypatch.setenv("KERAS_BACKEND", "no-such-backend")
    manager = jobs.JobManager(tmp_path / "runs")
    job = manager.start(TrainConfig(data=str(data), epochs=1))
    assert job.wait(120)
    assert job.state == jobs.JobState.FAILED
    assert not job.error.startswith("ValueError"), job.error
    assert "unexpected error (ValueError)" in job.error and "Start it again" in job.error
    assert "nothing was written to the app's model" in job.error
    assert "Unable to import backend" in job.details  # for a bug report, behind "details"
    assert "failed: an unexpected error (ValueError)" in job.status_text


def test_failure_messages_name_the_problem_and_the_remedy(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    full = OSError(28, "No space left on device", str(run_dir / "emotion_cnn.keras"))
    text = training_process.failure_message(full, run_dir)
    assert text.startswith(f"{run_dir / 'emotion_cnn.keras'}: no space left on device")
    assert f"free space and permissions of {run_dir.parent}" in text and "Errno" not in text
    assert "smaller batch size" in training_process.failure_message(MemoryError(), run_dir)
    try:  # one of the package's own checks: its message is already written for the user
        config.app_threads({config.THREADS_ENV: "many"})
    except ValueError as exc:
        assert training_process.failure_message(exc, run_dir) == str(exc)
    try:
        np.stack([])  # a library's own words
    except ValueError as exc:
        text = training_process.failure_message(exc, run_dir)
    assert text.startswith("an unexpected error (ValueError) stopped the run")
    assert "need at least" not in text


def test_the_training_page_defaults_are_the_command_lines(tmp_path):
    assert jobs.TRAIN_DEFAULTS == TrainConfig(data="")
    assert jobs.default_learning_rate("Adam") == TrainConfig(data="", optimizer="adam").learning_rate
    assert jobs.default_learning_rate("SGD") == TrainConfig(data="", optimizer="sgd").learning_rate


@pytest.mark.slow
def test_a_cancelled_job_stops_and_leaves_no_model(tmp_path):
    if not config.SHARED_FER2013.joinpath("fer2013-sample.csv").is_file():
        pytest.skip(f"FER2013 sample not found at {config.SHARED_FER2013}")
    manager = jobs.JobManager(tmp_path / "runs")
    job = manager.start(
        TrainConfig(data=str(config.SHARED_FER2013 / "fer2013-sample.csv"), epochs=5, batch_size=32)
    )
    with pytest.raises(jobs.JobError, match="already"):
        manager.start(TrainConfig(data="x"))
    job.cancel()  # stops at the next batch, or is ended jobs.CANCEL_GRACE_S later
    assert job.wait(300)
    assert job.state == jobs.JobState.CANCELLED, job.error
    assert not (job.run_dir / registry.MODEL_FILE).exists()
    assert job.status_text == "cancelled" or job.status_text.startswith("stopped at epoch 1/5")


def test_uploads_are_stored_once_under_a_safe_name(tmp_path):
    a = uploads.save_upload(b"emotion,pixels\n", "../../evil name.csv", tmp_path)
    b = uploads.save_upload(b"emotion,pixels\n", "../../evil name.csv", tmp_path)
    assert (
        a == b and a.parent == tmp_path and a.name.startswith("evil_name-") and a.suffix == ".csv"
    )
    assert [p.name for p in tmp_path.iterdir()] == [a.name]  # no temporary file left
    with pytest.raises(uploads.UploadError, match="empty"):
        uploads.save_upload(b"", "x.csv", tmp_path)


def test_new_run_folders_never_collide(tmp_path):
    manager = jobs.JobManager(tmp_path)
    assert len({manager._new_run_dir() for _ in range(3)}) == 3


def test_status_says_what_a_run_does_after_its_last_epoch(tmp_path):
    from emotion.training import Progress, Stage

    job = jobs.Job(TrainConfig(data="x"), tmp_path, state=jobs.JobState.RUNNING)
    job.progress = Progress(3, 3, 10, 10, {"loss": 1.2, "accuracy": 0.5}, epoch_end=True,
                            elapsed_s=42)
    assert job.status_text.startswith("epoch 3/3, batch 10/10, loss 1.200, accuracy 50.0%")
    job.progress = Progress(3, 3, 10, 10, {}, epoch_end=True, elapsed_s=50, stage=Stage.CHOOSING)
    assert job.status_text == f"{Stage.CHOOSING.text}, 50 s"


def test_a_runs_folder_that_cannot_be_made_is_a_job_error_saying_what_to_do(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    manager = jobs.JobManager(blocker / "runs")
    with pytest.raises(jobs.JobError) as caught:
        manager.start(TrainConfig(data=str(tmp_path / "faces.csv"), epochs=1))
    text = str(caught.value)
    assert text.startswith(str(blocker / "runs")) and "the run's folder could not be made" in text
    assert "EMOTION_RUNS_DIR" in text and "Errno" not in text
    assert manager.current is None


def test_a_model_that_cannot_be_copied_is_a_promotion_error_saying_what_to_do(tmp_path):
    run = write_model_dir(tmp_path / "run", b"new model", None)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the models folder should be")
    with pytest.raises(registry.PromotionError) as caught:
        registry.promote(run, blocker / "models" / registry.MODEL_FILE, verify=False)
    text = str(caught.value)
    assert "the model could not be copied" in text and "Errno" not in text
    assert text.startswith(str(blocker / "models"))
