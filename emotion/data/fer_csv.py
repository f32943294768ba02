"""The Kaggle `fer2013.csv` (emotion,pixels,Usage): read vectorised, a bad row named by its number."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..config import IMAGE_SIZE
from ..errors import sentence
from ..labels import NUM_CLASSES
from .dataset import DATA_WHAT, DataError, Dataset, LoadReport, Split, _missing

CSV_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
MAX_CSV_MB_ENV = "EMOTION_MAX_CSV_MB"
# The real fer2013.csv is 287 MB; a file several times larger is not FER2013, and parsing it would
# take several times its size in memory.
DEFAULT_MAX_CSV_MB = 1024


def max_csv_bytes() -> int:
    """The largest CSV read: $EMOTION_MAX_CSV_MB megabytes, else 1024."""
    from ..images import env_limit

    return env_limit(MAX_CSV_MB_ENV, DEFAULT_MAX_CSV_MB) * 1024 * 1024


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


HEADER_LIMIT = 4096  # "emotion,pixels,Usage" and a little room


def _check_csv_header(path: Path) -> None:
    """DataError unless the file's first line names the emotion and pixels columns: read on its
    own, so a 900 MB file of something else is refused from its first 4 kB (it took 6.6 GB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_LIMIT)
    except OSError as exc:
        raise DataError(sentence(exc, DATA_WHAT, path=path)) from None
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
    if size > max_csv_bytes():
        raise DataError(f"{path}: {size / 1024 / 1024:.0f} MB is over the "
                        f"{max_csv_bytes() // 1024 // 1024} MB limit for a CSV (fer2013.csv is "
                        f"287 MB); give the real file (or raise {MAX_CSV_MB_ENV})")
    _check_csv_header(path)  # before the body: a large file of something else fails at once
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise DataError(sentence(exc, DATA_WHAT, path=path)) from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable CSV file ({sentence(exc)})") from exc
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
            raise DataError(f"{path}: the pixels could not be read ({sentence(exc)})") from None
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
