"""Every picture the package draws with OpenCV: boxes and labels, numbered photos, the FPS patch,
face grids."""

from __future__ import annotations

import cv2
import numpy as np

from .config import IMAGE_SIZE, UNCERTAIN_BELOW
from .labels import COLOURS, EMOTIONS, UNCERTAIN
from .recognizer import Face

# The Photo page shows a photo about this wide (its column beside the table, in a 1400 px
# window); numbers and labels are drawn for that size, whatever the faces' sizes, so they read
# the same on every face.
PHOTO_DISPLAY_WIDTH = 640
# Text height on the displayed photo, in its pixels, and the least in the photo's own pixels
# (a small photo is shown enlarged, but its download is seen at its own size).
PHOTO_TEXT_PX = 14
MIN_TEXT_PX = 12
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_PX = 22  # the height of a digit at font scale 1


def annotate(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of the BGR image with a box and 'label NN%' drawn for each face."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    # Line and text sizes follow the image, so labels stay legible on small and large photos.
    base = max(out.shape[:2])
    thickness = max(1, base // 400)
    for face in faces:
        b = face.box
        colour = COLOURS.get(face.shown_label, (255, 255, 255))
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, thickness + 1)
        # A live face keeps its label for a moment after its average has dropped (hysteresis):
        # then it is named without a figure that would contradict it.
        text = (f"{face.label} {face.confidence:.0%}"
                if not face.uncertain and face.confidence >= UNCERTAIN_BELOW else face.shown_label)
        scale = max(0.4, min(2.0, b.w / 160))
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = b.y - th - baseline - 4 if b.y - th - baseline - 4 >= 0 else b.y + b.h
        cv2.rectangle(out, (b.x, top), (b.x + tw + 6, top + th + baseline + 4), colour, -1)
        cv2.putText(out, text, (b.x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    return out


def text_colour(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on a background of this colour."""
    b, g, r = bgr
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def photo_text_px(width: int, display_width: int = PHOTO_DISPLAY_WIDTH) -> int:
    """The height of the photo's numbers and labels in its own pixels, for a photo `width` wide."""
    return max(MIN_TEXT_PX, round(PHOTO_TEXT_PX * width / display_width))


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def photo_tags(faces: list[Face], shape: tuple[int, ...],
               display_width: int = PHOTO_DISPLAY_WIDTH) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Where each face's tag goes, and what it says: (text, (x0, y0, x1, y1)) per face, in order.

    The tag is the face's number (1, 2, ... as in the results table) and, where it fits above or
    below the box without covering another face or tag, its label: "3 happy 97%". Where it does
    not (small faces side by side), the number alone.
    """
    height, width = shape[:2]
    text_px = photo_text_px(width, display_width)
    scale, thick = text_px / _FONT_PX, max(1, round(text_px / 10))
    pad = max(2, text_px // 4)
    boxes = [(f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h) for f in faces]
    placed: list[tuple[int, int, int, int]] = []
    tags = []
    for i, face in enumerate(faces):
        b, number = face.box, str(i + 1)
        label = UNCERTAIN if face.uncertain else f"{face.label} {face.confidence:.0%}"
        others = boxes[:i] + boxes[i + 1:]
        chosen = None
        for text in (f"{number} {label}", number):
            (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
            w, h = tw + 2 * pad, th + base + 2 * pad
            x = min(max(0, b.x - thick), max(0, width - w))
            spots = [b.y - h - thick, b.y + b.h + thick]  # above the box, below it
            if text == number:
                spots.append(b.y + thick)  # inside its top edge, as a last resort
            for y in spots:
                rect = (x, y, x + w, y + h)
                if y < 0 or y + h > height:
                    continue
                if not any(_overlaps(rect, o) for o in others + placed):
                    chosen = (text, rect)
                    break
            if chosen:
                break
        if chosen is None:  # crowded all round: the number inside the box, over whatever is there
            (tw, th), base = cv2.getTextSize(number, _FONT, scale, thick)
            chosen = (number, (b.x, b.y, b.x + tw + 2 * pad, b.y + th + base + 2 * pad))
        placed.append(chosen[1])
        tags.append(chosen)
    return tags


def annotate_photo(image: np.ndarray, faces: list[Face],
                   display_width: int = PHOTO_DISPLAY_WIDTH) -> np.ndarray:
    """A copy of the BGR photo with each face boxed and numbered (1, 2, ... in `faces`' order),
    with its label beside the number where there is room; sized for the photo as displayed."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    text_px = photo_text_px(out.shape[1], display_width)
    scale, thick = text_px / _FONT_PX, max(1, round(text_px / 10))
    line = max(2, round(text_px / 7))
    pad = max(2, text_px // 4)
    tags = photo_tags(faces, out.shape, display_width)
    for face in faces:
        b = face.box
        colour = COLOURS.get(face.shown_label, (255, 255, 255))
        # A dark edge under the coloured one keeps light boxes visible on light backgrounds.
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 0, 0), line + 2)
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, line)
    for face, (text, (x0, y0, x1, y1)) in zip(faces, tags):
        colour = COLOURS.get(face.shown_label, (255, 255, 255))
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, -1)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 0), 1)
        (_, th), _ = cv2.getTextSize(text, _FONT, scale, thick)
        cv2.putText(out, text, (x0 + pad, y0 + pad + th), _FONT, scale, text_colour(colour),
                    thick, cv2.LINE_AA)
    return out


def draw_fps(image: np.ndarray, fps: float) -> None:
    """FPS in the top-left corner, white on a dark patch so it reads on any background (in place)."""
    text = f"{fps:4.1f} fps"
    scale = max(0.4, image.shape[1] / 1280)
    thickness = max(1, image.shape[1] // 640)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(image, (0, 0), (tw + 8, th + base + 8), (30, 30, 30), -1)
    cv2.putText(image, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)


def face_grid(
    images: np.ndarray,
    labels: np.ndarray,
    per_class: int = 8,
    seed: int = 0,
    gap: int = 2,
    margin: int = 72,
) -> np.ndarray:
    """A gray picture: one row per emotion, named on the left, of `per_class` random faces of it."""
    rng = np.random.default_rng(seed)
    cell = IMAGE_SIZE + gap
    sheet = np.full((len(EMOTIONS) * cell - gap, margin + per_class * cell - gap), 255, np.uint8)
    for row, name in enumerate(EMOTIONS):
        y = row * cell
        cv2.putText(
            sheet,
            name,
            (4, y + IMAGE_SIZE // 2 + 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            0,
            1,
            cv2.LINE_AA,
        )
        index = np.flatnonzero(labels == row)
        # A class with fewer faces than columns leaves the rest of its row blank.
        pick = rng.choice(index, size=min(per_class, len(index)), replace=False)
        for col, i in enumerate(pick):
            x = margin + col * cell
            sheet[y : y + IMAGE_SIZE, x : x + IMAGE_SIZE] = images[i]
    return sheet
