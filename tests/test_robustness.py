"""The robustness benchmark's shifts do what their names say, the same way every run, and the
scores are counted right."""

from __future__ import annotations

import numpy as np
import pytest

from emotion import robustness
from emotion.labels import EMOTIONS


def _faces(n: int = 6) -> np.ndarray:
    """Gray 48x48 faces with a dark square in the middle and a light bar across the top."""
    faces = np.full((n, 48, 48), 128, np.uint8)
    faces[:, 18:30, 18:30] = 40
    faces[:, 6:10, 8:40] = 220
    return faces + np.arange(n, dtype=np.uint8)[:, None, None]


@pytest.mark.parametrize("name", list(robustness.SHIFTS))
def test_every_shift_keeps_the_faces_shape_changes_them_and_repeats_itself(name):
    faces, shift = _faces(), robustness.SHIFTS[name]
    once = shift(faces, np.random.default_rng([0, 1]))
    assert once.shape == faces.shape and once.dtype == np.uint8
    assert np.abs(once.astype(int) - faces).max() > 0, "the shift left the faces as they were"
    np.testing.assert_array_equal(shift(faces, np.random.default_rng([0, 1])), once)


def test_the_shifts_change_what_their_names_say():
    faces, rng = _faces(1), np.random.default_rng(0)
    square = lambda f: int((f[0] < 80).sum())  # noqa: E731  the dark square's area
    assert square(robustness.reframe(0.85)(faces, rng)) > square(faces)  # tighter: bigger
    assert square(robustness.reframe(1.15)(faces, rng)) < square(faces)  # looser: smaller
    np.testing.assert_array_equal(robustness.reframe(1.0)(faces, rng), faces)
    moved = robustness.reframe(1.0, dx=0.15)(faces, rng)[0]
    columns = np.flatnonzero((moved < 80).any(axis=0))
    assert columns.min() != 18 and len(columns) == 12  # moved sideways, not resized
    assert robustness.gamma(2.0)(faces, rng).mean() < faces.mean() < \
        robustness.gamma(0.5)(faces, rng).mean()  # dim, harsh
    assert robustness.contrast(0.5)(faces, rng).std() < faces.std() < \
        robustness.contrast(1.8)(faces, rng).std()
    assert robustness.blur(1.2)(faces, rng).std() < faces.std()
    noisy = robustness.noise(12.0)(faces, rng).astype(float) - faces
    assert 9 < noisy.std() < 15
    tilted = robustness.rotate(15.0)(faces, rng)[0]
    bar = np.argwhere(tilted > 200)
    assert np.ptp(bar[:, 0]) > 8  # the bar across the top now slopes
    jpeg = robustness.jpeg(30)(faces, rng).astype(float)
    assert 0 < np.abs(jpeg - faces).mean() < 10  # blocky, but the same face


def test_scores_count_accuracy_recall_and_a_mean_over_the_shifts_only():
    faces = _faces(7)
    labels = np.arange(7)
    happy = np.eye(len(EMOTIONS))[[3] * 7]
    always_happy = robustness.evaluate_shifts(lambda f: happy[:len(f)], faces, labels)
    assert always_happy.clean.accuracy == pytest.approx(1 / 7)
    assert always_happy.clean.recall["happy"] == 1 and always_happy.clean.recall["fear"] == 0
    assert len(always_happy.shifts) == len(robustness.SHIFTS)

    # A "model" that reads each face's brightness: right on the clean faces, wrong when dimmed.
    def by_brightness(f: np.ndarray) -> np.ndarray:
        guess = np.clip(np.round(f.reshape(len(f), -1).mean(axis=1) - faces[0].mean()), 0, 6)
        return np.eye(len(EMOTIONS))[guess.astype(int)]

    scores = robustness.evaluate_shifts(by_brightness, faces, labels,
                                        shifts={"dim": robustness.gamma(2.0),
                                                "same": robustness.reframe(1.0)})
    assert scores.clean.accuracy == 1
    assert [s.accuracy for s in scores.shifts] == [pytest.approx(1 / 7), 1]  # dimmed: all "angry"
    assert scores.mean == pytest.approx((1 / 7 + 1) / 2)  # the clean faces are not in the mean
    table = scores.to_dict()
    assert table["mean"] == round(scores.mean, 4) and set(table["shifts"]) == {"dim", "same"}
