"""Face detection with OpenCV's Haar cascade, with overlapping and implausible boxes removed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"


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
    # Detection runs on a copy no wider or taller than this; boxes are mapped back.
    max_side: int = 960
    # Boxes overlapping more than this (intersection over the smaller box) are one face.
    overlap: float = 0.5


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(
            f"OpenCV could not load {path}: install opencv-python-headless>=4.10,<5 "
            "(OpenCV 5 no longer ships the Haar cascades)"
        )
    return cascade


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def merge_boxes(boxes: list[Box], overlap: float = 0.5) -> list[Box]:
    """Keep the larger of any two boxes that overlap by more than `overlap` of the smaller one."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.area, reverse=True):
        if all(box.intersection(k) <= overlap * min(box.area, k.area) for k in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (b.x, b.y))


def detect_faces(image: np.ndarray, settings: DetectionSettings = DetectionSettings()) -> list[Box]:
    """Faces in a BGR or gray image, as boxes in that image's pixels, left to right."""
    gray = to_gray(image)
    height, width = gray.shape[:2]
    scale = min(1.0, settings.max_side / max(height, width))
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(settings.min_size_px * scale, settings.min_size_fraction * min(gray.shape[:2]))
    min_side = int(max(12, min_side))  # below 12 px the cascade's own window does not fit
    found = _cascade().detectMultiScale(
        gray,
        scaleFactor=settings.scale_factor,
        minNeighbors=settings.min_neighbors,
        minSize=(min_side, min_side),
    )
    boxes = [
        Box(int(round(x / scale)), int(round(y / scale)), int(round(w / scale)), int(round(h / scale)))
        for (x, y, w, h) in (found if len(found) else [])
    ]
    return merge_boxes(boxes, settings.overlap)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `box`, clipped to the image."""
    h, w = image.shape[:2]
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(w, box.x + box.w), min(h, box.y + box.h)
    return image[y0:y1, x0:x1]
