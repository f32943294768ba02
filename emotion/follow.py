"""Face detection for video that follows the faces it has found, instead of scanning every frame.

A Haar scan of a whole 640x480 frame (on its 320 px copy) takes about 20 ms on a small CPU; a
scan of a window around a known face, shrunk so that the face is about 48 px high, takes about
one. So a face once found is looked for again only in its window, and the whole frame is scanned
in a few parts spread over `full_scan_every` frames, so that a face entering the picture is
found within that many frames without any one frame paying for a whole scan. A frame with no
known face, or in which a known face was lost, is scanned whole at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import SettingError
from .faces import CASCADE_WINDOW, Box, DetectionSettings, iou, merge_boxes, min_face_px, scan
from .smoothing import HOLD_S, SMOOTHING_S


@dataclass(frozen=True)
class LiveSettings:
    """Everything the live path can be tuned by; the defaults suit a webcam at 640x480 (CAMERA
    adds looking at every third frame only)."""

    # Faces are looked for and classified on one frame in this many; the frames between are drawn
    # with the boxes and labels of the last one looked at. At 30 fps a face moves a few pixels in
    # a frame, and the label is an average over about a second anyway, while looking costs most
    # of a frame's time (a video file, with nobody waiting, looks at every frame).
    look_every: int = 1
    # Whole-frame scans run on a copy no wider or taller than this.
    detect_side: int = 320
    # The whole frame is covered once every this many frames looked at (half a second at 30 fps
    # when every frame is looked at)...
    full_scan_every: int = 16
    # ...in this many parts, each a range of face sizes of about equal cost, on separate frames
    # (a part costs about an eighth of a whole scan, so no frame is much slower than the rest).
    scan_parts: int = 8
    # A known face's window: its box enlarged by its own size (half of it on each side)...
    window_margin: float = 0.5
    # ...shrunk so that the face is about this high; it may grow or shrink by these factors
    # from one frame to the next. On emotion.clips' moving face, windows at 40 px lost it in 24
    # frames of 299, at 48 px in 2, at 56 px in 1; larger windows cost more.
    window_face_px: int = 56
    window_min_ratio: float = 0.8
    window_max_ratio: float = 1.25
    # A window holds one known face, so fewer neighbours are needed to trust a detection there,
    # which keeps a slightly turned or tilted face that a whole-frame scan would drop.
    window_min_neighbors: int = 3
    # A face missing from its window this many frames in a row is lost: the whole frame is
    # scanned at once to find where it went.
    lost_after: int = 2
    # Each face's probabilities are averaged with this time constant in seconds, and a new label
    # is shown only once it has led that average this long (emotion.smoothing says why).
    smoothing_s: float = SMOOTHING_S
    hold_s: float = HOLD_S
    # The Haar parameters (scale factor, neighbours, smallest face) of whole-frame scans; None:
    # the recognizer's, which LiveProcessor fills in.
    detection: DetectionSettings | None = None

    def __post_init__(self) -> None:
        if (self.full_scan_every < 1 or self.scan_parts < 1 or self.look_every < 1
                or self.detect_side < CASCADE_WINDOW):
            raise SettingError("full_scan_every, scan_parts and look_every must be at least 1, "
                             "detect_side at least 24")

    @property
    def haar(self) -> DetectionSettings:
        return self.detection or DetectionSettings()


# What a camera's live stream gets (the Webcam page, the webcam command): a look every third frame,
# ten a second at 30 fps. scripts/bench_webrtc.py, one 640x480 session on the idle machine: 13.0 ms
# of server CPU a frame looking at every second frame, 11.7 at every third; on the talking-face
# clip the readout still followed each change of expression in 0.8 to 1.2 s.
CAMERA = LiveSettings(look_every=3)


@lru_cache(maxsize=64)  # one frame size per stream: the packing is not redone on every frame
def size_ranges(shape: tuple[int, int], parts: int, scale_factor: float,
                min_px: float) -> tuple[tuple[float, float], ...]:
    """Face-size ranges (min, max pixels in an image of `shape`) that split one Haar scan into
    at most `parts` scans whose largest costs as little as possible.

    Small faces cost most (many positions to try), so the first ranges span few sizes. Each
    range reaches one size into the next, so that a face at a boundary keeps the neighbouring
    detections that the cascade's grouping needs; that size counts in both ranges' costs.
    """
    height, width = shape
    sizes, costs = [], []
    size = float(max(CASCADE_WINDOW, min_px))
    while size <= min(height, width):
        sizes.append(size)
        factor = size / CASCADE_WINDOW
        # OpenCV scans a copy shrunk by `factor`, every second position while factor <= 2.
        # (Windows near a face cost more, as they pass more of the cascade's stages, so the part
        # holding a face's size is dearer than this says; no split can know that in advance.)
        stride = 2 if factor <= 2 else 1
        costs.append((width / factor) * (height / factor) / stride**2)
        size *= scale_factor
    if not sizes:
        return ()

    def pack(limit: float) -> list[tuple[int, int]]:
        """Greedy runs of sizes (first, last index) each costing at most `limit` with overlap."""
        runs, first = [], 0
        while first < len(sizes):
            last = first
            while last + 1 < len(sizes) and sum(costs[first:last + 3]) <= limit:
                last += 1
            runs.append((first, last))
            first = last + 1
        return runs

    # The smallest limit that fits in `parts` runs, by bisection: about 30 packings of a few
    # dozen sizes, done once per frame size.
    low, high = max(costs), 2 * sum(costs)
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (low, middle) if len(pack(middle)) <= parts else (middle, high)
    return tuple((sizes[first], sizes[last] * scale_factor) for first, last in pack(high))


class FaceFollower:
    """Per-video state: the faces found so far and where the next whole-frame scan part is."""

    def __init__(self, settings: LiveSettings = LiveSettings()):
        self.settings = settings
        self._known: list[tuple[Box, int]] = []  # (last box, frames missed in a row)
        self._frame = 0
        self.last_was_full_scan = False

    def reset(self) -> None:
        self._known = []
        self._frame = 0

    def detect(self, gray: np.ndarray) -> list[Box]:
        """The faces in this gray frame, in its pixels, left to right."""
        s = self.settings
        self._frame += 1
        part = self._part_due() if self._known else None
        scanned: list[Box] = []
        if part is not None:
            low, high = self._ranges(gray.shape)[part]
            scanned = self._scan_frame(gray, low, high)
        found: list[Box] = []
        known: list[tuple[Box, int]] = []
        lost = False
        for box, missed in self._known:
            # The part of the scan that covers a face's size finds it too (it is the dearest part,
            # as windows near a face pass more of the cascade): then it needs no window of its own.
            hit = next((b for b in scanned if iou(b, box) >= 0.3), None)
            if hit is None:
                hit = self._search_window(gray, box)
            if hit is not None:
                found.append(hit)
                known.append((hit, 0))
            elif missed + 1 < s.lost_after:
                known.append((box, missed + 1))  # a turn of the head: look there again next frame
            else:
                lost = True
        full = not self._known or lost
        if full:
            found.extend(self._scan_frame(gray))
        else:
            for box in scanned:
                if all(box.intersection(f) == 0 for f in found):
                    found.extend(self._confirm(gray, box))
        found = merge_boxes(found, 0.5)
        # Keep searching near a face missed this frame unless a scan found it elsewhere.
        waiting = [(b, m) for b, m in known if m and all(b.intersection(f) == 0 for f in found)]
        self._known = [(b, 0) for b in found] + waiting
        self.last_was_full_scan = full
        return found

    def _part_due(self) -> int | None:
        """Which part of the whole-frame scan this frame runs, if any."""
        s = self.settings
        spacing = max(1, s.full_scan_every // s.scan_parts)
        position = self._frame % s.full_scan_every
        if position % spacing or position // spacing >= s.scan_parts:
            return None
        return position // spacing

    def _ranges(self, shape: tuple[int, ...]) -> list[tuple[float, float]]:
        """Face-size ranges of the parts, in the scanned copy's pixels."""
        s = self.settings
        scale = self._frame_scale(shape)
        small = (round(shape[0] * scale), round(shape[1] * scale))
        min_px = min_face_px(shape, s.haar) * scale
        return size_ranges(small, s.scan_parts, s.haar.scale_factor, min_px)

    def _frame_scale(self, shape: tuple[int, ...]) -> float:
        return min(1.0, self.settings.detect_side / max(shape[:2]))

    def _scan_frame(self, gray: np.ndarray, low: float = CASCADE_WINDOW,
                    high: float | None = None) -> list[Box]:
        """A scan of the whole frame on its small copy, for faces low to high pixels there."""
        s = self.settings
        shape = gray.shape
        scale = self._frame_scale(shape)
        low = max(low, min_face_px(shape, s.haar) * scale)
        return scan(gray, scale=scale, min_px=low, max_px=high,
                    scale_factor=s.haar.scale_factor, min_neighbors=s.haar.min_neighbors)

    def _confirm(self, gray: np.ndarray, box: Box) -> list[Box]:
        """The face a part of the scan found, if a scan of its surroundings for faces of every size
        finds it too.

        A part sees only some sizes, and the cascade's grouping then keeps clusters of
        detections (on a collar, a shoulder) that a scan of all sizes merges into a larger face
        or drops; the check costs a fraction of a whole scan and is needed only for a new face.
        """
        region = _grow(box, 1.0, gray.shape)
        x0, y0, x1, y1 = region
        haar = self.settings.haar
        hits = scan(gray[y0:y1, x0:x1], scale=self._frame_scale(gray.shape), origin=(x0, y0),
                    scale_factor=haar.scale_factor, min_neighbors=haar.min_neighbors)
        return [h for h in hits if h.intersection(box) > 0.5 * min(h.area, box.area)]

    def _search_window(self, gray: np.ndarray, box: Box) -> Box | None:
        """The face nearest to `box` in a window around it, or None."""
        s = self.settings
        x0, y0, x1, y1 = _grow(box, s.window_margin, gray.shape)
        if x1 - x0 < CASCADE_WINDOW or y1 - y0 < CASCADE_WINDOW:
            return None
        scale = min(1.0, s.window_face_px / max(1, box.h))
        target = box.h * scale
        hits = scan(gray[y0:y1, x0:x1], scale=scale, origin=(x0, y0),
                    min_px=target * s.window_min_ratio, max_px=target * s.window_max_ratio,
                    scale_factor=s.haar.scale_factor, min_neighbors=s.window_min_neighbors)
        if not hits:
            return None
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        return min(hits, key=lambda b: (b.x + b.w / 2 - cx) ** 2 + (b.y + b.h / 2 - cy) ** 2)


def _grow(box: Box, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The box enlarged by `margin` times its size on each side, clipped: x0, y0, x1, y1."""
    height, width = shape[:2]
    mx, my = round(box.w * margin), round(box.h * margin)
    return (max(0, box.x - mx), max(0, box.y - my),
            min(width, box.x + box.w + mx), min(height, box.y + box.h + my))
