"""Every picture the package draws with OpenCV: boxes and labels, the FPS patch, face grids."""

from __future__ import annotations

import cv2
import numpy as np

from .config import IMAGE_SIZE, UNCERTAIN_BELOW
from .labels import COLOURS, EMOTIONS
from .recognizer import Face


def annotate(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the BGR image with a box and 'label NN%' drawn for each face."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    # Line and text sizes follow the image, so labels stay legible on small and large photos.
    base = max(out.shape[:2])
    thickness = max(1, base // 400)
    for face in faces:
        b = face.box
        colour = COLOURS.get(face.shown_label, (255, 255, 255))
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, thickness + 1)
        # A live face keeps its label for a moment after its average has dropped (hysteresis):
        # then it is named without a figure that would contradict it.
        text = (f"{face.label} {face.confidence:.0%}"
                if not face.uncertain and face.confidence >= UNCERTAIN_BELOW else face.shown_label)
        scale = max(0.4, min(2.0, b.w / 160))
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = b.y - th - baseline - 4 if b.y - th - baseline - 4 >= 0 else b.y + b.h
        cv2.rectangle(out, (b.x, top), (b.x + tw + 6, top + th + baseline + 4), colour, -1)
        cv2.putText(out, text, (b.x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    return out


def draw_fps(image: np.ndarray, fps: float) -> None:
    """FPS in the top-left corner, white on a dark patch so it reads on any background (in place)."""
    text = f"{fps:4.1f} fps"
    scale = max(0.4, image.shape[1] / 1280)
    thickness = max(1, image.shape[1] // 640)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(image, (0, 0), (tw + 8, th + base + 8), (30, 30, 30), -1)
    cv2.putText(image, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)


def face_grid(
    images: np.ndarray,
    labels: np.ndarray,
    per_class: int = 8,
    seed: int = 0,
    gap: int = 2,
    margin: int = 72,
) -> np.ndarray:
    """A gray picture: one row per emotion, named on the left, of `per_class` random faces of it."""
    rng = np.random.default_rng(seed)
    cell = IMAGE_SIZE + gap
    sheet = np.full((len(EMOTIONS) * cell - gap, margin + per_class * cell - gap), 255, np.uint8)
    for row, name in enumerate(EMOTIONS):
        y = row * cell
        cv2.putText(
            sheet,
            name,
            (4, y + IMAGE_SIZE // 2 + 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            0,
            1,
            cv2.LINE_AA,
        )
        index = np.flatnonzero(labels == row)
        # A class with fewer faces than columns leaves the rest of its row blank.
        pick = rng.choice(index, size=min(per_class, len(index)), replace=False)
        for col, i in enumerate(pick):
            x = margin + col * cell
            sheet[y : y + IMAGE_SIZE, x : x + IMAGE_SIZE] = images[i]
    return sheet
