"""Reading images from paths and bytes, with errors that name the file.

An image's size is read from its header before it is decoded, so that a small file claiming an
enormous picture (a decompression bomb) is refused instead of filling the memory.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np

from . import config
from .errors import ImageError, sentence
from .files import stat_input

WHAT = "an image file"


def check_dimensions(data: bytes, name: str) -> None:
    """ImageError when the header says the picture is larger than the pixel limit; no decoding."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # Pillow's warning is this check's own business
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                width, height = header.size
    except Image.DecompressionBombError:  # Pillow's own limit, above ours: refused all the same
        width = height = None
    except Exception:  # a format Pillow does not know: OpenCV decides below
        return
    limit = config.max_image_pixels()
    if width is None or width * height > limit:
        # Pillow refuses to say the size of a picture over twice its own limit.
        size = (f"{width}x{height} pixels" if width
                else f"over {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels")
        raise ImageError(f"{name}: the picture is {size}, over the {limit / 1e6:g}-megapixel "
                         f"limit; use a smaller copy (or raise {config.MAX_PIXELS_ENV})")


def too_large(name: str, size: int) -> ImageError:
    """The one-line refusal of an image file of `size` bytes, over the file-size limit."""
    limit_mb = config.max_image_bytes() // 1024 // 1024
    return ImageError(f"{name}: {size / 1024 / 1024:.0f} MB is over the {limit_mb} MB limit for "
                      f"an image; use a smaller copy (or raise {config.MAX_IMAGE_MB_ENV})")


def decode_image(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode image bytes (jpg, png, webp, bmp, ...) to a BGR array."""
    if not data:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > config.max_image_bytes():  # uploads arrive as bytes: the limit files have
        raise too_large(name, len(data))
    check_dimensions(data, name)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{name}: not a readable image (expected jpg, png, webp or bmp)")
    if (frames := frame_count(data)) > 1:
        # Only the first frame of an animation or the first page of a TIFF is read: say so
        # (a MultiFrameWarning; the command line prints it as a note).
        warnings.warn(f"{name}: it holds {frames} frames (an animation or a multi-page file); "
                      "only the first is used", MultiFrameWarning, stacklevel=2)
    return image


def _stat_image(path: Path) -> int:
    """The size of the image file at `path`; ImageError naming it when it is not a readable
    regular file under config.max_image_bytes()."""
    info = stat_input(path, WHAT, ImageError)
    if info.st_size > config.max_image_bytes():
        raise too_large(str(path), info.st_size)
    return info.st_size


# JPEG (OpenCV's and Pillow's, which st.image uses) stops at 65,500 px a side.
MAX_JPEG_SIDE = 65_500


def fit_side(image: np.ndarray, max_side: int = MAX_JPEG_SIDE) -> np.ndarray:
    """`image` scaled down so that no side is over `max_side` (a 1x100000 picture is under the
    pixel limit but cannot be a JPEG); the image itself when it fits."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def check_image_file(path: str | Path) -> None:
    """Every check of read_image that needs no decoding (the kind of file, its size, the picture
    size in its header), reading only the header: ImageError naming the file."""
    path = Path(path)
    _stat_image(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise ImageError(sentence(exc, WHAT, path=path)) from None
    if not head:
        raise ImageError(f"{path}: the file is empty")
    check_dimensions(head, str(path))


def frame_count(data: bytes) -> int:
    """How many frames (pages) an image file holds: over 1 for an animated GIF or WebP or a
    multi-page TIFF, of which only the first is read. 1 when the format does not say."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                return int(getattr(picture, "n_frames", 1) or 1)
    except Exception:
        return 1


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR; ImageError naming the file when it is missing or not an image."""
    path = Path(path)
    _stat_image(path)
    limit = config.max_image_bytes()
    try:
        # open() reads paths that cv2.imread cannot (non-ASCII names on some systems); at most
        # one byte over the limit, in case the file grew since the stat.
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ImageError(sentence(exc, WHAT, path=path)) from None
    if len(data) > limit:
        raise too_large(str(path), len(data))
    return decode_image(data, str(path))


class MultiFrameWarning(UserWarning):
    """An image file with several frames, of which only the first is read."""
