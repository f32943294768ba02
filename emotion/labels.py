"""The seven FER2013 emotions: names, folder aliases, colours and spoken phrases."""

from __future__ import annotations

# FER2013's own order: the id of a label is its index here.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# Other public copies of FER2013 (and a few of its relatives) name the class folders so.
ALIASES: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
}

# The one palette: every picture and chart of an emotion uses its colour from here (the overlay,
# the timeline, the Photo page's bars), as RGB hex; chosen so that no two are easily confused.
PALETTE: dict[str, str] = {
    "angry": "#d62728",     # red
    "disgust": "#2ca02c",   # green
    "fear": "#9467bd",      # purple
    "happy": "#ffbf00",     # amber
    "sad": "#1f77b4",       # blue
    "surprise": "#17becf",  # teal
    "neutral": "#8c8c8c",   # grey
}
# A face whose calibrated confidence is below config.UNCERTAIN_BELOW is shown so, in this colour.
UNCERTAIN = "uncertain"
UNCERTAIN_COLOUR = "#d9d9d9"  # light grey: readable on video, visible on a white chart


def _bgr(hex_colour: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


# The same colours as BGR, as OpenCV draws.
COLOURS: dict[str, tuple[int, int, int]] = {name: _bgr(h) for name, h in PALETTE.items()}
COLOURS[UNCERTAIN] = _bgr(UNCERTAIN_COLOUR)


def palette(names=EMOTIONS) -> list[str]:
    """The hex colours of `names`, in order: a chart's colour range."""
    return [PALETTE.get(n, UNCERTAIN_COLOUR) for n in names]


PHRASES: dict[str, str] = {
    "angry": "You look angry",
    "disgust": "You look disgusted",
    "fear": "You look afraid",
    "happy": "You look happy",
    "sad": "You look sad",
    "surprise": "You look surprised",
    "neutral": "You look calm",
}


def canonical(name: str) -> str | None:
    """The canonical emotion for a folder or label name (any case, aliases allowed), or None."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in EMOTIONS else None
