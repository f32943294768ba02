"""The Training page protects the app's model: the new model and the app's are scored on the same
faces, a worse one needs a deliberate second step, a used one keeps its figures; the time
estimate, the cancel, one-epoch charts and settings that survive a page switch.

The models are real Keras models on made-up faces whose emotion is their brightness: one trained
until it tells them apart ("good"), one untrained ("poor")."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.errors import AppTestError

from emotion import compare, registry
from emotion.app import formatting, jobs, ui
from emotion.config import PROJECT_ROOT
from emotion.data import Dataset, LoadReport, Split
from emotion.evaluate import evaluate_model
from emotion.labels import NUM_CLASSES
from emotion.training import Progress, TrainConfig, TrainResult, timing
from emotion.training.config import TINY_BLOCKS
from pages import page, texts, write_known_speed

TIMEOUT = 120


def brightness_faces(per_class: int, seed: int) -> Split:
    """Faces whose emotion is their brightness (class k about 30 * k + 20), with a little noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    images = (labels[:, None, None] * 30 + 20 + rng.integers(-6, 7, (len(labels), 48, 48)))
    return Split(images.clip(0, 255).astype(np.uint8), labels, [f"f{i}" for i in range(len(labels))])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """{"good": a tiny model that tells the faces apart, "poor": the same network untrained}."""
    import keras

    from emotion.model import build_model, save_model_atomic
    from emotion.preprocess import normalise
    from emotion.training.selection import recompute_batch_norm

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    faces = brightness_faces(20, seed=1)
    # These made-up faces differ only in brightness, which EvenLighting would take away.
    good = build_model(TINY_BLOCKS, even_lighting=False)
    good.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    good.fit(normalise(faces.images), keras.utils.to_categorical(faces.labels, NUM_CLASSES),
             epochs=30, batch_size=35, verbose=0)
    # Batch-norm statistics as inference sees them; 120 steps leave the moving averages behind.
    recompute_batch_norm(good, faces.images)
    paths = {"good": folder / "good" / registry.MODEL_FILE, "poor": folder / "poor" / registry.MODEL_FILE}
    save_model_atomic(good, paths["good"])
    save_model_atomic(build_model(TINY_BLOCKS, even_lighting=False), paths["poor"])
    return paths


@pytest.fixture(scope="module")
def faces() -> Dataset:
    """Training faces with their own validation split, and a test split: what a run scores on."""
    return Dataset({"train": brightness_faces(10, seed=2), "val": brightness_faces(3, seed=3),
                    "test": brightness_faces(4, seed=4)}, LoadReport("made-up faces"))


def test_the_good_model_tells_the_faces_apart_and_the_poor_one_does_not(models, faces):
    from emotion.model import load_model

    test = faces["test"]
    assert evaluate_model(load_model(models["good"]), test.images, test.labels).accuracy > 0.9
    assert evaluate_model(load_model(models["poor"]), test.images, test.labels).accuracy < 0.5


# ---------------------------------------------------------------- the comparison, as a library


def test_a_worse_model_is_called_worse_with_both_figures_on_the_same_faces(models, faces):
    result = compare.compare_on_data(models["poor"], models["good"], faces)
    assert [s.split for s in result.splits] == ["validation", "test"]
    assert [s.n_images for s in result.splits] == [21, 28]
    test = result.deciding
    assert test.split == "test" and test.new_accuracy < test.app_accuracy
    assert result.worse and result.app_scored
    assert result.verdict == (f"This model is worse than the app's model: {test.new_accuracy:.1%} "
                              f"against {test.app_accuracy:.1%} on the same 28 test faces.")
    better = compare.compare_on_data(models["good"], models["poor"], faces)
    assert not better.worse and better.verdict.startswith("This model is better than")
    same = compare.compare_on_data(models["good"], models["good"], faces)
    assert not same.worse and "as good as" in same.verdict


def test_without_a_test_split_validation_decides(models, faces):
    no_test = Dataset({"train": faces["train"], "val": faces["val"]}, faces.report)
    result = compare.compare_on_data(models["poor"], models["good"], no_test)
    assert [s.split for s in result.splits] == ["validation"] and result.worse
    assert "on the same 21 validation faces" in result.verdict


def test_the_validation_faces_are_the_ones_training_holds_out(models, faces):
    """Data without a validation split: the comparison holds out the faces train() holds out."""
    from emotion.data import split_validation

    only_train = Dataset({"train": faces["train"]}, faces.report)
    result = compare.compare_on_data(models["good"], models["poor"], only_train)
    _, held = split_validation(faces["train"])
    assert result.splits[0].n_images == len(held) == 7


def test_no_app_model_or_a_damaged_one_is_said_and_nothing_is_worse(models, faces, tmp_path):
    missing = compare.compare_on_data(models["poor"], tmp_path / "none.keras", faces)
    assert not missing.worse and not missing.app_scored
    assert missing.app_problem == "there is no app's model yet"
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"not a model")
    result = compare.compare_on_data(models["poor"], damaged, faces)
    assert not result.app_scored and "could not be scored" in result.verdict


def test_a_comparison_knows_when_the_app_model_changed(models, faces, tmp_path):
    app = tmp_path / "app.keras"
    app.write_bytes(models["good"].read_bytes())
    result = compare.compare_on_data(models["poor"], app, faces)
    assert result.is_current(app)
    app.write_bytes(models["poor"].read_bytes())
    assert not result.is_current(app)


def test_the_scores_go_into_metrics_json_and_back(models, faces, tmp_path):
    result = compare.compare_on_data(models["poor"], models["good"], faces)
    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text(json.dumps({"test": None, "epochs_run": 1}))
    written = compare.record(result, metrics_file)
    assert json.loads(metrics_file.read_text()) == written
    assert written["epochs_run"] == 1  # what was there stays
    assert written["test"] == {"accuracy": result.deciding.new_accuracy,
                               "macro_f1": result.deciding.new_macro_f1, "n_images": 28}
    back = compare.recorded(written)
    assert back.splits == result.splits and back.worse
    assert not [p for p in tmp_path.iterdir() if p.name != "metrics.json"]  # written atomically


# ---------------------------------------------------------------- promotion keeps the figures


def run_folder(folder: Path, model: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / registry.MODEL_FILE).write_bytes(model.read_bytes())
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_a_promoted_model_keeps_the_figures_it_was_compared_on(models, faces, tmp_path):
    """A run whose metrics.json has no test section (a quick run, data without test faces):
    after promotion the app's model shows the test accuracy measured for the comparison."""
    app = tmp_path / "models" / registry.MODEL_FILE
    app.parent.mkdir()
    app.write_bytes(models["good"].read_bytes())
    run = run_folder(tmp_path / "run", models["poor"], {"test": None, "epochs_run": 1})
    assert registry.model_info(run / registry.MODEL_FILE).accuracy_text == "not measured"
    result = compare.compare_on_data(run / registry.MODEL_FILE, app, faces)
    registry.promote(run, app, comparison=result)
    info = registry.model_info(app)
    assert info.test_accuracy == result.deciding.new_accuracy and info.test_images == 28
    assert info.accuracy_label == "Test accuracy"
    assert registry.model_info(registry.backup_dir(app) / registry.MODEL_FILE).exists


def test_without_test_faces_the_validation_figure_is_kept_and_named(models, faces, tmp_path):
    app = tmp_path / "models" / registry.MODEL_FILE
    app.parent.mkdir()
    app.write_bytes(models["good"].read_bytes())
    run = run_folder(tmp_path / "run", models["poor"], {"test": None})
    no_test = Dataset({"train": faces["train"], "val": faces["val"]}, faces.report)
    registry.promote(run, app, comparison=compare.compare_on_data(run / registry.MODEL_FILE, app,
                                                                  no_test))
    info = registry.model_info(app)
    assert info.test_accuracy is None and info.accuracy_label == "Validation accuracy"
    assert info.accuracy_text.endswith("on 21 validation faces")


def test_a_restore_shows_each_model_with_its_own_saved_time(tmp_path):
    """Promote and restore keep each file's time: before, both models showed the time of the
    copy, the same minute after a quick promote and restore."""
    import os

    app = tmp_path / "models" / registry.MODEL_FILE
    app.parent.mkdir()
    app.write_bytes(b"old model")
    os.utime(app, (1_600_000_000, 1_600_000_000))  # saved in 2020
    run = tmp_path / "run"
    run.mkdir()
    (run / registry.MODEL_FILE).write_bytes(b"new model")
    new_time = (run / registry.MODEL_FILE).stat().st_mtime
    registry.promote(run, app, verify=False)
    assert registry.model_info(app).modified.timestamp() == pytest.approx(new_time)
    registry.restore(app)
    restored = registry.model_info(app).modified
    backup = registry.model_info(registry.backup_dir(app) / registry.MODEL_FILE).modified
    assert restored.year == 2020 and backup.timestamp() == pytest.approx(new_time)


def test_a_model_shows_when_its_metrics_say_it_was_saved_even_in_a_fresh_clone(tmp_path):
    """A clone or a plain copy gives every file the time of the copy: the model's metrics.json
    keeps when it was saved, and the Home and Training pages show that."""
    import json
    import shutil

    made = tmp_path / "made"
    made.mkdir()
    (made / registry.MODEL_FILE).write_bytes(b"a model")
    (made / "metrics.json").write_text(json.dumps({"saved_at": "2020-09-13T12:26:40+00:00"}))
    clone = tmp_path / "clone"
    shutil.copytree(made, clone, copy_function=shutil.copy)  # new files, new times
    shown = registry.model_info(clone / registry.MODEL_FILE).modified
    assert shown.astimezone().timestamp() == pytest.approx(1_600_000_000)
    # A model without it (or with a time nobody can read) shows its file's time, as before.
    for metrics in ({}, {"saved_at": "yesterday"}, {"saved_at": None}):
        (clone / "metrics.json").write_text(json.dumps(metrics))
        info = registry.model_info(clone / registry.MODEL_FILE)
        assert info.modified.timestamp() == pytest.approx(
            (clone / registry.MODEL_FILE).stat().st_mtime)


# ---------------------------------------------------------------- the time estimate


def test_durations_read_as_a_person_says_them():
    assert timing.duration_text(20) == "under a minute"
    assert timing.duration_text(200) == "about 3 min"
    assert timing.duration_text(4 * 3600 + 50 * 60) == "about 4 h 50 min"
    assert timing.duration_text(2 * 3600 + 2 * 60) == "about 2 h"
    assert timing.duration_text(30 * 3600) == "about 30 h"


def test_the_estimate_counts_batches_validation_and_the_scoring_after():
    speed = timing.Speed(step_s=0.25, first_step_s=5.25, face_s=0.001, startup_s=7.0)
    faces = {"train": 28709, "test": 3589}
    est = timing.estimate(speed, faces=faces, epochs=60, batch_size=64)
    val = round(28709 * 0.1)
    steps = -(-(28709 - val) // 64)
    epoch_s = steps * 0.25 + val * 0.001
    assert est.epoch_s == pytest.approx(epoch_s)
    after = 0.001 * ((28709 - val) + 3 * val + 3589 + 2 * (val + 3589))
    assert est.seconds == pytest.approx(7.0 + 5.0 + 60 * epoch_s + after)
    assert est.text == f"{timing.duration_text(est.seconds)} for 60 epochs on 28,709 faces"
    quick = timing.estimate(speed, faces=faces, epochs=2, batch_size=64, limit=2000)
    assert quick.faces == 2000 and quick.seconds < est.seconds / 20
    limited = timing.estimate(speed, faces=faces, epochs=60, batch_size=64, minutes=30)
    assert limited.limited and "the time limit" in limited.text
    assert limited.seconds == pytest.approx(7.0 + 30 * 60 + after)


def test_the_speed_is_measured_on_this_machine_and_cached(tmp_path, monkeypatch):
    key = timing.SpeedKey(batch_size=8, blocks=TINY_BLOCKS)
    speed = timing.measure(key, steps=2)
    assert 0 < speed.step_s < speed.first_step_s and speed.face_s > 0
    # The cache is per settings: a measured entry is used, another batch size is not known.
    path = tmp_path / timing.CACHE_FILE
    path.write_text(json.dumps({key.text(): asdict(speed)}))
    assert timing.known_speed(key, tmp_path) == speed
    assert timing.known_speed(timing.SpeedKey(batch_size=16, blocks=TINY_BLOCKS), tmp_path) is None
    stale = timing.Speed(**{**asdict(speed), "measured_at": time.time() - timing.MAX_AGE_S - 1})
    path.write_text(json.dumps({key.text(): asdict(stale)}))
    assert timing.known_speed(key, tmp_path) is None


def test_sessions_asking_at_once_time_the_machine_once(tmp_path, monkeypatch, in_threads):
    """Eight sessions open the page together: one measurement (here in this process, so the
    test can count it), and every one of them then gets the same speed."""
    key = timing.SpeedKey(batch_size=4, blocks=TINY_BLOCKS)
    measured = []

    def measure_here(asked: timing.SpeedKey) -> timing.Speed:
        measured.append(asked)
        return timing.measure(asked, steps=1)

    monkeypatch.setattr(timing, "measure_in_subprocess", measure_here)
    first = in_threads(lambda _: timing.speed_or_measure(key, tmp_path), 8)
    assert first.count(None) >= 1  # the first callers are told it is being measured
    deadline = time.monotonic() + 120
    while timing.measuring(key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert measured == [key]
    speeds = in_threads(lambda _: timing.speed_or_measure(key, tmp_path), 8)
    assert len({json.dumps(asdict(s)) for s in speeds}) == 1 and speeds[0] is not None
    assert not timing.measure_failed(key)


def test_faces_are_counted_without_decoding(tmp_path, fer_sample_csv):
    from emotion.data import count_faces

    assert count_faces(fer_sample_csv) == {"train": 350, "val": 70}
    assert count_faces(tmp_path / "nowhere") is None and count_faces("kaggle") is None


# ---------------------------------------------------------------- time left, cancel


def test_time_left_comes_from_the_epochs_done():
    job = jobs.Job(TrainConfig(data="x", epochs=10), Path("run"), state=jobs.JobState.RUNNING)
    job._first_step = (1, 8.0)  # the first batch seen, after compiling
    job.progress = Progress(1, 10, 11, 100, {}, elapsed_s=10.0)
    assert job.time_left_s == pytest.approx((89 + 9 * 100) * 0.2)
    job.epoch_ends = [30.0, 50.0, 70.0]  # 20 s an epoch once compiled
    job.progress = Progress(4, 10, 50, 100, {}, elapsed_s=80.0)
    assert job.time_left_s == pytest.approx(7 * 20 - 10)
    assert "about 2 min left" in job.status_text
    job.config = TrainConfig(data="x", epochs=10, minutes=1.5)  # the time limit comes first
    assert job.time_left_s == pytest.approx(10)


def test_a_cancelled_run_keeps_its_bar_where_it_stopped_and_says_so_once():
    job = jobs.Job(TrainConfig(data="x", epochs=2), Path("run"), state=jobs.JobState.CANCELLED)
    job.progress = Progress(1, 2, 3, 10, {"loss": 2.0})
    assert job.fraction == pytest.approx(0.15)
    assert job.status_text == "stopped at epoch 1/2, batch 3/10"
    assert "cancel" not in job.status_text  # the page's one message says it


@pytest.mark.slow
def test_the_training_process_stops_between_batches(tmp_path, fer_sample_csv, monkeypatch):
    """The run stops by itself at the next batch, not at the end of the epoch: with the grace
    made long, the stop is the child's own (its result says cancelled) and the bar is still in
    the first epoch where it was. (scripts/time_cancel.py times it.)"""
    monkeypatch.setattr(jobs, "CANCEL_GRACE_S", 600.0)
    manager = jobs.JobManager(tmp_path / "runs")
    job = manager.start(TrainConfig(data=str(fer_sample_csv), epochs=3, batch_size=16))
    while job.active and not (job.progress and job.progress.step >= 2):
        time.sleep(0.05)
    assert job.progress is not None, job.error
    at = job.fraction
    job.cancel()
    assert job.stopping and job.status_text == "stopping..."
    assert job.wait(300)
    assert job.state == jobs.JobState.CANCELLED
    assert job.result is not None and job.result.cancelled  # the child stopped, not ended
    assert at <= job.fraction < 1 / 3  # still in epoch 1 of 3, where it was
    assert job.history == []  # epoch 1 was not finished (no validation, no checkpoint)
    assert not (job.run_dir / registry.MODEL_FILE).exists()


def test_a_run_busy_where_it_cannot_check_is_ended_after_the_grace(tmp_path, monkeypatch):
    """A child stuck before its first batch (here: asleep for 10 minutes) is ended
    CANCEL_GRACE_S after Cancel, and the job says cancelled."""
    monkeypatch.setattr(jobs, "_child", _sleeping_child)
    manager = jobs.JobManager(tmp_path / "runs")
    job = manager.start(TrainConfig(data="x"))
    time.sleep(0.5)
    job.cancel()
    assert job.wait(120), "the job waited for its sleeping process"
    assert job.state == jobs.JobState.CANCELLED and job.result is None
    assert job.status_text == "cancelled"


def _sleeping_child(config, messages, stop, app_model=None, faces=None) -> None:
    time.sleep(600)


# ---------------------------------------------------------------- the page


def training_page() -> AppTest:
    return page("app_pages/3_Training.py")


@pytest.fixture
def app_model(tmp_path, monkeypatch):
    target = tmp_path / "models" / registry.MODEL_FILE
    monkeypatch.setenv("EMOTION_MODEL", str(target))
    monkeypatch.setattr(jobs.MANAGER, "runs_dir", tmp_path / "runs")
    monkeypatch.delenv("EMOTION_DISABLE_TRAINING", raising=False)
    # A speed for the page's default settings, so no test waits for a measurement.
    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    write_known_speed(tmp_path / "cache")
    yield target
    monkeypatch.setattr(jobs.MANAGER, "_job", None)


def finished_job(run: Path, faces: Dataset, app: Path, history: list[dict]) -> jobs.Job:
    """A finished run as the training process reports it: scored, and compared with the app's."""
    from emotion.model import load_model

    model = run / registry.MODEL_FILE
    test = faces["test"]
    evaluation = evaluate_model(load_model(model), test.images, test.labels)
    job = jobs.Job(TrainConfig(data="made-up", epochs=len(history)), run, state=jobs.JobState.DONE,
                   evaluation=evaluation, evaluated_on="test", history=history)
    job.result = TrainResult(run, model, evaluation, history, train_seconds=3.0)
    job.comparison = compare.compare_on_data(model, app, faces, {"test": evaluation})
    return job


ONE_EPOCH = [{"epoch": 1, "loss": 1.9, "accuracy": 0.2, "val_loss": 1.95, "val_accuracy": 0.186}]


def finish_run(models, faces, app_model: Path, tmp_path: Path, monkeypatch, *, app: str, new: str,
               metrics: dict) -> tuple[jobs.Job, Path]:
    """The app's model is models[app]; a one-epoch run that made models[new] (with `metrics`)
    has just finished, as the page's job manager reports it."""
    app_model.parent.mkdir()
    app_model.write_bytes(models[app].read_bytes())
    run = run_folder(tmp_path / "runs" / "r1", models[new], metrics)
    job = finished_job(run, faces, app_model, ONE_EPOCH)
    monkeypatch.setattr(jobs.MANAGER, "_job", job)
    return job, run


def test_a_worse_model_gets_a_warning_and_a_deliberate_second_step(models, faces, app_model,
                                                                  tmp_path, monkeypatch):
    job, run = finish_run(models, faces, app_model, tmp_path, monkeypatch, app="good", new="poor",
                          metrics={"test": None, "epochs_run": 1})
    before = app_model.read_bytes()

    at = training_page().run()
    assert not at.exception
    test = job.comparison.deciding
    warning = next(w for w in texts(at, "warning") if "worse than the app's model" in w)
    assert (f"{test.new_accuracy:.1%} against {test.app_accuracy:.1%} on the same 28 test faces"
            in warning)
    button = at.button(key="promote")
    assert button.proto.type == "secondary" and button.disabled
    assert button.label == "Use this model anyway"
    with pytest.raises(AppTestError, match="disabled"):  # no click before the checkbox
        button.click()
    assert app_model.read_bytes() == before

    at.checkbox(key="promote-anyway").check().run()
    assert not at.button(key="promote").disabled
    at.button(key="promote").click().run()
    assert not at.exception
    assert app_model.read_bytes() == (run / registry.MODEL_FILE).read_bytes()
    assert any("now the app's model" in s for s in texts(at, "success"))
    assert "This run's model is the app's model." in texts(at, "caption")  # not offered again
    assert not [b for b in at.button if b.key == "promote"]

    # Home shows the figure it was judged by, not "not measured".
    home = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not home.exception
    assert home.metric[0].label == "Test accuracy"
    assert home.metric[0].value == f"{test.new_accuracy:.1%}"


def test_a_better_model_gets_the_primary_button(models, faces, app_model, tmp_path, monkeypatch):
    finish_run(models, faces, app_model, tmp_path, monkeypatch, app="poor", new="good",
               metrics={"test": None})
    at = training_page().run()
    assert not at.exception
    assert any("better than the app's model" in s for s in texts(at, "success"))
    assert not any("worse" in w for w in texts(at, "warning"))
    button = at.button(key="promote")
    assert button.proto.type == "primary" and not button.disabled and button.label == "Use this model"
    assert "promote-anyway" not in [c.key for c in at.checkbox]


def test_one_epoch_draws_points_not_an_empty_frame(models, faces, app_model, tmp_path,
                                                   monkeypatch):
    finish_run(models, faces, app_model, tmp_path, monkeypatch, app="good", new="poor",
               metrics={"test": None})
    at = training_page().run()
    assert not at.exception
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(charts) == 2
    for spec in charts:
        assert spec["mark"]["type"] == "line" and spec["mark"]["point"]
    chart = formatting.history_chart(ONE_EPOCH, "accuracy").to_dict()
    values = next(iter(chart["datasets"].values()))
    assert [(v["split"], v["accuracy"]) for v in values] == [("training", 0.2), ("validation", 0.186)]


def test_the_page_shows_the_estimate_and_the_quick_test(app_model, fer_sample_csv):
    at = training_page().run()
    assert not at.exception
    at.text_input(key="data_path").set_value(str(fer_sample_csv)).run()
    speed = timing.known_speed(timing.SpeedKey())
    full = timing.estimate(speed, faces={"train": 350, "val": 70}, epochs=60, batch_size=64)
    assert f"**Estimated time: {full.text}**" in texts(at, "markdown")
    assert full.text.endswith("for 60 epochs on 350 faces")
    at.radio(key="preset").set_value(jobs.QUICK_TEST.name).run()
    quick = timing.estimate(speed, faces={"train": 350, "val": 70}, epochs=2, batch_size=64,
                            limit=2000)
    assert f"**Estimated time: {quick.text}**" in texts(at, "markdown")
    assert at.number_input(key="epochs").disabled


def test_settings_survive_leaving_the_page(app_model, fer_sample_csv):
    """Streamlit drops the state of widgets a run did not draw (the user went to another page);
    the page puts the values back."""
    at = training_page().run()
    at.text_input(key="data_path").set_value(str(fer_sample_csv))
    at.number_input(key="epochs").set_value(7)
    at.selectbox(key="batch_size").set_value(32)
    at.number_input(key="average").set_value(25).run()
    # Back from another page, the session has its other values but no widget's: a fresh run
    # holding only what the page kept outside the widgets.
    back = training_page()
    back.session_state[ui.KEPT_SETTINGS] = at.session_state[ui.KEPT_SETTINGS]
    at = back.run()
    assert not at.exception
    assert at.number_input(key="epochs").value == 7
    assert at.selectbox(key="batch_size").value == 32
    assert at.number_input(key="average").value == 25
    assert at.text_input(key="data_path").value == str(fer_sample_csv)


def test_the_calibration_is_read_when_there_is_one(tmp_path):
    assert formatting.calibration_text({}) is None
    assert formatting.calibration_text({"calibration": "odd"}) is None
    text = formatting.calibration_text({"calibration": {
        "temperature": 1.42, "val": {"ece_before": 0.1, "ece_after": 0.03, "n": 2871},
        "test": {"ece_before": 0.109, "ece_after": 0.021, "n": 3589}}})
    assert "2.1 points away from how often it is right on 3,589 test faces" in text
    assert "0.021" in text and "0.109 before calibration" in text and "1.42" in text


def test_a_quick_run_trains_on_a_stratified_seeded_subset(faces):
    from emotion.data import limit_training_faces

    small = limit_training_faces(faces, 35)
    again = limit_training_faces(faces, 35)
    assert len(small["train"]) == 35 and set(small["train"].counts().values()) == {5}
    assert small["train"].sources == again["train"].sources  # drawn from the seed
    assert small["val"] is faces["val"] and small["test"] is faces["test"]
    assert limit_training_faces(faces, 10_000) is faces  # fewer faces than the limit: all


def test_the_results_show_the_calibration_when_the_run_has_one(models, faces, app_model, tmp_path,
                                                               monkeypatch):
    import cv2

    calibration = {"temperature": 1.5, "test": {"ece_before": 0.11, "ece_after": 0.02, "n": 28}}
    _, run = finish_run(models, faces, app_model, tmp_path, monkeypatch, app="good", new="poor",
                        metrics={"test": None, "calibration": calibration})
    cv2.imwrite(str(run / "reliability.png"), np.full((60, 60, 3), 255, np.uint8))
    at = training_page().run()
    assert not at.exception
    assert any("2.0 points away from how often it is right on 28 test faces" in m
               for m in texts(at, "markdown"))
    images = at.get("imgs") + list(at.image)
    assert len(images) == 2  # the confusion matrix and the reliability diagram
