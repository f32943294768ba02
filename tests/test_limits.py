"""Memory bounded by limits checked before decoding, broken output never reported as success,
the edges (wide pictures, frame times, several frames, camera numbers), and messages that
name the right cause. Small files come from tests/hostile.py; large ones are made here, sparse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion.cli import build_parser, main
from emotion.data import DataError, load, load_csv
from emotion.model import ModelError, load_model

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _clip(path: Path, size: tuple[int, int] = (96, 96), frames: int = 5) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- 3: memory


def test_a_video_frame_over_the_limit_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    clip = _clip(tmp_path / "big.mp4", size=(320, 240))
    monkeypatch.setenv("EMOTION_MAX_VIDEO_PIXELS", str(300 * 200))
    out = tmp_path / "out.mp4"
    code = main(["video", str(clip), "--out", str(out), "--model", "/no/model.keras"])
    err = _one_line(capsys)
    assert code == 2 and "320x240 pixels, over the 0.1-megapixel limit" in err
    assert "EMOTION_MAX_VIDEO_PIXELS" in err and not out.exists()


def test_the_default_video_limit_is_8k():
    from emotion.videos import frame_size_problem

    assert frame_size_problem(7680, 4320, "clip") is None
    assert "8000x8000 pixels" in frame_size_problem(8000, 8000, "clip")


def test_a_model_whose_config_is_huge_is_refused_from_the_zip_directory(hostile_models):
    path = hostile_models["big_config.keras"]
    assert path.stat().st_size < 100_000  # small on disk; 17 MB once unpacked
    with pytest.raises(ModelError, match="config.json is 17 MB, over the 16 MB"):
        load_model(path)


def test_a_model_that_unpacks_over_the_limit_is_refused(hostile_models, monkeypatch):
    monkeypatch.setenv("EMOTION_MAX_MODEL_MB", "1")
    with pytest.raises(ModelError, match="unpacks to [0-9] MB, over the 1 MB limit"):
        load_model(hostile_models["tiny_padded.keras"])


def test_a_large_file_that_is_not_fer2013_is_refused_from_its_header(tmp_path):
    """900 MB (sparse: no disk used) of something else: refused from its first line, the body
    never read (it took 6.6 GB before)."""
    for name, head in (("names.csv", b"name,value\n"), ("blank.csv", b"")):
        path = tmp_path / name
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(900 * 1024 * 1024)
        try:
            with pytest.raises(DataError, match="missing column|first line is over") as error:
                load_csv(path)
            assert str(path) in str(error.value)
        finally:
            path.unlink()


def test_predict_decodes_one_image_at_a_time_after_the_model_loads(tmp_path, astronaut_bgr,
                                                                   model_path, monkeypatch):
    """Memory does not grow with the number of inputs: each image is decoded when its turn comes,
    after the model has loaded, and none is held after its turn."""
    import weakref

    from emotion import images, recognizer

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.jpg")
        cv2.imwrite(str(paths[-1]), astronaut_bgr)
    events: list[str] = []
    held: list[weakref.ref] = []
    real_decode, real_init = images.decode_image, recognizer.EmotionRecognizer.__init__

    def decode(data, name="upload"):
        # When an image is decoded, every earlier one has been let go.
        events.append(f"decode, {sum(ref() is not None for ref in held)} held")
        image = real_decode(data, name)
        held.append(weakref.ref(image))
        return image

    def init(self, *args, **kwargs):
        events.append("model")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(images, "decode_image", decode)
    monkeypatch.setattr(recognizer.EmotionRecognizer, "__init__", init)
    assert main(["predict", *map(str, paths), "--model", str(model_path)]) == 0
    assert events == ["model"] + ["decode, 0 held"] * 3


def test_predict_checks_every_image_before_the_model_loads(tmp_path, astronaut_bgr, hostile,
                                                           capsys):
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), astronaut_bgr)
    code = main(["predict", str(good), str(hostile["bomb.png"]), "--model", "/no/model.keras"])
    err = _one_line(capsys)
    assert code == 2 and "bomb.png" in err and "megapixel" in err


# ---------------------------------------------------------------- 4: broken output


def test_a_video_written_incompletely_is_not_reported_as_success(tmp_path):
    from emotion.videos import check_written

    clip = _clip(tmp_path / "whole.mp4", frames=10)
    check_written(clip, 10, "whole.mp4")  # the complete file passes
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index is at the end: as a full disk leaves it
    with pytest.raises(ValueError, match="cut.mp4: the video could not be written completely"):
        check_written(cut, 10, "cut.mp4")


@needs_ffmpeg
def test_a_video_cut_short_is_warned_about(tmp_path, model_path, capsys):
    whole = tmp_path / "whole.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=96x96:rate=10", "-frames:v", "30", "-c:v", "mpeg4",
                    "-movflags", "+faststart", str(whole)], check=True)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["video", str(cut), "--model", str(model_path)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert 0 < summary["frames"] < 30 and summary["frames_announced"] == 30
    assert f"only {summary['frames']} of the 30 frames" in captured.err


def test_a_video_output_that_cannot_be_written_is_named(tmp_path, monkeypatch, capsys, model_path):
    """Root may write anywhere, so the refusal is the one a read-only folder gives others."""
    from emotion import outputs

    clip = _clip(tmp_path / "in.mp4")

    def refuse(target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(outputs, "temp_beside", refuse)
    code = main(["video", str(clip), "--csv", str(tmp_path / "rows.csv"), "--model",
                 str(model_path)])
    err = _one_line(capsys)
    assert code == 2 and "rows.csv: could not be written (Permission denied)" in err


# ---------------------------------------------------------------- 5: edges


@needs_ffmpeg
def test_times_of_a_variable_frame_rate_video_come_from_its_timestamps(tmp_path, model_path):
    """Frames at 0, 0.1, 0.2, 0.3 s, then a 2 s gap: the fifth frame is at 2.3 s, not at
    4 / (average fps)."""
    clip = tmp_path / "vfr.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x64:rate=10", "-frames:v", "8", "-vf",
                    "setpts='(N+if(gte(N,4),20,0))/10/TB'", "-fps_mode", "vfr", "-c:v", "mpeg4",
                    str(clip)], check=True)
    from emotion.videos import frame_time

    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS)
    times = []
    while capture.read()[0]:
        times.append(frame_time(capture, len(times), fps))
    capture.release()
    assert times[:5] == pytest.approx([0.0, 0.1, 0.2, 0.3, 2.3], abs=1e-6)
    assert 4 / fps != pytest.approx(2.3, abs=0.1)  # what frame number / average fps said


def test_an_animated_image_says_only_its_first_frame_is_used(hostile, model_path, capsys):
    from emotion.images import MultiFrameWarning, read_image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = read_image(hostile["animated.gif"])
    assert image.shape == (32, 32, 3)
    assert [w.category for w in caught] == [MultiFrameWarning]
    assert "3 frames" in str(caught[0].message) and "only the first" in str(caught[0].message)
    assert main(["predict", str(hostile["animated.gif"]), "--model", str(model_path)]) == 0
    assert "note: " in capsys.readouterr().err


def test_a_picture_with_a_side_over_65535_px_is_shown_scaled_down(hostile):
    from emotion.app.ui import MAX_DISPLAY_SIDE, displayable
    from emotion.images import read_image

    image = read_image(hostile["wide.png"])
    assert image.shape[:2] == (1, 70_000)
    shown = displayable(image)
    assert shown.shape[:2] == (MAX_DISPLAY_SIDE // 100 + 1, MAX_DISPLAY_SIDE)  # scaled, padded
    assert displayable(np.zeros((70_000, 3, 3), np.uint8)).shape[:2] == (MAX_DISPLAY_SIDE, 41)
    small = np.zeros((10, 20, 3), np.uint8)
    assert displayable(small) is small

    from emotion.images import fit_side

    assert fit_side(image).shape[:2] == (1, 65_500)  # what a JPEG download gets


def test_the_photo_page_shows_a_very_wide_picture(hostile, monkeypatch):
    """1x70000 px, under the pixel limit: shown scaled down, both downloads made, no crash."""
    from streamlit.testing.v1 import AppTest

    from emotion import config, photo

    if not config.app_model_path().is_file():
        pytest.skip(f"no model at {config.app_model_path()}")
    monkeypatch.setattr(photo, "sample_photos", lambda: [hostile["wide.png"]])
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app_pages" / "1_Photo.py"),
                           default_timeout=120).run()
    at.radio[0].set_value("Use a sample photo").run()
    assert not at.exception, at.exception
    assert len(at.image) >= 1  # the picture was shown
    assert "No face found" in " ".join(str(w.value) for w in at.warning)


@pytest.mark.parametrize("value", ["99999999999999999999999", "10000"])
def test_a_camera_number_out_of_range_is_one_line(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["webcam", "--camera", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "give a camera number from 0 to 9999" in err and "Traceback" not in err


def test_camera_numbers_and_sources():
    from emotion.cli import camera_source

    assert camera_source("0") == 0 and camera_source("9999") == 9999
    assert camera_source("clip.mp4") == "clip.mp4"


# ---------------------------------------------------------------- 8: the right cause


def test_a_model_with_nan_weights_is_not_said_to_need_a_softmax(hostile_models):
    with pytest.raises(ModelError, match="not numbers \\(NaN or infinity\\)") as error:
        load_model(hostile_models["nan_weights.keras"])
    assert "softmax" not in str(error.value)


@pytest.mark.parametrize("name, says", [
    ("superscript_pixel.csv", "row 3: pixels contain a value that is not a whole number ('²')"),
    ("fullwidth_pixel.csv", "row 2: pixels contain a value that is not a whole number ('１２')"),
    ("fullwidth_label.csv", "row 2: emotion '３' is not a label id 0..6"),
    ("not_fer_header.csv", "missing column(s) emotion, pixels"),
])
def test_odd_digits_in_a_csv_name_the_file_and_the_row(hostile, name, says):
    with pytest.raises(DataError) as error:
        load(hostile[name])
    assert str(error.value) == f"{hostile[name]}, {says}" or (
        str(hostile[name]) in str(error.value) and says in str(error.value))
    assert "\n" not in str(error.value)


def test_a_pipe_or_folder_given_as_a_video_or_data_is_called_what_it_is(hostile, tmp_path,
                                                                         capsys):
    fifo = hostile["fifo.jpg"]
    assert main(["video", str(fifo), "--model", "/no/model.keras"]) == 2
    assert "is not a regular file (a device, pipe or socket)" in _one_line(capsys)
    assert main(["video", str(tmp_path), "--model", "/no/model.keras"]) == 2
    assert "is a folder" in _one_line(capsys)
    assert main(["evaluate", "--data", str(fifo), "--model", "/no/model.keras"]) == 2
    assert "is not a regular file" in _one_line(capsys)
    with pytest.raises(ModelError, match="is not a regular file"):
        load_model(fifo)


def test_the_new_hostile_files_are_small():
    """Nothing large in the repository or the corpus: every file a few tens of kB at most."""
    import tempfile

    from hostile import make_corpus, make_models

    with tempfile.TemporaryDirectory() as folder:
        made = {**make_corpus(folder), **make_models(folder)}
        for name in ("animated.gif", "wide.png", "superscript_pixel.csv", "big_config.keras",
                     "nan_weights.keras"):
            assert os.path.getsize(made[name]) < 100_000, name
        made["unreadable.jpg"].chmod(0o600)  # so the folder can be cleaned up


def test_a_model_under_the_limits_still_loads(hostile_models):
    assert load_model(hostile_models["tiny_padded.keras"]).output_shape == (None, 7)
