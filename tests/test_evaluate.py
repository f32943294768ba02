"""Scores on predictions whose accuracy, F1 and confusion matrix are worked out by hand."""

from __future__ import annotations

import pytest

from emotion.evaluate import score


def test_scores_on_known_predictions():
    # angry: 2 right, 1 called happy; happy: 3 right; sad: 1 right, 1 called happy.
    y_true = [0, 0, 0, 3, 3, 3, 4, 4]
    y_pred = [0, 0, 3, 3, 3, 3, 4, 3]
    result = score(y_true, y_pred)
    assert result.accuracy == pytest.approx(6 / 8, abs=1e-4)
    assert result.n_images == 8
    happy = result.per_class["happy"]
    assert happy.precision == pytest.approx(3 / 5, abs=1e-4)
    assert happy.recall == 1.0
    assert happy.f1 == pytest.approx(0.75, abs=1e-4)
    assert result.per_class["angry"].recall == pytest.approx(2 / 3, abs=1e-4)
    assert result.per_class["angry"].f1 == pytest.approx(0.8, abs=1e-4)
    assert result.per_class["sad"].f1 == pytest.approx(2 / 3, abs=1e-4)
    # Macro-F1 is over the three classes that occur, as scikit-learn computes it.
    assert result.macro_f1 == pytest.approx((0.8 + 0.75 + 2 / 3) / 3, abs=1e-4)
    cm = result.confusion_matrix
    assert cm[0][0] == 2 and cm[0][3] == 1 and cm[4][3] == 1 and cm[3][3] == 3
    assert result.confusion_normalised[0][3] == pytest.approx(1 / 3, abs=1e-4)


def test_scores_match_scikit_learn():
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 7, 500))
    result = score(y_true, y_pred)
    assert result.accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-4)
    assert result.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-4)
