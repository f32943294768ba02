"""Moving test clips made from one photo: pans, zooms and a head that turns, for benchmarks and tests.

A still photo flatters a detector that follows faces (nothing moves) and a real clip cannot ship
with the repository, so the benchmark, the load script and the browser test all use this one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .faces import crop
from .images import read_image
from .labels import EMOTIONS
from .live import LiveProcessor


def _warp(image: np.ndarray, t: float, size: tuple[int, int],
          focus: tuple[float, float]) -> np.ndarray:
    """The frame at phase t in [0, 1): the camera pans and zooms while the head turns and tilts."""
    height, width = image.shape[:2]
    out_w, out_h = size
    # The head turns (yaw) by squeezing one side of the picture: a perspective warp that narrows
    # the far side, by up to about 20 degrees each way.
    yaw = 0.14 * math.sin(2 * math.pi * t * 2)
    squeeze = abs(yaw) * height
    src = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    if yaw >= 0:  # turning to its left: the right edge recedes
        dst = np.float32([[0, 0], [width, squeeze / 2], [width, height - squeeze / 2], [0, height]])
    else:
        dst = np.float32([[0, squeeze / 2], [width, 0], [width, height], [0, height - squeeze / 2]])
    turned = cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (width, height),
                                 borderMode=cv2.BORDER_REPLICATE)
    # The camera: zoom between 1x and 1.4x, pan a tenth of the frame, tilt up to 6 degrees.
    zoom = 1.2 + 0.2 * math.sin(2 * math.pi * t)
    angle = 6 * math.sin(2 * math.pi * t * 3)
    pan_x = 0.1 * out_w * math.sin(2 * math.pi * t * 1.5)
    pan_y = 0.05 * out_h * math.cos(2 * math.pi * t * 1.5)
    # Rotate and zoom about the focus and bring it to the frame's centre, so the face stays in view.
    fx, fy = focus[0] * width, focus[1] * height
    matrix = cv2.getRotationMatrix2D((fx, fy), angle, zoom)
    matrix[0, 2] += pan_x + out_w / 2 - fx
    matrix[1, 2] += pan_y + out_h / 2 - fy
    return cv2.warpAffine(turned, matrix, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)


def moving_clip(image: np.ndarray, frames: int = 150, size: tuple[int, int] = (640, 480),
                focus: tuple[float, float] = (0.5, 0.5)) -> Iterator[np.ndarray]:
    """`frames` BGR frames of `size` (width, height): the photo panned, zoomed, turned and tilted.

    The photo is first scaled to cover the frame, as a webcam picture would; `focus` (fractions of
    its width and height) is the point the camera keeps near the frame's centre, usually the face.
    """
    out_w, out_h = size
    scale = max(out_h / image.shape[0], out_w / image.shape[1])
    fitted = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                        interpolation=cv2.INTER_AREA)
    for i in range(frames):
        yield _warp(fitted, i / frames, size, focus)


def astronaut_clip(frames: int = 150, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """The moving clip of scikit-image's astronaut photo (a real smiling face, no download)."""
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    # Her face is centred at about 43% of the photo's width and 22% of its height.
    return list(moving_clip(photo, frames, size, focus=(0.43, 0.3)))


def write_y4m(frames: list[np.ndarray], path, fps: int = 30) -> None:
    """The frames as an uncompressed YUV4MPEG2 file, as Chromium's fake camera plays it."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def _backdrop(size: tuple[int, int], seed: int) -> np.ndarray:
    """A soft, blotchy gray backdrop (a room out of focus), the same for every frame."""
    out_w, out_h = size
    rng = np.random.default_rng(seed)
    small = rng.uniform(70, 170, (6, 8)).astype(np.float32)
    return cv2.GaussianBlur(cv2.resize(small, (out_w, out_h), interpolation=cv2.INTER_CUBIC),
                            (0, 0), 25)


def talking_face_clip(faces: list[np.ndarray], seconds_each: float = 4.0, fps: int = 30,
                      size: tuple[int, int] = (640, 480), face_height: float = 0.55,
                      seed: int = 0) -> list[np.ndarray]:
    """BGR frames showing each gray face in turn for `seconds_each`, like a person at a webcam.

    Each face (a FER2013 48x48 crop, say) is scaled up to `face_height` of the frame at the same
    place, so a tracker keeps one id across the change of expression, and moves as a talking head
    does: it sways a few pixels, nods and tilts a few degrees, breathes in scale, the light
    flickers, and the sensor adds noise (seeded, so the clip is the same every time).
    """
    out_w, out_h = size
    rng = np.random.default_rng(seed)
    backdrop = _backdrop(size, seed)
    per_face = round(seconds_each * fps)
    frames = []
    for index, face in enumerate(faces):
        gray = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        # A margin of the face's own edge pixels: FER2013 crops are tight, and Haar needs a little
        # of the head around the eyes and mouth.
        pad = gray.shape[0] // 6
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        side = round(face_height * out_h * padded.shape[0] / gray.shape[0])
        big = cv2.resize(padded, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        # Feather the square's edge into the backdrop.
        mask = np.zeros((side, side), np.float32)
        edge = side // 10
        mask[edge:-edge, edge:-edge] = 1
        mask = cv2.GaussianBlur(mask, (0, 0), edge / 2)
        for i in range(per_face):
            t = (index * per_face + i) / fps
            angle = 3 * math.sin(2 * math.pi * t / 2.3)
            scale = 1 + 0.03 * math.sin(2 * math.pi * t / 3.1)
            dx = 10 * math.sin(2 * math.pi * t / 2.7)
            dy = 6 * math.sin(2 * math.pi * t / 1.9) + 3 * math.sin(2 * math.pi * t * 1.3)
            matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
            matrix[0, 2] += out_w / 2 - side / 2 + dx
            matrix[1, 2] += out_h / 2 - side / 2 + dy
            placed = cv2.warpAffine(big, matrix, size, flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR)
            frame = alpha * placed + (1 - alpha) * backdrop
            frame = frame * (1 + 0.04 * math.sin(2 * math.pi * t / 1.7))
            frame += rng.normal(0, 5, frame.shape)
            frames.append(cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8),
                                       cv2.COLOR_GRAY2BGR))
    return frames


@dataclass(frozen=True)
class PickedFace:
    """A face chosen for a clip: its file, and how the model saw it in the clip's motion."""

    path: Path
    emotion: str
    mean_probability: float  # of `emotion`, over the sampled frames
    right_share: float  # share of the sampled frames whose top emotion is `emotion`


def pick_talking_face(recognizer, folder: str | Path, emotion: str, seconds: float = 4.0,
                      band: tuple[float, float] = (0.6, 0.92),
                      right: tuple[float, float] = (0.7, 0.95),
                      limit: int = 300) -> PickedFace | None:
    """The first face (in file-name order) of `folder`/`emotion` that, moving for `seconds` as in
    talking_face_clip at 30 fps through the live path (emotion.live, as the Webcam page sees it),
    is found in every frame and recognised as `emotion` in most frames but not all (a share
    inside `right`), with a mean probability inside `band`: clearly that emotion on average,
    with the frame-to-frame hesitation of a real face talking, not the certainty of a posed
    photo that never flickers. Deterministic for a given model; None when no face qualifies.
    """
    index = EMOTIONS.index(emotion)
    files = sorted(p for p in (Path(folder) / emotion).iterdir() if p.suffix.lower() in
                   (".png", ".jpg", ".jpeg"))[:limit]
    for path in files:
        gray = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2GRAY)
        # Cheap first: the still crop must be this emotion, already with some hesitation.
        still = recognizer.classify([gray])[0]
        if int(np.argmax(still)) != index or not band[0] <= still[index] <= band[1]:
            continue
        processor = LiveProcessor(recognizer, draw_fps=False)
        probs = []
        for i, frame in enumerate(talking_face_clip([gray], seconds_each=seconds, fps=30)):
            faces = processor.process(frame, t=i / 30).faces
            if len(faces) != 1:
                break
            probs.append(recognizer.classify([crop(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
                                                    faces[0].box)])[0])
            if i == 14 and np.mean(np.argmax(probs, axis=1) == index) < right[0] / 2:
                break  # plainly another emotion in this light and motion: do not finish
        if len(probs) < round(seconds * 30):
            continue
        probs = np.asarray(probs)
        share = float(np.mean(probs.argmax(axis=1) == index))
        mean = float(probs[:, index].mean())
        if right[0] <= share <= right[1] and band[0] <= mean <= band[1]:
            return PickedFace(path, emotion, mean, share)
    return None
