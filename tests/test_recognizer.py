"""Detection and recognition on real photographs, and the predict and evaluate commands."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from emotion.faces import Box, DetectionSettings, detect_faces, merge_boxes
from emotion.labels import EMOTIONS


def test_astronaut_has_one_face_with_a_box_around_it(astronaut_bgr):
    boxes = detect_faces(astronaut_bgr)
    assert len(boxes) == 1
    b = boxes[0]
    # Eileen Collins' face in the 512x512 photo is centred near (222, 112), about 90 px wide.
    assert abs(b.x + b.w / 2 - 222) < 20 and abs(b.y + b.h / 2 - 112) < 25
    assert 60 < b.w < 140


def test_large_photos_are_detected_downscaled_and_mapped_back(astronaut_bgr):
    big = cv2.resize(astronaut_bgr, (2048, 2048))
    (b,) = detect_faces(big, DetectionSettings(max_side=512))
    assert abs(b.x + b.w / 2 - 4 * 222) < 80 and 240 < b.w < 560


def test_group_photo_gives_one_box_per_face(astronaut_bgr):
    face = astronaut_bgr[20:260, 110:340]
    group = np.hstack([face, np.full_like(face, 90), face, face])
    boxes = detect_faces(group)
    assert len(boxes) == 3
    assert sorted(b.x for b in boxes) == [b.x for b in boxes]


def test_nested_and_overlapping_boxes_merge():
    outer, inner, other = Box(100, 100, 80, 80), Box(115, 115, 40, 40), Box(300, 100, 80, 80)
    shifted = Box(108, 104, 80, 80)
    assert merge_boxes([inner, outer, other, shifted]) == [outer, other]


def test_a_photo_without_faces_gives_no_boxes():
    from skimage import data

    assert detect_faces(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []


def test_profile_faces_are_found_only_when_asked_for():
    """The cameraman (scikit-image, CC0) looks to the side: a profile, not a frontal face."""
    from emotion.config import IMAGES_DIR

    photo = cv2.imread(str(IMAGES_DIR / "groups" / "cameraman.jpg"))
    assert detect_faces(photo) == []
    (box,) = detect_faces(photo, DetectionSettings(profiles=True))
    # Hand-labelled in images/groups/faces.json: [182, 104, 84, 92].
    assert abs(box.x + box.w / 2 - 224) < 25 and abs(box.y + box.h / 2 - 150) < 25


@pytest.mark.slow
def test_the_group_photos_give_more_faces_and_no_false_ones_with_profiles():
    """images/groups: the evaluation behind the photo path's cascades (scripts/eval_detectors.py)."""
    from emotion.config import IMAGES_DIR

    truth = json.loads((IMAGES_DIR / "groups" / "faces.json").read_text())
    found = {False: [0, 0], True: [0, 0]}  # true and false positives
    for name, boxes in truth.items():
        photo = cv2.imread(str(IMAGES_DIR / "groups" / name))
        for profiles in (False, True):
            for b in detect_faces(photo, DetectionSettings(profiles=profiles)):
                hit = any(b.intersection(Box(*t)) > 0.3 * min(b.area, t[2] * t[3]) for t in boxes)
                found[profiles][0 if hit else 1] += 1
    assert found[True][0] > found[False][0] and found[True][1] <= found[False][1]


@pytest.fixture(scope="module")
def recognizer(model_path):
    from emotion.recognizer import EmotionRecognizer

    return EmotionRecognizer(model_path)


def test_tta_averages_each_face_over_its_six_views(recognizer, astronaut_bgr):
    from emotion import tta
    from emotion.preprocess import faces_to_input

    face = astronaut_bgr[20:260, 110:340]
    x = faces_to_input([face])
    mirrored = recognizer.classify([np.ascontiguousarray(face[:, ::-1])])[0]
    one = recognizer.classify([face])[0]
    framed = [tta.reframe(x, tta.frame_matrix(s)) for s in (0.92, 1.08)]
    tight, loose = (recognizer.classifier.predict(f)[0] for f in framed)
    tight_m, loose_m = (recognizer.classifier.predict(f[:, :, ::-1])[0] for f in framed)
    both = recognizer.classify([face], tta=True)[0]
    expected = np.mean([one, mirrored, tight, tight_m, loose, loose_m], axis=0)
    assert np.allclose(both, expected, atol=1e-5)
    # Else the test would prove nothing: each view answers differently.
    assert not np.allclose(one, mirrored, atol=1e-3) and not np.allclose(tight, loose, atol=1e-3)
    # The photo path uses it by default; tta=False gives the one pass back.
    box = recognizer.recognize(face)[0].box
    crop = face[box.y:box.y + box.h, box.x:box.x + box.w]
    expected = float(recognizer.classify([crop], tta=True)[0][3])
    assert recognizer.recognize(face, boxes=[box])[0].probabilities["happy"] == pytest.approx(
        expected, abs=1e-5)


def test_recognizer_names_each_face_in_one_batched_call(recognizer, astronaut_bgr):
    face = astronaut_bgr[20:260, 110:340]
    group = np.hstack([face, face, face])
    calls = []
    real = recognizer.classifier.predict

    def spy(x):
        calls.append(len(x))
        return real(x)

    recognizer.classifier.predict = spy
    try:
        faces = recognizer.recognize(group)
    finally:
        del recognizer.classifier.predict
    # One call: the three faces in their six test-time views each (TTA, on by default).
    assert len(faces) == 3 and calls == [18]
    for f in faces:
        assert f.label in EMOTIONS
        assert set(f.probabilities) == set(EMOTIONS)
        assert sum(f.probabilities.values()) == pytest.approx(1, abs=1e-3)
        assert f.confidence == max(f.probabilities.values())


def _same(a: list, b: list) -> bool:
    """The same faces: boxes and labels exactly, probabilities to float precision."""
    return len(a) == len(b) and all(
        x.box == y.box and x.label == y.label
        and np.allclose(list(x.probabilities.values()), list(y.probabilities.values()), atol=1e-6)
        for x, y in zip(a, b))


@pytest.mark.slow
def test_one_recognizer_shared_by_eight_threads_gives_the_single_threaded_results(
        recognizer, astronaut_bgr, in_threads):
    """As the app shares one recognizer between every session: 8 threads x 50 calls."""
    from skimage import data

    face = astronaut_bgr[20:260, 110:340]
    images = [
        astronaut_bgr,
        np.hstack([face, np.full_like(face, 90), face, face]),
        cv2.flip(astronaut_bgr, 1),
        cv2.resize(astronaut_bgr, (640, 640)),
        cv2.resize(astronaut_bgr, (400, 400)),
        cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR),
    ]
    expected = [recognizer.recognize(image) for image in images]
    assert [len(e) for e in expected][:4] == [1, 3, 1, 1] and expected[-1] == []

    def worker(k: int) -> list[int]:
        """The images this thread got a wrong answer for."""
        wrong = []
        for i in range(50):
            j = (k + i) % len(images)
            if not _same(recognizer.recognize(images[j]), expected[j]):
                wrong.append(j)
        return wrong

    assert in_threads(worker, 8) == [[]] * 8


def _run(*args):
    return subprocess.run([sys.executable, "-m", "emotion", *args], capture_output=True, text=True)


def test_predict_command(tmp_path, astronaut_bgr, model_path):
    photo, empty, bad = tmp_path / "astronaut.jpg", tmp_path / "empty.png", tmp_path / "notes.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    cv2.imwrite(str(empty), np.full((200, 300, 3), 200, np.uint8))
    bad.write_text("not an image")

    done = _run("predict", str(photo), str(empty), "--json", "--model", str(model_path),
                "--out", str(tmp_path / "annotated"))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert [r["image"] for r in results] == [str(photo), str(empty)]
    (face,) = results[0]["faces"]
    assert len(face["box"]) == 4 and face["label"] in EMOTIONS
    assert set(face["probabilities"]) == set(EMOTIONS)
    assert results[1]["faces"] == []
    assert "no face found" in done.stderr
    assert cv2.imread(str(tmp_path / "annotated" / "astronaut_annotated.jpg")) is not None

    one = _run("predict", str(photo), "--out", str(tmp_path / "one.png"), "--model", str(model_path))
    assert one.returncode == 0 and "1 face(s)" in one.stdout
    assert cv2.imread(str(tmp_path / "one.png")).shape == astronaut_bgr.shape

    failed = _run("predict", str(bad))
    assert failed.returncode == 2
    assert f"{bad}: not a readable image" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_predict_never_writes_over_its_input(tmp_path, astronaut_bgr):
    photo = tmp_path / "in.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    original = photo.read_bytes()
    done = _run("predict", str(photo), "--out", str(photo))
    assert done.returncode == 2 and "is one of the input images" in done.stderr
    assert "Traceback" not in done.stderr and photo.read_bytes() == original


@pytest.mark.slow
def test_evaluate_command(tmp_path, model_path, astronaut_bgr):
    from emotion.preprocess import to_gray48

    face = to_gray48(astronaut_bgr[60:170, 170:280])
    for cls in ("happy", "Surprised"):
        (tmp_path / cls).mkdir()
        cv2.imwrite(str(tmp_path / cls / "a.png"), face)
    done = _run("evaluate", "--data", str(tmp_path), "--json", "--model", str(model_path), "--tta")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["n_images"] == 2 and result["tta"] is True
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(result)
    assert sum(map(sum, result["confusion_matrix"])) == 2
    assert 0 <= result["uncertain"]["share"] <= 1 and result["uncertain"]["below"] == 0.4
    plain = _run("evaluate", "--data", str(tmp_path), "--model", str(model_path))
    assert plain.returncode == 0 and "shown as uncertain (confidence under 40%, one pass)" in plain.stdout
    missing = _run("evaluate", "--data", str(tmp_path), "--model", str(tmp_path / "none.keras"))
    assert missing.returncode == 2 and "no model at" in missing.stderr


@pytest.mark.slow
def test_shipped_model_reproduces_its_published_accuracy(shared_fer2013, model_path):
    """The number in metrics.json (and the README) is what evaluate measures on FER2013 test."""
    from emotion.config import SHIPPED_MODEL
    from emotion.registry import metrics_path

    if model_path != SHIPPED_MODEL or not metrics_path(SHIPPED_MODEL).is_file():
        pytest.skip("EMOTION_MODEL points away from the shipped model")
    published = json.loads(metrics_path(SHIPPED_MODEL).read_text())["test"]["accuracy"]
    done = _run("evaluate", "--data", str(shared_fer2013 / "test"), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout)
    assert measured["n_images"] == 3589
    assert measured["accuracy"] == pytest.approx(published, abs=0.002)


def test_predict_gives_each_image_its_own_annotated_file(tmp_path, astronaut_bgr, model_path):
    """Two photos with one stem, and an input already named like an output: nothing is lost or
    written over, and the names are the same on every run."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    first, second = tmp_path / "a" / "astronaut.jpg", tmp_path / "b" / "astronaut.png"
    third = out / "astronaut_annotated.jpg"  # an input where the first output would go
    for path in (first, second, third):
        cv2.imwrite(str(path), astronaut_bgr)
    original = third.read_bytes()

    done = _run("predict", str(first), str(second), str(third), "--out", str(out),
                "--model", str(model_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert third.read_bytes() == original
    written = {"astronaut_annotated-2.jpg": first, "astronaut_annotated-3.jpg": second,
               "astronaut_annotated_annotated.jpg": third}
    assert sorted(p.name for p in out.iterdir()) == sorted([third.name, *written])
    for name, source in written.items():
        assert f"{source}: annotated image written to {out / name}" in done.stderr
        assert cv2.imread(str(out / name)).shape == astronaut_bgr.shape


def test_predict_out_in_a_missing_folder_says_so_before_the_model_loads(tmp_path, astronaut_bgr):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    # No model at that path: had predict loaded it first, it would say so instead.
    no_model = str(tmp_path / "none.keras")
    for out, says in [(tmp_path / "missing" / "x.jpg", f"the folder {tmp_path / 'missing'} does not exist"),
                      (tmp_path / "x.txt", "cannot write .txt images, use .jpg or .png"),
                      (tmp_path / "x", "give an image file name ending in .jpg or .png")]:
        done = _run("predict", str(photo), "--out", str(out), "--model", no_model)
        assert done.returncode == 2 and says in done.stderr, done.stderr[-2000:]
        assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astronaut.jpg"]
