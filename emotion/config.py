"""One place for the image size, the project's paths and the training defaults."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SettingError

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
    """$EMOTION_THREADS, else DEFAULT_APP_THREADS; SettingError (a ValueError) saying what to set otherwise."""
    value = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    if not value:
        return DEFAULT_APP_THREADS
    if not value.isdigit() or int(value) < 1:
        raise SettingError(f"{THREADS_ENV}={value!r}: expected a whole number of threads, 1 or more")
    return int(value)


# --- on/off switches from the environment ----------------------------------------------------

DISABLE_TRAINING_ENV = "EMOTION_DISABLE_TRAINING"
TTS_OFFLINE_ENV = "EMOTION_TTS_OFFLINE"
ADMIN_TOKEN_ENV = "EMOTION_ADMIN_TOKEN"
# Every on/off switch the package reads; each takes the spellings below and nothing else.
SWITCHES = (DISABLE_TRAINING_ENV, TTS_OFFLINE_ENV)
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_switch(name: str, value: str | None, default: bool = False) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off in any case, unset or empty for
    `default`; SettingError (a ValueError), one line, for anything else (`y` once left training on)."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise SettingError(f"{name}={value!r} is not understood: give one of {'/'.join(_ON)} to turn "
                     f"it on or {'/'.join(_OFF)} to turn it off")


def env_switch(name: str, default: bool = False, environ: dict | None = None) -> bool:
    """$`name` as an on/off switch (parse_switch); SettingError for a value it does not know."""
    return parse_switch(name, (os.environ if environ is None else environ).get(name), default)


def environment_problems(environ: dict | None = None) -> list[str]:
    """One line for each setting in the environment that is set to something unusable: for the
    app and the command line to say at start."""
    problems = []
    for name in SWITCHES:
        try:
            env_switch(name, environ=environ)
        except SettingError as exc:
            problems.append(str(exc))
    try:
        app_threads(environ)
    except SettingError as exc:
        problems.append(str(exc))
    return problems


def admin_token(environ: dict | None = None, secrets: object = None) -> str | None:
    """The token an administrator must give to train or change the app's model on a shared
    server: $EMOTION_ADMIN_TOKEN, else `admin_token` in the app's secrets; None when not set."""
    value = (os.environ if environ is None else environ).get(ADMIN_TOKEN_ENV, "").strip()
    if not value and secrets is not None:
        try:
            value = str(secrets.get("admin_token", "") or "").strip()
        except Exception:  # noqa: BLE001 - no secrets.toml: no token
            value = ""
    return value or None


def admin_token_matches(given: str | None, expected: str) -> bool:
    """Whether `given` is the administrator token, compared in constant time."""
    import hmac

    return bool(given) and hmac.compare_digest(given.strip().encode("utf-8"),
                                               expected.encode("utf-8"))
