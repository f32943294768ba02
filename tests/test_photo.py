"""The photo logic: a real photo in, faces, annotated image, CSV and JSON out; bad input refused."""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest

from emotion import config, photo
from emotion.images import ImageError
from emotion.labels import EMOTIONS

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def recognizer():
    if not config.DEFAULT_MODEL.is_file():
        pytest.skip(f"no model at {config.DEFAULT_MODEL}: train one or set EMOTION_MODEL")
    from emotion.recognizer import EmotionRecognizer

    return EmotionRecognizer(config.DEFAULT_MODEL)


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def test_astronaut_upload_finds_her_face_with_all_outputs(recognizer, astronaut_bgr):
    astronaut = astronaut_bgr
    result = photo.analyse(encode(astronaut), "astronaut.png", recognizer)

    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.label in EMOTIONS
    assert set(face.probabilities) == set(EMOTIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    # Eileen Collins' face is near the top middle of the 512x512 photo.
    assert 150 < face.box.x < 210 and 40 < face.box.y < 100 and 70 < face.box.w < 130
    assert result.annotated.shape == astronaut.shape
    assert not np.array_equal(result.annotated, astronaut)  # the box is drawn

    rows = list(csv.reader(io.StringIO(result.csv_text)))
    assert rows[0][:8] == ["image", "face", "x", "y", "w", "h", "label", "confidence"]
    assert rows[0][8:] == list(EMOTIONS)
    assert rows[1][6] == face.label and len(rows) == 2
    doc = json.loads(result.json_text)
    assert doc["image"] == "astronaut.png" and (doc["width"], doc["height"]) == (512, 512)
    assert doc["faces"][0]["label"] == face.label

    for fmt in ("png", "jpeg"):
        decoded = cv2.imdecode(
            np.frombuffer(result.annotated_bytes(fmt), np.uint8), cv2.IMREAD_COLOR
        )
        assert decoded.shape == astronaut.shape
    assert result.face_rgb(0).shape[:2] == (face.box.h, face.box.w)


def test_large_photo_is_detected_scaled_down_and_boxes_map_back(recognizer, astronaut_bgr):
    astronaut = astronaut_bgr
    small = photo.analyse(encode(astronaut, ".jpg"), "a.jpg", recognizer).faces
    big_image = cv2.resize(astronaut, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048 px
    big = photo.analyse(encode(big_image, ".jpg"), "big.jpg", recognizer)
    assert len(small) == len(big.faces) == 1
    assert (big.width, big.height) == (2048, 2048)
    b, s = big.faces[0].box, small[0].box
    # Boxes are in the full photo's pixels: about four times the small photo's.
    assert abs(b.x - 4 * s.x) < 40 and abs(b.w - 4 * s.w) < 60


def test_photo_without_faces_gives_empty_results(recognizer):
    cat = cv2.cvtColor(skimage_data.chelsea(), cv2.COLOR_RGB2BGR)
    result = photo.analyse(encode(cat), "cat.png", recognizer)
    assert result.faces == []
    assert result.csv_text.count("\n") == 1  # header only
    assert json.loads(result.json_text)["faces"] == []


def test_text_bytes_are_refused_with_a_clear_message(recognizer):
    with pytest.raises(ImageError, match="not a readable image"):
        photo.analyse(b"this is a text file, not a photo\n", "notes.png", recognizer)


def test_upload_checks_name_the_limit_and_the_types():
    photo.check_upload("holiday.JPG", 1000)
    with pytest.raises(ImageError, match=f"over the {photo.MAX_UPLOAD_MB} MB limit"):
        photo.check_upload("huge.jpg", photo.MAX_UPLOAD_BYTES + 1)
    with pytest.raises(ImageError, match="not supported"):
        photo.check_upload("anim.gif", 1000)
    with pytest.raises(ImageError, match="empty"):
        from emotion.images import decode_image

        decode_image(b"", "empty.png")


def test_detection_settings_from_the_page_knobs():
    settings = photo.detection_settings(10, 3)
    assert settings.min_size_fraction == pytest.approx(0.10) and settings.min_neighbors == 3
    with pytest.raises(ValueError):
        photo.detection_settings(0, 6)
    with pytest.raises(ValueError):
        photo.detection_settings(4, 0)


def test_sample_photos_are_small_real_photos():
    samples = photo.sample_photos()
    names = [p.name for p in samples]
    assert "astronaut.jpg" in names
    assert all(p.stat().st_size < 300_000 for p in samples)
