"""How long a run will take here: a few batches of the chosen network timed on this machine
(cached per settings), turned into an estimate for the whole run.

`python -m emotion.training.timing '{"batch_size": 64, ...}'` measures in a process of its own
and prints the result as JSON: the Training page asks that way, so the measurement has the
machine's cores as a training run has them, and the web server never loads Keras for it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import VALIDATION_FRACTION, child_environment, keras_backend
from ..config import cache_dir as default_cache_dir
from ..files import write_text_atomic
from ..labels import NUM_CLASSES
from ..model import DEFAULT_BLOCKS, build_model
from .config import TrainConfig

CACHE_FILE = "training-speed.json"
TIMED_STEPS = 4  # after one step that compiles; medians of these
MEASURE_TIMEOUT_S = 240
MAX_AGE_S = 24 * 3600  # the machine's load changes: measure again after a day


@dataclass(frozen=True)
class SpeedKey:
    """The settings a measurement holds for: the network, the batch, what runs in the step."""

    batch_size: int = 64
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS
    augment: bool = True
    optimizer: str = "adam"

    def text(self) -> str:
        """The key in the cache file, with what makes the same settings run at another speed."""
        backend = keras_backend()
        blocks = ",".join(f"{w}x{n}" for w, n in self.blocks)
        return (f"{backend}|{os.cpu_count()} cores|{blocks}|batch {self.batch_size}|"
                f"augment {self.augment}|{self.optimizer}")


@dataclass
class Speed:
    """Measured on this machine for one SpeedKey."""

    step_s: float  # one training step of a batch, once compiled (median)
    first_step_s: float  # the first step, which also compiles
    face_s: float  # scoring one face (validation, the choice, the comparison), in batches of 512
    measured_at: float = 0.0  # time.time()
    startup_s: float = 0.0  # loading Keras and building the network, before the first batch


@dataclass
class Estimate:
    """How long a run should take, from a Speed and the run's size."""

    seconds: float
    epochs: int
    faces: int  # the faces the run starts from (a tenth of them held out when there is no val)
    epoch_s: float
    limited: bool = False  # the time limit ends the run before its epochs

    @property
    def text(self) -> str:
        """"about 4 h 50 min for 60 epochs on 28,709 faces"."""
        if self.limited:
            return (f"{duration_text(self.seconds)}: the time limit, enough for about "
                    f"{max(1, int(self.seconds // self.epoch_s))} of the {self.epochs} epochs "
                    f"on {self.faces:,} faces ({duration_text(self.epoch_s)} an epoch)")
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return f"{duration_text(self.seconds)} for {epochs} on {self.faces:,} faces"


def duration_text(seconds: float) -> str:
    """A duration as a person says it: "about 4 h 50 min", "about 3 min", "under a minute"."""
    if seconds < 45:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    if minutes < 600:
        minutes = round(seconds / 600) * 10  # hours: to the nearest 10 minutes
    else:
        minutes = round(seconds / 3600) * 60
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h" + (f" {rest} min" if rest else "")


def estimate(speed: Speed, *, faces: dict[str, int], epochs: int, batch_size: int,
             minutes: float | None = None, limit: int | None = None) -> Estimate:
    """The run's time from measured speed and the faces per split (`data.count_faces`):
    training epochs (each with its validation), then the choice on validation and the scoring of
    the new and the app's model on the validation and test faces. `limit` caps the training faces
    (a quick test); `minutes` is the run's time limit. Early stopping can end a run sooner."""
    train = faces.get("train", 0)
    if limit:
        train = min(train, limit)
    val = faces.get("val") or round(train * VALIDATION_FRACTION)
    fit = train - (0 if faces.get("val") else val)
    test = faces.get("test", 0)
    steps = max(1, math.ceil(fit / batch_size))
    epoch_s = steps * speed.step_s + val * speed.face_s
    training_s = speed.startup_s + max(0.0, speed.first_step_s - speed.step_s) + epochs * epoch_s
    limited = bool(minutes) and training_s - speed.startup_s > minutes * 60
    if limited:
        training_s = speed.startup_s + minutes * 60
    # The choice: batch-norm statistics recomputed on the training faces (about a scoring pass),
    # three candidates on validation; then the test split, and both models on val and test.
    after_s = speed.face_s * (fit + 3 * val + test + 2 * (val + test))
    return Estimate(training_s + after_s, epochs, train, epoch_s, limited)


def measure(key: SpeedKey, steps: int = TIMED_STEPS) -> Speed:
    """Time training steps of the real network, optimizer and augmentation on random faces;
    `startup_s` counts loading Keras when this process has not loaded it yet."""
    started = time.perf_counter()
    import keras
    import numpy as np

    from .datasets import trainable  # these two load Keras, which this module leaves alone
    from .loop import make_optimizer

    config = TrainConfig(data="", optimizer=key.optimizer, batch_size=key.batch_size,
                         blocks=key.blocks, augment=key.augment)
    model = build_model(key.blocks)
    startup_s = time.perf_counter() - started
    fitted = trainable(model, key.augment)
    fitted.compile(optimizer=make_optimizer(config, steps=100), metrics=["accuracy"],
                   loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    rng = np.random.default_rng(0)
    x = rng.random((key.batch_size, 48, 48, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, NUM_CLASSES, key.batch_size), NUM_CLASSES)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        fitted.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    faces = rng.random((512, 48, 48, 1), dtype=np.float32)
    scoring = []
    for _ in range(4):  # the first call compiles; the median of the others
        start = time.perf_counter()
        model.predict(faces, batch_size=512, verbose=0)
        scoring.append(time.perf_counter() - start)
    return Speed(step_s=float(np.median(times[1:])), first_step_s=times[0],
                 face_s=float(np.median(scoring[1:])) / len(faces), measured_at=time.time(),
                 startup_s=startup_s)


_lock = threading.Lock()  # one measurement at a time, and the cache file written by one
_pending_lock = threading.Lock()
_pending: dict[str, threading.Thread] = {}
_failed: set[str] = set()


def _cache_path(cache_dir: Path | None) -> Path:
    return Path(cache_dir or default_cache_dir()) / CACHE_FILE


def known_speed(key: SpeedKey, cache_dir: Path | None = None) -> Speed | None:
    """The cached speed for `key` when one was measured within MAX_AGE_S, else None."""
    speed = _read_cache(_cache_path(cache_dir)).get(key.text())
    if speed is not None and time.time() - speed.measured_at < MAX_AGE_S:
        return speed
    return None


def cached_speed(key: SpeedKey, cache_dir: Path | None = None) -> Speed | None:
    """The speed for `key` from the cache, or measured now in a separate process and cached;
    None when the measurement fails (the page then shows no estimate)."""
    path = _cache_path(cache_dir)
    with _lock:  # several sessions asking at once measure once
        if (speed := known_speed(key, cache_dir)) is not None:
            return speed
        speed = measure_in_subprocess(key)
        if speed is not None:
            saved = {k: asdict(v) for k, v in _read_cache(path).items()}
            saved[key.text()] = asdict(speed)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(path, json.dumps(saved, indent=2))
            except OSError:
                pass  # a read-only cache folder: measured again next time
        return speed


def speed_or_measure(key: SpeedKey, cache_dir: Path | None = None) -> Speed | None:
    """The known speed for `key`, or None while a background thread measures it (started here,
    once however many callers ask); `measuring` and `measure_failed` say which."""
    if (speed := known_speed(key, cache_dir)) is not None:
        return speed
    with _pending_lock:
        thread = _pending.get(key.text())
        if (thread is None or not thread.is_alive()) and key.text() not in _failed:
            def run() -> None:
                if cached_speed(key, cache_dir) is None:
                    _failed.add(key.text())

            thread = threading.Thread(target=run, name="emotion-speed", daemon=True)
            _pending[key.text()] = thread
            thread.start()
    return None


def measuring(key: SpeedKey) -> bool:
    thread = _pending.get(key.text())
    return thread is not None and thread.is_alive()


def measure_failed(key: SpeedKey) -> bool:
    return key.text() in _failed


def _read_cache(path: Path) -> dict[str, Speed]:
    try:
        saved = json.loads(path.read_text())
        return {k: Speed(**v) for k, v in saved.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def measure_in_subprocess(key: SpeedKey, timeout: float = MEASURE_TIMEOUT_S) -> Speed | None:
    package_root = Path(__file__).resolve().parents[2]  # this checkout's emotion/, not another
    env = child_environment(package_root, TF_CPP_MIN_LOG_LEVEL="3")
    settings = json.dumps({**asdict(key), "blocks": [list(b) for b in key.blocks]})
    try:
        done = subprocess.run([sys.executable, "-m", __name__, settings], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=package_root, check=False)
        if done.returncode != 0:
            return None
        return Speed(**json.loads(done.stdout.strip().splitlines()[-1]))
    except (OSError, ValueError, TypeError, IndexError, subprocess.TimeoutExpired):
        return None


def main(argv: list[str]) -> int:
    settings = json.loads(argv[0]) if argv else {}
    if "blocks" in settings:
        settings["blocks"] = tuple(tuple(b) for b in settings["blocks"])
    print(json.dumps(asdict(measure(SpeedKey(**settings)))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
