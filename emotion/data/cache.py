"""The folder loader's cache: one .npz in config.cache_dir() per folder content, keyed by a hash of every
file's split, label, name and bytes, so a changed image means a new key."""

from __future__ import annotations

import ast
import hashlib
import io
from pathlib import Path

import numpy as np

from .. import config
from ..config import IMAGE_SIZE
from ..files import write_bytes_atomic
from .dataset import Dataset, LoadReport, Split


def content_key(files: list[tuple[str, int, Path]], root: Path) -> str:
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



def cache_path(key: str) -> Path:
    """Where the cache of the folder content `key` is kept."""
    return config.cache_dir() / f"{key}.npz"


def write_cache(path: Path, dataset: Dataset) -> None:
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


def read_cache(path: Path, root: Path) -> Dataset:
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
