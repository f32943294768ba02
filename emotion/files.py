"""Writing files atomically: a temporary file beside the target, then one rename over it.

Every output of the package (models, metrics, caches, clips, annotated images and videos,
uploads) goes through here, so a failure or Ctrl-C part-way leaves no half-written file and
whatever was at the target as it was. Inputs get one check of their own (`stat_input`): a
regular file, or one line saying what else is there.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .errors import EmotionError, NotAFile, sentence


def temp_beside(target: str | Path) -> Path:
    """A new, empty, hidden file in `target`'s folder, ending in its whole name (OpenCV and Keras
    pick the format by the extension, Keras's weights even by `.weights.h5`), for writing
    `target` atomically; its folder must exist.

    Made with the usual permissions (umask), not tempfile.mkstemp's owner-only ones, since it
    becomes the output.
    """
    target = Path(target)
    for _ in range(100):
        tmp = target.with_name(f".partial-{secrets.token_hex(4)}.{target.name}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{target.parent}: could not make a temporary file there")


def replace_atomically(tmp: str | Path, target: str | Path) -> None:
    """Rename the finished `tmp` over `target` (over its end, when `target` is a symlink): readers
    see the old file or the whole new one. OSError for a folder, pipe or device at `target`."""
    target = rename_target(target)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)  # the data reaches the disk before the rename does, so a crash cannot swap in a hole
    finally:
        os.close(fd)
    os.replace(tmp, target)


def stat_input(path: Path, what: str, error: type[EmotionError]) -> os.stat_result:
    """The stat of `path`, an input that must be `what` (a regular file); `error`, one line, for
    a folder, a pipe or device, a symlink loop, a missing or unreadable path.

    One stat says it all: Path.is_file() would call a symlink loop or an unreadable folder "no
    such file", and a pipe or /dev/zero would block or never end once read.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise error(sentence(exc, what, path=path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path} is a folder: give {what}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path} is not a regular file (a device, pipe or socket): give {what}")
    return info


def rename_target(path: str | Path) -> Path:
    """What a rename must replace to write `path`: the file at the end of a symlink (renaming
    over the link would cut it), else `path`. NotAFile (an OSError) for a folder, a device, a
    pipe or a socket, which a rename would replace for every other user of it."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    if stat.S_ISDIR(mode):
        raise NotAFile(errno.EISDIR, "is a folder", str(path))
    if not stat.S_ISREG(mode):
        raise NotAFile(errno.EINVAL, "is not a regular file (a device, pipe or socket); "
                      "it is never renamed over", str(path))
    return path


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` fills a temporary file beside `path`, which is then renamed over `path` (over
    its target, when `path` is a symlink).

    If `write` raises (or the rename fails) the temporary file is removed and `path` is left as
    it was. The folder must exist. A folder, device, pipe or socket at `path` is refused.
    """
    path = rename_target(path)
    tmp = temp_beside(path)
    try:
        write(tmp)
        replace_atomically(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """`path` holds `data`, all of it or (on a failure) whatever it held before."""
    return write_atomically(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`path` holds `text` (UTF-8), all of it or (on a failure) whatever it held before."""
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def utc_stamp() -> str:
    """Now, as metrics.json records when its model was saved ("saved_at"): a copy or a fresh
    clone keeps it, where a file's own modification time does not."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
