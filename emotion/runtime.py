"""The classifier's runtime: ONNX Runtime on a converted copy of the `.keras` model, or Keras.

    classifier = load_classifier("models/emotion_cnn.keras", threads=1)
    probabilities = classifier.predict(batch)  # float32 (N, 48, 48, 1) -> float32 (N, 7)

ONNX Runtime runs one face in about 60% of Keras's time, with the same probabilities to 1e-6
(scripts/compare_runtimes.py measures it; LiteRT, the other candidate, was slower).
The ONNX file is exported from the `.keras` by `emotion.onnx_export`, for the layers
`emotion.model.build_model` uses, cached beside the model (else in `config.cache_dir()`) with a
record of the `.keras` and `.onnx` bytes' hashes, and rebuilt when either does not match. With a
current cache nothing imports Keras or TensorFlow.
Whenever ONNX Runtime cannot be used, `load_classifier` falls back to Keras and says why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import config
from .files import write_bytes_atomic
from .model import ModelError, check_readable, load_model
from .onnx_export import CONVERTER, export_onnx

log = logging.getLogger(__name__)

AUTO, KERAS, ONNXRUNTIME = "auto", "keras", "onnxruntime"
RUNTIMES = (AUTO, KERAS, ONNXRUNTIME)
_ALIASES = {"ort": ONNXRUNTIME, "onnx": ONNXRUNTIME, "tf": KERAS, "tensorflow": KERAS}

ONNX_SUFFIX = ".onnx"
_KEY_SOURCE = "source_sha256"
_KEY_CONVERTER = "converter"
_KEY_ONNX = "onnx_sha256"  # in the record beside the file: the hash of the converted bytes

# One conversion at a time in this process: concurrent first loads would each convert otherwise.
_CONVERT_LOCK = threading.Lock()
# One Keras warm-up at a time: two threads tracing the same predict function would race.
_KERAS_LOCK = threading.Lock()


class Classifier(Protocol):
    """Emotion probabilities for a batch of faces; `predict` may be called from many threads."""

    name: str
    fallback_reason: str | None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 48, 48, 1) in [0, 1] -> float32 (N, classes); N may be 0."""
        ...


def _as_batch(x: np.ndarray) -> np.ndarray:
    """The model input as a C-contiguous float32 (N, H, W, C) array."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, 48, 48, 1), got shape {x.shape}")
    return x


# --- the two classifiers ---------------------------------------------------------------------


@dataclass(eq=False)
class OnnxClassifier:
    """ONNX Runtime: `InferenceSession.run` is thread-safe, so one session serves every thread."""

    session: Any
    path: Path | None  # None when the converted model could not be stored and lives in memory
    threads: int | None = None
    name: str = ONNXRUNTIME
    fallback_reason: str | None = None
    num_classes: int = field(init=False)

    def __post_init__(self) -> None:
        self._input = self.session.get_inputs()[0].name
        self.num_classes = int(self.session.get_outputs()[0].shape[-1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for a float32 batch."""
        x = _as_batch(x)
        if not len(x):
            return np.zeros((0, self.num_classes), np.float32)
        return self.session.run(None, {self._input: x})[0]


@dataclass(eq=False)
class KerasClassifier:
    """Keras's compiled predict function, built and traced once at load time."""

    model: Any
    fallback_reason: str | None = None
    name: str = KERAS
    num_classes: int = field(init=False)

    def __post_init__(self) -> None:
        with _KERAS_LOCK:
            self.num_classes = self._warm_up()

    def _warm_up(self) -> int:
        """Build the predict function before any thread calls it, for batch sizes 1 and 2.

        Two sizes, because Keras traces with reduce_retracing: after the second size it keeps a
        trace for any batch size, so later calls never trace (concurrently) again.
        """
        self.model.make_predict_function()
        shape = tuple(self.model.input_shape[1:])
        out = None
        for n in (1, 2):
            out = self.model.predict_on_batch(np.zeros((n, *shape), np.float32))
        return int(np.shape(out)[-1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for a float32 batch."""
        x = _as_batch(x)
        if not len(x):
            return np.zeros((0, self.num_classes), np.float32)
        return np.asarray(self.model.predict_on_batch(x), dtype=np.float32)


# --- choosing and loading --------------------------------------------------------------------


def resolve_runtime(runtime: str | None = None) -> str:
    """`runtime`, else $EMOTION_RUNTIME, else auto; one of RUNTIMES."""
    value = (runtime if runtime is not None else config.runtime_setting()).strip().lower()
    value = _ALIASES.get(value, value or AUTO)
    if value not in RUNTIMES:
        source = "runtime" if runtime is not None else config.RUNTIME_ENV
        raise ValueError(f"{source}={value!r}: expected one of {', '.join(RUNTIMES)}")
    return value


def load_classifier(model_path: str | Path, runtime: str | None = None,
                    threads: int | None = None) -> Classifier:
    """The fastest usable classifier for a `.keras` model.

    `runtime`: "auto" (ONNX Runtime when it can be used, else Keras, with the reason in
    `fallback_reason`), "keras" or "onnxruntime" (which raises instead of falling back); None
    reads $EMOTION_RUNTIME. `threads`: ONNX Runtime's intra-op threads (None = its default, one
    per core); Keras's thread pools are process-wide and fixed once TensorFlow starts, so the
    Keras classifier leaves them alone.
    """
    choice = resolve_runtime(runtime)
    model_path = Path(model_path)
    # Missing, unreadable or damaged: an error, not a reason to fall back to another runtime.
    check_readable(model_path)
    if choice == KERAS:
        log.info("emotion classifier: Keras (asked for)")
        return _load_keras(model_path)
    try:
        classifier = load_onnx(model_path, threads)
    except ModelError:  # the wrong shape for any runtime: Keras would refuse it the same way
        raise
    except Exception as exc:  # any failure here still leaves Keras, which is always correct
        if choice == ONNXRUNTIME:
            raise RuntimeError(f"ONNX Runtime was asked for but cannot run {model_path}: "
                               f"{_describe(exc)}") from exc
        reason = _describe(exc)
        log.warning("emotion classifier: falling back to Keras: %s", reason)
        return _load_keras(model_path, reason)
    log.info("emotion classifier: ONNX Runtime on %s", classifier.path or "an in-memory copy")
    return classifier


def _describe(exc: BaseException) -> str:
    """A one-line reason for a fallback."""
    if isinstance(exc, ImportError):
        return f"{exc.name or 'a module'} is not installed ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _load_keras(model_path: Path, fallback_reason: str | None = None) -> KerasClassifier:
    """The Keras classifier, its predict function ready for concurrent calls."""
    return KerasClassifier(load_model(model_path), fallback_reason=fallback_reason)


def load_onnx(model_path: str | Path, threads: int | None = None) -> OnnxClassifier:
    """ONNX Runtime on the cached conversion of `model_path`, converting it first if needed."""
    import onnxruntime  # noqa: F401  (fail before hashing or converting when it is missing)

    model_path = Path(model_path)
    with _CONVERT_LOCK:
        digest = file_sha256(model_path)
        for path in cache_candidates(model_path):
            session = _open_if_current(path, digest, threads)
            if session is not None:
                return OnnxClassifier(session, path, threads)
        data = export_onnx_bytes(model_path, digest)
        path = _store(data, model_path, digest)
    # Unstorable anywhere still runs: ONNX Runtime takes the model's bytes as well as a path.
    return OnnxClassifier(_session(path or data, threads), path, threads)


# --- the cache -------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_key(digest: str) -> dict[str, str]:
    """What a converted file's metadata must say to be current for a `.keras` of this digest."""
    return {_KEY_SOURCE: digest, _KEY_CONVERTER: CONVERTER}


def cache_candidates(model_path: Path) -> list[Path]:
    """Where the converted model may live: beside the `.keras`, else the per-user cache."""
    beside = model_path.with_suffix(ONNX_SUFFIX)
    # The model's full path in the name, so two models called emotion_cnn.keras do not collide.
    tag = hashlib.sha256(str(model_path.resolve()).encode()).hexdigest()[:12]
    return [beside, config.cache_dir() / "runtime" / f"{model_path.stem}-{tag}{ONNX_SUFFIX}"]


def _session_options(threads: int | None):
    """ONNX Runtime's options: `threads` intra-op threads, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: one per physical core
    options.inter_op_num_threads = 1  # the graph is a chain: nothing runs in parallel between ops
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    # Idle pool threads would otherwise spin on the app's few cores: with another busy process,
    # two spinning threads made a batch of 8 take 2-3x longer, not 2x shorter.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _session(model: Path | bytes, threads: int | None):
    """An InferenceSession on the CPU for a model file or its bytes."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, _session_options(threads),
                                providers=["CPUExecutionProvider"])


def record_path(path: Path) -> Path:
    """The record beside a converted model: what it was made from and the hash of its bytes."""
    return path.with_name(path.name + ".json")


def _record(data: bytes, digest: str) -> bytes:
    return json.dumps({**_cache_key(digest), _KEY_ONNX: hashlib.sha256(data).hexdigest()},
                      indent=1).encode()


def _read_current(path: Path, digest: str) -> bytes | None:
    """The converted model's bytes when its record says they were made from the `.keras` of this
    `digest` by this converter and they hash as recorded, else None.

    Metadata inside the file is not enough: an `.onnx` of another model with this one's metadata
    copied in was trusted ("disgust 100%" where Keras scored 63%).
    """
    if not path.is_file():
        return None
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
        data = path.read_bytes()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.info("ignoring %s: no readable record (%s)", path, exc)
        return None
    expected = {**_cache_key(digest), _KEY_ONNX: hashlib.sha256(data).hexdigest()}
    if not isinstance(record, dict) or {k: record.get(k) for k in expected} != expected:
        log.info("%s is stale or not the one recorded: converting again", path)
        return None
    return data


def _open_if_current(path: Path, digest: str, threads: int | None):
    """A session on `path` when it exists and was converted from this `.keras`, else None."""
    data = _read_current(path, digest)
    if data is None:
        return None
    try:
        session = _session(data, threads)  # the very bytes just checked
    except Exception as exc:  # a truncated or foreign file: convert again
        log.info("ignoring unreadable %s: %s", path, exc)
        return None
    stored = session.get_modelmeta().custom_metadata_map
    if {k: stored.get(k) for k in (_KEY_SOURCE, _KEY_CONVERTER)} != _cache_key(digest):
        log.info("%s is stale: converting again", path)
        return None
    return session


def _store(data: bytes, model_path: Path, digest: str) -> Path | None:
    """Write the converted model to the first writable candidate, atomically; None if none is."""
    for path in cache_candidates(model_path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, data)
            # After the model: a kill between the two leaves a record that no longer matches.
            write_bytes_atomic(record_path(path), _record(data, digest))
        except OSError as exc:
            log.info("cannot write %s (%s)", path, exc)
            continue
        log.info("converted %s to %s", model_path, path)
        return path
    log.warning("cannot store the ONNX model anywhere; it is rebuilt on every load")
    return None


# --- exporting into the cache ---------------------------------------------------------------


def export_onnx_bytes(model_path: Path, digest: str | None = None) -> bytes:
    """Load a `.keras` model and export it as serialised ONNX, its cache key in the metadata."""
    proto = export_onnx(load_model(model_path))
    key = _cache_key(digest or file_sha256(model_path))
    for name, value in {**key, "source_name": model_path.name}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = name, value
    return proto.SerializeToString()
