"""A long webcam session, synthetic: does the Webcam page's frame path stay flat over time?

    python scripts/soak_live.py [--minutes 10] [--fps 30] [--report-every 30]
                                [--max-growth-mb 50] [--max-queue 30]

The frames take the page's own path, with the page's own objects: the recognizer as the app
loads it (`emotion.app.ui.get_recognizer`: the app's thread budget, the frozen heap), one
`LiveProcessor` as the page makes it, and its `webrtc.frames_callback`, given to streamlit-webrtc's
`CallbackAttachableProcessor` inside streamlit-webrtc's `AsyncVideoProcessTrack` (what
`webrtc_streamer(..., queued_video_frames_callback=..., async_processing=True)` builds), fed
through aiortc's `MediaRelay` as streamlit-webrtc does. Only the browser is missing: the camera is
a track playing the moving astronaut clip (`emotion.clips`) as yuv420p `av.VideoFrame`s, as
decoded video arrives, paced at --fps; the encoder is a loop pulling the output track; and a thread
does what the page's fragment does every second (reads the stats and the timeline's
bands; Streamlit's garbage collection after each run).

Every --report-every seconds it prints frames sent, processed and dropped (a newer frame had
arrived, so the callback skipped it), stale outputs (the out track resent the previous
annotated frame because the next was not ready), late camera ticks (the sender woke more than
a frame late), the resident memory (VmRSS), the largest length of each queue on the way, and
what the processor holds between frames (`LiveProcessor.snapshot()`). At the end: RSS at minute 1
against the end, and the verdict: exit 1 when the RSS grew more than --max-growth-mb after
minute 1 or a queue ever held more than --max-queue frames.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay

# Streamlit warns that no app is running (on import, and when the app's cached loader runs):
# true here, and nothing else is logged until the model is loaded.
logging.disable(logging.WARNING)
from streamlit_webrtc.models import CallbackAttachableProcessor
from streamlit_webrtc.process import AsyncVideoProcessTrack

from emotion import live
from emotion.follow import CAMERA
from emotion.app import ui, webrtc
from emotion.clips import astronaut_clip


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux's /proc; psutil is not a dependency)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status: this script needs Linux")


class SyntheticCamera(MediaStreamTrack):
    """A video track playing frames in a loop at `fps`, as decoded camera video arrives."""

    kind = "video"

    def __init__(self, frames: list[np.ndarray], fps: float):
        super().__init__()
        # Kept as yuv420p planes, the decoder's format: each frame sent is a new av.VideoFrame,
        # allocated and freed like a real stream's, and the callback converts it to BGR as usual.
        self._yuv = [cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420) for f in frames]
        self.fps = fps
        self.sent = 0
        self.late = 0  # ticks the sender woke more than one frame period after they were due
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        delay = self._start + self.sent / self.fps - now
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay > 1 / self.fps:
            self.late += 1
        frame = av.VideoFrame.from_ndarray(self._yuv[self.sent % len(self._yuv)], format="yuv420p")
        frame.pts = self.sent
        frame.time_base = Fraction(1, round(self.fps))
        self.sent += 1
        return frame


@dataclass
class QueueMax:
    """The largest length seen of each queue on the frame path."""

    relay: int = 0  # MediaRelay's buffer between the camera and the processing track
    worker_in: int = 0  # frames waiting for streamlit-webrtc's worker thread
    worker_out: int = 0  # annotated frames waiting for the encoder

    def see(self, relay: int, worker_in: int, worker_out: int) -> None:
        self.relay = max(self.relay, relay)
        self.worker_in = max(self.worker_in, worker_in)
        self.worker_out = max(self.worker_out, worker_out)

    def largest(self) -> int:
        return max(self.relay, self.worker_in, self.worker_out)


@dataclass
class Report:
    """Figures sampled at each report."""

    minutes: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)


def page_reader(processor: live.LiveProcessor, stop: threading.Event) -> None:
    """What the page's fragment does once a second while the camera plays."""
    while not stop.wait(1.0):
        processor.stats()
        processor.timeline.main_bands()
        gc.collect()  # Streamlit collects after every script and fragment run (see ui.freeze_heap)


async def soak(args: argparse.Namespace) -> int:
    recognizer = ui.get_recognizer()
    logging.disable(logging.NOTSET)
    # As the page: one processor per browser session, its callback handed to streamlit-webrtc.
    processor = live.LiveProcessor(recognizer, settings=CAMERA)
    callback = webrtc.frames_callback(processor)
    stats_file = webrtc.stats_file_from_env()
    if stats_file is not None:
        stats_file.watch(processor)
    callback_holder = CallbackAttachableProcessor(
        frame_callback=None, queued_frames_callback=callback, ended_callback=None)
    camera = SyntheticCamera(astronaut_clip(args.clip_frames), args.fps)
    relayed = MediaRelay().subscribe(camera)
    track = AsyncVideoProcessTrack(track=relayed, processor=callback_holder)

    stop = threading.Event()
    reader = threading.Thread(target=page_reader, args=(processor, stop), daemon=True)
    reader.start()

    duration = args.minutes * 60
    queues, window = QueueMax(), QueueMax()
    report = Report()
    stale = window_stale = 0
    previous = None
    last = {"sent": 0, "processed": 0}
    print(f"soak: {args.minutes:g} min at {args.fps:g} fps, {os.cpu_count()} cores, "
          f"RSS at start {rss_mb():.1f} MB", flush=True)
    print(f"{'time':>6} {'sent':>7} {'processed':>9} {'dropped':>11} {'stale':>6} {'late':>5} "
          f"{'ms/frame':>8} {'RSS MB':>8} {'queues relay/in/out':>19}  held: timeline rows/faces, "
          "tracks, fps times", flush=True)
    started = time.monotonic()
    next_report = args.report_every
    try:
        while True:
            frame = await track.recv()
            # Private attributes of aiortc and streamlit-webrtc: the only way to see their queues.
            sizes = (relayed._queue.qsize() if relayed._queue is not None else 0,
                     track._in_queue.qsize(), len(track._out_deque))
            queues.see(*sizes)
            window.see(*sizes)
            if frame is previous:
                stale += 1
                window_stale += 1
            previous = frame
            elapsed = time.monotonic() - started
            if elapsed >= next_report or elapsed >= duration:
                snapshot = processor.snapshot()
                stats, held = snapshot.stats, snapshot.held
                sent, processed = camera.sent, stats.frames
                d_sent, d_proc = sent - last["sent"], processed - last["processed"]
                dropped = d_sent - d_proc
                rss = rss_mb()
                report.minutes.append(elapsed / 60)
                report.rss.append(rss)
                share = f"({dropped / max(1, d_sent):.0%})"
                print(f"{elapsed:5.0f}s {sent:7d} {processed:9d} {dropped:5d} {share:>5}"
                      f" {window_stale:6d} {camera.late:5d} {stats.recent_process_ms:8.1f} {rss:8.1f}"
                      f" {window.relay:>13d}/{window.worker_in}/{window.worker_out:<3d}"
                      f"  {held['timeline_rows']}/{held['timeline_faces']}, {held['tracks']},"
                      f" {held['fps_times']}", flush=True)
                last = {"sent": sent, "processed": processed}
                window, window_stale = QueueMax(), 0
                next_report += args.report_every
                if elapsed >= duration:
                    break
    finally:
        stop.set()
        track.stop()  # as when the browser hangs up: the worker thread ends
        camera.stop()
        reader.join()

    snapshot = processor.snapshot()
    stats, held = snapshot.stats, snapshot.held
    # Minute 1: the model, the codecs and the first allocations have settled by then.
    first_m, at_1 = next(((m, r) for m, r in zip(report.minutes, report.rss, strict=True) if m >= 1.0),
                         (report.minutes[0], report.rss[0]))
    growth = report.rss[-1] - at_1
    sent = camera.sent
    print(f"\nsummary: {report.minutes[-1]:.1f} min, {sent} frames sent at {args.fps:g} fps, "
          f"{stats.frames} processed ({stats.frames / (report.minutes[-1] * 60):.1f} fps), "
          f"{sent - stats.frames} dropped ({(sent - stats.frames) / max(1, sent):.1%}), "
          f"{stale} stale outputs, {camera.late} late camera ticks, "
          f"{stats.frames_with_faces / max(1, stats.frames):.1%} of processed frames with a face, "
          f"{stats.mean_process_ms:.1f} ms a frame (mean)")
    print(f"RSS: {at_1:.1f} MB at minute {first_m:.1f}, {report.rss[-1]:.1f} MB at the end, "
          f"growth {growth:+.1f} MB (min {min(report.rss):.1f}, max {max(report.rss):.1f})")
    print(f"queues, most frames ever held: relay {queues.relay}, worker in {queues.worker_in}, "
          f"worker out {queues.worker_out}")
    print(f"held between frames: {held['timeline_rows']} timeline rows (cap "
          f"{processor.timeline._entries.maxlen:,}), {held['timeline_faces']} faces' last rows "
          f"(cap {processor.timeline.max_faces}), {held['tracks']} tracks, "
          f"{held['fps_times']} fps times")
    problems = []
    if growth > args.max_growth_mb:
        problems.append(f"RSS grew {growth:.1f} MB after minute 1 (limit {args.max_growth_mb:g})")
    if queues.largest() > args.max_queue:
        problems.append(f"a queue held {queues.largest()} frames (limit {args.max_queue})")
    print("verdict: " + ("; ".join(problems) if problems else "flat"))
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0, help="the camera's frame rate")
    parser.add_argument("--report-every", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--clip-frames", type=int, default=150,
                        help="frames in the clip the camera loops (150: 5 s at 30 fps)")
    parser.add_argument("--max-growth-mb", type=float, default=50.0,
                        help="most RSS growth after minute 1 that still counts as flat")
    parser.add_argument("--max-queue", type=int, default=30,
                        help="most frames any queue may hold (30: a second of video)")
    args = parser.parse_args()
    if not (args.minutes > 0 and args.fps > 0 and args.report_every > 0 and args.clip_frames > 0):
        parser.error("--minutes, --fps, --report-every and --clip-frames must be positive")
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
