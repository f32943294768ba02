"""Live video: follow faces, classify them in one batch, track and smooth them, time each stage.

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
from .faces import Box, crop, iou
from .follow import FaceFollower, LiveSettings
from .labels import EMOTIONS, UNCERTAIN
from .preprocess import to_gray
from .recognizer import EmotionRecognizer, Face
from .smoothing import HOLD_S, SMOOTHING_S, EmotionSmoother
from .timeline import Timeline

Clock = Callable[[], float]


@dataclass
class LiveFace(Face):
    """A tracked face: the same id across frames, its probabilities averaged over the last second
    or so, and `shown`, the label held by hysteresis (emotion.smoothing), which is what the
    overlay, the page, the speech and the timeline all use. `raw_label`: this frame's alone."""

    face_id: int = 0
    shown: str = ""
    raw_label: str = ""

    @property
    def shown_label(self) -> str:
        return self.shown or super().shown_label

    @property
    def uncertain(self) -> bool:
        return self.shown_label == UNCERTAIN if self.shown else super().uncertain

    def to_dict(self) -> dict:
        return {"id": self.face_id, **super().to_dict(), "shown": self.shown_label}


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


# The main face stays the main face until another is this much larger: two people at about the
# same distance would otherwise swap the readout back and forth as their boxes jitter.
MAIN_FACE_SWITCH_RATIO = 1.3


def main_face(faces: list[LiveFace], previous_id: int | None = None) -> LiveFace | None:
    """The largest face (the person nearest the camera), or None; the previous main face while
    no other face is MAIN_FACE_SWITCH_RATIO times its size."""
    largest = max(faces, key=lambda f: f.box.area, default=None)
    previous = next((f for f in faces if f.face_id == previous_id), None)
    if previous is not None and largest.box.area < MAIN_FACE_SWITCH_RATIO * previous.box.area:
        return previous
    return largest


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres in units of the wider box's width."""
    dx = (a.x + a.w / 2) - (b.x + b.w / 2)
    dy = (a.y + a.h / 2) - (b.y + b.h / 2)
    return float(np.hypot(dx, dy)) / max(1, a.w, b.w)


@dataclass
class _Track:
    face_id: int
    box: Box
    smoother: EmotionSmoother
    last_seen: float


class FaceTracker:
    """Keeps an id per face across frames, and its smoothed estimate (emotion.smoothing)."""

    def __init__(self, smoothing_s: float = SMOOTHING_S, hold_s: float = HOLD_S,
                 min_iou: float = 0.2, max_centre_shift: float = 0.5, max_age_s: float = 1.0):
        self.smoothing_s = smoothing_s
        self.hold_s = hold_s
        self.min_iou = min_iou
        self.max_centre_shift = max_centre_shift
        # A face unseen this long is gone; a blink of the detector (a missed frame) is not.
        self.max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self._tracks = []
        self._next_id = 1

    def __len__(self) -> int:
        """How many faces are being followed."""
        return len(self._tracks)

    def _pairs(self, boxes: list[Box]) -> list[tuple[float, int, int]]:
        """Plausible (score, track index, box index) matches, best first."""
        pairs = []
        for ti, track in enumerate(self._tracks):
            for bi, box in enumerate(boxes):
                overlap = iou(track.box, box)
                shift = centre_distance(track.box, box)
                if overlap >= self.min_iou or shift <= self.max_centre_shift:
                    # Overlap ranks first; centre distance breaks ties and catches fast moves.
                    pairs.append((overlap - 0.01 * shift, ti, bi))
        return sorted(pairs, reverse=True)

    def update(self, boxes: list[Box], probs: np.ndarray, t: float) -> list[LiveFace]:
        """Match this frame's boxes to known faces and return them with their smoothed estimates."""
        self._tracks = [tr for tr in self._tracks if t - tr.last_seen <= self.max_age_s]
        assigned: dict[int, _Track] = {}
        used_tracks: set[int] = set()
        for _, ti, bi in self._pairs(boxes):
            if ti in used_tracks or bi in assigned:
                continue
            used_tracks.add(ti)
            assigned[bi] = self._tracks[ti]
        for bi, box in enumerate(boxes):
            if bi not in assigned:
                track = _Track(self._next_id, box,
                               EmotionSmoother(self.smoothing_s, self.hold_s), t)
                self._next_id += 1
                self._tracks.append(track)
                assigned[bi] = track
        faces = []
        for bi, box in enumerate(boxes):
            track = assigned[bi]
            track.box, track.last_seen = box, t
            estimate = track.smoother.update(probs[bi], t)
            faces.append(LiveFace(box, estimate.label, estimate.confidence,
                                  dict(zip(EMOTIONS, map(float, estimate.probabilities))),
                                  face_id=track.face_id, shown=estimate.shown,
                                  raw_label=estimate.raw))
        return faces


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
        # budget is tight); a video file, with no viewer waiting, averages with the mirror image.
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
