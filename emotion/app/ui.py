"""Streamlit helpers the pages share: the cached recognizer, the data-source picker, settings."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Callable, TypeVar

import streamlit as st

from .. import registry
from ..config import SHARED_FER2013

DISABLE_TRAINING_ENV = "EMOTION_DISABLE_TRAINING"
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

    from ..config import app_threads
    from ..recognizer import EmotionRecognizer

    threads = app_threads()
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
    default = str(SHARED_FER2013) if SHARED_FER2013.exists() else ""
    path = st.text_input(
        "Path",
        default,
        key=key,
        placeholder="/path/to/fer2013 or /path/to/fer2013.csv",
        help="A folder with train/ and test/ (one sub-folder per emotion) as Kaggle's download "
        "has, or the original fer2013.csv.",
    ).strip()
    return path or None


def missing_data(path: str) -> str | None:
    """What is wrong with a data path that does not exist, and what to give instead."""
    if Path(path).exists():
        return None
    return (f"{path}: no such file or folder. Give a FER2013 folder (train/, test/, one "
            "sub-folder per emotion) or a fer2013.csv file.")


def training_disabled() -> str | None:
    """Why training is off on this deployment (env var or st.secrets), or None when it is on."""
    if os.environ.get(DISABLE_TRAINING_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return f"the environment variable {DISABLE_TRAINING_ENV} is set"
    try:
        value = st.secrets.get("disable_training", False)
    except Exception:  # noqa: BLE001 - no secrets.toml (the usual case) means "not disabled"
        value = False
    if str(value).strip().lower() in ("1", "true", "yes", "on"):
        return "disable_training is set in the app's secrets"
    return None


@st.cache_resource(show_spinner="Loading and auditing the data...", max_entries=2)
def audit_data(source: str):
    """Load a dataset and audit it, once per source per process: (Dataset, AuditReport)."""
    from ..audit import audit
    from ..data import load

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
    choice = st.radio(label, choices, horizontal=horizontal, label_visibility=label_visibility)
    if choice == LOCAL_DATA:
        return data_path_input(key)
    if choice == UPLOADED_DATA:
        from .uploads import UploadError, save_upload

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


# The Webcam page's session key travels in its address (?session=...), so a refresh finds it.
SESSION_PARAM = "session"


@st.cache_resource
def _live_sessions():
    from .sessions import LiveSessions

    return LiveSessions()


def webcam_session(make: Callable[[], T]) -> T:
    """This browser tab's webcam session (made by `make` the first time), found again after a
    refresh through the key in the page's address."""
    from .sessions import new_key, valid_key

    key = st.session_state.get("webcam_session_key")
    if not valid_key(key):
        key = st.query_params.get(SESSION_PARAM)
    if not valid_key(key):
        key = new_key()
    st.session_state.webcam_session_key = key
    if st.query_params.get(SESSION_PARAM) != key:
        st.query_params[SESSION_PARAM] = key
    return _live_sessions().get_or_create(key, make)
