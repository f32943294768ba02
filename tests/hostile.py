"""A corpus of small hostile inputs: files the product must refuse with one clear line.

    python tests/hostile.py DIR            # writes every file below into DIR (made if missing)

The tests get it through the `hostile` and `hostile_models` fixtures in conftest.py. Every file
is a few kilobytes at most: a decompression bomb is a header claiming a huge picture, and a
"2 GiB file" is made sparse by the test that needs one, never written out.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

FACE_VALUES = 48 * 48
HEADER = "emotion,pixels,Usage"

# What each entry is, and what the product must say about it (the tests check the words).
FILES = {
    "bomb.png": "a few dozen bytes whose PNG header claims 100000x100000 pixels",
    "text.jpg": "a text file named .jpg",
    "truncated.jpg": "the first half of a real JPEG",
    "a_folder.jpg": "a folder named like an image",
    "loop.jpg": "a symbolic link to itself",
    "fifo.jpg": "a named pipe (reading it would wait forever)",
    "unreadable.jpg": "a real JPEG with mode 000 (readable all the same by root)",
    "empty.csv": "an empty file",
    "header_only.csv": "the header line and no rows",
    "label_overflow.csv": "row 3's label is 99999999999999999999999",
    "pixel_overflow.csv": "row 3 has the pixel value 99999999999",
    "one_row.csv": "a single valid Training row",
    "single_class.csv": "20 Training rows, all happy",
    "unreadable_images": "class folders of .png files that are not images",
    "superscript_pixel.csv": "row 3 has the pixel '\u00b2' (a digit to str.isdigit, not to int)",
    "fullwidth_pixel.csv": "row 2 has the pixel '\uff11\uff12' (full-width digits)",
    "fullwidth_label.csv": "row 2's label is '\uff13' (a full-width 3)",
    "not_fer_header.csv": "a CSV whose header is name,value",
    "animated.gif": "a 3-frame animated GIF: only its first frame is read",
    "wide.png": "a 1x70000 PNG: a side over 65,535 px, under the pixel limit",
}
MODELS = {
    "tiny.keras": "a valid 48x48x1 -> 7-way softmax model (the control)",
    "truncated.keras": "the first half of tiny.keras",
    "two_outputs.keras": "2 outputs, no softmax",
    "ten_outputs.keras": "a 10-way softmax",
    "wrong_input.keras": "takes 64x64 colour images",
    "not_softmax.keras": "7 outputs, no softmax",
    "nan_weights.keras": "the control's shape and softmax, its weights NaN",
    "big_config.keras": "the control with a 17 MB config.json (deflated to a few kB)",
    "tiny_padded.keras": "the control with its config.json padded to 2 MB: valid, and loads",
}


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height gray pixels (a decompression
    bomb's calling card): a few dozen bytes, never anything large on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def face_row(label: str = "3", value: str = "7", usage: str = "Training",
             odd_value: str | None = None) -> str:
    """One fer2013.csv row: a flat 48x48 face, its first pixel replaced by `odd_value` if given."""
    values = [value] * FACE_VALUES
    if odd_value is not None:
        values[0] = odd_value
    return f"{label},{' '.join(values)},{usage}"


def _jpeg() -> bytes:
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", face)
    assert ok
    return data.tobytes()


def _csv(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join([HEADER, *rows]) + "\n")


def make_corpus(folder: str | Path) -> dict[str, Path]:
    """Write the hostile files of FILES into `folder`; their paths by name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in FILES}
    jpeg = _jpeg()

    paths["bomb.png"].write_bytes(png_claiming(100_000, 100_000))
    paths["text.jpg"].write_text("this is a text file, not a photo\n")
    paths["truncated.jpg"].write_bytes(jpeg[: len(jpeg) // 2])
    paths["a_folder.jpg"].mkdir(exist_ok=True)
    if not paths["loop.jpg"].is_symlink():
        os.symlink(paths["loop.jpg"].name, paths["loop.jpg"])  # relative: the corpus can move
    if not paths["fifo.jpg"].exists():
        os.mkfifo(paths["fifo.jpg"])
    unreadable = paths["unreadable.jpg"]
    if unreadable.exists():
        unreadable.chmod(stat.S_IWUSR)
    unreadable.write_bytes(jpeg)
    unreadable.chmod(0)

    paths["empty.csv"].write_bytes(b"")
    _csv(paths["header_only.csv"], [])
    _csv(paths["label_overflow.csv"],
         [face_row(), face_row(label="99999999999999999999999"), face_row()])
    _csv(paths["pixel_overflow.csv"], [face_row(), face_row(odd_value="99999999999"), face_row()])
    _csv(paths["one_row.csv"], [face_row()])
    _csv(paths["single_class.csv"], [face_row(value=str(v)) for v in range(20)])

    _csv(paths["superscript_pixel.csv"], [face_row(), face_row(odd_value="\u00b2"), face_row()])
    _csv(paths["fullwidth_pixel.csv"], [face_row(odd_value="\uff11\uff12"), face_row()])
    _csv(paths["fullwidth_label.csv"], [face_row(label="\uff13"), face_row()])
    paths["not_fer_header.csv"].write_text("name,value\nx,1\n")
    from PIL import Image

    frames = [Image.new("RGB", (32, 32), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(paths["animated.gif"], save_all=True, append_images=frames[1:])
    ok, wide = cv2.imencode(".png", np.zeros((1, 70_000), np.uint8))
    paths["wide.png"].write_bytes(wide.tobytes())

    images = paths["unreadable_images"]
    for split in ("train", "test"):
        for cls in ("happy", "sad"):
            (images / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(2):
                (images / split / cls / f"{i}.png").write_bytes(b"not a picture\n" * (i + 1))
    return paths


def make_models(folder: str | Path) -> dict[str, Path]:
    """Write the tiny Keras models of MODELS into `folder` (imports Keras); their paths by name."""
    import keras
    from keras import layers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in MODELS}

    def save(name: str, shape: tuple, *stack) -> None:
        keras.Sequential([keras.Input(shape), *stack]).save(paths[name])

    # Pooling by 8 keeps each model a few kilobytes: 36 values reach the Dense layer.
    save("tiny.keras", (48, 48, 1), layers.MaxPooling2D(8), layers.Flatten(),
         layers.Dense(7, activation="softmax"))
    data = paths["tiny.keras"].read_bytes()
    paths["truncated.keras"].write_bytes(data[: len(data) // 2])
    save("two_outputs.keras", (48, 48, 1), layers.MaxPooling2D(8), layers.Flatten(),
         layers.Dense(2))
    save("ten_outputs.keras", (48, 48, 1), layers.MaxPooling2D(8), layers.Flatten(),
         layers.Dense(10, activation="softmax"))
    save("wrong_input.keras", (64, 64, 3), layers.MaxPooling2D(8), layers.Flatten(),
         layers.Dense(7, activation="softmax"))
    save("not_softmax.keras", (48, 48, 1), layers.MaxPooling2D(8), layers.Flatten(),
         layers.Dense(7))
    nan = keras.Sequential([keras.Input((48, 48, 1)), layers.MaxPooling2D(8), layers.Flatten(),
                            layers.Dense(7, activation="softmax")])
    nan.set_weights([np.full(w.shape, np.nan, w.dtype) for w in nan.get_weights()])
    nan.save(paths["nan_weights.keras"])
    _pad_config(paths["tiny.keras"], paths["big_config.keras"], 17 * 1024 * 1024)
    _pad_config(paths["tiny.keras"], paths["tiny_padded.keras"], 2 * 1024 * 1024)
    return paths


def _pad_config(source: Path, target: Path, size: int) -> None:
    """A copy of the model `source` whose config.json is padded with spaces to `size` bytes:
    still valid JSON, a few kilobytes once deflated."""
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = data + b" " * (size - len(data))
            dst.writestr(item.filename, data)


def is_root() -> bool:
    """Whether this process ignores file permissions (root reads a file of mode 000)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def deny_reading(monkeypatch, *paths: Path) -> None:
    """Make `paths` unreadable to this process: mode 000, and, as root (who ignores that), every
    open() of them raising PermissionError as it would for anyone else.

    `monkeypatch` is pytest's fixture; `open` is patched in builtins and in io (pathlib's).
    """
    import builtins
    import io

    for path in paths:
        if not path.is_dir():
            path.chmod(0)
    if not is_root():
        return
    denied = {os.path.abspath(p) for p in paths}
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/hostile.py DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    made = {**make_corpus(folder), **make_models(folder)}
    for name, path in made.items():
        print(f"{path}: {FILES.get(name) or MODELS[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
