"""EvenLighting, the network's first layer: each face's brightness and contrast set to FER2013's
average, the same in Keras and ONNX Runtime; and the gamma that training draws for dim and harsh
light."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from emotion import onnx_export
from emotion.lighting import FER2013_MEAN, FER2013_STD, EvenLighting
from emotion.model import build_model, load_model, save_model_atomic
from emotion.runtime import load_classifier

needs_ort = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx")),
    reason="onnxruntime and onnx are not installed")
SMALL = ((4, 1), (8, 1))


@pytest.fixture(scope="module")
def faces(astronaut_faces) -> np.ndarray:
    return astronaut_faces


def _lit(x: np.ndarray) -> np.ndarray:
    return np.asarray(EvenLighting()(x))


def test_each_face_comes_out_with_fer2013s_brightness_and_contrast(faces):
    out = _lit(faces)
    assert out.mean(axis=(1, 2, 3)) == pytest.approx([FER2013_MEAN] * len(faces), abs=1e-5)
    assert out.std(axis=(1, 2, 3)) == pytest.approx([FER2013_STD] * len(faces), abs=1e-5)


def test_dimmer_or_flatter_light_gives_the_same_input(faces):
    """A face at half the contrast and darker is, once evened, the face as it was."""
    washed_out = (faces - 0.5) * 0.5 + 0.4
    np.testing.assert_allclose(_lit(washed_out), _lit(faces), atol=1e-5)


def test_a_flat_grey_face_stays_finite(faces):
    flat = np.full((1, 48, 48, 1), 0.3, np.float32)
    out = _lit(np.concatenate([flat, faces]))
    assert np.isfinite(out).all()
    assert out[0] == pytest.approx(np.full((48, 48, 1), FER2013_MEAN), abs=1e-5)


def test_the_layer_survives_saving_and_loading(tmp_path, faces):
    model = build_model(SMALL)
    assert isinstance(model.layers[0], EvenLighting)
    path = save_model_atomic(model, tmp_path / "m.keras")
    loaded = load_model(path)
    assert isinstance(loaded.layers[0], EvenLighting)
    np.testing.assert_allclose(np.asarray(loaded(faces)), np.asarray(model(faces)), atol=1e-6)


@needs_ort
def test_onnx_runtime_gives_keras_probabilities_for_an_evened_model(tmp_path, faces):
    """The exporter writes the layer as ONNX operators: the two runtimes agree within 1e-4,
    on real faces and on a flat one (where the floor on the spread takes over)."""
    model = build_model(SMALL)
    proto = onnx_export.export_onnx(model)
    assert {"ReduceMean", "Sqrt", "Max"} <= {node.op_type for node in proto.graph.node}
    path = save_model_atomic(model, tmp_path / "m.keras")
    x = np.concatenate([np.full((1, 48, 48, 1), 0.7, np.float32), faces, faces * 0.4])
    onnx = load_classifier(path, runtime="onnxruntime", threads=1)
    assert type(onnx).__name__ == "OnnxClassifier"
    np.testing.assert_allclose(onnx.predict(x), np.asarray(model(x)), atol=1e-4)
    # Evened, a face at 40% of its light scores as the face itself.
    np.testing.assert_allclose(onnx.predict(faces * 0.4), onnx.predict(faces), atol=1e-4)


def test_a_model_without_the_layer_still_loads_and_can_start_one_with_it(tmp_path, faces):
    """Older models (the layer is new) load as they are; having no weights, the layer lets their
    weights be the --init of a model that has it."""
    from emotion.training.selection import load_initial_weights

    old = build_model(SMALL, even_lighting=False)
    path = save_model_atomic(old, tmp_path / "old.keras")
    assert not any(isinstance(layer, EvenLighting) for layer in load_model(path).layers)
    new = build_model(SMALL)
    load_initial_weights(new, path)
    for a, b in zip(new.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_training_gamma_darkens_and_brightens_faces_and_is_off_at_inference(faces):
    from emotion.training.datasets import RandomGamma

    layer = RandomGamma(2.2, seed=1)
    x = np.repeat(faces[:1], 64, axis=0)
    out = np.asarray(layer(x, training=True))
    assert out.min() >= 0 and out.max() <= 1
    means = out.mean(axis=(1, 2, 3))
    assert means.min() < x.mean() - 0.05 < x.mean() + 0.05 < means.max()  # both ways, per face
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
