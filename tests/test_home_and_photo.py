"""The Home page's sentences and buttons, and the Photo page's results table, numbers and memory,
driven headless with AppTest; the sentences' making is tested without Streamlit."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import cv2
import pytest
from streamlit.testing.v1 import AppTest

from emotion import config, photo, registry
from emotion import recognizer as recognizer_module
from emotion.app import formatting, ui
from emotion.config import PROJECT_ROOT
from pages import needs_model, page, texts


# The test split's figures of a model, as `train` writes them into metrics.json.
PER_CLASS = {"angry": 0.60, "disgust": 0.57, "fear": 0.48, "happy": 0.85, "sad": 0.55,
             "surprise": 0.82, "neutral": 0.64}
METRICS = {
    "test": {"accuracy": 0.6707, "macro_f1": 0.6495, "n_images": 3589,
             "per_class": {e: {"precision": 0.6, "recall": r, "f1": 0.6, "support": 100}
                           for e, r in PER_CLASS.items()}},
    "epochs_run": 67,
    "data": {"source": "../shared/fer2013"},
}


@pytest.fixture
def app_model(tmp_path, monkeypatch):
    """A model file in tmp_path made the app's, with `metrics` beside it."""
    target = tmp_path / "models" / registry.MODEL_FILE
    target.parent.mkdir()
    target.write_bytes(b"model bytes")
    monkeypatch.setenv("EMOTION_MODEL", str(target))

    def with_metrics(metrics: dict) -> Path:
        (target.parent / "metrics.json").write_text(json.dumps(metrics))
        return target

    return with_metrics


# ---------------------------------------------------------------- the sentences


def test_times_in_says_a_share_in_plain_terms():
    assert formatting.times_in(0.6707) == (2, 3)
    assert formatting.times_in(0.186) == (1, 5)
    assert formatting.times_in(0.5) == (1, 2)
    assert formatting.times_in(0.95) == (19, 20)
    assert formatting.times_in(0.86) == (6, 7)


def test_the_mirror_switch_says_the_app_models_measured_gain(app_model):
    info = registry.model_info(app_model(METRICS | {"test_tta": {"accuracy": 0.6861}}))
    assert info.tta_accuracy == 0.6861
    assert "(68.6% against 67.1% on 3,589 test faces)" in formatting.views_help(info)
    # A model measured without TTA: no figures, rather than another model's.
    bare = formatting.views_help(registry.model_info(app_model(METRICS)))
    assert "%" not in bare and bare.startswith("Averages each face's scores")


def test_quality_sentences_come_from_the_measured_figures():
    said = formatting.quality_sentences(METRICS)
    assert said[0] == ("Right about 2 times in 3 on faces it has never seen "
                       "(67.1% of 3,589 test faces).")
    assert said[1] == ("Best at happy and surprise (85% and 82% of those faces named right), "
                       "weakest at fear and sad (48% and 55%).")
    assert len(said) == 2  # no calibration measured: no word about it

    other = json.loads(json.dumps(METRICS))
    other["test"]["accuracy"] = 0.52
    other["test"]["per_class"]["disgust"]["recall"] = 0.9
    other["test"]["per_class"]["happy"]["recall"] = 0.2
    said = formatting.quality_sentences(other)
    assert said[0].startswith("Right about 1 time in 2 ")
    assert said[1].startswith("Best at disgust and surprise") and "weakest at happy and fear" in said[1]


def test_what_a_photo_gets_is_said_only_when_measured_and_better():
    said = formatting.quality_sentences(METRICS | {"test_tta": {"accuracy": 0.6893}})
    assert said[2] == "A photo, where each face is checked several ways, gets 68.9%."
    for views in ({"accuracy": 0.66}, {"accuracy": "n/a"}, "broken", None):
        assert len(formatting.quality_sentences(METRICS | {"test_tta": views})) == 2


def test_calibration_is_claimed_only_when_measured_and_small():
    calibrated = {**METRICS, "calibration": {"temperature": 1.4, "test": {"ece_after": 0.021}}}
    said = formatting.quality_sentences(calibrated)
    assert said[-1].startswith("Its confidence is calibrated: when it says 70%, it is right "
                               "about 70% of the time")
    assert "0.021" in said[-1]
    for calibration in ({"temperature": 1.4, "test": {"ece_after": 0.11}}, {"temperature": 1.4},
                        {"test": "n/a"}, "broken", {"test": {"ece_after": None}}):
        assert len(formatting.quality_sentences({**METRICS, "calibration": calibration})) == 2


@pytest.mark.parametrize("metrics", [None, {}, {"test": None}, {"test": {"accuracy": "high"}},
                                     {"test": {"accuracy": 0.6, "per_class": "broken"}}])
def test_quality_sentences_read_odd_metrics_defensively(metrics):
    said = formatting.quality_sentences(metrics)
    assert said == [] or (len(said) == 1 and said[0].startswith("Right about 3 times in 5"))


def test_model_caption_says_fine_tuned_when_a_run_started_from_the_file_it_replaced():
    info = registry.ModelInfo(PROJECT_ROOT / "models" / "emotion_cnn.keras", True, 7.1,
                              datetime(2026, 1, 2, 3, 4), epochs_run=67,
                              data_source="../shared/fer2013", init="models/emotion_cnn.keras")
    caption = formatting.model_caption(info)
    assert caption == ("Model file: `models/emotion_cnn.keras` (7.1 MB, saved 2026-01-02 03:04); "
                       "trained for 67 epochs on `../shared/fer2013`, fine-tuned from the "
                       "previous model.")
    info.init = "models/runs/cpu1/emotion_cnn.keras"
    assert formatting.model_caption(info).endswith(
        ", starting from the weights of `models/runs/cpu1/emotion_cnn.keras`.")
    info.init = None
    assert formatting.model_caption(info).endswith("on `../shared/fer2013`.")


def test_model_caption_says_an_averaged_model_is_one(app_model):
    info = registry.model_info(app_model({**METRICS, "epochs_run": None, "averaged": {
        "models": ["models/emotion_cnn.keras", "models/runs/even-ft/emotion_cnn.keras"]}}))
    assert info.averaged == 2
    assert formatting.model_caption(info).endswith(
        "; the weight average of 2 trained models (`python -m emotion average`: the README says "
        "which).")
    info = registry.model_info(app_model({**METRICS, "epochs_run": None, "averaged": {
        "models": ["a.keras", "b.keras"]}, "sharpening_added": {"reference": 0.45}}))
    assert info.sharpened
    assert formatting.model_caption(info).endswith(
        "README says which); then given the layer that sharpens blurred faces (`python -m "
        "emotion calibrate --sharpen`).")


# ---------------------------------------------------------------- Home


def test_home_says_what_it_does_and_how_good_the_model_is(app_model):
    model = app_model({**METRICS, "hyperparameters": {"init": None},
                       "calibration": {"temperature": 1.3, "test": {"ece_after": 0.02}}})
    at = page().run()
    assert not at.exception
    assert texts(at, "markdown")[0].startswith("Finds the faces in a photo or in your webcam")
    assert [b.label for b in at.button] == ["Try a sample photo", "Open the webcam"]
    [quality] = [m for m in texts(at, "markdown") if m.startswith("Right about")]
    assert quality == " ".join(formatting.quality_sentences(
        registry.read_metrics(registry.metrics_path(model))))
    assert "2 times in 3" in quality and "weakest at fear and sad" in quality
    assert "calibrated" in quality
    captions = texts(at, "caption")
    assert formatting.HUMAN_CAPTION in captions
    assert not any("humans about" in c for c in captions)


def test_home_try_a_sample_photo_opens_the_photo_page_with_its_results():
    needs_model()
    at = page().run()
    at.button[0].click().run()
    assert not at.exception
    assert texts(at, "title") == ["Emotions in a photo"]
    assert at.radio[0].value == ui.SAMPLE_PHOTO
    assert at.selectbox[0].value == photo.FIRST_SAMPLE
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) >= 6


# ---------------------------------------------------------------- Photo


def _expected(name: str) -> photo.PhotoResult:
    from emotion.app.ui import get_recognizer

    return photo.analyse((config.IMAGES_DIR / name).read_bytes(), name, get_recognizer())


def test_photo_table_numbers_the_faces_as_the_photo_does_and_shows_uncertain(monkeypatch):
    needs_model()
    expected = _expected(photo.FIRST_SAMPLE)
    # A threshold between the faces' confidences, so that some are uncertain and some are not.
    confidences = sorted(f.confidence for f in expected.faces)
    threshold = (confidences[0] + confidences[-1]) / 2
    monkeypatch.setattr(recognizer_module, "UNCERTAIN_BELOW", threshold)
    uncertain = [f.confidence < threshold for f in expected.faces]
    assert any(uncertain) and not all(uncertain)

    at = page("app_pages/1_Photo.py").run()
    at.radio[0].set_value(ui.SAMPLE_PHOTO).run()
    at.selectbox[0].set_value(photo.FIRST_SAMPLE).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["face"]) == list(range(1, len(expected.faces) + 1))
    for row, face, unsure in zip(table.itertuples(), expected.faces, uncertain):
        assert row.emotion == (f"uncertain (likeliest: {face.label})" if unsure else face.label)
        assert row.confidence == pytest.approx(100 * face.confidence, abs=0.05)
    assert formatting.UNCERTAIN_CAPTION in texts(at, "caption")
    # One chart, of the face chosen by its number, not one chart a face.
    assert len(at.get("vega_lite_chart")) == 1
    chooser = at.selectbox[1]
    assert chooser.label == "Scores of one face"
    chooser.set_value(3).run()
    assert formatting.face_title(3, expected.faces[2]) == chooser.format_func(3)
    # The downloads are the table's faces in the same order.
    csv_rows = expected.csv_text.splitlines()[1:]
    assert [r.split(",")[1] for r in csv_rows] == [str(n) for n in table["face"]]


def away(at: AppTest, tmp_path: Path) -> None:
    """Go to another page (the Dataset page, given a missing folder so that it stops at once)."""
    at.session_state["dataset_path"] = str(tmp_path / "no-data")
    at.switch_page("app_pages/4_Dataset.py").run()
    assert not at.exception


def test_photo_and_results_are_kept_when_the_user_switches_pages_and_comes_back(tmp_path):
    needs_model()
    png = cv2.imencode(".png", cv2.imread(str(config.IMAGES_DIR / "astronaut-pair.jpg")))[1]
    at = page().run()
    at.switch_page("app_pages/1_Photo.py").run()
    at.slider[0].set_value(5).run()
    at.file_uploader[0].set_value(("pair.png", png.tobytes(), "image/png")).run()
    assert not at.exception
    first = at.dataframe[0].value
    assert len(first) == 2

    away(at, tmp_path)  # the Photo page's widgets are gone
    assert texts(at, "title") == ["Dataset audit"]
    at.switch_page("app_pages/1_Photo.py").run()
    assert not at.exception
    assert at.slider[0].value == 5
    assert at.dataframe[0].value.equals(first)
    assert any("`pair.png`, uploaded earlier" in c for c in texts(at, "caption"))

    # A sample chosen, away and back: the sample and its results again.
    at.radio[0].set_value(ui.SAMPLE_PHOTO).run()
    at.selectbox[0].set_value("groups/synthetic-turned.jpg").run()
    turned = at.dataframe[0].value
    away(at, tmp_path)
    at.switch_page("app_pages/1_Photo.py").run()
    assert at.radio[0].value == ui.SAMPLE_PHOTO
    assert at.selectbox[0].value == "groups/synthetic-turned.jpg"
    assert at.dataframe[0].value.equals(turned)
