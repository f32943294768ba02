"""The CNN: build, save atomically, load."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .config import INPUT_SHAPE
from .labels import NUM_CLASSES

NAME = "emotion_cnn"  # also how the trainer finds the network inside its augmented wrapper
# (filters, convolutions) per block. One convolution at full 48x48 resolution: a second one there
# cost half the training time on CPU for little accuracy.
DEFAULT_BLOCKS: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (128, 2), (256, 2))


def build_model(
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS, dropout: float = 0.25, dense: int = 256
):
    """A VGG-style Sequential CNN: blocks of 3x3 Conv-BN-ReLU, then max-pool and dropout."""
    import keras
    from keras import layers

    model = keras.Sequential(name=NAME)
    model.add(keras.Input(shape=INPUT_SHAPE))
    for width, convs in blocks:
        for _ in range(convs):
            model.add(layers.Conv2D(width, 3, padding="same", use_bias=False))
            model.add(layers.BatchNormalization())
            model.add(layers.Activation("relu"))
        model.add(layers.MaxPooling2D())
        model.add(layers.Dropout(dropout))
    model.add(layers.Flatten())
    model.add(layers.Dense(dense, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation("relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(NUM_CLASSES, activation="softmax"))
    return model


def save_model_atomic(model, path: str | Path) -> Path:
    """Write the model beside `path` and rename it into place, so no half-written file is ever seen."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=path.parent, prefix=f".{path.stem}-")
    os.close(fd)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_model(path: str | Path):
    """Load a saved `.keras` model for inference; a clear error when it is missing or unreadable."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no model at {path}: train one with `python -m emotion train --data DATA`"
            " or pass --model PATH"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ValueError(f"{path} is not a readable Keras model ({exc})") from exc
