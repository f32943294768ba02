"""Live video: follow faces, classify them in one batch, track and smooth them, time each stage.

Shared by the web page (through emotion.app.webrtc), the desktop webcam and the video command.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import IMAGE_SIZE
from .draw import annotate, draw_fps
from .faces import Box, crop, iou
from .follow import FaceFollower, LiveSettings
from .labels import EMOTIONS
from .preprocess import to_gray
from .recognizer import EmotionRecognizer, Face, faces_from_probabilities

Clock = Callable[[], float]


@dataclass
class LiveFace(Face):
    """A tracked face: the same id across frames, with probabilities smoothed over recent frames."""

    face_id: int = 0

    def to_dict(self) -> dict:
        return {"id": self.face_id, **super().to_dict()}


@dataclass(frozen=True)
class StageTimes:
    """Where a frame's time went, in milliseconds; full_scan: the whole frame was scanned."""

    detect_ms: float = 0.0
    classify_ms: float = 0.0
    draw_ms: float = 0.0
    full_scan: bool = False


@dataclass
class LiveResult:
    """One processed frame: the annotated picture, its faces, and how fast we are going."""

    frame: np.ndarray
    faces: list[LiveFace]
    fps: float
    process_ms: float
    stages: StageTimes = field(default_factory=StageTimes)

    @property
    def main_face(self) -> LiveFace | None:
        return main_face(self.faces)


def main_face(faces: list[LiveFace]) -> LiveFace | None:
    """The largest face (the person nearest the camera), or None."""
    return max(faces, key=lambda f: f.box.area, default=None)


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres in units of the wider box's width."""
    dx = (a.x + a.w / 2) - (b.x + b.w / 2)
    dy = (a.y + a.h / 2) - (b.y + b.h / 2)
    return float(np.hypot(dx, dy)) / max(1, a.w, b.w)


@dataclass
class _Track:
    face_id: int
    box: Box
    history: deque
    last_seen: float


class FaceTracker:
    """Keeps an id per face across frames and averages its probabilities over the last `window` frames."""

    def __init__(self, window: int = 6, min_iou: float = 0.2, max_centre_shift: float = 0.5,
                 max_age_s: float = 1.0):
        self.window = window
        self.min_iou = min_iou
        self.max_centre_shift = max_centre_shift
        # A face unseen this long is gone; a blink of the detector (a missed frame) is not.
        self.max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self._tracks = []
        self._next_id = 1

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
        """Match this frame's boxes to known faces and return them with smoothed probabilities."""
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
                track = _Track(self._next_id, box, deque(maxlen=self.window), t)
                self._next_id += 1
                self._tracks.append(track)
                assigned[bi] = track
        faces = []
        for bi, box in enumerate(boxes):
            track = assigned[bi]
            track.box, track.last_seen = box, t
            track.history.append(np.asarray(probs[bi], np.float32))
            mean = np.mean(track.history, axis=0)
            face = faces_from_probabilities([box], mean[None])[0]
            faces.append(LiveFace(face.box, face.label, face.confidence, face.probabilities,
                                  face_id=track.face_id))
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


@dataclass(frozen=True)
class TimelineEntry:
    """One face at one moment of a session."""

    time_s: float
    face_id: int
    label: str
    confidence: float
    probabilities: tuple[float, ...]


TIMELINE_HEADER = ["time_s", "face", "label", "confidence", *EMOTIONS]


class Timeline:
    """The session's emotions over time, thread-safe, bounded, exportable as CSV."""

    def __init__(self, interval_s: float = 0.5, max_entries: int = 50_000, max_faces: int = 64):
        # One row per face per interval (and on every label change) keeps an hour-long session
        # small, while the chart still shows every change.
        self.interval_s = interval_s
        self._entries: deque[TimelineEntry] = deque(maxlen=max_entries)
        # Every face that comes back after a second away gets a new id: the last row per face is
        # kept only for the most recently seen ones, or a long session would grow it for ever.
        self.max_faces = max_faces
        self._last: OrderedDict[int, TimelineEntry] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, time_s: float, faces: list[LiveFace]) -> None:
        with self._lock:
            for face in faces:
                last = self._last.get(face.face_id)
                if last and time_s - last.time_s < self.interval_s and last.label == face.label:
                    continue
                entry = TimelineEntry(round(time_s, 3), face.face_id, face.label, face.confidence,
                                      tuple(face.probabilities[e] for e in EMOTIONS))
                self._entries.append(entry)
                self._last[face.face_id] = entry
                self._last.move_to_end(face.face_id)
                if len(self._last) > self.max_faces:
                    self._last.popitem(last=False)

    def entries(self) -> list[TimelineEntry]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def faces_held(self) -> int:
        """How many faces' last rows are kept (at most max_faces)."""
        with self._lock:
            return len(self._last)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._last.clear()

    def to_csv(self) -> str:
        """time_s, face, label, confidence and the seven probabilities, one row per entry."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TIMELINE_HEADER)
        for e in self.entries():
            writer.writerow([f"{e.time_s:.3f}", e.face_id, e.label, f"{e.confidence:.4f}",
                             *(f"{p:.4f}" for p in e.probabilities)])
        return out.getvalue()

    def series(self, face_id: int | None = None) -> dict[str, list]:
        """Columns time_s and one per emotion for one face (default: the most seen one), for a chart."""
        entries = self.entries()
        if face_id is None and entries:
            counts: dict[int, int] = {}
            for e in entries:
                counts[e.face_id] = counts.get(e.face_id, 0) + 1
            face_id = max(counts, key=counts.get)
        chosen = [e for e in entries if e.face_id == face_id]
        columns: dict[str, list] = {"time_s": [e.time_s for e in chosen]}
        for i, name in enumerate(EMOTIONS):
            columns[name] = [e.probabilities[i] for e in chosen]
        return columns


@dataclass
class LiveStats:
    """Counters of a session, as the page shows them and the browser test reads them."""

    frames: int = 0
    frames_with_faces: int = 0
    fps: float = 0.0
    mean_process_ms: float = 0.0
    recent_process_ms: float = 0.0  # moving average of the last ten or so frames
    labels: dict[str, int] = field(default_factory=dict)
    main_label: str | None = None
    main_confidence: float = 0.0


class LiveProcessor:
    """BGR frame in, annotated frame and tracked faces out; safe to read from another thread.

    One per video stream (a browser session, a camera, a file): it remembers where the faces
    were. The recognizer it uses may be shared by many processors and threads.
    """

    def __init__(self, recognizer: EmotionRecognizer, *, settings: LiveSettings = LiveSettings(),
                 timeline_interval_s: float = 0.5, draw_fps: bool = True,
                 clock: Clock = time.monotonic):
        self.recognizer = recognizer
        self.settings = settings
        self.follower = FaceFollower(settings)
        self.tracker = FaceTracker(window=settings.smoothing_window)
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
        # The model's first call may build its graph (seconds on a small CPU): pay that now, not
        # on the first video frame, where it would freeze the picture.
        recognizer.classify([np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)])

    def process(self, frame: np.ndarray, t: float | None = None) -> LiveResult:
        """Annotate one BGR frame; `t` (seconds) defaults to the clock, the video command passes its own."""
        started = time.perf_counter()
        now = self.clock() if t is None else t
        gray = to_gray(frame)
        with self._follow_lock:
            boxes = self.follower.detect(gray)
            full_scan = self.follower.last_was_full_scan
            detected = time.perf_counter()
            probs = self.recognizer.classify([crop(gray, b) for b in boxes])
            classified = time.perf_counter()
            with self._lock:
                if self._start is None:
                    self._start = now
                faces = self.tracker.update(boxes, probs, now)
                fps = self.fps_meter.tick(now)
                self.timeline.add(now - self._start, faces)
        drawing = time.perf_counter()
        out = annotate(frame, faces)
        if self.draw_fps:
            draw_fps(out, fps)
        done = time.perf_counter()
        ms = (done - started) * 1000
        stages = StageTimes((detected - started) * 1000, (classified - detected) * 1000,
                            (done - drawing) * 1000, full_scan)
        with self._lock:
            self._update_stats(faces, fps, ms)
        return LiveResult(out, faces, fps, ms, stages)

    def _update_stats(self, faces: list[LiveFace], fps: float, ms: float) -> None:
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
                s.labels[f.label] = s.labels.get(f.label, 0) + 1
        main = main_face(faces)
        s.main_label = main.label if main else None
        s.main_confidence = main.confidence if main else 0.0

    def stats(self) -> LiveStats:
        """A copy of the session's counters."""
        with self._lock:
            s = self._stats
            return LiveStats(s.frames, s.frames_with_faces, s.fps, s.mean_process_ms,
                             s.recent_process_ms, dict(s.labels), s.main_label, s.main_confidence)

    def faces(self) -> list[LiveFace]:
        """The faces of the latest frame."""
        with self._lock:
            return list(self._last_faces)

    def held(self) -> dict[str, int]:
        """How much each store kept between frames holds: all bounded, as a long session (and
        scripts/soak_live.py) needs."""
        with self._follow_lock, self._lock:
            return {"timeline_rows": len(self.timeline), "timeline_faces": self.timeline.faces_held(),
                    "tracks": len(self.tracker._tracks), "fps_times": len(self.fps_meter._times),
                    "labels": len(self._stats.labels)}

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
