"""Reading images from paths and bytes, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageError(ValueError):
    """An input that is not a readable image."""


def decode_image(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode image bytes (jpg, png, webp, bmp, ...) to a BGR array."""
    if not data:
        raise ImageError(f"{name}: the file is empty")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{name}: not a readable image (expected jpg, png, webp or bmp)")
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR; ImageError naming the file when it is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    # np.fromfile + imdecode reads paths that cv2.imread cannot (non-ASCII names on some systems).
    return decode_image(np.fromfile(str(path), dtype=np.uint8).tobytes(), str(path))
