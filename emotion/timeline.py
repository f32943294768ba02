"""A live session's emotions over time: one row per face per interval (and per change), the
main face's label as stretches of time, a summary in figures, CSV for download. Thread-safe
and bounded, for sessions of hours."""

from __future__ import annotations

import csv
import io
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from .labels import EMOTIONS, UNCERTAIN
from .tracking import LiveFace


@dataclass(frozen=True)
class TimelineEntry:
    """One face at one moment of a session: its shown label (maybe "uncertain"), the confidence
    of the emotion behind it, its smoothed probabilities, and whether it was the main face."""

    time_s: float
    face_id: int
    label: str
    confidence: float
    probabilities: tuple[float, ...]
    main: bool = False


TIMELINE_HEADER = ["time_s", "face", "main", "label", "confidence", *EMOTIONS]
# The shown labels in the order charts and summaries list them.
SHOWN_LABELS: tuple[str, ...] = (*EMOTIONS, UNCERTAIN)


@dataclass(frozen=True)
class Band:
    """A stretch of the session during which the main face showed one label."""

    start_s: float
    end_s: float
    label: str

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SessionSummary:
    """How long the session ran, how long a face was in view, and the seconds per shown label."""

    duration_s: float
    face_s: float
    seconds: dict[str, float]

    @property
    def shares(self) -> dict[str, float]:
        """Each shown label's share of the time a face was in view, largest first."""
        if self.face_s <= 0:
            return {}
        ranked = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        return {label: s / self.face_s for label, s in ranked if s > 0}


class Timeline:
    """The session's emotions over time, thread-safe, bounded, exportable as CSV."""

    def __init__(self, interval_s: float = 0.5, max_entries: int = 50_000, max_faces: int = 64):
        # One row per face per interval (and on every change of its shown label or of the main
        # face) keeps an hour-long session small, while the chart still shows every change.
        self.interval_s = interval_s
        self._entries: deque[TimelineEntry] = deque(maxlen=max_entries)
        # Every face that comes back after a second away gets a new id: the last row per face is
        # kept only for the most recently seen ones, or a long session would grow it for ever.
        self.max_faces = max_faces
        self._last: OrderedDict[int, TimelineEntry] = OrderedDict()
        self._now = 0.0
        self._lock = threading.Lock()

    def add(self, time_s: float, faces: list[LiveFace], main_id: int | None = None) -> None:
        """Record this frame's faces (`main_id`: the main face's id) at `time_s` into the session."""
        with self._lock:
            self._now = max(self._now, time_s)
            for face in faces:
                is_main = face.face_id == main_id
                label = face.shown_label
                last = self._last.get(face.face_id)
                if (last and time_s - last.time_s < self.interval_s and last.label == label
                        and last.main == is_main):
                    continue
                entry = TimelineEntry(round(time_s, 3), face.face_id, label, face.confidence,
                                      tuple(face.probabilities[e] for e in EMOTIONS), is_main)
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

    @property
    def duration_s(self) -> float:
        """Seconds from the session's first frame to its latest."""
        with self._lock:
            return self._now

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._last.clear()
            self._now = 0.0

    def to_csv(self) -> str:
        """time_s, face, main (1 or 0), the shown label, confidence and the seven smoothed
        probabilities, one row per entry."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TIMELINE_HEADER)
        for e in self.entries():
            writer.writerow([f"{e.time_s:.3f}", e.face_id, int(e.main), e.label,
                             f"{e.confidence:.4f}", *(f"{p:.4f}" for p in e.probabilities)])
        return out.getvalue()

    def main_bands(self) -> list[Band]:
        """The main face's shown label as consecutive stretches of time; none while no face was seen.

        The main face is recorded at least every `interval_s` while it is there, so a longer
        silence means nobody was in view: a stretch ends at most one interval after its last row.
        """
        with self._lock:
            rows = [e for e in self._entries if e.main]
            now = self._now
        bands: list[Band] = []
        for i, row in enumerate(rows):
            end = rows[i + 1].time_s if i + 1 < len(rows) else now
            end = min(end, row.time_s + self.interval_s * 1.5 + 0.25)
            # The latest row starts a band even before it has a length: the timeline's last
            # label is always the readout's.
            if end <= row.time_s and i + 1 < len(rows):
                continue
            end = max(end, row.time_s)
            last = bands[-1] if bands else None
            if last and last.label == row.label and row.time_s - last.end_s < 1e-6:
                bands[-1] = Band(last.start_s, end, row.label)
            else:
                bands.append(Band(row.time_s, end, row.label))
        return bands

    def summary(self) -> SessionSummary:
        """The session in figures: its length, time with a face, seconds per shown label."""
        seconds = dict.fromkeys(SHOWN_LABELS, 0.0)
        bands = self.main_bands()
        for band in bands:
            seconds[band.label] = seconds.get(band.label, 0.0) + band.seconds
        return SessionSummary(self.duration_s, sum(b.seconds for b in bands), seconds)

    def series(self, face_id: int | None = None, max_points: int | None = None) -> dict[str, list]:
        """Columns time_s and one per emotion (smoothed probabilities) for one face, default the
        main face; at most `max_points` rows, evenly thinned, for a chart."""
        entries = self.entries()
        if face_id is None:
            chosen = [e for e in entries if e.main]
        else:
            chosen = [e for e in entries if e.face_id == face_id]
        if max_points and len(chosen) > max_points:
            step = len(chosen) / max_points
            chosen = [chosen[int(i * step)] for i in range(max_points)]
        columns: dict[str, list] = {"time_s": [e.time_s for e in chosen]}
        for i, name in enumerate(EMOTIONS):
            columns[name] = [e.probabilities[i] for e in chosen]
        return columns
