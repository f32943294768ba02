"""Distillation: training targets that give a share of each face's label to what other, already
trained models (the teachers) say of it (Hinton et al., 2015).

The teachers' probabilities are those of the clean face, computed once before training; the
student sees the face augmented (other crops, light, blur, noise), so it learns to say of a
shifted face what the teachers say of the clean one.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ..evaluate import predict_probabilities
from ..labels import NUM_CLASSES
from ..model import load_model


def teacher_probabilities(paths: tuple[str, ...], images: np.ndarray) -> np.ndarray:
    """The teachers' mean probabilities for `images`, each over the test-time views (`emotion.tta`,
    what a photo gets)."""
    # load_model refuses a file that is not an emotion model: all are checked before predicting.
    teachers = [load_model(Path(p)) for p in paths]
    return np.mean([predict_probabilities(t, images, tta=True) for t in teachers], axis=0)


def distilled_targets(labels: np.ndarray, teachers: np.ndarray, share: float) -> np.ndarray:
    """Each face's one-hot label, with `share` of it given to the teachers' probabilities."""
    one_hot = keras.utils.to_categorical(labels, NUM_CLASSES)
    return ((1 - share) * one_hot + share * teachers).astype(np.float32)
