"""Face detection with OpenCV's Haar cascade, with overlapping and implausible boxes removed.

Safe to call from several threads at once: each thread gets its own CascadeClassifier, because
one classifier called from two threads mixes up their scans (wrong boxes, or a cv2.error).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .preprocess import to_gray

# The live path's cascade: its windows and scan parts were tuned on it (emotion/follow.py).
CASCADE_FILE = "haarcascade_frontalface_default.xml"
# The photo path's: on the group photos of images/groups (scripts/eval_detectors.py) it found 26
# of 37 faces against the default's 20, with 2 false ones against 3, in the same time.
FRONTAL_CASCADE = "haarcascade_frontalface_alt2.xml"
# Faces turned to the viewer's left; the mirror image gives those turned to the right. With them
# the same photos gave 33 of 37 faces and still 2 false ones, for about 4x the time.
PROFILE_CASCADE = "haarcascade_profileface.xml"
# The cascade's own window: the smallest face it can find, in the pixels it scans.
CASCADE_WINDOW = 24


@dataclass(frozen=True)
class Box:
    """A face rectangle in pixels of the image it was found in."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    def intersection(self, other: "Box") -> int:
        dx = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        dy = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return max(0, dx) * max(0, dy)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class DetectionSettings:
    """Haar parameters and the plausibility rules applied to what it finds."""

    scale_factor: float = 1.1
    min_neighbors: int = 6
    # A face narrower than this share of the image's shorter side is more likely a pattern on
    # clothes or pavement than a face; the pixel floor keeps tiny images usable.
    min_size_fraction: float = 0.04
    min_size_px: int = 24
    # Detection runs on a copy no wider or taller than this, and no larger than needed for the
    # smallest face allowed to fill the cascade's window; boxes are mapped back.
    max_side: int = 960
    # Boxes overlapping more than this (intersection over the smaller box) are one face.
    overlap: float = 0.5
    cascade: str = FRONTAL_CASCADE
    # Also look for faces in profile, both ways.
    profiles: bool = False


class FaceDetector(Protocol):
    """Anything that finds faces: boxes in the pixels of the gray image it is given."""

    def detect(self, gray: np.ndarray) -> list[Box]: ...


_per_thread = threading.local()


def _cascade(name: str = CASCADE_FILE) -> cv2.CascadeClassifier:
    """This thread's classifier for one of OpenCV's bundled cascades, loaded on first use."""
    cascades = _per_thread.__dict__.setdefault("cascades", {})
    if name not in cascades:
        path = cv2.data.haarcascades + name
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(
                f"OpenCV could not load {path}: install opencv-python-headless>=4.10,<5 "
                "(OpenCV 5 no longer ships the Haar cascades)"
            )
        cascades[name] = cascade
    return cascades[name]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    inter = a.intersection(b)
    union = a.area + b.area - inter
    return inter / union if union else 0.0


def merge_boxes(boxes: list[Box], overlap: float = 0.5) -> list[Box]:
    """Keep the larger of any two boxes that overlap by more than `overlap` of the smaller one."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.area, reverse=True):
        if all(box.intersection(k) <= overlap * min(box.area, k.area) for k in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (b.x, b.y))


def min_face_px(shape: tuple[int, ...], settings: DetectionSettings) -> float:
    """The smallest face `settings` accepts in an image of this shape, in its pixels."""
    return max(settings.min_size_px, settings.min_size_fraction * min(shape[:2]))


def detection_scale(shape: tuple[int, ...], settings: DetectionSettings) -> float:
    """How much to shrink an image before scanning it: no face the settings accept is lost.

    Shrinking until the smallest accepted face just fills the cascade's window costs nothing in
    recall and bounds the work: the scanned copy's shorter side is at most about
    CASCADE_WINDOW / min_size_fraction pixels (600 at the default 4%), whatever the photo's size.
    """
    height, width = shape[:2]
    return min(1.0, settings.max_side / max(height, width),
               CASCADE_WINDOW / min_face_px(shape, settings))


def scan(gray: np.ndarray, *, scale: float = 1.0, min_px: float = CASCADE_WINDOW,
         max_px: float | None = None, scale_factor: float = 1.1, min_neighbors: int = 6,
         origin: tuple[int, int] = (0, 0), cascade: str = CASCADE_FILE) -> list[Box]:
    """One Haar scan of `gray` shrunk by `scale`, for faces min_px to max_px high (in the scanned
    copy's pixels); boxes come back in `gray`'s pixels, shifted by `origin`."""
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = int(max(CASCADE_WINDOW, min_px))
    max_side = int(max_px) if max_px else 0
    if max_side and max_side < min_side or min_side > min(gray.shape[:2]):
        return []
    found = _cascade(cascade).detectMultiScale(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors,
        minSize=(min_side, min_side), maxSize=(max_side, max_side),
    )
    ox, oy = origin
    return [
        Box(ox + round(x / scale), oy + round(y / scale), round(w / scale), round(h / scale))
        for (x, y, w, h) in (found if len(found) else [])
    ]


def detect_faces(image: np.ndarray, settings: DetectionSettings = DetectionSettings()) -> list[Box]:
    """Faces in a BGR or gray image, as boxes in that image's pixels, left to right."""
    gray = to_gray(image)
    scale = detection_scale(gray.shape, settings)
    options = dict(scale=scale, min_px=min_face_px(gray.shape, settings) * scale,
                   scale_factor=settings.scale_factor, min_neighbors=settings.min_neighbors)
    frontal = merge_boxes(scan(gray, cascade=settings.cascade, **options), settings.overlap)
    if not settings.profiles:
        return frontal
    width = gray.shape[1]
    profile = scan(gray, cascade=PROFILE_CASCADE, **options)
    profile += [Box(width - b.x - b.w, b.y, b.w, b.h)
                for b in scan(cv2.flip(gray, 1), cascade=PROFILE_CASCADE, **options)]
    return add_boxes(frontal, profile, settings.overlap)


def add_boxes(kept: list[Box], extra: list[Box], overlap: float = 0.5) -> list[Box]:
    """`kept` as they are, plus the boxes of `extra` (merged among themselves) that overlap none
    of them, left to right.

    The profile cascades' boxes are added so: a face the frontal cascade found keeps its frontal
    box, so it gets the same crop, and so the same probabilities, whether or not profiles are
    looked for. (Keeping the larger of two overlapping boxes, as merge_boxes does, let a profile
    box that was a little larger replace the frontal one: happy 97% became 89% on the same face.)
    """
    new = [b for b in merge_boxes(extra, overlap)
           if all(b.intersection(k) <= overlap * min(b.area, k.area) for k in kept)]
    return sorted([*kept, *new], key=lambda b: (b.x, b.y))


@dataclass(frozen=True)
class HaarDetector:
    """OpenCV's Haar cascades as a FaceDetector; safe to share between threads."""

    settings: DetectionSettings = DetectionSettings()

    def detect(self, gray: np.ndarray) -> list[Box]:
        return detect_faces(gray, self.settings)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `box`, clipped to the image."""
    h, w = image.shape[:2]
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(w, box.x + box.w), min(h, box.y + box.h)
    return image[y0:y1, x0:x1]
