"""One place for the image size, the project's paths and the training defaults."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SIZE = 48  # FER2013 faces are 48x48 grayscale
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
SHIPPED_MODEL = MODELS_DIR / "emotion_cnn.keras"
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

VALIDATION_FRACTION = 0.1
SEED = 1337
