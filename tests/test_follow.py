"""Detection that follows faces: windows around known faces, the whole frame scanned in parts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emotion.clips import astronaut_clip
from emotion.faces import Box, DetectionSettings, detect_faces
from emotion.follow import FaceFollower, LiveSettings, size_ranges


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    """150 gray 640x480 frames of a real face that pans, zooms, turns and tilts."""
    return [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in astronaut_clip(150)]


@pytest.mark.slow
def test_follows_a_moving_face_at_least_as_well_as_scanning_every_frame(clip):
    follower = FaceFollower()
    followed = [follower.detect(g) for g in clip]
    scanned = [detect_faces(g, DetectionSettings(max_side=320)) for g in clip]
    found = sum(bool(b) for b in followed)
    assert found >= sum(bool(b) for b in scanned)
    assert found >= 0.95 * len(clip)
    assert max(len(b) for b in followed) == 1  # one face, never a duplicate box
    # Where both found it, it is the same face.
    for mine, full in zip(followed, scanned, strict=True):
        if mine and full:
            assert mine[0].intersection(full[0]) > 0.5 * min(mine[0].area, full[0].area)


def test_most_frames_search_only_the_windows(clip):
    follower = FaceFollower()
    full_scans = 0
    for g in clip:
        follower.detect(g)
        full_scans += follower.last_was_full_scan
    # The first frame is scanned whole; after that only a lost face triggers a whole scan.
    assert 1 <= full_scans <= 0.1 * len(clip)


def _paste(frame: np.ndarray, face: np.ndarray, x: int, y: int) -> np.ndarray:
    out = frame.copy()
    out[y:y + face.shape[0], x:x + face.shape[1]] = face
    return out


@pytest.fixture(scope="module")
def face_patch(astronaut_bgr) -> np.ndarray:
    return cv2.cvtColor(astronaut_bgr[20:240, 120:330], cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    """A real 640x480 photo without faces (a cup of coffee)."""
    from skimage import data

    return cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY), (640, 480))


def test_a_face_entering_the_picture_is_found_within_one_scan_cycle(face_patch, background):
    settings = LiveSettings()
    one = _paste(background, face_patch, 20, 40)
    two = _paste(one, face_patch, 400, 200)
    follower = FaceFollower(settings)
    for _ in range(7):  # the first face is known and followed
        assert len(follower.detect(one)) == 1
    for i in range(settings.full_scan_every):
        if len(follower.detect(two)) == 2:
            break
    else:
        pytest.fail(f"the second face was not found within {settings.full_scan_every} frames")
    assert not follower.last_was_full_scan  # found by a part of the scan, not a whole one


def test_a_face_that_jumps_away_is_found_again_at_once(face_patch, background):
    settings = LiveSettings(lost_after=1)
    follower = FaceFollower(settings)
    for _ in range(3):
        (box,) = follower.detect(_paste(background, face_patch, 20, 40))
    (moved,) = follower.detect(_paste(background, face_patch, 410, 250))
    assert follower.last_was_full_scan and moved.x > 300 and moved.y > 200


def test_no_face_means_a_whole_scan_every_frame(background):
    follower = FaceFollower()
    for _ in range(3):
        assert follower.detect(background) == [] and follower.last_was_full_scan


def test_scan_parts_cover_every_size_once_in_order():
    ranges = size_ranges((240, 320), parts=6, scale_factor=1.1, min_px=24)
    assert len(ranges) == 6
    assert ranges[0][0] == 24 and ranges[-1][1] >= 240
    for (low, high), (next_low, _) in zip(ranges, ranges[1:]):
        assert low < high and next_low <= high  # contiguous: the size at a boundary is in both
    # Small faces cost more per size, so the first parts span fewer sizes.
    assert ranges[0][1] / ranges[0][0] < ranges[-1][1] / ranges[-1][0]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="full_scan_every"):
        LiveSettings(full_scan_every=0)
    with pytest.raises(ValueError, match="detect_side"):
        LiveSettings(detect_side=10)


def test_reset_forgets_the_faces(face_patch, background):
    follower = FaceFollower()
    frame = _paste(background, face_patch, 20, 40)
    follower.detect(frame)
    follower.detect(frame)
    assert not follower.last_was_full_scan
    follower.reset()
    follower.detect(frame)
    assert follower.last_was_full_scan
    assert isinstance(follower.detect(frame)[0], Box)
