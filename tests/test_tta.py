"""The test-time views: what they are, in what order, and how their answers are averaged."""

from __future__ import annotations

import numpy as np

from emotion import tta


def _square(size: int) -> np.ndarray:
    """A float face batch of one: a bright square of `size` px, centred, left of centre by 4 px."""
    face = np.zeros((1, 48, 48, 1), np.float32)
    lo = 24 - size // 2
    face[0, lo:lo + size, lo - 4:lo - 4 + size, 0] = 1.0
    return face


def test_views_are_the_face_mirrored_tighter_and_looser():
    x = _square(16)
    v = tta.views(x)
    assert v.shape == (tta.VIEWS, 48, 48, 1) and v.dtype == np.float32
    np.testing.assert_array_equal(v[0], x[0])
    np.testing.assert_array_equal(v[1], x[0, :, ::-1])  # each framing, then its mirror image
    area = [float((view > 0.5).sum()) for view in v]
    assert area[2] > area[0] * 1.1 and area[4] < area[0] * 0.9  # tighter shows it larger
    for framed in (2, 4):
        np.testing.assert_array_equal(v[framed + 1], v[framed][:, ::-1])


def test_reframe_keeps_the_kind_of_pixels_and_warps_them_alike():
    x = _square(16)
    faces = (x[..., 0] * 200).astype(np.uint8)
    matrix = tta.frame_matrix(1.08)
    as_bytes = tta.reframe(faces, matrix)
    as_floats = tta.reframe(x, matrix)
    assert as_bytes.dtype == np.uint8 and as_bytes.shape == (1, 48, 48)
    assert np.abs(as_bytes.astype(float) - as_floats[..., 0] * 200).max() <= 1
    assert tta.reframe(x[:0], matrix).shape == (0, 48, 48, 1)


def test_predict_averages_the_views_of_each_face_in_one_call():
    batch = np.concatenate([_square(10), _square(20)])
    calls = []

    def model(views: np.ndarray) -> np.ndarray:
        calls.append(len(views))
        bright = views.reshape(len(views), -1).mean(axis=1)
        return np.stack([bright, 1 - bright], axis=1)

    probs = tta.predict(model, batch)
    assert calls == [tta.VIEWS * 2] and probs.shape == (2, 2)
    views = tta.views(batch).reshape(tta.VIEWS, 2, -1).mean(axis=2)
    np.testing.assert_allclose(probs[:, 0], views.mean(axis=0), rtol=1e-6)
