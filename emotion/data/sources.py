"""Any source by what it is: a fer2013.csv, an image-folder root, or `kaggle[:owner/name]`
(downloaded with kagglehub); and its faces counted without decoding, for a time estimate."""

from __future__ import annotations

from pathlib import Path

from .. import config
from .dataset import DataError, Dataset, _missing, _os_problem
from .fer_csv import CSV_SPLITS, load_csv
from .folders import image_files, load_folder

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
            for split, _, _ in image_files(path):
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
