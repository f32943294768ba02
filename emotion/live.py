"""Live video: follow faces, classify them in one batch, track and smooth them (emotion.tracking),
keep the session's timeline (emotion.timeline), time each stage.

Shared by the web page (through emotion.app.webrtc), the desktop webcam and the video command.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .config import IMAGE_SIZE
from .draw import annotate, draw_fps
from .faces import crop
from .follow import FaceFollower, LiveSettings
from .preprocess import to_gray
from .recognizer import EmotionRecognizer
from .timeline import Timeline
from .tracking import FaceTracker, LiveFace, main_face

Clock = Callable[[], float]


@dataclass(frozen=True)
class StageTimes:
    """Where a frame's time went, in milliseconds; full_scan: the whole frame was scanned;
    looked: faces were looked for and classified (not drawn from the last frame that was)."""

    detect_ms: float = 0.0
    classify_ms: float = 0.0
    draw_ms: float = 0.0
    full_scan: bool = False
    looked: bool = True


@dataclass
class LiveResult:
    """One processed frame: the annotated picture, its faces, and how fast we are going."""

    frame: np.ndarray
    faces: list[LiveFace]
    fps: float
    process_ms: float
    stages: StageTimes = field(default_factory=StageTimes)
    main_id: int | None = None

    @property
    def main_face(self) -> LiveFace | None:
        """The face the page's readout and the timeline follow."""
        return next((f for f in self.faces if f.face_id == self.main_id), None)


class FpsMeter:
    """Frames per second over a sliding window of recent frame times."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, t: float) -> float:
        self._times.append(t)
        while len(self._times) > 2 and t - self._times[0] > self.window_s:
            self._times.popleft()
        return self.fps

    @property
    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        self._times.clear()

    def __len__(self) -> int:
        """How many frame times the window holds."""
        return len(self._times)


@dataclass
class LiveStats:
    """Counters of a session, as the page shows them and the browser test reads them."""

    frames: int = 0
    frames_with_faces: int = 0
    fps: float = 0.0
    mean_process_ms: float = 0.0
    recent_process_ms: float = 0.0  # moving average of the last ten or so frames
    labels: dict[str, int] = field(default_factory=dict)  # frames per shown label, all faces
    # The main face's shown label (maybe "uncertain") from the very faces the overlay was drawn
    # with; the confidence is that of the emotion behind it.
    main_label: str | None = None
    main_confidence: float = 0.0
    main_id: int | None = None
    # The latest changes of main_label and of the main face's raw per-frame label, as
    # [processor clock seconds, label]: how the browser test compares the page with the server.
    main_changes: list = field(default_factory=list)
    raw_changes: list = field(default_factory=list)


@dataclass(frozen=True)
class LiveSnapshot:
    """A processor at one moment: its counters, and how much each store it keeps between frames
    holds (all bounded, as a long session and scripts/soak_live.py need)."""

    stats: LiveStats
    held: dict[str, int]


# How many of the latest changes LiveStats keeps.
CHANGES_KEPT = 64


class LiveProcessor:
    """BGR frame in, annotated frame and tracked faces out; safe to read from another thread.

    One per video stream (a browser session, a camera, a file): it remembers where the faces
    were. The recognizer it uses may be shared by many processors and threads.
    """

    def __init__(self, recognizer: EmotionRecognizer, *, settings: LiveSettings = LiveSettings(),
                 timeline_interval_s: float = 0.5, draw_fps: bool = True,
                 clock: Clock = time.monotonic, tta: bool = False):
        self.recognizer = recognizer
        # A camera's frames get one pass (the smoothing over time does TTA's job, and the frame
        # budget is tight); a video file, with no viewer waiting, averages over the test-time views.
        self.tta = tta
        if settings.detection is None:
            settings = replace(settings, detection=recognizer.settings)
        self.settings = settings
        self.follower = FaceFollower(settings)
        self.tracker = FaceTracker(settings.smoothing_s, settings.hold_s)
        self.fps_meter = FpsMeter()
        self.timeline = Timeline(interval_s=timeline_interval_s)
        self.draw_fps = draw_fps
        self.clock = clock
        self._lock = threading.Lock()
        # Frames of one stream are followed in order; two threads feeding one processor take turns.
        self._follow_lock = threading.Lock()
        self._start: float | None = None
        self._stats = LiveStats()
        self._total_ms = 0.0
        self._last_faces: list[LiveFace] = []
        self._last_frame: np.ndarray | None = None
        self._main_id: int | None = None
        self._missing_since: float | None = None
        self._frame_index = 0
        # The model's first call may build its graph (seconds on a small CPU): pay that now, not
        # on the first video frame, where it would freeze the picture.
        recognizer.classify([np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)])

    def process(self, frame: np.ndarray, t: float | None = None) -> LiveResult:
        """Annotate one BGR frame; `t` (seconds) defaults to the clock, the video command passes its own."""
        started = time.perf_counter()
        now = self.clock() if t is None else t
        with self._follow_lock:
            look = self._frame_index % self.settings.look_every == 0
            self._frame_index += 1
            if look:
                faces, main_id, stages = self._look(frame, now, started)
            else:
                with self._lock:
                    faces, main_id = self._last_faces, self._main_id
                stages = StageTimes(looked=False)
            with self._lock:
                fps = self.fps_meter.tick(now)
        main = next((f for f in faces if f.face_id == main_id), None)
        drawing = time.perf_counter()
        out = annotate(frame, faces)
        if self.draw_fps:
            draw_fps(out, fps)
        done = time.perf_counter()
        ms = (done - started) * 1000
        stages = replace(stages, draw_ms=(done - drawing) * 1000)
        with self._lock:
            self._update_stats(faces, main, fps, ms, now)
            self._last_frame = out
        return LiveResult(out, faces, fps, ms, stages, main_id)

    def _look(self, frame: np.ndarray, now: float,
              started: float) -> tuple[list[LiveFace], int | None, StageTimes]:
        """Find, classify and track this frame's faces (the caller holds the follow lock)."""
        gray = to_gray(frame)
        boxes = self.follower.detect(gray)
        full_scan = self.follower.last_was_full_scan
        detected = time.perf_counter()
        crops = [crop(gray, b) for b in boxes]
        probs = (self.recognizer.classify(crops, tta=True) if self.tta
                 else self.recognizer.classify(crops))
        classified = time.perf_counter()
        with self._lock:
            if self._start is None:
                self._start = now
            faces = self.tracker.update(boxes, probs, now)
            main = main_face(faces, self._main_id)
            self._main_id = main.face_id if main else None
            self.timeline.add(now - self._start, faces, self._main_id)
            main_id = self._main_id
        return faces, main_id, StageTimes((detected - started) * 1000,
                                          (classified - detected) * 1000, 0.0, full_scan)

    def _update_stats(self, faces: list[LiveFace], main: LiveFace | None, fps: float, ms: float,
                      now: float) -> None:
        s = self._stats
        s.frames += 1
        s.fps = fps
        self._total_ms += ms
        s.mean_process_ms = self._total_ms / s.frames
        s.recent_process_ms = ms if s.frames == 1 else 0.8 * s.recent_process_ms + 0.2 * ms
        self._last_faces = faces
        if faces:
            s.frames_with_faces += 1
            for f in faces:
                s.labels[f.shown_label] = s.labels.get(f.shown_label, 0) + 1
        shown = main.shown_label if main else None
        # A face missed by the detector for a frame or two is not "none": like a new label, the
        # absence must last hold_s before the readout says so.
        if main is None and s.main_label is not None:
            if self._missing_since is None:
                self._missing_since = now
            if now - self._missing_since < self.settings.hold_s:
                shown = s.main_label
        else:
            self._missing_since = None
        raw = main.raw_label or main.label if main else None
        if not s.main_changes or s.main_changes[-1][1] != shown:
            s.main_changes = [*s.main_changes[-(CHANGES_KEPT - 1):], [round(now, 3), shown]]
        if not s.raw_changes or s.raw_changes[-1][1] != raw:
            s.raw_changes = [*s.raw_changes[-(CHANGES_KEPT - 1):], [round(now, 3), raw]]
        if main is not None or shown is None:
            s.main_label = shown
            s.main_confidence = main.confidence if main else 0.0
            s.main_id = main.face_id if main else None

    def stats(self) -> LiveStats:
        """A copy of the session's counters."""
        with self._lock:
            s = self._stats
            # The change lists are replaced, never changed in place, so sharing them is safe.
            return LiveStats(s.frames, s.frames_with_faces, s.fps, s.mean_process_ms,
                             s.recent_process_ms, dict(s.labels), s.main_label, s.main_confidence,
                             s.main_id, s.main_changes, s.raw_changes)

    def faces(self) -> list[LiveFace]:
        """The faces of the latest frame."""
        with self._lock:
            return list(self._last_faces)

    def last_frame(self) -> np.ndarray | None:
        """The latest annotated frame (BGR), as the overlay showed it; None before the first."""
        with self._lock:
            return self._last_frame

    def snapshot(self) -> LiveSnapshot:
        """The session's counters and the size of every store kept between frames, at one moment."""
        with self._follow_lock, self._lock:
            held = {"timeline_rows": len(self.timeline), "timeline_faces": self.timeline.faces_held(),
                    "tracks": len(self.tracker), "fps_times": len(self.fps_meter),
                    "labels": len(self._stats.labels)}
        return LiveSnapshot(self.stats(), held)

    def reset(self) -> None:
        """Start a new session: forget faces, timings and the timeline."""
        with self._follow_lock, self._lock:
            self.tracker.reset()
            self.follower.reset()
            self.fps_meter.reset()
            self.timeline.clear()
            self._start = None
            self._stats = LiveStats()
            self._total_ms = 0.0
            self._last_faces = []
            self._last_frame = None
            self._main_id = None
            self._missing_since = None
            self._frame_index = 0
