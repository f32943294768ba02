"""Moving test clips made from one photo: pans, zooms and a head that turns, for benchmarks and tests.

A still photo flatters a detector that follows faces (nothing moves) and a real clip cannot ship
with the repository, so the benchmark, the load script and the browser test all use this one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np


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
