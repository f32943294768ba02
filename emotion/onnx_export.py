"""Keras to ONNX, for the layers `emotion.model.build_model` uses: `export_onnx(model)` gives an
ONNX ModelProto on NCHW tensors, each batch normalisation folded into the Conv or Dense before it.

Anything else (another layer, a setting the exporter does not handle) raises `UnsupportedModel`,
so `emotion.runtime` can keep to Keras and say why. Only `onnx` is imported, and only when
exporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UnsupportedModel

# Part of the cache key: bump it whenever the exporter's output changes, so old files are rebuilt.
CONVERTER = "emotion.runtime/2"
OPSET = 17
IR_VERSION = 8  # the oldest IR that opset 17 allows, so older ONNX Runtimes can read the file too


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

    def _face_mean(self, x: str) -> str:
        """The mean over each face's pixels, kept as (N, 1, 1, 1)."""
        return self._node("ReduceMean", [x], axes=[1, 2, 3], keepdims=1)

    def _centred_and_spread(self, x: str, floor: float) -> tuple[str, str]:
        """x minus each face's mean, and the faces' pixel SD, at least `floor`."""
        centred = self._node("Sub", [x, self._face_mean(x)])
        spread = self._node("Sqrt", [self._face_mean(self._node("Mul", [centred, centred]))])
        return centred, self._node("Max", [spread, self._scalar(floor, "floor")])

    def _scalar(self, value: float, stem: str) -> str:
        return self._constant(np.array(value, np.float32), stem)

    def _add_EvenLighting(self, layer, cfg: dict) -> None:
        self._require_rank(layer, 4)
        centred, spread = self._centred_and_spread(self.current, cfg["floor"])
        scaled = self._node("Div", [centred, spread])
        rescaled = self._node("Mul", [scaled, self._scalar(cfg["std"], "std")])
        self.current = self._node("Add", [rescaled, self._scalar(cfg["mean"], "mean")])

    def _add_EvenSharpness(self, layer, cfg: dict) -> None:
        from .sharpness import LAPLACIAN, MIN_SHARPNESS, gaussian_kernel

        self._require_rank(layer, 4)
        x = self.current

        def filtered(kernel: np.ndarray) -> str:
            r = kernel.shape[0] // 2
            pads = self._constant(np.array([0, 0, r, r, 0, 0, r, r], np.int64), "pads")
            padded = self._node("Pad", [x, pads], mode="reflect")  # numpy's reflect, as Keras's
            return self._node("Conv", [padded, self._constant(kernel[None, None], "kernel")])

        edges = self._face_mean(self._node("Abs", [filtered(LAPLACIAN)]))
        _, spread = self._centred_and_spread(x, cfg["floor"])
        sharpness = self._node("Max", [self._node("Div", [edges, spread]),
                                       self._scalar(MIN_SHARPNESS, "tiny")])
        ratio = self._node("Div", [self._scalar(cfg["reference"], "reference"), sharpness])
        amount = self._node("Clip", [self._node("Sub", [ratio, self._scalar(1.0, "one")]),
                                     self._scalar(0.0, "zero"),
                                     self._scalar(cfg["max_amount"], "most")])
        detail = self._node("Sub", [x, filtered(gaussian_kernel(cfg["sigma"], cfg["radius"]))])
        self.current = self._node("Add", [x, self._node("Mul", [amount, detail])])

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
