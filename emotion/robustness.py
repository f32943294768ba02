"""How accuracy holds up under what real cameras and detectors do to a face: another crop, blur,
dim or harsh light, JPEG, sensor noise, a tilted head.

Each shift is a fixed, seeded change of 48x48 gray faces, so two models (or two runs) are scored
on exactly the same shifted faces. `python scripts/robustness.py` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .config import IMAGE_SIZE
from .labels import EMOTIONS
from .tta import frame_matrix, reframe as warp

Shift = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _each(faces: np.ndarray, change: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.stack([change(f) for f in faces]).astype(np.uint8)


def reframe(scale: float, dx: float = 0.0, dy: float = 0.0) -> Shift:
    """The face as another detector would crop it: `scale` > 1 looser, < 1 tighter, moved by
    (dx, dy) of its size. Parts outside the original crop repeat its border (FER2013 has nothing
    beyond it)."""
    matrix = frame_matrix(scale, dx, dy)
    return lambda faces, rng: warp(faces, matrix)


def blur(sigma: float) -> Shift:
    return lambda faces, rng: _each(faces, lambda f: cv2.GaussianBlur(f, (0, 0), sigma))


def gamma(g: float) -> Shift:
    """g > 1 darkens (dim light), g < 1 brightens and flattens (harsh light)."""
    table = np.clip(255 * (np.arange(256) / 255) ** g, 0, 255).astype(np.uint8)
    return lambda faces, rng: table[faces]


def contrast(factor: float) -> Shift:
    """Contrast about mid-grey: < 1 washed out, > 1 harsh (clipped)."""
    return lambda faces, rng: np.clip(
        (faces.astype(np.float32) - 128) * factor + 128, 0, 255).astype(np.uint8)


def jpeg(quality: int) -> Shift:
    def once(f: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return lambda faces, rng: _each(faces, once)


def noise(sd: float) -> Shift:
    return lambda faces, rng: np.clip(
        faces.astype(np.float32) + rng.normal(0, sd, faces.shape), 0, 255).astype(np.uint8)


def rotate(degrees: float) -> Shift:
    def once(f: np.ndarray) -> np.ndarray:
        c = (IMAGE_SIZE - 1) / 2
        m = cv2.getRotationMatrix2D((c, c), degrees, 1.0)
        return cv2.warpAffine(f, m, (IMAGE_SIZE, IMAGE_SIZE), borderMode=cv2.BORDER_REPLICATE)
    return lambda faces, rng: _each(faces, once)


# The benchmark: about +-15% framing as another detector crops, and what cameras do to light,
# sharpness and pixels. Changing this list changes every figure: record the README's table anew.
SHIFTS: dict[str, Shift] = {
    "tighter 15%": reframe(0.85),
    "looser 15%": reframe(1.15),
    "off-centre 15%": reframe(1.0, dx=0.15, dy=0.0),
    "off-centre down 10%": reframe(1.0, dx=0.0, dy=0.10),
    "blur": blur(1.2),
    "dim": gamma(2.0),
    "harsh light": gamma(0.5),
    "low contrast": contrast(0.5),
    "high contrast": contrast(1.8),
    "jpeg q30": jpeg(30),
    "noise": noise(12.0),
    "rotated 15°": rotate(15.0),
}


@dataclass(frozen=True)
class ShiftScore:
    """Accuracy and recall per emotion of one model on one shift of the faces."""

    name: str
    accuracy: float
    recall: dict[str, float]


@dataclass(frozen=True)
class Robustness:
    clean: ShiftScore
    shifts: list[ShiftScore]

    @property
    def mean(self) -> float:
        """The mean accuracy over the shifts (the clean faces not included)."""
        return float(np.mean([s.accuracy for s in self.shifts]))

    def to_dict(self) -> dict:
        row = lambda s: {"accuracy": round(s.accuracy, 4),  # noqa: E731
                         "recall": {k: round(v, 4) for k, v in s.recall.items()}}
        return {"clean": row(self.clean), "mean": round(self.mean, 4),
                "shifts": {s.name: row(s) for s in self.shifts}}


def _score(name: str, probs: np.ndarray, labels: np.ndarray) -> ShiftScore:
    pred = probs.argmax(axis=1)
    recall = {e: float((pred[labels == i] == i).mean()) if (labels == i).any() else 0.0
              for i, e in enumerate(EMOTIONS)}
    return ShiftScore(name, float((pred == labels).mean()), recall)


def evaluate_shifts(predict: Callable[[np.ndarray], np.ndarray], faces: np.ndarray,
                    labels: np.ndarray, shifts: dict[str, Shift] | None = None,
                    seed: int = 0) -> Robustness:
    """Score `predict` (uint8 faces -> probabilities) on the faces as they are and under each shift."""
    shifts = SHIFTS if shifts is None else shifts
    clean = _score("clean", predict(faces), labels)
    scores = []
    for i, (name, shift) in enumerate(shifts.items()):
        shifted = shift(faces, np.random.default_rng([seed, i]))
        scores.append(_score(name, predict(shifted), labels))
    return Robustness(clean, scores)
