"""What the page tests share: an AppTest of a page with a timeout that fits this machine, the
texts of its elements, the real model, and a known training speed so no test times the machine."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from emotion import config
from emotion.config import PROJECT_ROOT

MODEL = config.app_model_path()  # the real model, before any test points the app elsewhere
TIMEOUT = 120  # seconds per script run: the first one loads TensorFlow on a slow, shared machine


def page(name: str = "app.py") -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / name), default_timeout=TIMEOUT)


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def needs_model():
    if not MODEL.is_file():
        pytest.skip(f"no model at {MODEL}: train one or set EMOTION_MODEL")


def write_known_speed(cache_dir: Path) -> None:
    """A measured speed for the Training page's default settings in `cache_dir`, so the page
    shows its estimate without timing the machine."""
    from emotion.training import timing

    cache_dir.mkdir(parents=True, exist_ok=True)
    speed = timing.Speed(step_s=0.5, first_step_s=8.0, face_s=0.002, measured_at=time.time())
    (cache_dir / timing.CACHE_FILE).write_text(
        json.dumps({timing.SpeedKey().text(): asdict(speed)}))
