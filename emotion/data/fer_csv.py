"""The Kaggle `fer2013.csv` (emotion,pixels,Usage): read vectorised, a bad row named by its number."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .. import config
from ..config import IMAGE_SIZE
from ..labels import NUM_CLASSES
from .dataset import DataError, Dataset, LoadReport, Split, _missing, _os_problem

CSV_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


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
    path = Path(path)
    _check_csv_file(path)
    frame = _read_rows(path)
    labels = _labels(frame, path)
    images = _images(frame, path)
    return Dataset(_splits(frame, images, labels, path), LoadReport(source=str(path)))


def _row_error(path: Path, i: int, what: str) -> DataError:
    """DataError naming row `i` (counted from 0 after the header) as a spreadsheet numbers it."""
    # +2: one for the header line, one because rows count from 1
    return DataError(f"{path}, row {i + 2}: {what}")


def _first(mask) -> int:
    """The index of the first True in a boolean Series or array."""
    return int(np.flatnonzero(np.asarray(mask))[0])


def _check_csv_file(path: Path) -> None:
    """DataError for a missing, empty or oversized file, or one whose header is not FER2013's:
    nothing but the first line read."""
    if not path.is_file():
        raise _missing(path, "file")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: the file is empty; a fer2013.csv has a header and one row per face")
    if size > config.max_csv_bytes():
        raise DataError(f"{path}: {size / 1024 / 1024:.0f} MB is over the "
                        f"{config.max_csv_bytes() // 1024 // 1024} MB limit for a CSV "
                        f"(fer2013.csv is 287 MB); give the real file "
                        f"(or raise {config.MAX_CSV_MB_ENV})")
    _check_csv_header(path)  # before the body: a large file of something else fails at once


def _read_rows(path: Path):
    """The file as a pandas DataFrame of text, with the emotion and pixels columns and a row."""
    import pandas as pd

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
    return frame


def _labels(frame, path: Path) -> np.ndarray:
    """The emotion column as label ids; DataError naming the first row that is not 0..6."""
    label_text = frame["emotion"].str.strip()
    numeric = label_text.str.fullmatch(r"[0-9]+")  # \d would take full-width digits
    if not numeric.all():
        i = _first(~numeric)
        raise _row_error(path, i, f"emotion {_short(label_text.iloc[i])!r} is not a label id 0..6")
    # Checked as text: a 20-digit label does not fit in an int64 (OverflowError).
    in_range = label_text.str.fullmatch(f"0*[0-{NUM_CLASSES - 1}]")
    if not in_range.all():
        i = _first(~in_range)
        raise _row_error(path, i, f"emotion {_short(label_text.iloc[i].lstrip('0'))} is outside 0..6")
    return label_text.astype(np.int64).to_numpy()


def _images(frame, path: Path) -> np.ndarray:
    """The pixels column as uint8 (N, 48, 48); DataError naming the first row that is not 48x48
    whole numbers from 0 to 255."""
    rows = [text.strip() for text in frame["pixels"].tolist()]
    n_values = np.array([row.count(" ") + 1 if row else 0 for row in rows])
    wrong = n_values != IMAGE_SIZE * IMAGE_SIZE
    if wrong.any():
        i = _first(wrong)
        raise _row_error(path, i, f"{n_values[i]} pixel values, expected "
                                  f"{IMAGE_SIZE * IMAGE_SIZE} (48x48)")
    try:
        # numpy's C parser reads all rows at once; a per-value Python loop takes minutes here.
        values = np.loadtxt(io.StringIO("\n".join(rows)), dtype=np.int32, delimiter=" ", ndmin=2)
    except (ValueError, OverflowError) as exc:
        # Only on failure: find the row in Python. A value over int32 fails the parser itself.
        bad_row = _first_bad_pixel_row(rows)
        if bad_row is None:
            raise DataError(f"{path}: the pixels could not be read ({exc})") from None
        raise _row_error(path, *bad_row) from None
    values = values.reshape(-1, IMAGE_SIZE * IMAGE_SIZE)
    out_of_range = (values < 0) | (values > 255)
    if out_of_range.any():
        i = _first(out_of_range.any(axis=1))
        value = int(values[i][out_of_range[i]][0])
        raise _row_error(path, i, f"a pixel value is outside 0..255 ({value})")
    return values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _splits(frame, images: np.ndarray, labels: np.ndarray, path: Path) -> dict[str, Split]:
    """The faces split by the Usage column (all of them training faces without one); each face's
    source is FILE:ROW."""
    if "Usage" not in frame.columns:
        return {"train": Split(images, labels, [f"{path.name}:{i + 2}" for i in range(len(labels))])}
    usage = frame["Usage"].str.strip()
    unknown = ~usage.isin(list(CSV_SPLITS))
    if unknown.any():
        i = _first(unknown)
        raise _row_error(path, i, f"Usage {usage.iloc[i]!r} is not one of {', '.join(CSV_SPLITS)}")
    splits: dict[str, Split] = {}
    for usage_name, split in CSV_SPLITS.items():
        index = np.flatnonzero((usage == usage_name).to_numpy())
        if len(index):
            splits[split] = Split(
                images[index], labels[index], [f"{path.name}:{i + 2}" for i in index]
            )
    return splits
