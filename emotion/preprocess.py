"""The one preprocessing path from a face crop to model input, shared by training and inference."""

from __future__ import annotations

import cv2
import numpy as np

from .config import IMAGE_SIZE


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGR or BGRA) as one gray channel; a gray image is returned as is."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_gray48(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGR or BGRA, any size) as a 48x48 uint8 grayscale face."""
    image = to_gray(image)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        # INTER_AREA is the right filter for shrinking, which is the usual case for face crops.
        shrinking = image.shape[0] > IMAGE_SIZE
        image = cv2.resize(
            image,
            (IMAGE_SIZE, IMAGE_SIZE),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
    return image


def normalise(batch):
    """uint8 faces (N, 48, 48[, 1]) as float32 model input (N, 48, 48, 1) in [0, 1].

    Works on NumPy arrays and on tensors inside a tf.data pipeline alike, so training and
    inference cannot drift apart.
    """
    if isinstance(batch, np.ndarray):
        # The same arithmetic without Keras: a tensor round trip costs more than the model's
        # ONNX Runtime call takes for a whole face.
        batch = batch.astype(np.float32) / np.float32(255.0)
        return batch[..., None] if batch.ndim == 3 else batch
    from keras import ops

    batch = ops.cast(batch, "float32") / 255.0
    if len(batch.shape) == 3:
        batch = ops.expand_dims(batch, -1)
    return batch


def faces_to_input(faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Face crops of any size and colour as one float32 model batch."""
    stack = np.stack([to_gray48(f) for f in faces]) if len(faces) else np.zeros(
        (0, IMAGE_SIZE, IMAGE_SIZE), np.uint8
    )
    return np.asarray(normalise(stack))
