"""A layer that sharpens blurred faces: a face softer than 9 in 10 of FER2013's faces gets an
unsharp mask, x + k (x - blur(x)), with k growing as the face gets softer; a sharp face passes
unchanged.

Blur is what costs the model most away from FER2013 (a webcam out of focus, a small face
enlarged to 48x48). Sharpening puts back the edges the convolutions learnt on. A layer of the
model, like `EvenLighting`, so a model carries whether it expects it, and the ONNX and Keras
runtimes apply the same arithmetic.

How soft a face is: the mean |Laplacian| over its pixels divided by their standard deviation,
which no change of brightness or contrast moves, so the layer can sit before or after
`EvenLighting`. Noise and JPEG blocks raise it, so noisy faces are not sharpened further.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .errors import ModelError
from .lighting import STD_FLOOR, EvenLighting, centred_and_spread

# Faces at least this sharp are left alone: about the 10th percentile of FER2013's training faces
# (mean |Laplacian| / pixel SD; the median is 0.62, and a 1.2 px Gaussian blur brings a typical
# face to 0.15). Chosen with MAX_AMOUNT on the validation faces: the most robustness to the
# benchmark's shifts that cost neither one pass nor the six views any accuracy on clean faces.
REFERENCE_SHARPNESS = 0.45
MAX_AMOUNT = 4.0  # the most a face is sharpened: k = REFERENCE / sharpness - 1, capped here
BLUR_SIGMA = 1.0
BLUR_RADIUS = 3  # 7 taps: the Gaussian beyond 3 sigma is below 1% of its peak
MIN_SHARPNESS = 1e-6  # a face with no edges at all gets the most sharpening, not a division by 0

LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def gaussian_kernel(sigma: float = BLUR_SIGMA, radius: int = BLUR_RADIUS) -> np.ndarray:
    """A normalised 2-D Gaussian, (2 radius + 1) square."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    return np.outer(taps, taps).astype(np.float32)


@keras.saving.register_keras_serializable(package="emotion")
class EvenSharpness(keras.layers.Layer):
    """Unsharp mask scaled to how soft each face is; no weights."""

    def __init__(self, reference: float = REFERENCE_SHARPNESS, max_amount: float = MAX_AMOUNT,
                 sigma: float = BLUR_SIGMA, radius: int = BLUR_RADIUS,
                 floor: float = STD_FLOOR, **kwargs):
        kwargs.setdefault("dtype", "float32")  # as EvenLighting: means over 2,304 pixels
        super().__init__(**kwargs)
        self.reference, self.max_amount = float(reference), float(max_amount)
        self.sigma, self.radius, self.floor = float(sigma), int(radius), float(floor)
        self._blur = gaussian_kernel(self.sigma, self.radius)  # once, not at every call

    def _filter(self, x, kernel: np.ndarray):
        """`kernel` over each face, the border mirrored (OpenCV's default, ONNX's "reflect")."""
        r = kernel.shape[0] // 2
        padded = ops.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="reflect")
        return ops.conv(padded, ops.convert_to_tensor(kernel[:, :, None, None]), padding="valid")

    def amount(self, x):
        """k per face, (N, 1, 1, 1): 0 for a face as sharp as the reference or sharper."""
        edges = ops.mean(ops.abs(self._filter(x, LAPLACIAN)), axis=(1, 2, 3), keepdims=True)
        _, spread = centred_and_spread(x, self.floor)
        ratio = self.reference / ops.maximum(edges / spread, MIN_SHARPNESS)
        return ops.clip(ratio - 1.0, 0.0, self.max_amount)

    def call(self, x):
        detail = x - self._filter(x, self._blur)
        return x + self.amount(x) * detail

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "reference": self.reference,
                "max_amount": self.max_amount, "sigma": self.sigma, "radius": self.radius,
                "floor": self.floor}


def with_even_sharpness(model, **settings):
    """`model` (a Sequential of `build_model`'s layers) with EvenSharpness after its EvenLighting,
    or first if it has none; the same layers and weights otherwise. A model that has the layer
    already is returned as it is."""
    if type(model).__name__ != "Sequential":
        raise ModelError(f"only a Sequential model can take the sharpening layer, "
                         f"not a {type(model).__name__}")
    layers = list(model.layers)
    if any(isinstance(layer, EvenSharpness) for layer in layers):
        return model
    at = next((i + 1 for i, layer in enumerate(layers) if isinstance(layer, EvenLighting)), 0)
    layers.insert(at, EvenSharpness(**settings))
    return keras.Sequential([keras.Input(shape=model.input_shape[1:]), *layers], name=model.name)
