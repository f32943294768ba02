"""emotion.runtime: ONNX Runtime gives Keras's probabilities, caches its conversion, falls back.

Every test works on a copy of the model in tmp_path, so nothing is written into models/.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion import onnx_export, runtime
from emotion.labels import EMOTIONS
from emotion.preprocess import faces_to_input

needs_ort = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx")),
    reason="onnxruntime and onnx are not installed")
TOLERANCE = 1e-4  # the brief: ONNX Runtime's probabilities within 1e-4 of Keras's


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory, model_path) -> Path:
    """The shipped model in a folder of its own, where the module's tests may convert it."""
    path = tmp_path_factory.mktemp("model") / "emotion_cnn.keras"
    shutil.copy(model_path, path)
    return path


@pytest.fixture(scope="module")
def onnx_classifier(model_copy):
    return runtime.load_classifier(model_copy, runtime="onnxruntime", threads=1)


@pytest.fixture(scope="module")
def keras_classifier(model_copy):
    return runtime.load_classifier(model_copy, runtime="keras")


@pytest.fixture(scope="module")
def astronaut_faces(astronaut_bgr) -> np.ndarray:
    """Twelve crops around Eileen Collins' face, shifted and scaled: one model batch."""
    crops = [astronaut_bgr[60 + dy:170 + dy + grow, 170 + dx:280 + dx + grow]
             for dy in (-10, 0, 10) for dx in (-8, 8) for grow in (0, 30)]
    return faces_to_input(crops)


@pytest.fixture(scope="module")
def fer_faces(shared_fer2013) -> np.ndarray:
    """300 FER2013 test faces, some of every emotion."""
    paths = []
    for name in EMOTIONS:
        paths += sorted((shared_fer2013 / "test" / name).glob("*.jpg"))[:43]
    assert len(paths) >= 290
    return faces_to_input([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths[:300]])


@pytest.fixture
def count_conversions(monkeypatch) -> list[Path]:
    """The models converted during a test (each call of the exporter appends its path)."""
    calls: list[Path] = []
    real = runtime.export_onnx_bytes

    def counting(model_path, digest=None):
        calls.append(Path(model_path))
        return real(model_path, digest)

    monkeypatch.setattr(runtime, "export_onnx_bytes", counting)
    return calls


def predict_one_by_one(classifier, x: np.ndarray) -> np.ndarray:
    return np.concatenate([classifier.predict(x[i:i + 1]) for i in range(len(x))])


# --- the same probabilities as Keras -----------------------------------------------------------


@needs_ort
def test_one_face_matches_keras(onnx_classifier, keras_classifier, astronaut_faces):
    assert onnx_classifier.name == "onnxruntime" and onnx_classifier.fallback_reason is None
    face = astronaut_faces[:1]
    got, want = onnx_classifier.predict(face), keras_classifier.predict(face)
    assert got.dtype == np.float32 and got.shape == (1, len(EMOTIONS))
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    assert EMOTIONS[int(got.argmax())] == "happy"  # she smiles


@needs_ort
@pytest.mark.parametrize("batch", [1, 8, 64, 300])
def test_fer2013_batches_match_keras(onnx_classifier, keras_classifier, fer_faces, batch):
    faces = fer_faces[:60] if batch == 1 else fer_faces  # one by one is slow; 60 is plenty
    for start in range(0, len(faces), batch):
        x = faces[start:start + batch]
        np.testing.assert_allclose(onnx_classifier.predict(x), keras_classifier.predict(x),
                                   rtol=0, atol=TOLERANCE)


@needs_ort
def test_a_batch_equals_single_calls(onnx_classifier, keras_classifier, astronaut_faces):
    for classifier in (onnx_classifier, keras_classifier):
        batched = classifier.predict(astronaut_faces)
        # Not bit-equal: a batched convolution may sum in another order than a single one.
        np.testing.assert_allclose(batched, predict_one_by_one(classifier, astronaut_faces),
                                   rtol=0, atol=1e-5)


@needs_ort
def test_an_empty_batch_gives_no_rows(onnx_classifier, keras_classifier):
    for classifier in (onnx_classifier, keras_classifier):
        out = classifier.predict(np.zeros((0, 48, 48, 1), np.float32))
        assert out.shape == (0, len(EMOTIONS)) and out.dtype == np.float32


def test_a_single_image_instead_of_a_batch_is_refused(keras_classifier):
    with pytest.raises(ValueError, match="expected a batch"):
        keras_classifier.predict(np.zeros((48, 48, 1), np.float32))


# --- the cache ---------------------------------------------------------------------------------


@needs_ort
def test_the_conversion_is_cached_beside_the_model_and_reused(
        onnx_classifier, model_copy, count_conversions):
    onnx_path = model_copy.with_suffix(".onnx")
    assert onnx_classifier.path == onnx_path and onnx_path.is_file()
    mtime = onnx_path.stat().st_mtime_ns
    again = runtime.load_classifier(model_copy, runtime="onnxruntime")
    assert count_conversions == [] and onnx_path.stat().st_mtime_ns == mtime
    assert again.path == onnx_path


@needs_ort
def test_the_cache_is_rebuilt_when_the_model_changes(tmp_path, model_path, count_conversions,
                                                     astronaut_faces):
    from emotion.model import build_model, save_model_atomic

    path = tmp_path / "m.keras"
    shutil.copy(model_path, path)
    before = runtime.load_classifier(path, runtime="onnxruntime").predict(astronaut_faces)
    save_model_atomic(build_model(blocks=((8, 1), (16, 1)), dense=16), path)  # untrained
    after = runtime.load_classifier(path, runtime="onnxruntime")
    assert count_conversions == [path, path] and after.path == path.with_suffix(".onnx")
    want = runtime.load_classifier(path, runtime="keras").predict(astronaut_faces)
    got = after.predict(astronaut_faces)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    assert np.abs(got - before).max() > 0.01  # it really is the other model


@needs_ort
def test_a_stale_converter_or_a_broken_file_is_converted_again(tmp_path, model_path,
                                                               count_conversions, monkeypatch):
    path = tmp_path / "m.keras"
    shutil.copy(model_path, path)
    runtime.load_classifier(path, runtime="onnxruntime")  # converted and stored
    monkeypatch.setattr(runtime, "CONVERTER", "emotion.runtime/next")
    runtime.load_classifier(path, runtime="onnxruntime")
    path.with_suffix(".onnx").write_bytes(b"half a model")
    runtime.load_classifier(path, runtime="onnxruntime")
    assert len(count_conversions) == 3


@needs_ort
def test_an_unwritable_model_folder_caches_in_the_user_cache(
        tmp_path, model_path, count_conversions, monkeypatch, astronaut_faces):
    path = tmp_path / "readonly" / "m.keras"
    path.parent.mkdir()
    shutil.copy(model_path, path)
    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path / "cache"))
    real_write = runtime.write_bytes_atomic

    def refuse_model_folder(target: Path, data: bytes) -> None:
        # Permissions cannot simulate this when the tests run as root.
        if target.parent == path.parent:
            raise PermissionError(13, "Permission denied", str(target))
        real_write(target, data)

    monkeypatch.setattr(runtime, "write_bytes_atomic", refuse_model_folder)
    first = runtime.load_classifier(path, runtime="onnxruntime")
    assert first.path.parent == tmp_path / "cache" / "runtime"
    assert not path.with_suffix(".onnx").exists()
    second = runtime.load_classifier(path, runtime="onnxruntime")
    assert second.path == first.path and len(count_conversions) == 1


@needs_ort
def test_nowhere_writable_still_runs_from_memory(tmp_path, model_path, monkeypatch,
                                                 keras_classifier, astronaut_faces):
    path = tmp_path / "m.keras"
    shutil.copy(model_path, path)

    def refuse(target: Path, data: bytes) -> None:
        raise OSError(30, "Read-only file system", str(target))

    monkeypatch.setattr(runtime, "write_bytes_atomic", refuse)
    classifier = runtime.load_classifier(path)
    assert classifier.name == "onnxruntime" and classifier.path is None
    np.testing.assert_allclose(classifier.predict(astronaut_faces),
                               keras_classifier.predict(astronaut_faces), rtol=0, atol=TOLERANCE)


@needs_ort
def test_a_current_cache_loads_without_keras_or_tensorflow(onnx_classifier, model_copy):
    code = (
        "import sys\n"
        "from emotion.runtime import load_classifier\n"
        f"c = load_classifier({str(model_copy)!r}, runtime='onnxruntime')\n"
        "assert c.name == 'onnxruntime', c\n"
        "loaded = {'keras', 'tensorflow'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr


# --- choosing and falling back -----------------------------------------------------------------


def test_without_onnxruntime_auto_falls_back_to_keras(model_copy, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises
    with caplog.at_level(logging.WARNING, logger="emotion.runtime"):
        classifier = runtime.load_classifier(model_copy, runtime="auto")
    assert classifier.name == "keras"
    assert "onnxruntime" in classifier.fallback_reason
    assert any("falling back to Keras" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="ONNX Runtime was asked for"):
        runtime.load_classifier(model_copy, runtime="onnxruntime")


@needs_ort
def test_the_environment_variable_chooses_the_runtime(model_copy, monkeypatch):
    monkeypatch.setenv("EMOTION_RUNTIME", "keras")
    keras_one = runtime.load_classifier(model_copy)
    assert keras_one.name == "keras" and keras_one.fallback_reason is None
    monkeypatch.setenv("EMOTION_RUNTIME", "onnxruntime")
    assert runtime.load_classifier(model_copy).name == "onnxruntime"
    # An explicit argument wins over the variable.
    assert runtime.load_classifier(model_copy, runtime="keras").name == "keras"
    monkeypatch.setenv("EMOTION_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="EMOTION_RUNTIME='tensorrt'"):
        runtime.load_classifier(model_copy)


@needs_ort
def test_a_layer_the_exporter_does_not_know_falls_back_to_keras(tmp_path):
    import keras

    from emotion.model import save_model_atomic

    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(7, activation="softmax")])
    path = save_model_atomic(model, tmp_path / "odd.keras")
    with pytest.raises(onnx_export.UnsupportedModel, match="GlobalAveragePooling2D"):
        onnx_export.export_onnx(model)
    classifier = runtime.load_classifier(path)
    assert classifier.name == "keras" and "GlobalAveragePooling2D" in classifier.fallback_reason
    assert not path.with_suffix(".onnx").exists()


def test_a_missing_model_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model"):
        runtime.load_classifier(tmp_path / "none.keras")


# --- threads -------------------------------------------------------------------------------------


def run_concurrently(classifier, inputs: list[np.ndarray], threads: int = 8) -> list:
    """Each thread predicts its share of `inputs`; the results in input order, and any errors."""
    results: list = [None] * len(inputs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(first: int) -> None:
        try:
            barrier.wait()
            for i in range(first, len(inputs), threads):
                results[i] = classifier.predict(inputs[i])
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def many_inputs(astronaut_faces) -> list[np.ndarray]:
    """400 different batches of one to three faces: 8 threads x 50 calls."""
    rng = np.random.default_rng(7)
    inputs = []
    for i in range(400):
        n = 1 + i % 3
        picks = astronaut_faces[rng.integers(0, len(astronaut_faces), n)]
        noise = rng.normal(0, 0.02, picks.shape).astype(np.float32)
        inputs.append(np.clip(picks + noise, 0, 1))
    return inputs


@needs_ort
@pytest.mark.parametrize("kind", ["onnxruntime-1", "onnxruntime-2", "keras"])
def test_eight_threads_get_exactly_the_single_threaded_results(model_copy, many_inputs, kind):
    name, _, threads = kind.partition("-")
    classifier = runtime.load_classifier(model_copy, runtime=name,
                                         threads=int(threads) if threads else None)
    alone = [classifier.predict(x) for x in many_inputs]
    together = run_concurrently(classifier, many_inputs)
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)



def _foreign_onnx(keras_model, real_digest: str) -> bytes:
    """Another network exported to ONNX with the real model's cache metadata copied in."""
    proto = onnx_export.export_onnx(keras_model)
    for key, value in runtime._cache_key(real_digest).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


@needs_ort
@pytest.mark.parametrize("foreign", ["another_network", "ten_outputs"])
def test_an_onnx_file_swapped_in_with_copied_metadata_is_converted_again(
        tmp_path, model_path, hostile_models, count_conversions, astronaut_faces, foreign):
    """The cache is checked against the bytes it was made from, not its own metadata: another
    network's file (or a 10-output one) with the real one's metadata is rebuilt, not trusted."""
    import keras

    from emotion.model import build_model

    path = tmp_path / "m.keras"
    shutil.copy(model_path, path)
    runtime.load_classifier(path, runtime="onnxruntime")  # converted and stored
    onnx_path = path.with_suffix(".onnx")
    assert runtime.record_path(onnx_path).is_file()
    other = (build_model(blocks=((8, 1), (16, 1)), dense=16) if foreign == "another_network"
             else keras.models.load_model(hostile_models["ten_outputs.keras"], compile=False))
    onnx_path.write_bytes(_foreign_onnx(other, runtime.file_sha256(path)))
    classifier = runtime.load_classifier(path, runtime="onnxruntime")
    assert count_conversions == [path, path] and classifier.num_classes == 7
    want = runtime.load_classifier(path, runtime="keras").predict(astronaut_faces)
    np.testing.assert_allclose(classifier.predict(astronaut_faces), want, rtol=0, atol=TOLERANCE)
    # Rebuilt in place: the next load trusts it again without converting.
    runtime.load_classifier(path, runtime="onnxruntime")
    assert count_conversions == [path, path]


@needs_ort
def test_a_cache_without_its_record_is_converted_again(tmp_path, model_path, count_conversions):
    path = tmp_path / "m.keras"
    shutil.copy(model_path, path)
    runtime.load_classifier(path, runtime="onnxruntime")  # converted and stored
    runtime.record_path(path.with_suffix(".onnx")).unlink()
    runtime.load_classifier(path, runtime="onnxruntime")
    runtime.record_path(path.with_suffix(".onnx")).write_text("[]")
    runtime.load_classifier(path, runtime="onnxruntime")
    assert count_conversions == [path, path, path]
