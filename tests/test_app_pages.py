"""The Streamlit pages, driven headless with AppTest: real model, real data, real training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import pytest
from streamlit.testing.v1 import AppTest

from emotion import config, photo, registry
from emotion.app import jobs
from emotion.config import PROJECT_ROOT
from emotion.labels import EMOTIONS
from emotion.training import TrainConfig
from pages import MODEL, needs_model, page, texts, write_known_speed

SAMPLE_CSV = config.SHARED_FER2013 / "fer2013-sample.csv"
def needs_sample():
    if not SAMPLE_CSV.is_file():
        pytest.skip(f"FER2013 sample not found at {SAMPLE_CSV} (emotion.config.SHARED_FER2013)")


@pytest.fixture
def app_model(tmp_path, monkeypatch):
    """The app's model moved into tmp_path: promotion in a test never touches models/."""
    target = tmp_path / "models" / registry.MODEL_FILE
    monkeypatch.setenv("EMOTION_MODEL", str(target))
    return target


# ---------------------------------------------------------------- home


def test_home_names_the_model_and_its_accuracy(app_model):
    app_model.parent.mkdir()
    app_model.write_bytes(b"model bytes")
    (app_model.parent / "metrics.json").write_text(
        json.dumps(
            {"test": {"accuracy": 0.6543, "macro_f1": 0.61, "n_images": 3589}, "epochs_run": 40,
             "hyperparameters": {"init": "models/first_cycle.keras"}}
        )
    )
    at = page("app.py").run()
    assert not at.exception
    assert "65.4%" in texts(at, "metric")
    caption = next(c for c in texts(at, "caption") if str(app_model) in c)
    assert "40 epochs" in caption and "models/first_cycle.keras" in caption
    # Every page that exists is linked.
    assert len(at.get("page_link")) == len(list((PROJECT_ROOT / "app_pages").glob("[0-9]_*.py")))


def test_home_shows_the_shipped_models_path_relative_to_the_project(monkeypatch):
    shipped = config.SHIPPED_MODEL
    if not shipped.is_file():
        pytest.skip(f"no model at {shipped}")
    monkeypatch.setenv("EMOTION_MODEL", str(shipped))
    at = page("app.py").run()
    assert not at.exception
    caption = next(c for c in texts(at, "caption") if "Model file" in c)
    assert f"`{shipped.relative_to(PROJECT_ROOT).as_posix()}`" in caption
    assert str(PROJECT_ROOT) not in caption


def test_home_says_not_measured_without_metrics_and_warns_without_model(app_model):
    app_model.parent.mkdir()
    app_model.write_bytes(b"model bytes")
    at = page("app.py").run()
    assert texts(at, "metric")[0] == "not measured"
    app_model.unlink()
    at = page("app.py").run()
    assert not at.exception
    assert any("No model at" in w for w in texts(at, "warning"))


def test_home_does_not_import_tensorflow():
    code = (
        "import sys; from streamlit.testing.v1 import AppTest; "
        "at = AppTest.from_file('app.py', default_timeout=60).run(); "
        "assert not at.exception, at.exception; print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("False")


# ---------------------------------------------------------------- photo


def faces_shown(at: AppTest) -> list[str]:
    """The emotion column of the Photo page's table of faces (empty when there is no table)."""
    return list(at.dataframe[0].value["emotion"]) if len(at.dataframe) else []


def test_photo_page_upload_of_the_astronaut_shows_her_emotion():
    needs_model()
    skimage_data = pytest.importorskip("skimage.data")
    _, png = cv2.imencode(".png", cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    at = page("app_pages/1_Photo.py").run()
    assert not at.exception
    at.file_uploader[0].set_value(("astronaut.png", png.tobytes(), "image/png")).run()
    assert not at.exception
    assert texts(at, "success") == ["1 face found, numbered on the photo as in the table."]
    [shown] = faces_shown(at)
    assert shown in EMOTIONS
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Photo (PNG)", "Photo (JPEG)", "Results (CSV)", "Results (JSON)"]


def test_photo_page_bad_upload_shows_an_error_not_a_traceback():
    needs_model()
    at = page("app_pages/1_Photo.py").run()
    at.file_uploader[0].set_value(("notes.png", b"just some text\n", "image/png")).run()
    assert not at.exception
    assert any("not a readable image" in e for e in texts(at, "error"))


def test_photo_page_samples_and_the_no_face_tips():
    needs_model()
    at = page("app_pages/1_Photo.py").run()
    at.radio[0].set_value("Use a sample photo").run()
    at.selectbox[0].set_value("astronaut.jpg").run()
    assert not at.exception and len(faces_shown(at)) == 1
    at.selectbox[0].set_value("chelsea-the-cat.jpg").run()
    assert not at.exception and not faces_shown(at)
    assert any("No face found" in w for w in texts(at, "warning"))


# ---------------------------------------------------------------- training


@pytest.fixture
def training_page(app_model, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs.MANAGER, "runs_dir", tmp_path / "runs")
    monkeypatch.delenv("EMOTION_DISABLE_TRAINING", raising=False)
    # A known speed for the default settings: the page does not time the machine during tests.
    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    write_known_speed(tmp_path / "cache")
    yield page("app_pages/3_Training.py")
    job = jobs.MANAGER.current
    if job is not None:
        job.cancel()
        job.wait(120)
        jobs.MANAGER.clear()


@pytest.mark.slow
def test_training_page_trains_shows_the_confusion_matrix_and_promotes(training_page, app_model):
    needs_sample()
    needs_model()
    # The app starts with a working model, so the promotion has something to back up.
    app_model.parent.mkdir()
    shutil.copyfile(MODEL, app_model)
    before = app_model.read_bytes()

    at = training_page.run()
    assert not at.exception
    at.text_input(key="data_path").set_value(str(SAMPLE_CSV))
    at.number_input(key="epochs").set_value(2)
    at.button(key="start").click().run()
    assert not at.exception and not texts(at, "error")
    job = jobs.MANAGER.current
    assert job is not None and job.run_dir.parent == jobs.MANAGER.runs_dir
    assert job.wait(600), "training did not finish in 10 minutes"
    assert job.state == jobs.JobState.DONE, job.error

    at.run()
    assert not at.exception
    assert any(m.startswith("**Confusion matrix**") for m in texts(at, "markdown"))
    assert len(at.get("imgs")) + len(at.image) >= 1  # the heat map
    per_class = at.dataframe[-1].value  # after the comparison table
    assert list(per_class.index) == list(EMOTIONS)
    assert {"precision", "recall", "f1", "support"} <= set(per_class.columns)
    assert len(job.history) == 2
    kept = [c for c in texts(at, "caption") if c.startswith("Kept: ")]
    assert len(kept) == 1 and "validation accuracy" in kept[0] and "best epoch" in kept[0]

    # Two epochs on 350 faces against the shipped model, on the sample's 70 validation faces.
    assert job.comparison is not None and job.comparison.worse, job.comparison_error
    assert any("worse than the app's model" in w and "on the same 70 validation faces" in w
               for w in texts(at, "warning"))
    at.checkbox(key="promote-anyway").check().run()
    at.button(key="promote").click().run()
    assert not at.exception
    assert any("now the app's model" in s for s in texts(at, "success"))
    assert app_model.read_bytes() == (job.run_dir / registry.MODEL_FILE).read_bytes()
    assert (registry.backup_dir(app_model) / registry.MODEL_FILE).read_bytes() == before
    # The sample has no test split: the app's model now shows its validation figure.
    info = registry.model_info(app_model)
    assert info.accuracy_label == "Validation accuracy"
    assert info.accuracy_text == f"{job.comparison.deciding.new_accuracy:.1%} on 70 validation faces"

    at.button(key="restore").click().run()
    assert not at.exception
    assert app_model.read_bytes() == before


@pytest.mark.slow
def test_training_page_passes_a_time_limit_and_weight_averaging(training_page):
    needs_sample()
    at = training_page.run()
    at.text_input(key="data_path").set_value(str(SAMPLE_CSV))
    at.number_input(key="minutes").set_value(2)
    at.number_input(key="average").set_value(25)
    at.button(key="start").click().run()
    assert not at.exception and not texts(at, "error")
    captions = texts(at, "caption")
    # The page's epochs default is training's own (TrainConfig, as on the command line).
    epochs = TrainConfig(data="").epochs
    assert any(f"{epochs} epochs or 2 minutes, whichever ends first" in c for c in captions)
    assert any("weights averaged over the last 25% of the epochs" in c for c in captions)
    assert at.button(key="start").disabled  # one run at a time, and the page shows it
    job = jobs.MANAGER.current
    job.cancel()
    assert job.wait(120)
    assert job.config.minutes == 2.0 and job.config.average == 0.25


def test_training_page_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("EMOTION_DISABLE_TRAINING", "1")
    at = page("app_pages/3_Training.py").run()
    assert not at.exception
    assert any("turned off" in w for w in texts(at, "warning"))
    assert not at.button


def test_training_page_refuses_a_missing_path(training_page, tmp_path):
    at = training_page.run()
    at.text_input(key="data_path").set_value(str(tmp_path / "nope"))
    at.button(key="start").click().run()
    assert not at.exception
    assert any("no such file or folder" in e for e in texts(at, "error"))
    assert jobs.MANAGER.current is None


# ---------------------------------------------------------------- dataset


def test_dataset_page_shows_the_counts():
    needs_sample()
    at = page("app_pages/4_Dataset.py")
    at.session_state["dataset_path"] = str(SAMPLE_CSV)  # skip auditing the full default folder
    at.run()
    assert not at.exception
    assert texts(at, "metric")[0] == "420"
    counts = at.dataframe[0].value
    assert list(counts.index) == list(EMOTIONS)
    assert counts.loc["happy", "train"] == 50 and counts.loc["happy", "val"] == 10
    assert len(at.image) == 1  # the grid of sample faces


def test_dataset_page_explains_a_bad_path(tmp_path):
    at = page("app_pages/4_Dataset.py")
    at.session_state["dataset_path"] = str(tmp_path / "missing")
    at.run()
    assert not at.exception
    assert any("no such file or folder" in e for e in texts(at, "error"))


def test_photo_page_without_a_model_explains_what_to_do(app_model):
    at = page("app_pages/1_Photo.py").run()
    at.radio[0].set_value("Use a sample photo").run()
    assert not at.exception
    assert any("could not be loaded" in e and str(app_model) in e for e in texts(at, "error"))


# ---------------------------------------------------------------- hostile inputs (tests/hostile.py)


@pytest.mark.parametrize(
    "name, words",
    [
        ("label_overflow.csv", "row 3: emotion 99999999999999999999999 is outside 0..6"),
        ("pixel_overflow.csv", "row 3: a pixel value is outside 0..255"),
        ("header_only.csv", "no rows, only the header"),
        ("unreadable_images", "none of its 8 image files could be read"),
    ],
)
def test_dataset_page_shows_hostile_data_as_an_error(hostile, name, words):
    at = page("app_pages/4_Dataset.py")
    at.session_state["dataset_path"] = str(hostile[name])
    at.run()
    assert not at.exception
    assert any(words in e and str(hostile[name]) in e for e in texts(at, "error")), texts(at, "error")


@pytest.mark.parametrize(
    "page_file, name, words",
    [
        ("app_pages/1_Photo.py", "two_outputs.keras", "gives 2 outputs per face, not 7"),
        ("app_pages/1_Photo.py", "truncated.keras", "damaged or incomplete file"),
        ("app_pages/2_Webcam.py", "wrong_input.keras", "takes input of shape (None, 64, 64, 3)"),
        ("app_pages/2_Webcam.py", "ten_outputs.keras", "gives 10 outputs per face, not 7"),
    ],
)
def test_photo_and_webcam_pages_refuse_a_model_of_the_wrong_shape(app_model, hostile_models,
                                                                  page_file, name, words):
    app_model.parent.mkdir()
    shutil.copyfile(hostile_models[name], app_model)
    at = page(page_file).run()
    if page_file.endswith("Photo.py"):  # the model loads once there is a photo to look at
        at.radio[0].set_value("Use a sample photo").run()
    assert not at.exception
    errors = texts(at, "error")
    assert any("could not be loaded" in e and words in e for e in errors), errors
    assert all("\n" not in e and "\x1b" not in e for e in errors)
    assert not faces_shown(at)


def test_the_upload_limits_are_set_in_one_place_and_stated_on_the_photo_page():
    import tomllib

    with open(PROJECT_ROOT / ".streamlit" / "config.toml", "rb") as f:
        server = tomllib.load(f)["server"]
    # The server refuses any upload over the image file limit; the Photo page's own is lower.
    assert server["maxUploadSize"] == config.DEFAULT_MAX_IMAGE_MB
    assert photo.MAX_UPLOAD_MB <= server["maxUploadSize"]
    at = page("app_pages/1_Photo.py").run()
    assert not at.exception
    assert f"at most {photo.MAX_UPLOAD_MB} MB" in at.get("file_uploader")[0].proto.label
