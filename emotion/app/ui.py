"""Streamlit helpers the pages share: the cached recognizer, the data-source picker, settings."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Callable, TypeVar

import streamlit as st

from .. import config, registry
from ..audit import audit
from ..config import ADMIN_TOKEN_ENV, DISABLE_TRAINING_ENV, SHARED_FER2013, parse_switch
from ..data import count_faces, load
from ..images import fit_side
from ..recognizer import EmotionRecognizer
from .sessions import LiveSessions, new_key, valid_key
from .uploads import UploadError, save_upload

T = TypeVar("T")


_heap_frozen = False


def freeze_heap() -> None:
    """Exempt everything alive now (TensorFlow, the model) from the garbage collector, once per process.

    Streamlit runs gc.collect() and keras' clear_session() (another gc.collect) after every script
    run, and the webcam page reruns a fragment every second. With TensorFlow loaded each collection
    walks ~500k objects: ~650 ms holding the GIL, which stalled the video thread to under 1 fps.
    Frozen, the same collections take about a millisecond.
    """
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen = True


def _model_key(path: Path) -> tuple[str, float]:
    # The file's mtime is part of the cache key: a promoted or restored model is a new key,
    # so every session picks it up even if it missed the explicit cache clear.
    try:
        return str(path), path.stat().st_mtime
    except OSError:
        return str(path), 0.0


@st.cache_resource(show_spinner="Loading the emotion model...", max_entries=2)
def _load_recognizer(path: str, mtime: float):
    import cv2

    threads = config.app_threads()
    # OpenCV's pool is process-wide: the app's only OpenCV work is detection and drawing.
    cv2.setNumThreads(threads)
    recognizer = EmotionRecognizer(path, threads=threads)
    freeze_heap()
    return recognizer


def get_recognizer(model_path: Path | None = None):
    """The app's EmotionRecognizer, loaded once per process (and again after the file changes).

    Raises FileNotFoundError, another OSError or ValueError (model.ModelError: damaged, or not
    48x48 faces to 7 emotions), with a message saying what to do, when the model is missing or
    unusable; `recognizer_or_stop` shows that message on the page instead.
    """
    return _load_recognizer(*_model_key(Path(model_path or registry.app_model_path())))


def reload_recognizer() -> None:
    """Forget the loaded model, so the next `get_recognizer` reads the file again."""
    _load_recognizer.clear()


def recognizer_or_stop(model_path: Path | None = None):
    """The recognizer, or a clear error on the page and the script stopped when it cannot load."""
    try:
        return get_recognizer(model_path)
    except (OSError, ValueError) as exc:  # missing, unreadable, damaged or the wrong shape
        st.error(f"The emotion model could not be loaded: {exc}")
        st.info(
            "Train one on the Training page, or set EMOTION_MODEL to the path of a .keras model."
        )
        st.stop()


def data_path_input(key: str) -> str | None:
    """A text box for a FER2013 folder or fer2013.csv, filled in with ../shared/fer2013 if present."""
    # A value kept in the session (restore_settings) wins over the default.
    default = None if key in st.session_state else default_data_path()
    path = st.text_input(
        "Path",
        default,
        key=key,
        placeholder="/path/to/fer2013 or /path/to/fer2013.csv",
        help="A folder with train/ and test/ (one sub-folder per emotion) as Kaggle's download "
        "has, or the original fer2013.csv.",
    ).strip()
    return path or None


def default_data_path() -> str:
    """../shared/fer2013 when it is there, else nothing."""
    return str(SHARED_FER2013) if SHARED_FER2013.exists() else ""


def missing_data(path: str) -> str | None:
    """What is wrong with a data path that is not there, and what to give instead.

    A path this server may not read gets the same words as one that does not exist, so that
    the page does not tell a visitor which of the server's paths exist.
    """
    p = Path(path)
    try:
        readable = p.exists() and os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0))
    except OSError:  # a symlink loop, a folder above it without permission
        readable = False
    if readable:
        return None
    return (f"{path}: no such file or folder that this app may read. Give a FER2013 folder "
            "(train/, test/, one sub-folder per emotion) or a fer2013.csv file.")


def _secrets():
    try:
        return st.secrets
    except Exception:  # noqa: BLE001 - no secrets.toml
        return None


def training_disabled() -> str | None:
    """Why training is off on this deployment (env var or st.secrets), or None when it is on.
    A switch set to a value it does not know turns training off and says so."""
    try:
        if config.training_disabled():
            return f"the environment variable {DISABLE_TRAINING_ENV} is set"
    except ValueError as exc:
        return str(exc)
    try:
        value = st.secrets.get("disable_training", False)
    except Exception:  # noqa: BLE001 - no secrets.toml (the usual case) means "not disabled"
        value = False
    try:
        if parse_switch("disable_training", str(value) if value is not None else ""):
            return "disable_training is set in the app's secrets"
    except ValueError as exc:
        return f"{exc} (in the app's secrets)"
    return None


MAX_DISPLAY_SIDE = 4096  # more than any screen shows; st.image scales to the column anyway
MAX_DISPLAY_RATIO = 100  # st.image scales a wider picture to a height of 0 px and fails


def displayable(image):
    """`image` as st.image can show it: scaled down to sides of at most MAX_DISPLAY_SIDE (Pillow's
    JPEG stops at 65,500; a 1x100000 photo, under the pixel limit, crashed the Photo page), and a
    picture over 100 times wider than high (or higher than wide) padded with white to that
    ratio. The image itself when it fits; the results are computed on the full image regardless."""
    import cv2

    image = fit_side(image, MAX_DISPLAY_SIDE)
    height, width = image.shape[:2]
    pad_rows = max(0, -(-width // MAX_DISPLAY_RATIO) - height)
    pad_cols = max(0, -(-height // MAX_DISPLAY_RATIO) - width)
    if pad_rows or pad_cols:
        image = cv2.copyMakeBorder(image, pad_rows // 2, pad_rows - pad_rows // 2, pad_cols // 2,
                                   pad_cols - pad_cols // 2, cv2.BORDER_CONSTANT,
                                   value=(255, 255, 255))
    return image


ADMIN_KEY = "admin_token_ok"


def admin_gate() -> bool:
    """On a server whose operator set an administrator token ($EMOTION_ADMIN_TOKEN or
    `admin_token` in the secrets): True once this session has given it, checked here on the
    server; until then a password box. Without a token, True: anyone may train."""
    expected = config.admin_token(secrets=_secrets())
    if expected is None:
        return True
    if st.session_state.get(ADMIN_KEY) == expected:
        return True
    st.info("Training and changing the app's model are for this server's administrators.")
    given = st.text_input("Administrator token", type="password", key="admin_token_input",
                          help=f"Set by whoever runs the server ({ADMIN_TOKEN_ENV}).")
    if given and config.admin_token_matches(given, expected):
        # The token itself, so that a new token set by the operator ends old sessions' access.
        st.session_state[ADMIN_KEY] = expected
        return True
    if given:
        st.error("That is not the administrator token.")
    return False


@st.cache_resource(show_spinner="Loading and auditing the data...", max_entries=2)
def audit_data(source: str):
    """Load a dataset and audit it, once per source per process: (Dataset, AuditReport)."""
    dataset = load(source)
    return dataset, audit(dataset)


LOCAL_DATA = "A folder or fer2013.csv on this machine"
UPLOADED_DATA = "Upload fer2013.csv"
KAGGLE_DATA = "Download with kagglehub"


def data_source_picker(key: str, label: str = "Data", *, kaggle: bool = False,
                       horizontal: bool = False, label_visibility: str = "visible") -> str | None:
    """Where the faces come from: a path on this machine (typed in the text box `key`), an
    uploaded fer2013.csv (kept under data/uploads/), or, with `kaggle`, "kaggle" for kagglehub.

    None until the user has given one; a path comes as typed (`missing_data` checks it), and an
    unusable upload is shown as an error and gives None.
    """
    choices = [LOCAL_DATA, UPLOADED_DATA] + ([KAGGLE_DATA] if kaggle else [])
    choice = st.radio(label, choices, horizontal=horizontal, label_visibility=label_visibility,
                      key=f"{key}-source")
    if choice == LOCAL_DATA:
        return data_path_input(key)
    if choice == UPLOADED_DATA:
        upload = st.file_uploader("fer2013.csv (columns emotion, pixels, Usage)", type=["csv"])
        st.caption(
            f"Uploads are limited to {st.get_option('server.maxUploadSize')} MB "
            "(server.maxUploadSize); the full fer2013.csv is about 290 MB, so give its path "
            "instead."
        )
        if upload is None:
            return None
        try:
            return str(save_upload(upload.getvalue(), upload.name))
        except UploadError as exc:
            st.error(str(exc))
            return None
    st.caption(
        "Downloads msambare/fer2013 (about 60 MB) with kagglehub into its own cache; "
        "needs the network and, for some accounts, Kaggle credentials."
    )
    return "kaggle"


# ---------------------------------------------------------------- state kept across pages

KEPT = "kept."  # prefix of the plain session-state keys that hold what a page keeps


def kept(widget, key: str, default, *args, **kwargs):
    """`widget(*args, key=key, **kwargs)` whose value survives a switch to another page and back.

    Streamlit forgets a widget's value once a run of another page leaves it out; a plain key
    (KEPT + key) holds a copy, and gives the widget its value again when the page comes back.
    """
    state = st.session_state
    if key not in state:
        state[key] = state.get(KEPT + key, default)
    value = widget(*args, key=key, **kwargs)
    state[KEPT + key] = value
    return value


def keep(key: str, value) -> None:
    """Set what `kept(..., key, ...)` will show next, from another page (the widget may be gone)."""
    st.session_state[KEPT + key] = value
    st.session_state.pop(key, None)


# The Photo page's widgets and what it keeps; the Home page opens it with a sample chosen.
PHOTO_SOURCE, PHOTO_SAMPLE = "photo.source", "photo.sample"
PHOTO_UPLOAD, PHOTO_KEPT_UPLOAD, PHOTO_RESULT = "photo.upload", "photo.kept_upload", "photo.result"
UPLOAD_PHOTO, SAMPLE_PHOTO = "Upload a photo", "Use a sample photo"
PHOTO_PAGE = "app_pages/1_Photo.py"


def open_sample_photo(name: str) -> None:
    """Go to the Photo page with the sample `name` (its path inside images/) chosen."""
    keep(PHOTO_SOURCE, SAMPLE_PHOTO)
    keep(PHOTO_SAMPLE, name)
    st.switch_page(PHOTO_PAGE)


def keep_upload() -> None:
    """on_change of the Photo page's uploader: keep the file's name and bytes (None when removed)."""
    upload = st.session_state.get(PHOTO_UPLOAD)
    st.session_state[PHOTO_KEPT_UPLOAD] = (
        None if upload is None else (upload.name, upload.getvalue()))


KEPT_SETTINGS = "_kept_settings"  # not a widget key, so Streamlit keeps it across pages


def restore_settings(defaults: dict[str, object]) -> None:
    """Before a page's widgets: give back the values Streamlit dropped when the user went to
    another page (it forgets the state of widgets that were not drawn); first visits get
    `defaults`. The widgets then take their value from their key, with no value of their own."""
    kept = st.session_state.setdefault(KEPT_SETTINGS, {})
    for key, default in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = kept.get(key, default)


def keep_settings(keys) -> None:
    """After a page's widgets: remember their values for `restore_settings`."""
    kept = st.session_state.setdefault(KEPT_SETTINGS, {})
    for key in keys:
        if key in st.session_state:
            kept[key] = st.session_state[key]


@st.cache_data(ttl=300, max_entries=8, show_spinner=False)
def face_counts(source: str) -> dict[str, int] | None:
    """Faces per split of a data source, counted without decoding (for the time estimate)."""
    return count_faces(source)


# The Webcam page's session key travels in its address (?session=...), so a refresh finds it.
SESSION_PARAM = "session"


@st.cache_resource
def _live_sessions():
    return LiveSessions()


def webcam_session(make: Callable[[], T]) -> T:
    """This browser tab's webcam session (made by `make` the first time), found again after a
    refresh through the key in the page's address."""
    key = st.session_state.get("webcam_session_key")
    if not valid_key(key):
        key = st.query_params.get(SESSION_PARAM)
    if not valid_key(key):
        key = new_key()
    st.session_state.webcam_session_key = key
    if st.query_params.get(SESSION_PARAM) != key:
        st.query_params[SESSION_PARAM] = key
    return _live_sessions().get_or_create(key, make)
