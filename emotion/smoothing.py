"""One steady estimate per tracked face: probabilities averaged over time, and a shown label that
changes only when another has led that average for a while.

Everything a person sees or hears of a live face (the overlay, the page's "Main face", the
spoken feedback, the timeline) comes from this estimate, so they cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import UNCERTAIN_BELOW
from .errors import SettingError
from .labels import EMOTIONS, UNCERTAIN

# The average's time constant: a frame's weight halves every 0.35 s whatever the frame rate.
# An exponential average with time constant T removes as much frame-to-frame noise as a plain
# mean over the last 2T, so 0.5 s is "about the last second".
SMOOTHING_S = 0.5
# How long a new label must lead the average before it is shown. Measured on talking_face_clip
# (emotion.clips; README "One readout on the Webcam page") at 10, 15 and 30 fps: with no hold
# the readout changed 1.5 to 2.3 times as often as the expression did on a face the model reads
# as happy in 92% of its frames, 5 to 7 times on one it reads as happy in half of them and
# neutral in the rest. From 0.25 s only the deliberate changes were left on the first; on the
# second from 0.5 s at 15 and 30 fps (0.75 s at 10 fps). Each 0.1 s more delays every real
# change by 0.1 s: with 0.5 s the readout follows one within about a second (0.9 s median,
# 1.0 s at most at 15 fps, on the first face).
HOLD_S = 0.5
# A new emotion challenges the shown one only when its average is this much higher, and takes
# over from "uncertain" only this much over the threshold: on a face the model splits between
# two emotions the averages cross back and forth. On the hardest clip measured (a face read as
# happy in half its frames, neutral in the rest; README) 0.05 cut the readout's changes over
# 30 s at 10, 15 and 30 fps from 56 to 47 in all (30 of them deliberate); 0.1 to 46, but with
# more at 15 fps.
MARGIN = 0.05


@dataclass(frozen=True)
class Estimate:
    """A face's smoothed probabilities, the label shown for it (maybe "uncertain"), and the raw
    label of the latest frame alone (for tests and diagnostics)."""

    probabilities: np.ndarray
    shown: str
    raw: str

    @property
    def label(self) -> str:
        """The emotion behind the shown label: the shown one, or the average's top one when unsure."""
        if self.shown != UNCERTAIN:
            return self.shown
        return EMOTIONS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[EMOTIONS.index(self.label)])


class EmotionSmoother:
    """The estimate of one face, fed its frames' probabilities in time order.

    The average weighs frames by how recent they are in seconds (an exponential average whose
    new-frame weight is 1 - exp(-dt / smoothing_s)), so it behaves the same at 10 and 30 fps.
    The leader is another emotion once its average leads the shown one's by `margin`; "uncertain"
    once the shown emotion's average is under `uncertain_below` (and an emotion leaves
    "uncertain" at `margin / 2` above it). The shown label becomes the leader only once the
    leader has been the same for `hold_s` (hysteresis in time as well as in value), except in the
    face's first `hold_s`, when the label follows the average at once.
    """

    def __init__(self, smoothing_s: float = SMOOTHING_S, hold_s: float = HOLD_S,
                 uncertain_below: float = UNCERTAIN_BELOW, margin: float = MARGIN):
        if smoothing_s < 0 or hold_s < 0:
            raise SettingError("smoothing_s and hold_s must be >= 0 seconds")
        self.smoothing_s = smoothing_s
        self.hold_s = hold_s
        self.uncertain_below = uncertain_below
        self.margin = margin
        self._mean: np.ndarray | None = None
        self._frames = 0
        self._first_t = 0.0
        self._last_t = 0.0
        self._shown: str | None = None
        self._challenger: str | None = None
        self._challenger_since = 0.0

    def _leader(self) -> str:
        """What the average says now, given what is shown: a band, not a line, between labels."""
        mean, below = self._mean, self.uncertain_below
        best = int(np.argmax(mean))
        if self._shown is None:
            return UNCERTAIN if mean[best] < below else EMOTIONS[best]
        if self._shown == UNCERTAIN:
            return EMOTIONS[best] if mean[best] >= below + self.margin / 2 else UNCERTAIN
        held = mean[EMOTIONS.index(self._shown)]
        if best != EMOTIONS.index(self._shown) and mean[best] >= held + self.margin:
            return EMOTIONS[best] if mean[best] >= below else UNCERTAIN
        return UNCERTAIN if held < below else self._shown

    def update(self, probabilities, t: float) -> Estimate:
        """Add one frame's probabilities (seconds `t`, not decreasing) and return the estimate."""
        p = np.asarray(probabilities, np.float64)
        self._frames += 1
        if self._mean is None:
            self._mean, self._first_t = p.copy(), t
        else:
            dt = max(0.0, t - self._last_t)
            weight = 1.0 if self.smoothing_s == 0 else 1.0 - math.exp(-dt / self.smoothing_s)
            # A new face's first frames get a plain mean (1/n) rather than the exponential's
            # small weight, so one odd first frame does not hold the average for a second.
            self._mean += max(weight, 1.0 / self._frames) * (p - self._mean)
        self._last_t = t
        leader = self._leader()
        # While the face is new (younger than the hold) its label follows the average at once:
        # the hold is for changes of a label a person has already been shown for a while.
        settling = t - self._first_t < self.hold_s
        if self._shown is None or leader == self._shown or settling:
            self._shown, self._challenger = leader, None
        else:
            if leader != self._challenger:
                self._challenger, self._challenger_since = leader, t
            if t - self._challenger_since >= self.hold_s - 1e-9:
                self._shown, self._challenger = leader, None
        return Estimate(self._mean.astype(np.float32), self._shown, EMOTIONS[int(np.argmax(p))])
