"""Faces followed from frame to frame: an id per face while it stays in view, its emotion
smoothed over time (emotion.smoothing), and the main face the readout follows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faces import Box, iou
from .labels import EMOTIONS, UNCERTAIN
from .recognizer import Face
from .smoothing import HOLD_S, SMOOTHING_S, EmotionSmoother


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
