"""EvenSharpness, the layer after EvenLighting: a blurred face sharpened back, a sharp or noisy
face left alone, the same in Keras and ONNX Runtime."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emotion import onnx_export
from emotion.model import build_model, load_model, save_model_atomic
from emotion.runtime import load_classifier
from emotion.sharpness import REFERENCE_SHARPNESS, EvenSharpness

SMALL = ((4, 1), (8, 1))


@pytest.fixture(scope="module")
def faces(astronaut_faces) -> np.ndarray:
    return astronaut_faces


def _blurred(faces: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma)[..., None] for f in faces[..., 0]])


def _noisy(faces: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(faces + rng.normal(0, 12 / 255, faces.shape), 0, 1).astype(np.float32)


def _amount(x: np.ndarray) -> np.ndarray:
    return np.asarray(EvenSharpness().amount(x)).ravel()


def _crisp(faces: np.ndarray) -> np.ndarray:
    """The faces with their edges doubled: sharper than FER2013's median face."""
    return faces + (faces - _blurred(faces, 1.0))


def test_sharp_and_noisy_faces_pass_unchanged(faces):
    """A face as sharp as FER2013's typical one gets no sharpening; noise measures as sharp, so
    a noisy face is not sharpened either (that would amplify the noise)."""
    for x in (_crisp(faces), _noisy(faces)):
        assert (_amount(x) == 0).all()
        np.testing.assert_allclose(np.asarray(EvenSharpness()(x)), x, atol=1e-6)


def test_a_blurred_face_is_sharpened_back_towards_the_face(faces):
    soft = _blurred(faces)
    assert (_amount(soft) > 0.5).all()
    out = np.asarray(EvenSharpness()(soft))
    # Closer to the face before the blur than the blurred face was.
    assert np.abs(out - faces).mean() < 0.8 * np.abs(soft - faces).mean()
    # Softer faces get more, up to the cap.
    softer = _blurred(faces, 2.5)
    assert (_amount(softer) >= _amount(soft)).all()
    assert _amount(softer).max() <= EvenSharpness().max_amount


def test_how_soft_a_face_is_does_not_depend_on_its_light(faces):
    """The measure is a ratio of edges to contrast, so the layer can sit after EvenLighting."""
    soft = _blurred(faces)
    np.testing.assert_allclose(_amount((soft - 0.5) * 0.4 + 0.3), _amount(soft), rtol=1e-4)


def test_a_flat_grey_face_stays_finite(faces):
    flat = np.full((1, 48, 48, 1), 0.3, np.float32)
    out = np.asarray(EvenSharpness()(np.concatenate([flat, faces])))
    assert np.isfinite(out).all()
    assert out[0] == pytest.approx(np.full((48, 48, 1), 0.3), abs=1e-5)


def test_the_model_has_it_after_even_lighting_and_it_survives_saving(tmp_path, faces):
    model = build_model(SMALL)
    assert [type(layer).__name__ for layer in model.layers[:2]] == ["EvenLighting",
                                                                    "EvenSharpness"]
    path = save_model_atomic(model, tmp_path / "m.keras")
    loaded = load_model(path)
    assert isinstance(loaded.layers[1], EvenSharpness)
    assert loaded.layers[1].get_config()["reference"] == REFERENCE_SHARPNESS
    x = np.concatenate([faces, _blurred(faces)])
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


def test_onnx_runtime_gives_keras_probabilities_for_a_sharpening_model(tmp_path, faces):
    """The exporter writes the layer as ONNX operators (mirrored borders, as Keras pads): the two
    runtimes agree within 1e-4 on sharp, blurred, very blurred, noisy and flat faces."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    model = build_model(SMALL)
    proto = onnx_export.export_onnx(model)
    assert {"Pad", "Abs", "Clip"} <= {node.op_type for node in proto.graph.node}
    path = save_model_atomic(model, tmp_path / "m.keras")
    x = np.concatenate([np.full((1, 48, 48, 1), 0.7, np.float32), faces, _blurred(faces),
                        _blurred(faces, 3.0), _noisy(faces)])
    onnx = load_classifier(path, runtime="onnxruntime", threads=1)
    assert type(onnx).__name__ == "OnnxClassifier"
    np.testing.assert_allclose(onnx.predict(x), np.asarray(model(x)), atol=1e-4)


def test_a_model_without_the_layer_still_loads_and_can_start_one_with_it(tmp_path, faces):
    """Older models load as they are; having no weights, the layer lets their weights be the
    --init of a model that has it, and it changes only what blurred faces get."""
    from emotion.training.selection import load_initial_weights

    old = build_model(SMALL, even_sharpness=False)
    path = save_model_atomic(old, tmp_path / "old.keras")
    assert not any(isinstance(layer, EvenSharpness) for layer in load_model(path).layers)
    new = build_model(SMALL)
    load_initial_weights(new, path)
    for a, b in zip(new.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(new(_crisp(faces))), np.asarray(old(_crisp(faces))),
                               atol=1e-6)
    assert not np.allclose(np.asarray(new(_blurred(faces))), np.asarray(old(_blurred(faces))))
