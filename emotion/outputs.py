"""Where a command's output goes: a regular file (written atomically), or a stream (`-`, a pipe,
a terminal, /dev/stdout and its like) that is written into, never renamed over.

    plan = plan_output("x.csv", "--csv")   # checked before any work starts
    tmp = staging_file(plan, ".csv")       # fill it...
    commit(plan, tmp)                      # ...then rename it into place, or copy it into the stream

Renaming a finished temporary file over the target is right for regular files only: renamed
over /dev/stdout (a link) it would replace the link with a file for every later process.
A symlink to a regular file has its target replaced, not the link; a folder, a block device or
a socket is refused before anything is read or written.

Images are written that way by `write_image`; `annotated_plans` names where `predict` puts the
annotated copies.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .files import replace_atomically, temp_beside

STDOUT = "-"


class OutputError(ValueError):
    """An output path that cannot take the output: one line, said before any work starts."""


@dataclass(frozen=True)
class OutputPlan:
    """Where one output goes: `target` for a regular file, else a stream."""

    option: str  # how the user gave it, for messages ("--out")
    given: str  # the path as the user wrote it
    target: Path | None  # the regular file to replace (links resolved); None for a stream
    stdout: bool = False  # the stream is this process's standard output

    @property
    def stream(self) -> bool:
        return self.target is None

    @property
    def suffix(self) -> str:
        """The extension that picks the format: the target's, else the name's ('' for '-')."""
        if self.target is not None:
            return self.target.suffix
        return "" if self.given == STDOUT else Path(self.given).suffix

    def key(self) -> str:
        """One key per destination, to tell two outputs (or an output and an input) apart."""
        if self.stdout:
            return "<stdout>"
        path = self.target if self.target is not None else Path(self.given)
        return str(Path(os.path.realpath(path))).casefold()


def _same_as_fd(info: os.stat_result, fd: int) -> bool:
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (other.st_dev, other.st_ino)


def _through_proc(path: Path) -> bool:
    """Whether `path`'s chain of links passes through /proc or /dev/fd (where /dev/stdout leads):
    such a path names an open file of some process, which must be written into, not replaced."""
    current = Path(os.path.abspath(path))
    for _ in range(40):
        if str(current).startswith(("/proc/", "/dev/fd/")):
            return True
        if not current.is_symlink():
            return False
        current = Path(os.path.abspath(current.parent / os.readlink(current)))
    return False


def _kind(mode: int) -> str:
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def plan_output(value: str, option: str) -> OutputPlan:
    """Where `value` (given as `option`) sends its output; OutputError for a path that cannot
    take one (a folder, a missing folder, a block device, a socket, a symlink loop)."""
    if value == STDOUT:
        return OutputPlan(option, value, None, stdout=True)
    path = Path(value)
    try:
        info = path.stat()  # follows links: what the data would reach
    except FileNotFoundError:
        info = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"{option} {value} is a symlink loop: give a file name") from None
        raise OutputError(f"{option} {value}: {exc.strerror or exc}") from None
    if info is None:
        # Nothing there, or a link to nothing: a new file at the link's end.
        target = Path(os.path.realpath(path))
        if not target.parent.is_dir():
            raise OutputError(f"{option} {value}: the folder {target.parent} does not exist: "
                              "create it first or choose another folder")
        return OutputPlan(option, value, target)
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{option} {value} is a folder: give a file name")
    is_stdout = _same_as_fd(info, 1)
    if stat.S_ISREG(info.st_mode) and not is_stdout and not _same_as_fd(info, 2) \
            and not _through_proc(path):
        return OutputPlan(option, value, Path(os.path.realpath(path)))
    if is_stdout:
        return OutputPlan(option, value, None, stdout=True)
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode) or stat.S_ISREG(info.st_mode):
        return OutputPlan(option, value, None)
    raise OutputError(f"{option} {value} is {_kind(info.st_mode)}: give a file name, '-' for "
                      "standard output, or a pipe")


def staging_file(plan: OutputPlan, suffix: str | None = None) -> Path:
    """A new empty file to write the output into before `commit`: hidden beside a regular
    target, in the temporary folder for a stream. `suffix` (for a stream) picks the format."""
    if plan.target is not None:
        return temp_beside(plan.target)
    fd, name = tempfile.mkstemp(prefix=".emotion-", suffix=plan.suffix or suffix or "")
    os.close(fd)
    return Path(name)


def commit(plan: OutputPlan, tmp: Path) -> None:
    """Put the finished `tmp` in place: renamed over a regular target, or copied into the
    stream (and removed)."""
    if plan.target is not None:
        replace_atomically(tmp, plan.target)
        return
    try:
        with open(tmp, "rb") as source:
            if plan.stdout:
                sys.stdout.flush()
                shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
            else:
                # Appending: a pipe or a terminal does not care, and a file some process opened
                # (a /proc/PID/fd link) keeps what it already has.
                with open(plan.given, "ab") as sink:  # a pipe waits here for its reader
                    shutil.copyfileobj(source, sink, 1 << 20)
    finally:
        tmp.unlink(missing_ok=True)


def report_stream(plans: list[OutputPlan]):
    """Where a command's own report goes: stderr when an output takes standard output, so
    the two do not mix."""
    return sys.stderr if any(p.stdout for p in plans) else sys.stdout


def file_key(path: str | Path) -> str:
    """One key per file: absolute, links resolved, case folded (a case-insensitive disk would
    make a.jpg and A.jpg one file)."""
    return str(Path(path).resolve()).casefold()


def annotated_plans(out: str, images: list[str]) -> list[OutputPlan]:
    """Where each image's annotated copy goes; OutputError, before anything is written, when
    `out` (given as --out) cannot take them.

    One image and `out` not a folder: that file (whose folder must exist), or a stream ('-', a
    pipe). Otherwise `out` is a folder (made when first written to) and image k gets
    STEM_annotated.jpg, or STEM_annotated-2.jpg and so on when an input or an earlier image of
    this run has that name.
    """
    out_path = Path(out)
    inputs = {file_key(p) for p in images}
    if len(images) == 1 and not out_path.is_dir():
        return [_one_image_plan(out, inputs)]
    if out == STDOUT or (out_path.exists() and not out_path.is_dir()):
        raise OutputError(f"--out {out} is not a folder: with several images give a folder instead")
    if out_path.suffix and not out_path.exists():
        raise OutputError(f"--out {out} names one file: with several images give a folder instead")
    taken = set(inputs)
    return [_numbered_plan(out_path, image, taken) for image in images]


def _one_image_plan(out: str, inputs: set[str]) -> OutputPlan:
    """The plan for the one image's --out file or stream, which must take an image format."""
    plan = plan_output(out, "--out")
    if plan.stream:
        if plan.suffix and not cv2.haveImageWriter(f"x{plan.suffix}"):
            raise OutputError(f"--out {out}: cannot write {plan.suffix} images, use .jpg or .png")
        return plan
    if file_key(plan.target) in inputs:
        raise OutputError(f"--out {out} is one of the input images: choose another name")
    if not plan.target.suffix:
        raise OutputError(f"--out {out}: give an image file name ending in .jpg or .png, "
                          "or an existing folder")
    if not cv2.haveImageWriter(str(plan.target)):
        raise OutputError(f"--out {out}: cannot write {plan.target.suffix} images, use .jpg or .png")
    return plan


def _numbered_plan(folder: Path, image: str, taken: set[str]) -> OutputPlan:
    """STEM_annotated.jpg in `folder`, numbered past the names in `taken` (which it joins)."""
    stem, n = Path(image).stem, 1
    target = folder / f"{stem}_annotated.jpg"
    while file_key(target) in taken:
        n += 1
        target = folder / f"{stem}_annotated-{n}.jpg"
    taken.add(file_key(target))
    # Something already there (a link, a pipe) is planned like any --out; else a new file.
    if target.exists() or target.is_symlink():
        return plan_output(str(target), "--out")
    return OutputPlan("--out", str(target), target)


def write_image(path: OutputPlan | str | Path, image: np.ndarray) -> bool:
    """Write an image to a file path or an `OutputPlan`; False when OpenCV cannot encode to its
    extension.

    The image is encoded in memory and written to a temporary file, then renamed over a regular
    file (so a failure, a full disk or Ctrl-C, leaves no partial file and the old one as it was)
    or copied into a stream. OSError when it cannot be written.
    """
    plan = path if isinstance(path, OutputPlan) else OutputPlan("--out", str(path), Path(path))
    suffix = plan.suffix or ".jpg"  # '-' and a pipe without an extension get a JPEG
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error:
        return False
    if not ok:
        return False
    tmp = staging_file(plan, suffix)
    try:
        tmp.write_bytes(encoded.tobytes())
        commit(plan, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return True
