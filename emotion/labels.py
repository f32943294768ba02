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

# BGR, as OpenCV draws.
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (150, 60, 150),
    "happy": (0, 200, 255),
    "sad": (200, 110, 30),
    "surprise": (0, 140, 255),
    "neutral": (180, 180, 180),
}

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


def label_id(name: str) -> int:
    """The FER2013 id of an emotion name; ValueError naming the expected names otherwise."""
    key = canonical(name)
    if key is None:
        raise ValueError(
            f"unknown emotion {name!r}: expected one of {', '.join(EMOTIONS)}"
            f" (or the aliases {', '.join(sorted(ALIASES))})"
        )
    return EMOTIONS.index(key)
