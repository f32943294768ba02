"""Temperature scaling: it recovers a known temperature, lowers ECE on held-out faces, and never
changes a label, through both runtimes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion import calibration
from emotion.cli import main


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _overconfident(n: int, true_t: float = 2.0, seed: int = 0):
    """Probabilities softmax(z) for labels drawn from softmax(z / true_t): over-confident by T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 7))
    truth = _softmax(z / true_t)
    labels = np.array([rng.choice(7, p=p) for p in truth])
    return _softmax(z), labels


def test_fit_recovers_the_temperature_that_made_the_labels():
    probs, labels = _overconfident(20_000, true_t=2.0)
    assert calibration.fit_temperature(probs, labels) == pytest.approx(2.0, rel=0.05)


def test_temperature_lowers_ece_and_nll_and_keeps_every_label():
    probs, labels = _overconfident(6_000, seed=1)
    held_probs, held_labels = _overconfident(6_000, seed=2)
    t = calibration.fit_temperature(probs, labels)
    scores = calibration.measure(held_probs, held_labels, t)
    assert scores.ece_after < scores.ece_before / 3 and scores.ece_after < 0.03
    assert scores.nll_after < scores.nll_before
    after = calibration.apply_temperature(held_probs, t)
    assert (after.argmax(axis=1) == held_probs.argmax(axis=1)).all()
    assert np.allclose(after.sum(axis=1), 1)


def test_reliability_bins_count_every_face_once():
    probs, labels = _overconfident(1_000, seed=3)
    bins = calibration.reliability(probs, labels)
    assert len(bins) == calibration.BINS and sum(b.count for b in bins) == 1_000
    for b in bins:
        assert b.count == 0 or b.low <= b.confidence <= b.high


def test_fit_refuses_no_faces():
    with pytest.raises(ValueError, match="no faces"):
        calibration.fit_temperature(np.zeros((0, 7)), np.zeros(0, int))


@pytest.mark.slow
def test_calibrating_a_saved_model_lowers_ece_through_both_runtimes(shared_fer2013, model_path,
                                                                     tmp_path):
    """An over-confident copy of the shipped model (T = 0.6 folded in) is calibrated on the
    training data's held-out validation faces; on test faces it never saw, ECE drops and no
    label changes, with ONNX Runtime and with Keras."""
    from emotion import data as data_module
    from emotion.model import load_model, save_model_atomic
    from emotion.preprocess import normalise
    from emotion.runtime import load_classifier

    model = load_model(model_path)
    calibration.fold_temperature(model, 0.6)
    sharp = save_model_atomic(model, tmp_path / "sharp" / "emotion_cnn.keras")
    test = data_module.load(shared_fer2013)["test"]
    pick = np.random.default_rng(0).choice(len(test), 1200, replace=False)
    faces, labels = np.asarray(normalise(test.images[pick])), test.labels[pick]

    out = tmp_path / "calibrated" / "emotion_cnn.keras"
    out.parent.mkdir()
    assert main(["calibrate", "--data", str(shared_fer2013), "--model", str(sharp),
                 "--out", str(out), "--json"]) == 0
    metrics = json.loads((out.parent / "metrics.json").read_text())
    assert metrics["calibration"]["temperature"] > 1
    from emotion.registry import saved_at
    assert saved_at(metrics) is not None  # a new model file: when it was written
    assert (out.parent / "reliability.png").is_file()
    assert (out.parent / "confusion_matrix.png").is_file()
    # What a photo gets (TTA) is scored with the calibrated model too, its ECE with it.
    assert metrics["test_tta"]["ece"] < 0.06 and metrics["test_tta"]["n_images"] == len(test)
    for runtime in ("onnx", "keras"):
        before = load_classifier(sharp, runtime=runtime).predict(faces)
        after = load_classifier(out, runtime=runtime).predict(faces)
        assert (after.argmax(axis=1) == before.argmax(axis=1)).all(), runtime
        assert calibration.ece(after, labels) < calibration.ece(before, labels) / 2, runtime
        assert calibration.ece(after, labels) < 0.06, runtime


def test_calibrate_refuses_an_out_that_is_a_folder(tmp_path, model_path):
    assert main(["calibrate", "--data", str(tmp_path), "--model", str(model_path),
                 "--out", str(tmp_path)]) == 2


def test_calibrate_sharpen_gives_an_older_model_the_sharpening_layer(tmp_path, tiny_folder):
    """`calibrate --sharpen` adds EvenSharpness after EvenLighting to a model made without it,
    weights unchanged, then fits its temperature; the input model is left as it was."""
    from emotion.model import build_model, load_model, save_model_atomic

    old = build_model(((4, 1), (8, 1)), even_sharpness=False)
    source = save_model_atomic(old, tmp_path / "old" / "emotion_cnn.keras")
    before = source.read_bytes()
    out = tmp_path / "new" / "emotion_cnn.keras"
    out.parent.mkdir()
    assert main(["calibrate", "--data", str(tiny_folder), "--model", str(source),
                 "--out", str(out), "--sharpen", "--json"]) == 0
    new = load_model(out)
    names = [type(layer).__name__ for layer in new.layers]
    assert names[:3] == ["EvenLighting", "EvenSharpness", "Conv2D"]
    for a, b in zip(new.get_weights()[:-2], old.get_weights()[:-2]):
        np.testing.assert_array_equal(a, b)  # the last Dense holds the new temperature
    metrics = json.loads((out.parent / "metrics.json").read_text())
    assert metrics["sharpening_added"]["reference"] == new.layers[1].reference
    assert metrics["test_tta"]["n_images"] == 14  # 2 test faces of each emotion
    assert source.read_bytes() == before
