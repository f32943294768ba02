"""FER2013 as image folders (ROOT/train/<class>/*, ROOT/test/..., or ROOT/<class>/*), read as
48x48 gray and cached by content (`cache`)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from .. import config
from ..config import IMAGE_SIZE
from ..images import ImageError, check_dimensions, too_large
from ..labels import ALIASES, EMOTIONS, canonical
from ..preprocess import to_gray48
from .cache import cache_path, content_key, read_cache, write_cache
from .dataset import DataError, Dataset, LoadReport, Split, _missing, _os_problem

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
# Kaggle's folder download has PublicTest and PrivateTest together in test/; a validation folder
# goes by either name.
FOLDER_SPLITS = {"train": "train", "training": "train", "validation": "val", "val": "val", "test": "test"}


def _class_dirs(folder: Path) -> list[tuple[int, Path]]:
    """The class sub-folders of a split folder, with their label ids; unknown names are an error."""
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = canonical(sub.name)
        if name is None:
            raise DataError(
                f"{sub}: unknown class folder {sub.name!r}; expected folders named "
                f"{', '.join(EMOTIONS)} (or {', '.join(sorted(ALIASES))}), in any case"
            )
        found.append((EMOTIONS.index(name), sub))
    return found


def _split_folders(root: Path) -> dict[str, Path]:
    """Map split names to folders: ROOT/train, ROOT/test, ROOT/val(idation), or ROOT itself."""
    splits = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        split = FOLDER_SPLITS.get(sub.name.lower())
        if split:
            splits[split] = sub
    if splits:
        return splits
    if any(canonical(p.name) for p in root.iterdir() if p.is_dir()):
        return {"test": root}  # a bare folder of class folders is data to evaluate on
    raise DataError(
        f"{root}: found neither split folders (train/, test/, validation/) nor class folders "
        f"({', '.join(EMOTIONS)})"
    )


def image_files(root: Path) -> list[tuple[str, int, Path]]:
    files = []
    try:
        for split, folder in _split_folders(root).items():
            for label, class_dir in _class_dirs(folder):
                for f in sorted(class_dir.iterdir()):
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                        files.append((split, label, f))
    except OSError as exc:  # a folder that cannot be listed: name it, no traceback
        raise DataError(_os_problem(Path(exc.filename or root), exc)) from None
    if not files:
        raise DataError(f"{root}: no images found in its class folders")
    return files



def _progress(iterable, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
                disable=total < 2000)


def _read_face(path: Path) -> tuple[np.ndarray | None, str]:
    """One dataset image as OpenCV reads it, or None and why not (never decoding a bomb)."""
    try:
        size = path.stat().st_size
        if size > config.max_image_bytes():
            raise too_large(str(path), size)
        with open(path, "rb") as f:
            check_dimensions(f.read(1 << 16), str(path))  # the header is at the start
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except ImageError as exc:
        return None, str(exc).removeprefix(f"{path}: ")
    except PermissionError:
        return None, "permission denied"
    except (OSError, cv2.error) as exc:
        return None, f"not readable ({exc.__class__.__name__})"
    if image is None or image.size == 0:
        return None, "not a readable image"
    return image, ""


def load_folder(root: str | Path, cache: bool = True) -> Dataset:
    """Read image folders (ROOT/train/<class>/*, ROOT/test/..., or ROOT/<class>/*) as 48x48 gray."""
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, "folder")
    files = image_files(root)
    key = content_key(files, root) if cache else ""
    cache_file = cache_path(key)
    if cache and cache_file.is_file():
        try:
            cached = read_cache(cache_file, root)
        except Exception:  # noqa: BLE001 - whatever is wrong with a cache, it is rebuilt
            cached = None
        # An empty one was written by older versions for a folder of unreadable images.
        if cached is not None and cached.total():
            return cached
        cache_file.unlink(missing_ok=True)  # a damaged or empty cache is rebuilt, never trusted

    report = LoadReport(source=str(root))
    per_split: dict[str, tuple[list, list, list]] = {}
    first_skip = ""
    for split, label, f in _progress(files, len(files), f"reading {root.name}"):
        image, why = _read_face(f)
        if image is None:
            report.unreadable.append(str(f))
            first_skip = first_skip or f"{f}: {why}"
            print(f"warning: skipped {f}: {why}", file=sys.stderr)
            continue
        if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            report.resized += 1
            size = f"{image.shape[1]}x{image.shape[0]}"
            report.not_48x48_sizes[size] = report.not_48x48_sizes.get(size, 0) + 1
        images, labels, sources = per_split.setdefault(split, ([], [], []))
        images.append(to_gray48(image))
        labels.append(label)
        sources.append(str(f.relative_to(root)))
    if not per_split:  # nothing to train, evaluate or audit on: never an empty dataset
        raise DataError(
            f"{root}: none of its {len(files)} image files could be read, all {len(files)} "
            f"skipped (the first, {first_skip}); give a folder of jpg or png faces"
        )
    splits = {
        name: Split(np.stack(images), np.array(labels, np.int64), sources)
        for name, (images, labels, sources) in per_split.items()
    }
    dataset = Dataset(splits, report)
    if cache:
        write_cache(cache_file, dataset)
    return dataset
