"""The one estimate per live face: a time-based average, hysteresis, "uncertain"; and that the
overlay, the readout, the timeline and the speech all show it."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from emotion.config import UNCERTAIN_BELOW
from emotion.faces import Box
from emotion.labels import COLOURS, EMOTIONS, UNCERTAIN
from emotion.live import LiveProcessor
from emotion.tracking import LiveFace
from emotion.timeline import Band, Timeline
from emotion.smoothing import HOLD_S, SMOOTHING_S, EmotionSmoother
from emotion.speech import SpeechPolicy


def one_hot(name: str, p: float = 0.9) -> np.ndarray:
    """Probabilities with `p` on `name` and the rest spread evenly."""
    out = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1))
    out[EMOTIONS.index(name)] = p
    return out


def step(t: float, at: float = 3.0) -> np.ndarray:
    """happy until `at` seconds, surprise after."""
    return one_hot("happy") if t < at else one_hot("surprise")


def run(signal, fps: float, seconds: float, smoother: EmotionSmoother | None = None):
    """(times, estimates) of a smoother fed `signal(t)` at `fps` for `seconds`."""
    smoother = smoother or EmotionSmoother()
    times = [i / fps for i in range(round(seconds * fps))]
    return times, [smoother.update(signal(t), t) for t in times]


def switch_time(times, estimates, label: str) -> float:
    return next(t for t, e in zip(times, estimates) if e.shown == label)


def test_the_average_is_the_same_at_10_and_30_fps():
    """Sampled at 10 or 30 fps, the same signal gives the same average at the same moments: its
    weights are set by seconds, not by frames (a 6-frame mean spans 0.6 s at 10 fps, 0.2 s at 30).
    The only difference is where within a frame the step fell: a frame stands for the time since
    the one before, 0.1 s at 10 fps, and that difference fades with the average."""
    t10, e10 = run(step, 10, 6)
    t30, e30 = run(step, 30, 6)
    at30 = dict(zip((round(t, 3) for t in t30), e30))
    one_frame = 1 - np.exp(-0.1 / SMOOTHING_S)
    for t, e in zip(t10, e10):
        gap = np.abs(e.probabilities - at30[round(t, 3)].probabilities).max()
        fade = 1.0 if t < 3 else np.exp(-(t - 3) / SMOOTHING_S)
        assert gap <= (1e-6 if t < 3 else one_frame * fade + 1e-6), (t, gap)
    # A step takes over after the average crosses and the hold passes, at either rate.
    s10, s30 = switch_time(t10, e10, "surprise") - 3, switch_time(t30, e30, "surprise") - 3
    assert abs(s10 - s30) <= 0.1 + 1e-9, (s10, s30)
    assert HOLD_S <= s30 <= HOLD_S + SMOOTHING_S, s30  # follows within about a second


def test_noise_is_removed_alike_at_10_and_30_fps():
    """A face read as happy 70% of the frames and neutral 30%, at random: the raw label flickers
    at any rate; the shown one stays happy at both, but for a rare run of neutral frames long
    enough to be real (the page's target: at most one change every 4 s)."""
    for fps in (10, 30):
        rng = np.random.default_rng(fps)
        times, estimates = run(lambda t: one_hot("neutral" if rng.random() < 0.3 else "happy", 0.8),
                               fps, 20)
        raw = [e.raw for e in estimates]
        assert sum(a != b for a, b in zip(raw, raw[1:])) > 0.2 * len(raw)
        # After the start (the first frame is shown as it comes, whatever it is).
        shown = [e.shown for t, e in zip(times, estimates) if t >= 2]
        assert sum(a != b for a, b in zip(shown, shown[1:])) <= 2, (fps, "".join(s[0] for s in shown))
        assert shown.count("happy") >= 0.9 * len(shown)


def test_hysteresis_needs_a_lead_held_for_hold_s():
    """A blip of another emotion shorter than the hold changes nothing; one that lasts does."""
    smoother = EmotionSmoother(smoothing_s=0.0, hold_s=0.5)  # no averaging: the hold alone
    for i in range(10):  # a face seen for a second
        assert smoother.update(one_hot("happy"), i / 10).shown == "happy"
    assert smoother.update(one_hot("sad"), 1.1).shown == "happy"
    assert smoother.update(one_hot("sad"), 1.4).shown == "happy"
    assert smoother.update(one_hot("happy"), 1.5).shown == "happy"  # back: the challenge ends
    assert smoother.update(one_hot("sad"), 1.6).shown == "happy"  # a new challenge starts here
    assert smoother.update(one_hot("sad"), 2.0).shown == "happy"
    assert smoother.update(one_hot("sad"), 2.1).shown == "sad"  # led for 0.5 s
    # Alternating challengers never hold the lead long enough.
    for i, name in enumerate(["angry", "fear"] * 5):
        assert smoother.update(one_hot(name), 2.2 + 0.1 * i).shown == "sad"


def test_a_small_lead_does_not_take_over():
    """Two emotions the model splits a face between: a lead under the margin, however long, does
    not change the label; a clear lead does."""
    def mix(happy: float, neutral: float) -> np.ndarray:
        p = np.full(len(EMOTIONS), (1 - happy - neutral) / 5)
        p[EMOTIONS.index("happy")], p[EMOTIONS.index("neutral")] = happy, neutral
        return p

    smoother = EmotionSmoother(smoothing_s=0.0, hold_s=0.5, margin=0.05)
    assert smoother.update(mix(0.5, 0.4), 0.0).shown == "happy"
    for i in range(1, 30):
        assert smoother.update(mix(0.44, 0.47), i / 10).shown == "happy"  # neutral ahead by 0.03
    shown = [smoother.update(mix(0.42, 0.5), 3 + i / 10).shown for i in range(10)]
    assert shown[-1] == "neutral"


def test_a_face_below_the_threshold_is_uncertain_and_names_no_emotion():
    spread = np.full(len(EMOTIONS), 1 / len(EMOTIONS))
    spread[EMOTIONS.index("fear")] += 0.1
    spread /= spread.sum()
    assert spread.max() < UNCERTAIN_BELOW
    times, estimates = run(lambda t: one_hot("happy") if t < 2 else spread, 15, 5)
    assert estimates[0].shown == "happy" and estimates[-1].shown == UNCERTAIN
    last = estimates[-1]
    assert last.label == "fear" and last.confidence == pytest.approx(spread.max(), abs=1e-3)
    # Uncertainty too waits for the hold: no flash of "uncertain" while a face changes.
    assert switch_time(times, estimates, UNCERTAIN) >= 2 + HOLD_S - 1e-9


def test_a_new_face_is_shown_at_once_and_an_odd_first_frame_is_soon_forgotten():
    smoother = EmotionSmoother()
    assert smoother.update(one_hot("angry"), 7.0).shown == "angry"
    shown = [smoother.update(one_hot("happy"), 7.0 + i / 15).shown for i in range(1, 15)]
    assert shown[2:] == ["happy"] * 12, shown  # not held for hold_s: nothing was shown for long


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="seconds"):
        EmotionSmoother(smoothing_s=-1)


def test_live_face_shows_the_held_label_not_the_top_probability():
    """During a challenge the overlay keeps the held label (and its own confidence)."""
    face = LiveFace(Box(0, 0, 10, 10), "happy", 0.35, {**dict.fromkeys(EMOTIONS, 0.1),
                                                       "happy": 0.35, "sad": 0.45},
                    face_id=1, shown="happy")
    assert face.shown_label == "happy" and not face.uncertain  # 35% but held by hysteresis
    unsure = LiveFace(Box(0, 0, 10, 10), "sad", 0.3, {}, face_id=1, shown=UNCERTAIN)
    assert unsure.uncertain and unsure.shown_label == UNCERTAIN
    assert unsure.to_dict()["shown"] == UNCERTAIN


def test_uncertain_is_never_spoken():
    clock = [0.0]
    policy = SpeechPolicy(hold_s=0.5, cooldown_s=0.0, clock=lambda: clock[0])
    said = []
    for label in ["happy"] * 10 + [UNCERTAIN] * 20 + ["happy"] * 10:
        clock[0] += 0.1
        said.append(policy.update(label))
    # happy once; "uncertain" never; happy again is not news.
    assert [s for s in said if s] == ["happy"]


# With the real model: what the overlay drew, the readout and the timeline are one estimate.

@pytest.fixture(scope="module")
def recognizer(model_path):
    from emotion.recognizer import EmotionRecognizer

    return EmotionRecognizer(model_path)


def _label_colour_share(frame: np.ndarray, label: str, box: Box) -> float:
    """Share of pixels just above or below the face's box in the label's colour (its tag)."""
    above = frame[max(0, box.y - 40):box.y, box.x:box.x + box.w]
    below = frame[box.y + box.h:box.y + box.h + 40, box.x:box.x + box.w]
    area = np.concatenate([above.reshape(-1, 3), below.reshape(-1, 3)])
    return float(np.mean(np.all(np.abs(area.astype(int) - COLOURS[label]) <= 2, axis=1)))


class ScriptedRecognizer:
    """The real recognizer's face detection with the classifier's answers scripted by time, so
    that a test knows what the readout must go through: a real box, a real overlay."""

    def __init__(self, recognizer, script):
        self.recognizer, self.script, self.t = recognizer, script, 0.0
        self.settings = recognizer.settings  # its detection settings, which the live path uses

    def classify(self, crops):
        return np.array([self.script(self.t) for _ in crops])


def test_overlay_readout_and_timeline_agree_on_the_main_face(recognizer, astronaut_bgr):
    """Frame after frame through happy, sad, unsure and happy again, on a real face: the main
    face's label drawn on the frame, the stats' main_label (the page's readout), the timeline's
    latest main row and band are always the same; "uncertain" is drawn as such."""
    frame = cv2.resize(astronaut_bgr, (640, 480))
    spread = np.full(len(EMOTIONS), 1 / len(EMOTIONS))
    spread[EMOTIONS.index("sad")] += 0.05
    spread /= spread.sum()
    script = ScriptedRecognizer(recognizer, lambda t: one_hot("happy") if t < 1.5 or t >= 4.5
                                else one_hot("sad") if t < 3 else spread)
    processor = LiveProcessor(script, timeline_interval_s=0.5)
    processor.follower.detect = lambda gray, boxes=recognizer.detector.detect(frame): list(boxes)
    seen = []
    for i in range(60):
        script.t = i / 10
        result = processor.process(frame, t=script.t)
        main = result.main_face
        stats = processor.stats()
        row = [e for e in processor.timeline.entries() if e.main][-1]
        assert stats.main_label == main.shown_label == row.label, i
        assert stats.main_changes[-1][1] == main.shown_label
        assert processor.timeline.main_bands()[-1].label == main.shown_label
        # The frame itself: the tag's colour is the shown label's.
        assert _label_colour_share(result.frame, main.shown_label, main.box) > 0.05, i
        if not seen or seen[-1] != main.shown_label:
            seen.append(main.shown_label)
    assert seen == ["happy", "sad", UNCERTAIN, "happy"]
    assert [c[1] for c in processor.stats().main_changes] == seen


def test_a_face_missed_for_a_frame_keeps_the_readout(recognizer, astronaut_bgr):
    """The detector missing the face for a frame does not flash "none"; gone for longer, it does."""
    frame = cv2.resize(astronaut_bgr, (640, 480))
    boxes = recognizer.detector.detect(frame)
    processor = LiveProcessor(ScriptedRecognizer(recognizer, lambda t: one_hot("happy")))
    present = [True] * 10 + [False] * 2 + [True] * 5 + [False] * 15
    readout = []
    for i, here in enumerate(present):
        processor.follower.detect = lambda gray, here=here: list(boxes) if here else []
        processor.process(frame, t=i / 10)
        readout.append(processor.stats().main_label)
    assert readout[:17] == ["happy"] * 17
    assert readout[-1] is None and readout.index(None) >= 17 + 4  # after hold_s of absence
    assert [c[1] for c in processor.stats().main_changes] == ["happy", None]


def test_the_main_face_does_not_swap_between_two_faces_of_about_the_same_size():
    from emotion.tracking import main_face

    a = LiveFace(Box(0, 0, 100, 100), "happy", 0.9, {}, face_id=1)
    b = LiveFace(Box(200, 0, 105, 105), "sad", 0.9, {}, face_id=2)
    assert main_face([a, b]).face_id == 2  # no previous: the largest
    assert main_face([a, b], previous_id=1).face_id == 1  # 10% larger is not enough
    c = LiveFace(Box(200, 0, 150, 150), "sad", 0.9, {}, face_id=2)
    assert main_face([a, c], previous_id=1).face_id == 2


def face(label: str, shown: str | None = None, face_id: int = 1) -> LiveFace:
    return LiveFace(Box(0, 0, 10, 10), label, 0.9,
                    {e: float(p) for e, p in zip(EMOTIONS, one_hot(label))},
                    face_id=face_id, shown=shown or label)


def test_timeline_bands_and_summary():
    timeline = Timeline(interval_s=0.5)
    t = 0.0
    for label, seconds in [("happy", 3.0), ("sad", 2.0)]:
        for _ in range(round(seconds * 10)):
            timeline.add(t, [face(label)], main_id=1)
            t += 0.1
    for _ in range(20):  # 2 s with nobody in view
        timeline.add(t, [], main_id=None)
        t += 0.1
    for _ in range(10):
        timeline.add(t, [face("sad", UNCERTAIN, face_id=2)], main_id=2)
        t += 0.1
    bands = timeline.main_bands()
    assert [b.label for b in bands] == ["happy", "sad", UNCERTAIN]
    assert bands[0] == Band(0.0, 3.0, "happy")
    assert bands[1].start_s == 3.0 and 4.9 <= bands[1].end_s <= 5.0 + 0.75 + 1e-9
    summary = timeline.summary()
    assert summary.duration_s == pytest.approx(t - 0.1)
    assert list(summary.shares) == ["happy", "sad", UNCERTAIN]
    assert sum(summary.shares.values()) == pytest.approx(1.0)
    assert summary.face_s < summary.duration_s - 1.0  # the empty stretch counts for nobody


def test_timeline_reads_safely_while_a_session_writes(in_threads):
    timeline = Timeline(interval_s=0.0, max_entries=500)
    stop = threading.Event()

    def write(k: int):
        try:
            for i in range(3000):
                timeline.add(i * 0.01, [face(EMOTIONS[i // 100 % 7])], main_id=1)
        finally:
            stop.set()

    def read(k: int):
        while not stop.is_set():
            timeline.main_bands(), timeline.summary(), timeline.series(max_points=50)
        return True

    in_threads(lambda k: write(k) if k == 0 else read(k), 3)
    assert len(timeline) == 500
