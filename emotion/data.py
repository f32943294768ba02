"""FER2013 loaders (the CSV, image folders, kagglehub), a validation split and a content-keyed cache."""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import config
from .config import IMAGE_SIZE, SEED, VALIDATION_FRACTION
from .files import write_bytes_atomic
from .labels import ALIASES, EMOTIONS, NUM_CLASSES, canonical
from .preprocess import to_gray48

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
CSV_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
# Kaggle's folder download has PublicTest and PrivateTest together in test/; a validation folder
# goes by either name.
FOLDER_SPLITS = {"train": "train", "training": "train", "validation": "val", "val": "val", "test": "test"}
DATA_WHAT = "a fer2013.csv or a FER2013 folder"  # what a data path should be, in messages
# The validation split holds out VALIDATION_FRACTION of the training faces, so training needs at
# least 1 / VALIDATION_FRACTION faces for it to hold out one and keep the rest.
MIN_TRAIN_FACES = round(1 / VALIDATION_FRACTION)


class DataError(ValueError):
    """The data given cannot be loaded; the message says what was wrong and where."""


@dataclass
class Split:
    """One split of faces: uint8 images (N, 48, 48), FER2013 label ids, and where each came from."""

    images: np.ndarray
    labels: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Images per emotion, in FER2013's order."""
        hist = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {name: int(hist[i]) for i, name in enumerate(EMOTIONS)}

    def take(self, index: np.ndarray) -> "Split":
        return Split(self.images[index], self.labels[index], [self.sources[i] for i in index])


@dataclass
class LoadReport:
    """What a load found besides the images: skipped files and how many needed resizing."""

    source: str
    resized: int = 0
    not_48x48_sizes: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    from_cache: bool = False


@dataclass
class Dataset:
    """The splits a source has (any of train, val, test) and the report of its load."""

    splits: dict[str, Split]
    report: LoadReport

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def total(self) -> int:
        return sum(len(s) for s in self.splits.values())


def _os_problem(path: Path, exc: OSError) -> str:
    """One line for an OSError met on `path`: permission, symlink loop, or the system's words."""
    from .images import unreadable

    return unreadable(path, exc, DATA_WHAT)


def _missing(path: Path, what: str, hint: str = "") -> DataError:
    """DataError for a path that is not there (`hint`: what to give instead), or that only seems
    absent (a symlink loop, a folder above it without permission)."""
    from .images import hidden

    return DataError(hidden(path, DATA_WHAT) or f"{path}: no such {what}{hint}")


def _short(text: str, width: int = 24) -> str:
    """A value from the file, cut so that one line stays one line."""
    return text if len(text) <= width else text[:width] + "..."


def _first_bad_pixel_row(rows: list[str]) -> tuple[int, str] | None:
    """The first row with a value that is not a whole number from 0 to 255, and what is wrong."""
    for i, row in enumerate(rows):
        for value in row.split(" "):
            # ASCII digits only: '²' and full-width digits pass str.isdigit.
            if not (value.isascii() and value.isdigit()):
                return i, f"pixels contain a value that is not a whole number ({_short(value)!r})"
            if len(value) > 3 or int(value) > 255:
                return i, f"a pixel value is outside 0..255 ({_short(value)})"
    return None


# ---------------------------------------------------------------- fer2013.csv

HEADER_LIMIT = 4096  # "emotion,pixels,Usage" and a little room


def _check_csv_header(path: Path) -> None:
    """DataError unless the file's first line names the emotion and pixels columns: read on its
    own, so a 900 MB file of something else is refused from its first 4 kB (it took 6.6 GB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_LIMIT)
    except OSError as exc:
        raise DataError(_os_problem(path, exc)) from None
    line = head.split(b"\n", 1)[0]
    if b"\n" not in head and len(head) == HEADER_LIMIT:
        raise DataError(f"{path}: the first line is over {HEADER_LIMIT} bytes, not the header "
                        "emotion,pixels,Usage of a fer2013.csv")
    names = [n.strip().strip('"').lower() for n in
             line.decode("utf-8-sig", errors="replace").strip().split(",")]
    missing = [c for c in ("emotion", "pixels") if c not in names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected the header emotion,pixels,Usage"
        )


def load_csv(path: str | Path) -> Dataset:
    """Read `fer2013.csv` (emotion,pixels,Usage), vectorised; a bad row stops with its row number."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise _missing(path, "file")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: the file is empty; a fer2013.csv has a header and one row per face")
    if size > config.max_csv_bytes():
        raise DataError(f"{path}: {size / 1024 / 1024:.0f} MB is over the "
                        f"{config.max_csv_bytes() // 1024 // 1024} MB limit for a CSV "
                        f"(fer2013.csv is 287 MB); give the real file (or raise {config.MAX_CSV_MB_ENV})")
    _check_csv_header(path)  # before the body: a large file of something else fails at once
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise DataError(_os_problem(path, exc)) from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    missing = [c for c in ("emotion", "pixels") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected the header emotion,pixels,Usage"
        )

    if frame.empty:  # a header alone would give splits without a single face
        raise DataError(f"{path}: no rows, only the header; a fer2013.csv has one row per face")

    def fail(i: int, what: str) -> DataError:
        # +2: one for the header line, one because rows count from 1
        return DataError(f"{path}, row {i + 2}: {what}")

    label_text = frame["emotion"].str.strip()
    numeric = label_text.str.fullmatch(r"[0-9]+")  # \d would take full-width digits
    if not numeric.all():
        i = int(np.flatnonzero(~numeric.to_numpy())[0])
        raise fail(i, f"emotion {_short(label_text.iloc[i])!r} is not a label id 0..6")
    # Checked as text: a 20-digit label does not fit in an int64 (OverflowError).
    in_range = label_text.str.fullmatch(f"0*[0-{NUM_CLASSES - 1}]")
    if not in_range.all():
        i = int(np.flatnonzero(~in_range.to_numpy())[0])
        raise fail(i, f"emotion {_short(label_text.iloc[i].lstrip('0'))} is outside 0..6")
    labels = label_text.astype(np.int64).to_numpy()

    rows = [text.strip() for text in frame["pixels"].tolist()]
    n_values = np.array([row.count(" ") + 1 if row else 0 for row in rows])
    wrong = n_values != IMAGE_SIZE * IMAGE_SIZE
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise fail(i, f"{n_values[i]} pixel values, expected {IMAGE_SIZE * IMAGE_SIZE} (48x48)")
    try:
        # numpy's C parser reads all rows at once; a per-value Python loop takes minutes here.
        values = np.loadtxt(io.StringIO("\n".join(rows)), dtype=np.int32, delimiter=" ", ndmin=2)
    except (ValueError, OverflowError) as exc:
        # Only on failure: find the row in Python. A value over int32 fails the parser itself.
        bad_row = _first_bad_pixel_row(rows)
        if bad_row is None:
            raise DataError(f"{path}: the pixels could not be read ({exc})") from None
        i, what = bad_row
        raise fail(i, what) from None
    values = values.reshape(-1, IMAGE_SIZE * IMAGE_SIZE)
    out_of_range = (values < 0) | (values > 255)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range.any(axis=1))[0])
        value = int(values[i][out_of_range[i]][0])
        raise fail(i, f"a pixel value is outside 0..255 ({value})")
    images = values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)

    usage = frame["Usage"].str.strip() if "Usage" in frame.columns else None
    splits: dict[str, Split] = {}
    if usage is None:
        splits["train"] = Split(images, labels, [f"{path.name}:{i + 2}" for i in range(len(labels))])
    else:
        unknown = ~usage.isin(list(CSV_SPLITS))
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raise fail(i, f"Usage {usage.iloc[i]!r} is not one of {', '.join(CSV_SPLITS)}")
        for usage_name, split in CSV_SPLITS.items():
            index = np.flatnonzero((usage == usage_name).to_numpy())
            if len(index):
                splits[split] = Split(
                    images[index], labels[index], [f"{path.name}:{i + 2}" for i in index]
                )
    return Dataset(splits, LoadReport(source=str(path)))


# ---------------------------------------------------------------- image folders

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


def _image_files(root: Path) -> list[tuple[str, int, Path]]:
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


def _content_key(files: list[tuple[str, int, Path]], root: Path) -> str:
    """A hash of every file's split, label, name and bytes: a changed image means a new key."""
    digest = hashlib.sha256(f"v1:{IMAGE_SIZE}".encode())
    limit = config.max_image_bytes()
    for split, label, f in files:
        digest.update(f"{split}/{label}/{f.relative_to(root)}\0".encode())
        try:
            size = f.stat().st_size
            if size > limit:  # skipped on load; hashing it would read gigabytes for nothing
                digest.update(f"too large: {size}".encode())
                continue
            digest.update(f.read_bytes())
        except OSError as exc:  # skipped and named on load; the key only has to change with it
            digest.update(f"unreadable: {exc.__class__.__name__}".encode())
    return digest.hexdigest()[:24]


def _progress(iterable, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
                disable=total < 2000)


def _read_face(path: Path) -> tuple[np.ndarray | None, str]:
    """One dataset image as OpenCV reads it, or None and why not (never decoding a bomb)."""
    from .images import ImageError, check_dimensions, too_large

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
    files = _image_files(root)
    key = _content_key(files, root) if cache else ""
    cache_file = config.cache_dir() / f"{key}.npz"
    if cache and cache_file.is_file():
        try:
            cached = _read_cache(cache_file, root)
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
        _write_cache(cache_file, dataset)
    return dataset


def _write_cache(path: Path, dataset: Dataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, split in dataset.splits.items():
        arrays[f"{name}_images"] = split.images
        arrays[f"{name}_labels"] = split.labels
        arrays[f"{name}_sources"] = np.array(split.sources)
    r = dataset.report
    arrays["report"] = np.array([repr((r.resized, r.not_48x48_sizes, r.unreadable))])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def _read_cache(path: Path, root: Path) -> Dataset:
    import ast

    with np.load(path) as z:
        splits = {}
        for name in ("train", "val", "test"):
            if f"{name}_images" in z:
                splits[name] = Split(
                    z[f"{name}_images"], z[f"{name}_labels"], z[f"{name}_sources"].tolist()
                )
        resized, sizes, unreadable = ast.literal_eval(str(z["report"][0]))
    report = LoadReport(str(root), resized, sizes, unreadable, from_cache=True)
    return Dataset(splits, report)


# ---------------------------------------------------------------- kagglehub and dispatch

KAGGLE_DATASET = "msambare/fer2013"


def download_kaggle(handle: str = KAGGLE_DATASET) -> Path:
    """Download FER2013 with kagglehub; a clear DataError when it is missing or offline."""
    try:
        import kagglehub
    except ImportError as exc:
        raise DataError("kagglehub is not installed: pip install kagglehub") from exc
    try:
        return Path(kagglehub.dataset_download(handle))
    except Exception as exc:
        raise DataError(
            f"could not download {handle} with kagglehub ({type(exc).__name__}: {exc}). "
            "Check the network and your Kaggle credentials, or pass a local folder or fer2013.csv"
        ) from exc


def load(data: str | Path, cache: bool = True) -> Dataset:
    """Load any supported source: a fer2013.csv, an image-folder root, or `kaggle[:owner/name]`."""
    text = str(data)
    if text == "kaggle" or text.startswith("kaggle:"):
        data = download_kaggle(text.partition(":")[2] or KAGGLE_DATASET)
    path = Path(data)
    if path.exists() and not path.is_file() and not path.is_dir():
        # A pipe or a device is not "no such file": reading it would wait or never end.
        raise DataError(f"{path} is not a regular file (a device, pipe or socket): give a "
                        "fer2013.csv, an image folder, or 'kaggle'")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path}: expected a fer2013.csv file or a folder of images")
        return load_csv(path)
    if path.is_dir():
        try:
            csvs = sorted(path.glob("*.csv"))
            subdirs = [p for p in path.iterdir() if p.is_dir()]
        except OSError as exc:  # a folder that cannot be listed
            raise DataError(_os_problem(path, exc)) from None
        if csvs and not subdirs:
            return load_csv(csvs[0])
        return load_folder(path, cache=cache)
    raise _missing(path, "file or folder", " (give a fer2013.csv, an image folder, or 'kaggle')")


def split_validation(
    train: Split, fraction: float = VALIDATION_FRACTION, seed: int = SEED
) -> tuple[Split, Split]:
    """Hold out a stratified, seeded validation part of train (for early stopping and model choice)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    counts = np.bincount(train.labels, minlength=NUM_CLASSES)
    stratify = train.labels if counts[counts > 0].min() >= 2 else None
    n_val = max(1, int(round(len(index) * fraction)))
    if stratify is not None and n_val < len(np.unique(train.labels)):
        stratify = None
    keep, held = train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)
    return train.take(np.sort(keep)), train.take(np.sort(held))


def training_splits(dataset: Dataset) -> tuple[Split, Split, Split | None]:
    """(train, validation, test) for training: the source's own validation split where it has one."""
    if "train" not in dataset.splits:
        raise DataError(f"{dataset.report.source}: has no training split (a train/ folder or Training rows)")
    train = dataset["train"]
    # With its own validation split the data needs one face to train on; else enough to split.
    needed = 1 if "val" in dataset.splits else MIN_TRAIN_FACES
    if len(train) < needed:
        raise DataError(
            f"{dataset.report.source}: {len(train)} training face{'s' if len(train) != 1 else ''}; "
            f"training needs at least {needed} faces ({VALIDATION_FRACTION:.0%} of them are held "
            "out to validate)"
        )
    present = [EMOTIONS[i] for i in np.unique(train.labels)]
    if len(present) == 1:
        raise DataError(
            f"{dataset.report.source}: the training faces are all {present[0]}; a model needs "
            "faces of at least two emotions to learn to tell them apart"
        )
    if "val" in dataset.splits:
        train, val = dataset["train"], dataset["val"]
    else:
        train, val = split_validation(dataset["train"])
    return train, val, dataset.splits.get("test")


def count_faces(data: str | Path) -> dict[str, int] | None:
    """Faces per split of a source without decoding any image (file names or CSV rows), for a
    time estimate; None for kagglehub (not downloaded yet) or a source that cannot be read."""
    text = str(data)
    if text == "kaggle" or text.startswith("kaggle:"):
        return None
    path = Path(data)
    try:
        if path.is_dir() and not (sorted(path.glob("*.csv")) and not any(
                p.is_dir() for p in path.iterdir())):
            counts: dict[str, int] = {}
            for split, _, _ in _image_files(path):
                counts[split] = counts.get(split, 0) + 1
            return counts
        csv_path = path if path.is_file() else sorted(path.glob("*.csv"))[0]
        if csv_path.suffix.lower() != ".csv" or csv_path.stat().st_size > config.max_csv_bytes():
            return None
        import pandas as pd

        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False,
                            usecols=lambda c: c == "Usage")
        if "Usage" not in frame.columns:
            return {"train": len(frame)}
        usage = frame["Usage"].str.strip().map(CSV_SPLITS).value_counts()
        return {str(k): int(v) for k, v in usage.items()}
    except (OSError, ValueError, IndexError):  # DataError is a ValueError
        return None


def limit_training_faces(dataset: Dataset, n: int, seed: int = SEED) -> Dataset:
    """The dataset with at most `n` training faces, drawn stratified by emotion from the seed
    (a quick trial run); validation and test splits stay whole."""
    train = dataset.splits.get("train")
    if train is None or len(train) <= n:
        return dataset
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    counts = np.bincount(train.labels, minlength=NUM_CLASSES)
    stratify = train.labels if counts[counts > 0].min() >= 2 else None
    keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=stratify)
    splits = dict(dataset.splits, train=train.take(np.sort(keep)))
    return Dataset(splits, dataset.report)
