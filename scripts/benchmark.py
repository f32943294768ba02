"""Speed figures for the README: `python scripts/benchmark.py [--model PATH]`.

Prints medians of repeated runs, measured side by side in one process: the model's time per
face (one face, and a batch of eight), Haar detection on a 640x480 frame at full size and
downscaled as the live pages do, the whole photo pipeline, and parsing a full-size fer2013.csv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotion.config import DEFAULT_MODEL  # noqa: E402
from emotion.faces import DetectionSettings, detect_faces  # noqa: E402


def median_ms(fn, repeat: int = 30, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from skimage import data

    from emotion.data import load_csv
    from emotion.recognizer import EmotionRecognizer

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    frame = cv2.resize(photo, (640, 480))
    recognizer = EmotionRecognizer(args.model)
    face = [photo[60:170, 170:280]]
    rows = [
        ("model, 1 face", median_ms(lambda: recognizer.classify(face), args.repeat)),
        ("model, batch of 8 faces", median_ms(lambda: recognizer.classify(face * 8), args.repeat)),
        ("Haar, 640x480 full size", median_ms(lambda: detect_faces(frame), args.repeat)),
        ("Haar, 640x480 detected at 320 px",
         median_ms(lambda: detect_faces(frame, DetectionSettings(max_side=320)), args.repeat)),
        ("photo 512x512: detect + classify", median_ms(lambda: recognizer.recognize(photo), args.repeat)),
    ]
    rng = np.random.default_rng(0)
    pixel_rows = [" ".join(map(str, r)) for r in rng.integers(0, 256, size=(64, 48 * 48))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fer2013.csv"
        path.write_text("\n".join(["emotion,pixels,Usage"]
                                  + [f"{i % 7},{pixel_rows[i % 64]},Training" for i in range(35887)]))
        rows.append(("load 35,887-row fer2013.csv", median_ms(lambda: load_csv(path), 3, 0)))

    print(f"model: {args.model}")
    for name, ms in rows:
        print(f"{name:<36} {ms:10.1f} ms (median)")
    print(f"model time per face in a batch of 8: {rows[1][1] / 8:.2f} ms")
    print(f"downscaled detection speed-up: {rows[2][1] / rows[3][1]:.1f}x")


if __name__ == "__main__":
    main()
