"""Keras vs ONNX Runtime vs LiteRT for the emotion CNN: `python scripts/compare_runtimes.py`.

Prints the median ms for one face and a batch of eight, with 1 and 2 intra-op threads, and each
runtime's largest difference from Keras. TensorFlow fixes its thread pools when it starts, so each
thread count runs in a child process; inside it every runtime is measured side by side, in
alternating rounds so that a busy moment on the machine hits them all alike.

Runtimes that are not installed are left out: ONNX Runtime needs `onnxruntime` and `onnx` (the
app's exporter, emotion.runtime), "ORT, Keras export" also `tf2onnx`, LiteRT `ai-edge-litert`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emotion.config import app_model_path  # noqa: E402

BATCHES = (1, 8)
THREADS = (1, 2)


@dataclass
class Row:
    """One runtime at one thread count: median ms per batch size, largest |diff| from Keras."""

    runtime: str
    threads: int
    ms: dict[str, float]
    max_abs_diff: float


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _keras_runner(model) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.asarray(model.predict_on_batch(x))


def _ort_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    from emotion.runtime import _session  # the app's session options


    session = _session(path, threads)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _litert_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreters: dict[int, tuple] = {}  # one per batch size: resizing reallocates every tensor

    def run(x: np.ndarray) -> np.ndarray:
        if len(x) not in interpreters:
            it = Interpreter(model_path=str(path), num_threads=threads)
            inp, out = it.get_input_details()[0], it.get_output_details()[0]
            it.resize_tensor_input(inp["index"], list(x.shape))
            it.allocate_tensors()
            interpreters[len(x)] = (it, inp["index"], out["index"])
        it, i, o = interpreters[len(x)]
        it.set_tensor(i, x)
        it.invoke()
        return it.get_tensor(o)

    return run


def _runners(model_path: Path, workdir: Path, threads: int) -> dict[str, Callable]:
    """Every installed runtime, converted from the same `.keras`."""
    from emotion.model import load_model

    model = load_model(model_path)
    runners = {"Keras predict_on_batch": _keras_runner(model)}
    if _installed("onnxruntime") and _installed("onnx"):
        from emotion.runtime import export_onnx_bytes

        path = workdir / "hand.onnx"
        path.write_bytes(export_onnx_bytes(model_path))
        runners["ORT, emotion.runtime export"] = _ort_runner(path, threads)
    if _installed("onnxruntime") and _installed("tf2onnx"):
        path = workdir / "keras.onnx"
        model(np.zeros((1, *model.input_shape[1:]), np.float32))  # export needs a called model
        model.export(str(path), format="onnx", verbose=False)
        runners["ORT, Keras export (tf2onnx)"] = _ort_runner(path, threads)
    if _installed("ai_edge_litert"):
        import tensorflow as tf

        path = workdir / "model.tflite"
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        runners["LiteRT (XNNPACK)"] = _litert_runner(path, threads)
    return runners


def _measure(runners: dict[str, Callable], x: np.ndarray, repeat: int, rounds: int) -> dict:
    """Median ms per runner over `rounds` alternating rounds of `repeat // rounds` calls."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        for _ in range(5):  # warm-up: first calls allocate and trace
            run(x)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(max(1, repeat // rounds)):
                start = time.perf_counter()
                run(x)
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def child(model_path: Path, threads: int, repeat: int) -> list[Row]:
    """Measure every runtime with `threads` threads, in this (fresh) process."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        runners = _runners(model_path, Path(tmp), threads)
        ms: dict[str, dict[str, float]] = {name: {} for name in runners}
        diff = dict.fromkeys(runners, 0.0)
        for n in BATCHES:
            x = rng.random((n, 48, 48, 1), dtype=np.float32)
            reference = runners["Keras predict_on_batch"](x)
            for name, run in runners.items():
                diff[name] = max(diff[name], float(np.abs(run(x) - reference).max()))
            for name, value in _measure(runners, x, repeat, rounds=5).items():
                ms[name][f"batch {n}"] = value
    return [Row(name, threads, ms[name], diff[name]) for name in runners]


def print_table(rows: list[Row]) -> None:
    header = f"{'runtime':30} {'threads':>7} " + " ".join(f"{f'batch {n} ms':>11}" for n in BATCHES)
    print(header + f" {'max|diff|':>10}")
    print("-" * len(header + " max|diff|  "))
    for row in sorted(rows, key=lambda r: (r.threads, r.runtime)):
        cells = " ".join(f"{row.ms[f'batch {n}']:11.3f}" for n in BATCHES)
        print(f"{row.runtime:30} {row.threads:7d} {cells} {row.max_abs_diff:10.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=app_model_path())
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per measurement")
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_threads:
        rows = child(args.model, args.child_threads, args.repeat)
        print(json.dumps([asdict(r) for r in rows]))
        return
    rows = []
    for threads in THREADS:
        done = subprocess.run(
            [sys.executable, __file__, "--model", str(args.model), "--repeat", str(args.repeat),
             "--child-threads", str(threads)],
            check=True, capture_output=True, text=True)
        rows += [Row(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]
    # Other processes' load skews the 2-thread rows most: say what it was.
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{args.model}: median ms of {args.repeat} calls; {os.cpu_count()} CPUs, load {load}\n")
    print_table(rows)


if __name__ == "__main__":
    main()
