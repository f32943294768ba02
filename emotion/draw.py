"""Boxes and labels on images (OpenCV drawing)."""

from __future__ import annotations

import cv2
import numpy as np

from .labels import COLOURS
from .recognizer import Face


def annotate(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the BGR image with a box and 'label NN%' drawn for each face."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    # Line and text sizes follow the image, so labels stay legible on small and large photos.
    base = max(out.shape[:2])
    thickness = max(1, base // 400)
    for face in faces:
        b = face.box
        colour = COLOURS.get(face.label, (255, 255, 255))
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, thickness + 1)
        text = f"{face.label} {face.confidence:.0%}"
        scale = max(0.4, min(2.0, b.w / 160))
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = b.y - th - baseline - 4 if b.y - th - baseline - 4 >= 0 else b.y + b.h
        cv2.rectangle(out, (b.x, top), (b.x + tw + 6, top + th + baseline + 4), colour, -1)
        cv2.putText(out, text, (b.x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    return out
