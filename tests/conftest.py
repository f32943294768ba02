"""Shared fixtures: real photos from scikit-image, FER2013 from ../shared, the model under test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile import make_corpus, make_models, png_claiming  # noqa: F401 - png_claiming for tests

from emotion.config import SHARED_FER2013, app_model_path
from emotion.labels import EMOTIONS

# The model under test, as the environment gives it when the run starts, before any test points
# the app elsewhere.
APP_MODEL = app_model_path()


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """A real photograph with one smiling face (scikit-image ships it, no download)."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def astronaut_faces(astronaut_bgr) -> np.ndarray:
    """Six crops of a real face, shifted 5 px apart, as model input in [0, 1]."""
    from emotion.preprocess import faces_to_input

    return faces_to_input([astronaut_bgr[60 + d:170 + d, 170 + d:280 + d]
                           for d in range(0, 30, 5)])


@pytest.fixture(scope="session")
def shared_fer2013() -> Path:
    if not (SHARED_FER2013 / "train").is_dir():
        pytest.skip(f"FER2013 is not at {SHARED_FER2013} (CI lays ../shared beside the clone)")
    return SHARED_FER2013


@pytest.fixture(scope="session")
def fer_sample_csv(shared_fer2013) -> Path:
    return shared_fer2013 / "fer2013-sample.csv"


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not APP_MODEL.is_file():
        pytest.skip(f"no model at {APP_MODEL}: train one with `python -m emotion train`")
    return APP_MODEL


@pytest.fixture
def in_threads() -> Callable:
    """run(fn, n): fn(0) .. fn(n - 1) in n threads at once; their results, in order.

    Fails the test if a thread raises (an exception in a thread is otherwise lost) or hangs.
    """

    def run(fn: Callable[[int], object], n: int, timeout: float = 300) -> list:
        results: dict[int, object] = {}
        errors: list[BaseException] = []

        def call(k: int) -> None:
            try:
                results[k] = fn(k)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=timeout)
        assert not any(t.is_alive() for t in threads), "a thread hung"
        assert errors == [], f"threads raised: {errors!r}"
        return [results[k] for k in range(n)]

    return run


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> dict[str, Path]:
    """The hostile files of tests/hostile.py (bombs, broken CSVs, loops...), made once."""
    return make_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="session")
def hostile_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny Keras models of tests/hostile.py: wrong shapes, no softmax, truncated."""
    return make_models(tmp_path_factory.mktemp("hostile_models"))


@pytest.fixture
def tiny_folder(tmp_path):
    """A few dozen made-up faces: 6 per class in train/, 2 per class in test/ (for training
    and model commands on a tiny network)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tiny"
    for split, n in (("train", 6), ("test", 2)):
        for cls in EMOTIONS:
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(root / split / cls / f"{i}.png"),
                            rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root
