"""The CNN: build, save atomically, load."""

from __future__ import annotations

import stat
from pathlib import Path

from . import config
from .config import INPUT_SHAPE
from .errors import ModelError, ModelNotFound, sentence
from .files import write_atomically
from .labels import NUM_CLASSES

NAME = "emotion_cnn"  # also how the trainer finds the network inside its augmented wrapper
# (filters, convolutions) per block. One convolution at full 48x48 resolution: a second one there
# cost half the training time on CPU for little accuracy.
DEFAULT_BLOCKS: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (128, 2), (256, 2))


def build_model(
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS, dropout: float = 0.25, dense: int = 256,
    even_lighting: bool = True, even_sharpness: bool = True,
):
    """A VGG-style Sequential CNN: blocks of 3x3 Conv-BN-ReLU, then max-pool and dropout.

    `even_lighting` puts `EvenLighting` first: each face's brightness and contrast set to
    FER2013's average; `even_sharpness` puts `EvenSharpness` after it: a blurred face sharpened
    back. Neither has weights, so a model without them can be the `--init` of one with them.
    """
    import keras
    from keras import layers

    from .lighting import EvenLighting
    from .sharpness import EvenSharpness

    model = keras.Sequential(name=NAME)
    model.add(keras.Input(shape=INPUT_SHAPE))
    if even_lighting:
        model.add(EvenLighting())
    if even_sharpness:
        model.add(EvenSharpness())
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
    # The probabilities in float32 even when the rest runs in bfloat16 (training's --precision).
    model.add(layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"))
    return model


def save_model_atomic(model, path: str | Path) -> Path:
    """Write the model beside `path` and rename it into place, so no half-written file is ever seen."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file ends in .keras, as Keras wants.
    return write_atomically(path, lambda tmp: model.save(str(tmp)))


def _shape(shape) -> tuple:
    return tuple(None if d is None else int(d) for d in shape)


def check_model(model, path: str | Path) -> None:
    """ModelError unless `model` takes (None, 48, 48, 1) faces and gives 7 probabilities each.

    A model of another shape would otherwise fail at the first face with a long Keras error, or,
    worse, answer: a 2-way output read as 7 emotions gives wrong labels and an accuracy.
    """
    import numpy as np

    expected_in, expected_out = (None, *INPUT_SHAPE), (None, NUM_CLASSES)
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):  # a subclassed model that was never built
        raise ModelError(f"{path}: the model has no fixed input and output; it needs input "
                         f"{expected_in} and output {expected_out}") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"{path}: the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                         "an emotion model has one of each")
    got_in, got_out = _shape(inputs[0].shape), _shape(outputs[0].shape)
    if got_in != expected_in:
        raise ModelError(f"{path}: the model takes input of shape {got_in}, not {expected_in} "
                         f"(48x48 gray faces); use a model trained by `python -m emotion train`")
    if got_out != expected_out:
        raise _wrong_outputs(path, got_out[-1])
    # One blank and one noisy face: each answer must be 7 probabilities that add up to 1.
    probe = np.stack([np.zeros(INPUT_SHAPE, np.float32),
                      np.random.default_rng(0).random(INPUT_SHAPE, np.float32)])
    try:
        out = model(probe, training=False)
    except Exception as exc:  # any failure on a valid-shaped face means a bad model
        raise ModelError(f"{path}: the model fails on a face ({sentence(exc)})") from exc
    check_probabilities(out, path)


def _wrong_outputs(path: str | Path, n: int) -> ModelError:
    return ModelError(f"{path}: the model gives {n} outputs per face, not {NUM_CLASSES} (one per "
                      "emotion); use a model trained by `python -m emotion train`")


def check_probabilities(out, path: str | Path) -> None:
    """ModelError unless `out`, a model's answer for some faces, is 7 probabilities per face:
    finite, 0..1, adding up to 1."""
    import numpy as np

    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != NUM_CLASSES:
        raise _wrong_outputs(path, out.shape[-1] if out.ndim else 0)
    if not np.isfinite(out).all():
        # NaN or huge weights: a softmax overflows to NaN, so "needs a softmax" would mislead.
        raise ModelError(f"{path}: the model's outputs are not numbers (NaN or infinity): its "
                         "weights are damaged or diverged; use another model or train again")
    if not ((out >= -1e-6).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)):
        raise ModelError(f"{path}: the model's outputs are not probabilities (they must be "
                         "0..1 and add up to 1); its last layer needs a softmax")


def check_readable(path: str | Path) -> None:
    """ModelNotFound (a FileNotFoundError) when there is no file at `path`; ModelError, one
    line, when it is a folder, a symlink loop, unreadable, or not a whole `.keras` file (a zip
    archive)."""
    import zipfile

    path = Path(path)
    try:
        # One stat says it all: is_file() would call a symlink loop or an unreadable folder
        # above it "no such file".
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ModelNotFound(
            f"no model at {path}: train one with `python -m emotion train --data DATA`"
            " or pass --model PATH"
        ) from None
    except OSError as exc:
        raise ModelError(sentence(exc, "the .keras file itself", path=path)) from None
    if stat.S_ISDIR(mode):
        raise ModelError(f"{path} is a folder: give the .keras file inside it")
    if not stat.S_ISREG(mode):  # a pipe or a device: reading it would wait or never end
        raise ModelError(f"{path} is not a regular file (a device, pipe or socket): give "
                         "the .keras file itself")
    try:
        # Keras calls an unreadable or truncated file "File not found": say what it is instead.
        with open(path, "rb") as f:
            is_zip = zipfile.is_zipfile(f)
            if is_zip:
                _check_archive(f, path)
    except OSError as exc:
        raise ModelError(sentence(exc, "a .keras model", path=path)) from None
    except zipfile.BadZipFile:
        is_zip = False
    if not is_zip:
        raise ModelError(f"{path} is not a readable Keras model (damaged or incomplete file); "
                         "copy it again or train a new one")


# A .keras file is a zip: config.json (the layers, a few kB for this network), metadata.json,
# and the weights. Keras reads config.json whole into memory and parses it: a 2 MB file holding a
# 2 GiB config.json took 5 GB and 20 s before this check. The sizes are read from the zip's
# directory, and zipfile never reads more than the size stated there.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _check_archive(f, path: Path) -> None:
    """ModelError when the zip's directory states a config over MAX_CONFIG_BYTES or contents
    over the unpacked limit: checked before Keras reads anything."""
    import zipfile

    with zipfile.ZipFile(f) as archive:
        entries = archive.infolist()
    for entry in entries:
        if entry.filename in ("config.json", "metadata.json") and entry.file_size > MAX_CONFIG_BYTES:
            raise ModelError(f"{path}: its {entry.filename} is {entry.file_size / 1024 / 1024:.0f} MB, "
                             f"over the {MAX_CONFIG_BYTES // 1024 // 1024} MB a model's description "
                             "may take; it is not a model this app made")
    limit_mb = config.max_model_mb()
    total = sum(entry.file_size for entry in entries)
    if total > limit_mb * 1024 * 1024:
        raise ModelError(f"{path}: it unpacks to {total / 1024 / 1024:.0f} MB, over the {limit_mb} MB "
                         f"limit for a model (raise {config.MAX_MODEL_MB_ENV} for a larger one)")


def load_model(path: str | Path):
    """Load a saved `.keras` model for inference, checked to map 48x48 faces to 7 probabilities.

    ModelNotFound (a FileNotFoundError) when there is no file; ModelError (a ValueError), one
    line, when the file cannot be read, is not a Keras model, or has the wrong shape.
    """
    path = Path(path)
    check_readable(path)
    import keras

    from . import lighting, sharpness  # noqa: F401  register the layers models may hold

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"{path} is not a readable Keras model ({sentence(exc)})") from exc
    check_model(model, path)
    return model
