"""Training throughput, float32 against mixed bfloat16, side by side: `python scripts/bf16_throughput.py`.

Builds the default network twice (one per policy), then times training steps on the same random
batches in alternating rounds, so a busy moment of the machine hits both alike, and prints the
median seconds per step and faces per second of each. bf16 pays only where the processor has
bf16 matrix instructions (`lscpu`: amx_bf16 or avx512_bf16) and the backend uses them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from emotion.config import INPUT_SHAPE  # noqa: E402
from emotion.labels import NUM_CLASSES  # noqa: E402
from emotion.model import build_model  # noqa: E402


def compiled(policy: str) -> keras.Model:
    keras.mixed_precision.set_global_policy(policy)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    keras.mixed_precision.set_global_policy("float32")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, *INPUT_SHAPE), np.float32)
    y = keras.utils.to_categorical(rng.integers(0, NUM_CLASSES, args.batch_size), NUM_CLASSES)
    models = {"float32": compiled("float32"), "mixed_bfloat16": compiled("mixed_bfloat16")}
    for model in models.values():  # compile and warm up outside the timing
        model.train_on_batch(x, y)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            times[name].append((time.perf_counter() - started) / args.steps)
    base = statistics.median(times["float32"])
    print(f"batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps, "
          f"backend {keras.backend.backend()}, {os.cpu_count()} cores")
    print("| policy | median s/step | faces/s | vs float32 |\n|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.4f} | {args.batch_size / median:.0f} | {base / median:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
