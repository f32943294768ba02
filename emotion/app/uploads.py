"""Uploaded data files, kept under data/uploads/ by content, so one file is stored once."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..config import DATA_DIR
from ..errors import UploadError
from ..files import write_bytes_atomic

UPLOADS_DIR = DATA_DIR / "uploads"


def save_upload(data: bytes, name: str, folder: Path = UPLOADS_DIR) -> Path:
    """Keep an uploaded data file under a content-derived name (the same file is stored once)."""
    if not data:
        raise UploadError(f"{name}: the file is empty")
    suffix = re.sub(r"[^.a-z0-9]", "", Path(name).suffix.lower()) or ".csv"
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:40]  # no paths or odd characters
    path = folder / f"{stem}-{digest}{suffix}"
    if not path.is_file():
        write_bytes_atomic(path, data)
    return path
