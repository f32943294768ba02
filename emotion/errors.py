"""Every error a user can cause, and the one sentence each is said in.

Each error of the package derives from `EmotionError` (its message is one line saying what was
wrong and what to do), and also from the built-in class callers knew it by (ValueError, OSError,
RuntimeError), so `except ValueError` still catches a `DataError`. The command line, the training
jobs and the pages catch `EmotionError`, plus OSError where the system raises it directly, and
show `sentence(exc)`.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path


class EmotionError(Exception):
    """A mistake in what the user gave (a file, an option, a setting): the message says what
    was wrong and what to do, in one line."""


class DataError(EmotionError, ValueError):
    """The data given cannot be loaded; the message says what was wrong and where."""


class ImageError(EmotionError, ValueError):
    """An input that is not a readable image."""


class VideoError(EmotionError, ValueError):
    """A video or camera that cannot be read, or a video that cannot be written."""


class ModelError(EmotionError, ValueError):
    """A model file that cannot serve as the emotion classifier."""


class ModelNotFound(EmotionError, FileNotFoundError):
    """No model file where one was expected."""


class UnsupportedModel(EmotionError, ValueError):
    """The model has a layer (or a setting) that the ONNX exporter does not handle (Keras still
    runs it)."""


class UnavailableRuntime(EmotionError, RuntimeError):
    """The runtime asked for (ONNX Runtime) cannot run this model here."""


class SettingError(EmotionError, ValueError):
    """A setting or option outside what it accepts ($EMOTION_* variables, detection settings)."""


class TrainError(EmotionError, ValueError):
    """A run that cannot start, or whose model must not be written."""


class StateError(TrainError):
    """A file of an interrupted run that cannot be read back: --resume cannot carry on from it."""


class OutputError(EmotionError, ValueError):
    """An output path that cannot be written (a folder, a missing folder, an input)."""


class NotAFile(EmotionError, OSError):
    """A folder, device, pipe or socket where a file is to be written: never renamed over."""


class UserError(EmotionError, ValueError):
    """A mistake in a command-line option: printed as one line, exit status 2."""


class UploadError(EmotionError, ValueError):
    """An upload that cannot be used; the message says why."""


class JobError(EmotionError, RuntimeError):
    """A training job that cannot be started; the message says why."""


class PromotionError(EmotionError, RuntimeError):
    """A promotion or restore that cannot be done; the message says why and what to do."""


class IceConfigError(EmotionError, ValueError):
    """ICE servers (TURN/STUN) given in a shape WebRTC cannot use."""


PERMISSION_HINT = "permission denied (check its permissions and its folder's)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def sentence(exc: BaseException, what: str | None = None, *, path: str | Path | None = None,
             failed: str | None = None, folder: str | Path | None = None) -> str:
    """`exc` as one sentence for the user: which file or setting, what went wrong, what to do.

    An EmotionError says it already. An OSError names its file (`path` when given: the name the
    user gave, or the file when the error names none) and says:
    - `what` the file should be ("an image file"), for an input being read;
    - `failed` ("could not be written"), for an output: with the `folder` to check, "FILE: the
      system's words: FAILED; check the free space and permissions of FOLDER, then try again",
      else "FILE: FAILED (the system's words): check the folder's free space and permissions";
    - else the file and the system's words.
    A missing module says which; anything else is the library's own words, on one line.
    """
    if isinstance(exc, OSError):
        return _os_sentence(exc, what, path, failed, folder)
    if isinstance(exc, EmotionError):
        return str(exc)
    if isinstance(exc, ImportError):
        return f"{exc.name or 'a module'} is not installed ({exc})"
    return _one_line(exc) or type(exc).__name__


def _os_sentence(exc: OSError, what: str | None, path: str | Path | None, failed: str | None,
                 folder: str | Path | None) -> str:
    name = path if path is not None else exc.filename
    if failed is not None and folder is None:  # written under a temporary name: the user's name
        return (f"{name}: {failed} ({exc.strerror or exc}): check the folder's free space and "
                "permissions")
    if what is not None and name is not None:  # an input being read
        return _unreadable(exc, name, what)
    if name is None or not exc.strerror:  # a message of our own (a missing model, say)
        said = str(exc)
    elif isinstance(exc, PermissionError):
        said = f"{name}: {PERMISSION_HINT}"
    else:
        said = f"{name}: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    if failed is not None:
        said += f": {failed}; check the free space and permissions of {folder}, then try again"
    return said


def _unreadable(exc: OSError, name, what: str) -> str:
    if isinstance(exc, PermissionError):
        return f"cannot read {name}: {PERMISSION_HINT}"
    if exc.errno == errno.ELOOP:
        return f"{name} is a symlink loop (its links lead back to themselves): give {what}"
    if isinstance(exc, FileNotFoundError):
        return f"{name}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a folder: give {what}"
    return f"cannot read {name}: {exc.strerror or exc}"


def _one_line(text: object, width: int = 200) -> str:
    """A library's message (Keras's, say) as one plain line, cut short: colour codes, Keras's
    "Exception encountered when calling ..." preamble and its list of the arguments received
    left out."""
    lines = []
    for line in _ANSI.sub("", str(text)).splitlines():
        line = line.strip()
        if line.startswith("Arguments received"):
            break
        if line and not line.startswith("Exception encountered when calling"):
            lines.append(line)
    line = " ".join(lines)
    return line if len(line) <= width else line[:width] + "..."
