"""Video files in and out: the input checked before its first frame is decoded (the kind of file,
the frame size), frame times from the container, and the written video checked once closed."""

from __future__ import annotations

import os
from pathlib import Path

from . import config
from .errors import PERMISSION_HINT, VideoError
from .files import stat_input

VIDEO_SUFFIXES = (".mp4", ".avi")
WHAT = "a video file"


def check_video_file(path: Path) -> None:
    """VideoError, one line, unless `path` is a regular file that can be opened: a folder, a
    pipe or device, a symlink loop, a missing or unreadable file are each called what they are."""
    stat_input(path, WHAT, VideoError)
    if not os.access(path, os.R_OK):
        raise VideoError(f"cannot read {path}: {PERMISSION_HINT}")


def frame_size_problem(width: int, height: int, name: str) -> str | None:
    """The one line for a frame over config.max_video_pixels(), else None."""
    limit = config.max_video_pixels()
    if width * height > limit:
        return (f"{name}: its frames are {width}x{height} pixels, over the "
                f"{limit / 1e6:.1f}-megapixel limit for video; use a smaller copy "
                f"(ffmpeg -i IN -vf scale=1920:-2 OUT) or raise {config.MAX_VIDEO_PIXELS_ENV}")
    return None


def check_frame_size(capture, name: str) -> None:
    """VideoError when the container says its frames are over the limit: checked before the
    first frame is decoded."""
    import cv2

    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if problem := frame_size_problem(width, height, name):
        raise VideoError(problem)


def frame_time(capture, index: int, fps: float) -> float:
    """The time of the frame just read, in seconds: its timestamp in the container (right for a
    variable frame rate), else its number over the frame rate."""
    import cv2

    ms = capture.get(cv2.CAP_PROP_POS_MSEC)
    if ms is not None and ms >= 0 and (ms > 0 or index == 0):
        return ms / 1000
    return index / fps


def check_written(path: Path, frames: int, shown: str) -> None:
    """VideoError unless the video at `path` opens and holds `frames` frames: a full disk leaves
    an mp4 without its index, which no player opens, and OpenCV's writer does not say so."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if ok else 0
    finally:
        capture.release()
    if not ok or (count and count < frames):
        got = f"{count} of {frames} frames" if ok else "an unreadable file"
        raise VideoError(f"{shown}: the video could not be written completely ({got}): check the "
                         "folder's free space and permissions")


def video_output_problem(option: str, given: str, suffix: str, stream: bool) -> str | None:
    """The one line for a --out that cannot be a video file (an image name, an image sequence)."""
    if "%" in Path(given).name:
        return (f"{option} {given}: a % in the name would write a numbered image sequence; give "
                "one video file ending in .mp4 or .avi")
    if suffix.lower() in VIDEO_SUFFIXES or (stream and not suffix):
        return None
    return f"{option} {given}: give a video file name ending in .mp4 or .avi"
