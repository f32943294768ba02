"""One place for the image size, the project's paths, the training defaults and every setting
read from the environment."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
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
AUDIO_DIR = PROJECT_ROOT / "audio_files"
IMAGES_DIR = PROJECT_ROOT / "images"
DATA_DIR = PROJECT_ROOT / "data"
# FER2013 as laid out beside the repository (CI has it there).
SHARED_FER2013 = PROJECT_ROOT.parent / "shared" / "fer2013"

# Below this calibrated confidence a face's emotion is shown as "uncertain" (and never spoken):
# with calibrated probabilities, a label under 40% is wrong more often than it is right (the
# README's "Calibrated confidence" has the measurement).
UNCERTAIN_BELOW = 0.40

VALIDATION_FRACTION = 0.1
SEED = 1337


# --- the environment ---------------------------------------------------------------------------
# Every EMOTION_* variable is read here and nowhere else, each time it is asked for, so that a
# value set after `import emotion` (a test, a server's start-up script) counts. Each function
# takes an optional `environ` mapping in place of os.environ. The README's "Settings" lists them.

Environ = Mapping[str, str]


def _read(name: str, environ: Environ | None = None) -> str:
    """$`name`, stripped; "" when unset."""
    return (os.environ if environ is None else environ).get(name, "").strip()


MODEL_ENV = "EMOTION_MODEL"
CACHE_DIR_ENV = "EMOTION_CACHE_DIR"
RUNS_DIR_ENV = "EMOTION_RUNS_DIR"


def app_model_path(environ: Environ | None = None) -> Path:
    """The app's model, and every command's default: $EMOTION_MODEL, else the shipped one."""
    return Path(_read(MODEL_ENV, environ) or SHIPPED_MODEL)


def cache_dir(environ: Environ | None = None) -> Path:
    """Where loaded data, ONNX copies and training speeds are cached: $EMOTION_CACHE_DIR, else
    data/cache beside the data README (git-ignored)."""
    return Path(_read(CACHE_DIR_ENV, environ) or DATA_DIR / "cache")


def runs_dir(environ: Environ | None = None) -> Path:
    """Where the Training page's runs go, a folder each: $EMOTION_RUNS_DIR, else models/runs."""
    return Path(_read(RUNS_DIR_ENV, environ) or MODELS_DIR / "runs")


RUNTIME_ENV = "EMOTION_RUNTIME"


def runtime_setting(environ: Environ | None = None) -> str:
    """$EMOTION_RUNTIME as given ("" when unset); runtime.resolve_runtime checks it."""
    return _read(RUNTIME_ENV, environ)


THREADS_ENV = "EMOTION_THREADS"
# The app's thread budget for inference: ONNX Runtime's and OpenCV's pools. The webcam page's
# video codecs need a core of their own; the README's "Live serving" has the measurements.
DEFAULT_APP_THREADS = 1


def app_threads(environ: Environ | None = None) -> int:
    """$EMOTION_THREADS, else DEFAULT_APP_THREADS; ValueError saying what to set otherwise."""
    value = _read(THREADS_ENV, environ)
    if not value:
        return DEFAULT_APP_THREADS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV}={value!r}: expected a whole number of threads, 1 or more")
    return int(value)


# --- size limits on what is read ---------------------------------------------------------------

MAX_PIXELS_ENV, MAX_IMAGE_MB_ENV = "EMOTION_MAX_PIXELS", "EMOTION_MAX_IMAGE_MB"
# 50 megapixels is more than any camera's photo; faces need far less (photos are scanned at about
# 800x600). Files: a 50-megapixel PNG is rarely over 100 MB.
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_IMAGE_MB = 100
MAX_VIDEO_PIXELS_ENV = "EMOTION_MAX_VIDEO_PIXELS"
# 8K UHD (7680x4320), 33 megapixels: a frame is decoded, copied to gray and drawn on, several
# full-size buffers at once; a 16000x16000 clip took 4.6 GB before this limit.
DEFAULT_MAX_VIDEO_PIXELS = 7680 * 4320
MAX_CSV_MB_ENV = "EMOTION_MAX_CSV_MB"
# The real fer2013.csv is 287 MB; a file several times larger is not FER2013, and parsing it would
# take several times its size in memory.
DEFAULT_MAX_CSV_MB = 1024
MAX_MODEL_MB_ENV = "EMOTION_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = 1024  # this project's model unpacks to 7 MB
MB = 1024 * 1024


def _limit(name: str, default: int, environ: Environ | None = None) -> int:
    """A positive whole number from $`name`, else `default` (also for a value that is not one)."""
    value = _read(name, environ)
    return int(value) if value.isdigit() and int(value) > 0 else default


def max_image_pixels(environ: Environ | None = None) -> int:
    """The largest picture read, in pixels: $EMOTION_MAX_PIXELS, else 50 million."""
    return _limit(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, environ)


def max_image_bytes(environ: Environ | None = None) -> int:
    """The largest image file read: $EMOTION_MAX_IMAGE_MB megabytes, else 100."""
    return _limit(MAX_IMAGE_MB_ENV, DEFAULT_MAX_IMAGE_MB, environ) * MB


def max_video_pixels(environ: Environ | None = None) -> int:
    """The largest video frame read, in pixels: $EMOTION_MAX_VIDEO_PIXELS, else 8K UHD's."""
    return _limit(MAX_VIDEO_PIXELS_ENV, DEFAULT_MAX_VIDEO_PIXELS, environ)


def max_csv_bytes(environ: Environ | None = None) -> int:
    """The largest CSV read: $EMOTION_MAX_CSV_MB megabytes, else 1024."""
    return _limit(MAX_CSV_MB_ENV, DEFAULT_MAX_CSV_MB, environ) * MB


def max_model_mb(environ: Environ | None = None) -> int:
    """The most a .keras file may unpack to, in megabytes: $EMOTION_MAX_MODEL_MB, else 1024."""
    return _limit(MAX_MODEL_MB_ENV, DEFAULT_MAX_MODEL_MB, environ)


# --- on/off switches ---------------------------------------------------------------------------

DISABLE_TRAINING_ENV = "EMOTION_DISABLE_TRAINING"
TTS_OFFLINE_ENV = "EMOTION_TTS_OFFLINE"
# Every on/off switch the package reads; each takes the spellings below and nothing else.
SWITCHES = (DISABLE_TRAINING_ENV, TTS_OFFLINE_ENV)
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_switch(name: str, value: str | None, default: bool = False) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off in any case, unset or empty for
    `default`; ValueError, one line, for anything else (`y` once left training on)."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise ValueError(f"{name}={value!r} is not understood: give one of {'/'.join(_ON)} to turn "
                     f"it on or {'/'.join(_OFF)} to turn it off")


def env_switch(name: str, default: bool = False, environ: Environ | None = None) -> bool:
    """$`name` as an on/off switch (parse_switch); ValueError for a value it does not know."""
    return parse_switch(name, _read(name, environ), default)


def training_disabled(environ: Environ | None = None) -> bool:
    """$EMOTION_DISABLE_TRAINING: the Training page off (shared deployments); ValueError, one
    line, for a value it does not know."""
    return env_switch(DISABLE_TRAINING_ENV, environ=environ)


def tts_offline(environ: Environ | None = None) -> bool:
    """$EMOTION_TTS_OFFLINE: spoken feedback from the shipped clips only, no call to gTTS. A value
    it does not know counts as offline (no network call the operator may not have wanted) and is
    reported at start (environment_problems)."""
    try:
        return env_switch(TTS_OFFLINE_ENV, environ=environ)
    except ValueError:
        return True


def environment_problems(environ: Environ | None = None) -> list[str]:
    """One line for each setting in the environment that is set to something unusable: for the
    app and the command line to say at start."""
    problems = []
    for name in SWITCHES:
        try:
            env_switch(name, environ=environ)
        except ValueError as exc:
            problems.append(str(exc))
    try:
        app_threads(environ)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


# --- serving -----------------------------------------------------------------------------------

ADMIN_TOKEN_ENV = "EMOTION_ADMIN_TOKEN"
ICE_SERVERS_ENV = "EMOTION_ICE_SERVERS"
# Only the browser tests and scripts/bench_webrtc.py set this: the Webcam page then writes each
# session's counters to that JSON file, or, when it names a folder, one file per session in it.
LIVE_STATS_ENV = "EMOTION_LIVE_STATS"


def admin_token(environ: Environ | None = None, secrets: object = None) -> str | None:
    """The token an administrator must give to train or change the app's model on a shared
    server: $EMOTION_ADMIN_TOKEN, else `admin_token` in the app's secrets; None when not set."""
    value = _read(ADMIN_TOKEN_ENV, environ)
    if not value and secrets is not None:
        try:
            value = str(secrets.get("admin_token", "") or "").strip()
        except Exception:  # noqa: BLE001 - no secrets.toml: no token
            value = ""
    return value or None


def admin_token_matches(given: str | None, expected: str) -> bool:
    """Whether `given` is the administrator token, compared in constant time."""
    return bool(given) and hmac.compare_digest(given.strip().encode("utf-8"),
                                               expected.encode("utf-8"))


def ice_servers(environ: Environ | None = None) -> str | None:
    """$EMOTION_ICE_SERVERS as given (JSON, app.webrtc parses it); None when unset or blank."""
    value = (os.environ if environ is None else environ).get(ICE_SERVERS_ENV, "")
    return value if value.strip() else None


def live_stats_path(environ: Environ | None = None) -> Path | None:
    """$EMOTION_LIVE_STATS: the file (or folder) for the Webcam page's counters; None when unset."""
    value = _read(LIVE_STATS_ENV, environ)
    return Path(value) if value else None


# --- other variables: the Keras backend, a child process's environment --------------------------


def keras_backend(environ: Environ | None = None) -> str:
    """$KERAS_BACKEND as Keras reads it: tensorflow unless set."""
    return _read("KERAS_BACKEND", environ) or "tensorflow"


def child_environment(first_on_path: Path, **values: str) -> dict[str, str]:
    """This process's environment for a child Python: `first_on_path` at the head of PYTHONPATH
    (so it imports this checkout's package), with `values` set."""
    path = os.pathsep.join([str(first_on_path), *filter(None, [_read("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **values}
