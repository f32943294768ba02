"""One place for the image size, the project's paths and the training defaults."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SIZE = 48  # FER2013 faces are 48x48 grayscale
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


def _project_root() -> Path:
    """The checkout: models/, images/ and audio_files/ live there, not in the package.

    That is the folder above this package in a clone or after `pip install -e .`. A copy
    installed by `pip install .` has no models/ beside it: it uses the current folder when that
    is a checkout, and otherwise needs EMOTION_MODEL (the README's "Install").
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "models").is_dir():
        return here
    try:
        cwd = Path.cwd()
    except OSError:  # the current folder was deleted
        return here
    return cwd if (cwd / "models").is_dir() and (cwd / "emotion").is_dir() else here


PROJECT_ROOT = _project_root()
MODELS_DIR = PROJECT_ROOT / "models"
MODEL_FILE = "emotion_cnn.keras"  # what training writes, promotion copies and the app loads
SHIPPED_MODEL = MODELS_DIR / MODEL_FILE
# The app's model: the shipped one unless EMOTION_MODEL names another.
DEFAULT_MODEL = Path(os.environ.get("EMOTION_MODEL", SHIPPED_MODEL))
DEFAULT_METRICS = MODELS_DIR / "metrics.json"
AUDIO_DIR = PROJECT_ROOT / "audio_files"
IMAGES_DIR = PROJECT_ROOT / "images"
DATA_DIR = PROJECT_ROOT / "data"
# The loaded-data cache lives beside the data README; it is git-ignored.
CACHE_DIR = Path(os.environ.get("EMOTION_CACHE_DIR", DATA_DIR / "cache"))
# FER2013 as laid out beside the repository (CI has it there).
SHARED_FER2013 = PROJECT_ROOT.parent / "shared" / "fer2013"

# Below this calibrated confidence a face's emotion is shown as "uncertain" (and never spoken):
# with calibrated probabilities, a label under 40% is wrong more often than it is right (the
# README's "Calibrated confidence" has the measurement).
UNCERTAIN_BELOW = 0.40

VALIDATION_FRACTION = 0.1
SEED = 1337

THREADS_ENV = "EMOTION_THREADS"
# The app's thread budget for inference: ONNX Runtime's and OpenCV's pools. The webcam page's
# video codecs need a core of their own; the README's "Live serving" has the measurements.
DEFAULT_APP_THREADS = 1


def app_threads(environ: dict | None = None) -> int:
    """$EMOTION_THREADS, else DEFAULT_APP_THREADS; ValueError saying what to set otherwise."""
    value = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    if not value:
        return DEFAULT_APP_THREADS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV}={value!r}: expected a whole number of threads, 1 or more")
    return int(value)
