"""Several live sessions at once on one shared recognizer: how fast each goes, and are they right?

    python scripts/load_live.py [--sessions 1,2,4,8] [--seconds S] [--fps 30] [--model PATH]
                                [--runtime NAME] [--threads N] [--frames N]

What it measures is the live path alone: no WebRTC, no video codecs, no page. A real browser
session also costs the server its receiving, decoding, encoding, sending and the page's reruns,
two to three times what `process` alone costs in the profile; for how many viewers a server
holds, use scripts/bench_webrtc.py (real sessions in headless Chromium).

For each number of sessions K, K threads each run their own `LiveProcessor`, all sharing ONE
`EmotionRecognizer`, as the app shares one between browser sessions (st.cache_resource). Each
session plays the moving 640x480 astronaut clip of `emotion.clips` in a loop from its own offset,
its frame k stamped t = k / 30 as a camera's would be:

- by default as fast as it can (the capacity of the machine);
- with --fps 30 at camera speed: frame k arrives at k / 30 s, and a session that is still busy
  when frames arrive processes only the newest and drops the rest, as the web page's
  `emotion.app.webrtc.frames_callback` does. It keeps up when it processed at least 95% of the frames sent.

Correctness: afterwards, for each session, a fresh `LiveProcessor` in this one thread processes
the very same frames with the same t values (the frames a session saw are known only once it
has run, since how many it gets through, and which it drops, depends on speed). Every frame's
boxes, face ids, labels and probabilities (allclose, atol 1e-5) must equal that sequential
result: mismatches must be 0. The annotated pictures are compared too (a CRC of the pixels).

Latency is the wall time of one `process()` call in its thread, waiting for the CPU included.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
import traceback
import zlib
from dataclasses import dataclass, field
from importlib import metadata

import cv2
import numpy as np

from emotion.clips import astronaut_clip  # noqa: E402
from emotion.config import app_model_path  # noqa: E402
from emotion.labels import EMOTIONS  # noqa: E402
from emotion.live import LiveProcessor, LiveResult  # noqa: E402
from emotion.recognizer import EmotionRecognizer  # noqa: E402

CAMERA_FPS = 30  # frame k of a stream is stamped t = k / 30, whatever the pacing
KEEP_UP_SHARE = 0.95  # a paced session keeps up when it processes this share of the frames sent
WARMUP_FRAMES = 3


@dataclass(frozen=True)
class FrameResult:
    """What one processed frame said, reduced to what the comparison needs."""

    boxes: tuple[tuple[int, int, int, int], ...]
    face_ids: tuple[int, ...]
    labels: tuple[str, ...]
    probabilities: np.ndarray  # (faces, 7), in EMOTIONS order
    picture_crc: int  # of the annotated frame's pixels

    @classmethod
    def of(cls, result: LiveResult) -> FrameResult:
        """The comparable parts of a LiveResult."""
        faces = result.faces
        probs = np.array([[f.probabilities[e] for e in EMOTIONS] for f in faces], np.float64)
        return cls(tuple(tuple(f.box.as_list()) for f in faces),
                   tuple(f.face_id for f in faces), tuple(f.label for f in faces),
                   probs.reshape(len(faces), len(EMOTIONS)),
                   zlib.crc32(np.ascontiguousarray(result.frame).data))

    def same_faces(self, other: FrameResult) -> bool:
        """Equal boxes, ids and labels, and probabilities within 1e-5."""
        return (self.boxes == other.boxes and self.face_ids == other.face_ids
                and self.labels == other.labels
                and self.probabilities.shape == other.probabilities.shape
                and np.allclose(self.probabilities, other.probabilities, rtol=0, atol=1e-5))


@dataclass
class Session:
    """One simulated browser session: the frames it processed, their results and latencies."""

    index: int
    offset: int  # where in the clip its stream starts
    frame_numbers: list[int] = field(default_factory=list)  # k of each processed frame
    results: list[FrameResult | None] = field(default_factory=list)  # None: process() raised
    latency_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    frames_sent: int = 0  # paced: frames the camera sent during the run

    @property
    def fps(self) -> float:
        return len(self.frame_numbers) / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class RunResult:
    """One K: every session, the machine's state, and the comparison with sequential runs."""

    sessions: list[Session]
    paced_fps: float
    wall_s: float
    cpu_s: float  # this process's CPU time during the run
    load_at_start: float
    mismatches: int = 0
    picture_diffs: int = 0

    @property
    def exceptions(self) -> int:
        return sum(len(s.errors) for s in self.sessions)

    @property
    def latencies(self) -> list[float]:
        return [ms for s in self.sessions for ms in s.latency_ms]

    def keeps_up(self) -> str:
        """Whether every session handles a 30 fps camera: share processed if paced, else fps."""
        if self.paced_fps:
            worst = min(len(s.frame_numbers) / max(1, s.frames_sent) for s in self.sessions)
            verdict = "yes" if worst >= KEEP_UP_SHARE else "no"
            return f"{verdict} (worst {worst:.0%} of frames processed)"
        worst = min(s.fps for s in self.sessions)
        return f"{'yes' if worst >= CAMERA_FPS else 'no'} (min {worst:.0f} fps)"


def run_session(session: Session, recognizer: EmotionRecognizer, clip: list[np.ndarray],
                seconds: float, paced_fps: float, barrier: threading.Barrier) -> None:
    """A session's thread: its own processor, frames as fast as it can or at camera speed."""
    try:
        processor = LiveProcessor(recognizer, draw_fps=True)
        # A throwaway processor loads this thread's Haar cascade before the clock starts.
        warm = LiveProcessor(recognizer, draw_fps=True)
        for k in range(WARMUP_FRAMES):
            warm.process(clip[(session.offset + k) % len(clip)], t=k / CAMERA_FPS)
    except Exception:
        session.errors.append(traceback.format_exc())
        barrier.abort()
        return
    barrier.wait()
    start = time.perf_counter()
    k = 0
    while (now := time.perf_counter()) - start < seconds:
        if paced_fps:
            newest = int((now - start) * paced_fps)  # the camera has sent frames 0..newest
            if newest < k:
                time.sleep(start + k / paced_fps - now)
                continue
            k = newest  # frames that came while we were busy are dropped, as frames_callback does
        frame = clip[(session.offset + k) % len(clip)]
        began = time.perf_counter()
        try:
            result: LiveResult | None = processor.process(frame, t=k / CAMERA_FPS)
        except Exception:
            result = None
            session.errors.append(traceback.format_exc())
        session.latency_ms.append((time.perf_counter() - began) * 1000)
        session.frame_numbers.append(k)
        session.results.append(FrameResult.of(result) if result is not None else None)
        k += 1
    session.elapsed_s = time.perf_counter() - start
    session.frames_sent = int(seconds * paced_fps) + 1 if paced_fps else 0


class SequentialReference:
    """The same frames through a fresh processor in this thread: what every session must match."""

    def __init__(self, recognizer: EmotionRecognizer, clip: list[np.ndarray]):
        self.recognizer = recognizer
        self.clip = clip
        # Unpaced sessions process frames 0, 1, 2... of their offset's stream: one processor per
        # offset, extended as needed, serves every K.
        self._streams: dict[int, tuple[LiveProcessor, list[FrameResult]]] = {}

    def _process(self, processor: LiveProcessor, offset: int, k: int) -> FrameResult:
        frame = self.clip[(offset + k) % len(self.clip)]
        return FrameResult.of(processor.process(frame, t=k / CAMERA_FPS))

    def results(self, offset: int, frame_numbers: list[int]) -> list[FrameResult]:
        """Sequential results for these frame numbers of the stream starting at `offset`."""
        if frame_numbers == list(range(len(frame_numbers))):
            processor, done = self._streams.setdefault(
                offset, (LiveProcessor(self.recognizer, draw_fps=True), []))
            while len(done) < len(frame_numbers):
                done.append(self._process(processor, offset, len(done)))
            return done[:len(frame_numbers)]
        processor = LiveProcessor(self.recognizer, draw_fps=True)
        return [self._process(processor, offset, k) for k in frame_numbers]


def run_load(recognizer: EmotionRecognizer, clip: list[np.ndarray], count: int, offsets: list[int],
             seconds: float, paced_fps: float) -> RunResult:
    """`count` sessions at once for `seconds`; returns their timings (not yet compared)."""
    sessions = [Session(i, offsets[i]) for i in range(count)]
    barrier = threading.Barrier(count + 1)
    threads = [threading.Thread(target=run_session, name=f"session-{s.index}",
                                args=(s, recognizer, clip, seconds, paced_fps, barrier))
               for s in sessions]
    for thread in threads:
        thread.start()
    load = os.getloadavg()[0]
    try:
        barrier.wait()  # every session warmed up: start the clock
    except threading.BrokenBarrierError:
        pass  # a session failed to start; its error is in its record
    wall, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    return RunResult(sessions, paced_fps, time.perf_counter() - wall,
                     time.process_time() - cpu, load)


def compare(run: RunResult, reference: SequentialReference) -> None:
    """Count frames whose result differs from the sequential one (faces, and pictures apart)."""
    for session in run.sessions:
        expected = reference.results(session.offset, session.frame_numbers)
        for got, want in zip(session.results, expected, strict=True):
            if got is None:
                continue  # counted as an exception
            if not got.same_faces(want):
                run.mismatches += 1
            if got.picture_crc != want.picture_crc:
                run.picture_diffs += 1


def table(runs: dict[int, RunResult]) -> list[str]:
    """The markdown table, one row per number of sessions."""
    lines = ["| sessions | fps per session, mean | min | fps, all sessions | p50 ms | p95 ms "
             "| CPU cores busy | load (1 min) at start | frames | mismatches | pictures differ "
             "| exceptions | keeps up with 30 fps |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for count, run in runs.items():
        fps = [s.fps for s in run.sessions]
        latencies = run.latencies
        p50 = np.percentile(latencies, 50) if latencies else float("nan")
        p95 = np.percentile(latencies, 95) if latencies else float("nan")
        lines.append(
            f"| {count} | {statistics.fmean(fps):.1f} | {min(fps):.1f} | {sum(fps):.1f} "
            f"| {p50:.1f} | {p95:.1f} | {run.cpu_s / run.wall_s:.2f} | {run.load_at_start:.2f} "
            f"| {len(latencies)} | {run.mismatches} | {run.picture_diffs} | {run.exceptions} "
            f"| {run.keeps_up()} |")
    return lines


def classifier_line(recognizer: EmotionRecognizer) -> str:
    """Which runtime runs the emotion model, and with how many threads."""
    classifier = getattr(recognizer, "classifier", None)
    name = getattr(classifier, "name", None) or "keras (no `recognizer.classifier`)"
    try:
        version = metadata.version(str(name))
    except (metadata.PackageNotFoundError, ValueError):
        version = ""
    threads = ""
    if hasattr(classifier, "threads"):
        threads = f", {classifier.threads or 'default'} intra-op threads"
    return f"{name} {version}{threads}".replace("  ", " ")


def parse_sessions(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8]."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("session counts must be at least 1")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=parse_sessions, default=[1, 2, 4, 8],
                        help="numbers of concurrent sessions to try (default 1,2,4,8)")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="run time per number of sessions (default 8)")
    parser.add_argument("--fps", type=float, default=0.0,
                        help="pace each session at this camera rate, dropping frames when late "
                             "(default 0: as fast as it can)")
    parser.add_argument("--frames", type=int, default=150, help="length of the looped clip")
    parser.add_argument("--model", default=str(app_model_path()))
    parser.add_argument("--runtime", help="the classifier's runtime (default: the recognizer's)")
    parser.add_argument("--threads", type=int,
                        help="the thread budget, as EMOTION_THREADS sets it for the app: the "
                             "classifier's intra-op threads and OpenCV's (default: libraries')")
    args = parser.parse_args()

    load_at_start = os.getloadavg()
    if args.threads:
        cv2.setNumThreads(args.threads)
    options = {k: v for k, v in (("runtime", args.runtime), ("threads", args.threads)) if v}
    recognizer = EmotionRecognizer(args.model, **options)  # ONE, shared by every session
    clip = astronaut_clip(args.frames)
    # Session i starts at the same offset whatever K, so sequential results are reused across K.
    most = max(args.sessions)
    offsets = [i * len(clip) // most for i in range(most)]
    reference = SequentialReference(recognizer, clip)

    runs: dict[int, RunResult] = {}
    for count in args.sessions:
        print(f"{count} session(s) for {args.seconds:g} s...", file=sys.stderr, flush=True)
        runs[count] = run_load(recognizer, clip, count, offsets, args.seconds, args.fps)
    print("comparing with sequential runs...", file=sys.stderr, flush=True)
    for run in runs.values():
        compare(run, reference)  # after all runs, so the comparison's own work is not measured

    pacing = f"paced at {args.fps:g} fps (late frames dropped)" if args.fps else "as fast as it can"
    print(f"## Live sessions at once, one shared recognizer: {pacing}, {args.seconds:g} s each")
    print()
    cores = os.cpu_count()
    print(f"- machine: {platform.machine()}, {cores} cores, load average at start "
          f"{' / '.join(f'{v:.2f}' for v in load_at_start)} (1 / 5 / 15 min); other work on the "
          "machine shows in the load column")
    print(f"- Python {platform.python_version()}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} "
          f"threads), classifier {classifier_line(recognizer)}; model {args.model}")
    print(f"- frames: emotion.clips.astronaut_clip({len(clip)}), 640x480, looped; session i starts "
          f"at frame {offsets[1] if len(offsets) > 1 else 0} x i")
    print()
    print("\n".join(table(runs)))
    print()
    print("Latency: wall time of one `process()` call in its session's thread. fps per session: "
          "frames it processed / run time. CPU cores busy: this process's CPU time / wall time. "
          "Mismatches: frames whose boxes, ids, labels or probabilities (atol 1e-5) differ from a "
          "fresh processor's run of the same frames in one thread (must be 0); pictures differ: "
          "the same for the annotated pixels.")
    errors = [e for run in runs.values() for s in run.sessions for e in s.errors]
    if errors:
        print()
        print(f"First of {len(errors)} exceptions:\n{errors[0]}")
    if any(run.mismatches or run.exceptions for run in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
