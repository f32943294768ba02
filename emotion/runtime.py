"""The classifier's runtime: ONNX Runtime on a converted copy of the `.keras` model, or Keras.

    classifier = load_classifier("models/emotion_cnn.keras", threads=1)
    probabilities = classifier.predict(batch)  # float32 (N, 48, 48, 1) -> float32 (N, 7)

ONNX Runtime runs one face in about 60% of Keras's time, with the same probabilities to 1e-6
(scripts/compare_runtimes.py measures it; LiteRT, the other candidate, was slower).
The ONNX file is exported from the `.keras` by a small exporter for the layers
`emotion.model.build_model` uses, cached beside the model (else in `config.cache_dir()`) with a
record of the `.keras` and `.onnx` bytes' hashes, and rebuilt when either does not match. With a current cache nothing imports Keras or TensorFlow.
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

log = logging.getLogger(__name__)

AUTO, KERAS, ONNXRUNTIME = "auto", "keras", "onnxruntime"
RUNTIMES = (AUTO, KERAS, ONNXRUNTIME)
_ALIASES = {"ort": ONNXRUNTIME, "onnx": ONNXRUNTIME, "tf": KERAS, "tensorflow": KERAS}

ONNX_SUFFIX = ".onnx"
# Part of the cache key: bump it whenever the exporter's output changes, so old files are rebuilt.
CONVERTER = "emotion.runtime/1"
_KEY_SOURCE = "source_sha256"
_KEY_CONVERTER = "converter"
_KEY_ONNX = "onnx_sha256"  # in the record beside the file: the hash of the converted bytes
OPSET = 17
IR_VERSION = 8  # the oldest IR that opset 17 allows, so older ONNX Runtimes can read the file too

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


class UnsupportedModel(ValueError):
    """The model has a layer (or a setting) that the ONNX exporter does not handle."""


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
    from .model import ModelError, check_readable

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
    from .model import load_model

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


# --- the exporter ----------------------------------------------------------------------------


def export_onnx_bytes(model_path: Path, digest: str | None = None) -> bytes:
    """Load a `.keras` model and export it as serialised ONNX, its cache key in the metadata."""
    from .model import load_model

    proto = export_onnx(load_model(model_path))
    key = _cache_key(digest or file_sha256(model_path))
    for name, value in {**key, "source_name": model_path.name}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = name, value
    return proto.SerializeToString()


def export_onnx(model):
    """An ONNX ModelProto for a Keras Sequential model of build_model's layers.

    Raises UnsupportedModel for any other layer or setting, so the caller can keep to Keras.
    """
    if type(model).__name__ != "Sequential":
        raise UnsupportedModel(f"only Sequential models are exported, not {type(model).__name__}")
    builder = _OnnxBuilder(tuple(model.input_shape))
    for layer in model.layers:
        builder.add(layer)
    return builder.finish(tuple(model.output_shape))


@dataclass
class _Linear:
    """A Conv or Gemm not yet emitted, so a following BatchNormalization can fold into it."""

    op: str  # "Conv" or "Gemm"
    weight: np.ndarray  # float64; Conv: (out, in, kh, kw), Gemm: (in, out)
    bias: np.ndarray  # float64 (out,)
    attrs: dict[str, Any]
    activation: str  # the layer's own activation, applied after any folded batch norm

    def fold_batch_norm(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """y = scale * (Wx + b) + shift, folded into W and b."""
        if self.op == "Conv":
            self.weight = self.weight * scale[:, None, None, None]
        else:
            self.weight = self.weight * scale[None, :]
        self.bias = self.bias * scale + shift


class _OnnxBuilder:
    """Turns Keras layers, in order, into ONNX nodes on NCHW tensors (ONNX Conv's layout)."""

    def __init__(self, input_shape: tuple):
        from onnx import TensorProto, helper

        if len(input_shape) != 4:
            raise UnsupportedModel(f"expected an image input (N, H, W, C), got {input_shape}")
        self.nodes: list = []
        self.initializers: list = []
        self.inputs = [helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, ["N", *input_shape[1:]])]
        self.pending: _Linear | None = None
        # Keras is channels-last; transposing once here lets every Conv run in ONNX's NCHW.
        self.current = self._node("Transpose", ["input"], perm=[0, 3, 1, 2])
        self.rank = 4

    def _name(self, stem: str) -> str:
        return f"{stem}_{len(self.nodes) + len(self.initializers)}"

    def _node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        output = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def _constant(self, array: np.ndarray, stem: str) -> str:
        from onnx import numpy_helper

        name = self._name(stem)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def add(self, layer) -> None:
        """Emit one Keras layer, or raise UnsupportedModel."""
        kind = type(layer).__name__
        handler = getattr(self, f"_add_{kind}", None)
        if handler is None:
            raise UnsupportedModel(f"layer {layer.name!r} ({kind}) has no ONNX export")
        if kind != "BatchNormalization":
            self._flush()
        handler(layer, layer.get_config())

    def _flush(self) -> None:
        """Emit the pending Conv/Gemm and its activation."""
        linear, self.pending = self.pending, None
        if linear is None:
            return
        weight = self._constant(linear.weight.astype(np.float32), "weight")
        bias = self._constant(linear.bias.astype(np.float32), "bias")
        self.current = self._node(linear.op, [self.current, weight, bias], **linear.attrs)
        self._activation(linear.activation)

    def _activation(self, name: str) -> None:
        """Apply a Keras activation by name."""
        if name == "linear":
            return
        if name == "softmax":  # Keras's softmax is over the last axis: channels, axis 1 in NCHW
            self.current = self._node("Softmax", [self.current], axis=1 if self.rank == 4 else -1)
            return
        ops = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
        if name not in ops:
            raise UnsupportedModel(f"activation {name!r} has no ONNX export")
        self.current = self._node(ops[name], [self.current])

    def _require_rank(self, layer, rank: int) -> None:
        if self.rank != rank:
            raise UnsupportedModel(f"layer {layer.name!r} expects a rank-{rank} input here")

    def _add_InputLayer(self, layer, cfg: dict) -> None:
        pass

    def _add_Dropout(self, layer, cfg: dict) -> None:
        pass  # identity at inference

    def _add_Activation(self, layer, cfg: dict) -> None:
        self._activation(_activation_name(cfg["activation"]))

    def _add_Conv2D(self, layer, cfg: dict) -> None:
        self._require_rank(layer, 4)
        if cfg.get("data_format", "channels_last") != "channels_last" or cfg.get("groups", 1) != 1:
            raise UnsupportedModel(f"layer {layer.name!r}: only channels_last, ungrouped Conv2D")
        kernel = np.asarray(layer.kernel.numpy(), np.float64).transpose(3, 2, 0, 1)
        bias = (np.asarray(layer.bias.numpy(), np.float64) if cfg["use_bias"]
                else np.zeros(kernel.shape[0]))
        attrs = {"kernel_shape": list(kernel.shape[2:]), "strides": list(cfg["strides"]),
                 "dilations": list(cfg["dilation_rate"]), "auto_pad": _pad(layer, cfg)}
        self.pending = _Linear("Conv", kernel, bias, attrs, _activation_name(cfg["activation"]))

    def _add_Dense(self, layer, cfg: dict) -> None:
        self._require_rank(layer, 2)
        kernel = np.asarray(layer.kernel.numpy(), np.float64)
        bias = (np.asarray(layer.bias.numpy(), np.float64) if cfg["use_bias"]
                else np.zeros(kernel.shape[1]))
        self.pending = _Linear("Gemm", kernel, bias, {}, _activation_name(cfg["activation"]))

    def _add_BatchNormalization(self, layer, cfg: dict) -> None:
        axis = cfg["axis"] if isinstance(cfg["axis"], int) else None
        if axis not in (-1, self.rank - 1):
            raise UnsupportedModel(f"layer {layer.name!r}: batch norm must be over the last axis")
        if self.pending is None or self.pending.activation != "linear":
            raise UnsupportedModel(f"layer {layer.name!r}: batch norm must follow a Conv2D or"
                                   " Dense without activation to be folded into it")
        mean = np.asarray(layer.moving_mean.numpy(), np.float64)
        variance = np.asarray(layer.moving_variance.numpy(), np.float64)
        gamma = np.asarray(layer.gamma.numpy(), np.float64) if cfg["scale"] else 1.0
        beta = np.asarray(layer.beta.numpy(), np.float64) if cfg["center"] else 0.0
        scale = gamma / np.sqrt(variance + cfg["epsilon"])
        self.pending.fold_batch_norm(np.broadcast_to(scale, mean.shape),
                                     np.broadcast_to(beta - mean * scale, mean.shape))

    def _add_MaxPooling2D(self, layer, cfg: dict) -> None:
        self._require_rank(layer, 4)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise UnsupportedModel(f"layer {layer.name!r}: only channels_last pooling")
        pool = list(cfg["pool_size"])
        strides = list(cfg["strides"] or pool)
        self.current = self._node("MaxPool", [self.current], kernel_shape=pool, strides=strides,
                                  auto_pad=_pad(layer, cfg))

    def _add_Flatten(self, layer, cfg: dict) -> None:
        if self.rank == 4:
            # Keras flattens (H, W, C) in that order: back to NHWC first, so Dense's rows match.
            self.current = self._node("Transpose", [self.current], perm=[0, 2, 3, 1])
        self.current = self._node("Flatten", [self.current], axis=1)
        self.rank = 2

    def finish(self, output_shape: tuple):
        """The ModelProto, its one output named "probabilities"."""
        from onnx import TensorProto, checker, helper

        self._flush()
        if self.rank != len(output_shape):
            raise UnsupportedModel(f"the exporter's output rank {self.rank} is not the model's")
        self.nodes.append(helper.make_node("Identity", [self.current], ["probabilities"]))
        outputs = [helper.make_tensor_value_info(
            "probabilities", TensorProto.FLOAT, ["N", *output_shape[1:]])]
        graph = helper.make_graph(self.nodes, "emotion_cnn", self.inputs, outputs,
                                  self.initializers)
        proto = helper.make_model(graph, producer_name=CONVERTER,
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        proto.ir_version = IR_VERSION
        checker.check_model(proto)
        return proto


def _activation_name(activation: Any) -> str:
    """A Keras activation from a layer config, by name."""
    if isinstance(activation, str):
        return activation
    raise UnsupportedModel(f"activation {activation!r} has no ONNX export")


def _pad(layer, cfg: dict) -> str:
    """ONNX's auto_pad for a Keras padding; SAME_UPPER pads like TensorFlow's "same"."""
    padding = cfg["padding"].lower()
    if padding not in ("same", "valid"):
        raise UnsupportedModel(f"layer {layer.name!r}: padding {padding!r} has no ONNX export")
    return "SAME_UPPER" if padding == "same" else "VALID"
