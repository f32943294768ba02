"""Faces and the model together: one call from a BGR image to faces with emotions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import INPUT_SHAPE, UNCERTAIN_BELOW, app_model_path
from .errors import ModelError, sentence
from .faces import Box, DetectionSettings, FaceDetector, HaarDetector, crop, detect_faces
from .labels import EMOTIONS, UNCERTAIN
from .model import check_probabilities
from .preprocess import faces_to_input, to_gray
from .runtime import load_classifier
from .tta import predict as over_views

# A face's columns in every CSV of faces (a photo's, a video's), after the columns that say which
# image or frame it is in: where it is, its label, the confidence and the seven probabilities.
FACE_COLUMNS = ["x", "y", "w", "h", "label", "confidence", *EMOTIONS]


@dataclass
class Face:
    """One face: where it is, its most likely emotion, and the probability of each of the seven."""

    box: Box
    label: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def uncertain(self) -> bool:
        """Too unsure to name: the calibrated confidence is under config.UNCERTAIN_BELOW."""
        return self.confidence < UNCERTAIN_BELOW

    @property
    def shown_label(self) -> str:
        """What a person is shown: the label, or "uncertain"."""
        return UNCERTAIN if self.uncertain else self.label

    def to_row(self, shown: bool = False) -> list:
        """The face as FACE_COLUMNS: the box, the label (`shown`: as shown, maybe "uncertain"),
        the confidence and the probabilities to 4 decimals."""
        return [*self.box.as_list(), self.shown_label if shown else self.label,
                f"{self.confidence:.4f}",
                *(f"{self.probabilities.get(e, 0.0):.4f}" for e in EMOTIONS)]

    def to_dict(self) -> dict:
        return {
            "box": self.box.as_list(),
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }


def faces_from_probabilities(boxes: list[Box], probs: np.ndarray) -> list[Face]:
    faces = []
    for box, p in zip(boxes, probs):
        best = int(np.argmax(p))
        faces.append(Face(box, EMOTIONS[best], float(p[best]),
                          {name: float(v) for name, v in zip(EMOTIONS, p)}))
    return faces


def check_classifier(classifier, path: Path) -> None:
    """ModelError unless the loaded classifier answers a face with 7 probabilities.

    `load_model` checks a `.keras` when Keras reads it, but an ONNX copy cached before that check
    existed is run without Keras: one blank face through it catches a wrong shape either way.
    """
    try:
        out = classifier.predict(np.zeros((1, *INPUT_SHAPE), np.float32))
    except Exception as exc:  # any failure on a valid face means a bad model
        raise ModelError(f"{path}: the model fails on a 48x48 face ({sentence(exc)}); use a "
                         "model trained by `python -m emotion train`") from exc
    check_probabilities(out, path)


class EmotionRecognizer:
    """Loads the model once (`model_path`, else the app's: $EMOTION_MODEL or the shipped one);
    `recognize(image)` finds every face and names its emotion.

    Safe to share between threads (the app shares one between every browser session): the face
    detector keeps a cascade per thread and the classifier's runtime may be called concurrently.
    """

    def __init__(self, model_path: str | Path | None = None,
                 settings: DetectionSettings = DetectionSettings(),
                 detector: FaceDetector | None = None, runtime: str | None = None,
                 threads: int | None = None, tta: bool = True):
        self.model_path = Path(model_path or app_model_path())
        self.classifier = load_classifier(self.model_path, runtime=runtime, threads=threads)
        check_classifier(self.classifier, self.model_path)
        self.settings = settings
        self.detector: FaceDetector = detector or HaarDetector(settings)
        # Photos average each face over the test-time views by default (mirrored, framed
        # tighter and looser; README, "Test-time views"). Video from a camera keeps one pass:
        # its smoothing over time does that job.
        self.tta = tta

    def classify(self, crops: list[np.ndarray], tta: bool = False) -> np.ndarray:
        """Probabilities (N, 7) for face crops, in one batched call of the model; with `tta`,
        averaged over the test-time views (`emotion.tta`: the same call, six times the batch)."""
        if not len(crops):
            return np.zeros((0, len(EMOTIONS)), np.float32)
        x = faces_to_input(crops)
        if not tta:
            return self.classifier.predict(x)
        return over_views(self.classifier.predict, x)

    def recognize(self, image: np.ndarray, settings: DetectionSettings | None = None,
                  boxes: list[Box] | None = None, tta: bool | None = None) -> list[Face]:
        """Every face in a BGR (or gray) image, left to right, with its emotion.

        `settings` overrides the detector's for this call (the Photo page's knobs); `boxes`
        skips detection altogether; `tta` overrides the recognizer's TTA (`emotion.tta`).
        """
        gray = to_gray(image)
        if boxes is None:
            boxes = detect_faces(gray, settings) if settings else self.detector.detect(gray)
        crops = [crop(gray, b) for b in boxes]
        tta = self.tta if tta is None else tta
        return faces_from_probabilities(boxes, self.classify(crops, tta))

    __call__ = recognize
