"""The `webcam` command's desktop window: live emotions from a camera, a video file or a stream
URL in an OpenCV window, until `q` or Esc.

    if display_available():
        result = show_live(0, speak=True)   # camera 0; returns when the window is closed

It needs OpenCV with GUI support, which the headless wheels lack (`display_available`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from .follow import CAMERA
from .live import LiveProcessor
from .recognizer import EmotionRecognizer
from .speech import DesktopSpeaker
from .videos import check_frame_size

HEADLESS_MESSAGE = (
    "this OpenCV cannot open windows (it is the headless build): run "
    "`pip uninstall opencv-python-headless && pip install opencv-python` for the webcam window"
)
WINDOW = "Emotions (q to quit)"
QUIT_KEYS = (ord("q"), 27)  # q and Esc


def display_available() -> bool:
    """Whether this OpenCV build can open a window (the headless wheels cannot)."""
    try:
        cv2.namedWindow(WINDOW)
    except cv2.error:
        return False
    return True


@dataclass
class WindowResult:
    """How a window session ended."""

    video_ended: bool = False  # a video file played to its end (rather than being quit)
    speech_off: str | None = None  # why speech was off, when it was asked for and could not run


def show_live(source: int | str, model: str | Path | None = None, *, speak: bool = False,
              lang: str = "en") -> WindowResult:
    """Show `source` (a camera index, a video file or a stream URL) with boxes, labels and FPS
    from `model` (else the app's) until `q` or Esc; `speak`: say the main face's emotion in
    `lang` when it changes.

    ValueError when the camera cannot be opened, its frames are over the size limit, or it
    stops sending frames (a video file that ends is done, not broken)."""
    recognizer = EmotionRecognizer(model)
    speaker = DesktopSpeaker(lang) if speak else None
    capture = cv2.VideoCapture(source)
    try:
        if not capture.isOpened():
            raise ValueError(f"camera {source} could not be opened (try --camera 1)")
        check_frame_size(capture, f"camera {source}")
        processor = LiveProcessor(recognizer, settings=CAMERA)
        ended = _show_frames(capture, source, processor, speaker)
    finally:
        capture.release()
        cv2.destroyAllWindows()
    if speaker:
        speaker.wait(timeout=5)  # the last phrase finishes
    return WindowResult(ended, speaker.disabled_reason if speaker else None)


def _show_frames(capture: cv2.VideoCapture, source: int | str, processor: LiveProcessor,
                 speaker: DesktopSpeaker | None) -> bool:
    """Process and show frames until a quit key (False) or the end of a video file (True)."""
    from_file = isinstance(source, str) and Path(source).is_file()
    while True:
        ok, frame = capture.read()
        if not ok and from_file:  # a video file that ends is done, not broken
            return True
        if not ok:
            raise ValueError(f"camera {source} stopped sending frames")
        result = processor.process(frame)
        if speaker:
            main = result.main_face
            speaker.update(main.shown_label if main else None)
        cv2.imshow(WINDOW, result.frame)
        if cv2.waitKey(1) & 0xFF in QUIT_KEYS:
            return False
