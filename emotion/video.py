"""One video file in, every frame's faces out: the annotated video and a CSV row per frame and face.

    result = annotate_video("clip.mp4", out="annotated.mp4", csv_path="faces.csv")
    print(result.frames, result.labels)

Faces are followed from frame to frame and smoothed as in the live view (`live.LiveProcessor`),
on the frames' own timestamps. The outputs are checked before the first frame is decoded, and
written to temporary files that are put in place only once every frame is in.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .errors import OutputError, VideoError, sentence
from .live import LiveProcessor
from .outputs import OutputPlan, commit, file_key, plan_output, staging_file
from .recognizer import FACE_COLUMNS, EmotionRecognizer, Face
from .videos import (
    check_frame_size,
    check_video_file,
    check_written,
    frame_size_problem,
    frame_time,
    video_output_problem,
)

CSV_HEADER = ["frame", "time_s", "face", *FACE_COLUMNS]


@dataclass
class VideoResult:
    """What annotating a video found: frames, faces and their labels, and where it wrote."""

    input: str
    frames: int  # read and annotated
    fps: float  # the container's frame rate (25 when it does not say)
    frames_with_faces: int
    faces: int  # one per face per frame
    labels: dict[str, int]  # faces per shown label ("uncertain" included)
    mean_process_ms: float
    out: str | None = None  # the annotated video, as given
    csv: str | None = None  # the per-frame CSV, as given
    frames_announced: int | None = None  # how many frames the container says it holds
    to_stdout: bool = False  # an output went to standard output

    @property
    def cut_short(self) -> bool:
        """Whether fewer frames could be read than the file announces (cut short or damaged)."""
        return bool(self.frames_announced) and self.frames < self.frames_announced

    def to_dict(self) -> dict:
        """The command line's one-line JSON summary."""
        summary = {"input": self.input, "frames": self.frames, "fps": round(self.fps, 3),
                   "frames_with_faces": self.frames_with_faces, "faces": self.faces,
                   "labels": self.labels, "mean_process_ms": round(self.mean_process_ms, 1),
                   "out": self.out, "csv": self.csv}
        if self.cut_short:
            summary["frames_announced"] = self.frames_announced
        return summary


def annotate_video(source: str | Path, out: str | None = None, csv_path: str | None = None, *,
                   model: str | Path | None = None, recognizer: EmotionRecognizer | None = None,
                   tta: bool = True, progress: bool = False) -> VideoResult:
    """Annotate every frame of `source`: the video with boxes and labels to `out` (.mp4 or .avi,
    or '-'), one row per frame and face to `csv_path`. `recognizer` (else one for `model`, else
    for the app's model); `tta`: each face averaged over the test-time views; `progress`: a progress bar on stderr.

    OutputError or VideoError, before the model loads, for outputs that cannot be written or an
    input that is not a readable video; VideoError when writing fails (nothing is left behind).
    """
    source = Path(source)
    plans = plan_video_outputs(source, out, csv_path)
    video = open_video(source)
    try:
        processor = LiveProcessor(recognizer or EmotionRecognizer(model), draw_fps=False, tta=tta)
        tally = _write_outputs(video, processor, plans, progress)
    finally:
        video.capture.release()
    stats = processor.stats()
    return VideoResult(str(source), tally.frames, video.fps, stats.frames_with_faces, tally.faces,
                       tally.labels, stats.mean_process_ms, out, csv_path, video.frames_announced,
                       to_stdout=any(p.stdout for p in plans.values()))


def plan_video_outputs(source: Path, out: str | None, csv_path: str | None) -> dict[str, OutputPlan]:
    """The plans for --out and --csv, checked before anything is read or written."""
    plans = {}
    for option, value in (("--out", out), ("--csv", csv_path)):
        if not value:
            continue
        plan = plan_output(value, option)
        if option == "--out" and (
                problem := video_output_problem(option, value, plan.suffix, plan.stream)):
            raise OutputError(problem)
        if plan.target is not None and plan.target.exists() \
                and file_key(plan.target) == file_key(source):
            raise OutputError(f"{option} {value} is the input video: choose another name")
        for other in plans.values():
            if other.key() == plan.key():
                raise OutputError(f"{option} and {other.option} name the same file: {value}")
        plans[option] = plan
    return plans


@dataclass
class OpenedVideo:
    """A video file opened for reading, its first frame already read."""

    capture: cv2.VideoCapture
    first_frame: np.ndarray  # BGR
    fps: float
    frames_announced: int | None  # what the container says; None when it does not
    name: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.first_frame.shape[1], self.first_frame.shape[0]


def open_video(source: Path) -> OpenedVideo:
    """The opened capture of `source`, its first frame, frame rate and announced frame count;
    VideoError, before the first frame is decoded, for a file that is not a readable video or
    whose frames are over the size limit."""
    check_video_file(source)
    capture = cv2.VideoCapture(str(source))
    try:
        if capture.isOpened():
            check_frame_size(capture, str(source))
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise VideoError(f"{source}: not a readable video (expected mp4, avi, mov, mkv or webm)")
        # The container may not say the size: the first frame does.
        if problem := frame_size_problem(frame.shape[1], frame.shape[0], str(source)):
            raise VideoError(problem)
    except BaseException:
        capture.release()
        raise
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 25.0  # some containers do not say; 25 keeps times sensible
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return OpenedVideo(capture, frame, fps, total if total > 0 else None, source.name)


@dataclass
class _Tally:
    """Frames and faces seen so far."""

    frames: int = 0
    faces: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    def add(self, face: Face) -> None:
        self.faces += 1
        self.labels[face.shown_label] = self.labels.get(face.shown_label, 0) + 1


def _write_outputs(video: OpenedVideo, processor: LiveProcessor, plans: dict[str, OutputPlan],
                   progress: bool) -> _Tally:
    """Annotate every frame into the staged outputs, then put them in place; VideoError naming
    the output that could not be written (a full disk, a folder without permission)."""
    staged = _StagedOutputs(plans)
    try:
        with contextlib.ExitStack() as closing:
            writer, rows = staged.open_writers(closing, video.fps, video.size)
            with tqdm(total=video.frames_announced, unit="frame", file=sys.stderr,
                      desc=video.name, disable=not progress) as bar:
                tally = _annotate_frames(video, processor, writer, rows, bar)
        staged.put_in_place(tally.frames)  # both closed above: the mp4's index is written on release
    except OSError as exc:
        raise staged.write_failure(exc) from None
    finally:
        staged.discard()
    return tally


def _annotate_frames(video: OpenedVideo, processor: LiveProcessor, writer, rows, bar) -> _Tally:
    """Every frame of `video` through the processor, into the video and CSV writers given."""
    capture, frame, fps = video.capture, video.first_frame, video.fps
    tally = _Tally()
    ok = True
    while ok:
        # The frame's own timestamp (a variable frame rate keeps it right), so smoothing follows
        # the video, not the CPU.
        t = frame_time(capture, tally.frames, fps)
        result = processor.process(frame, t=t)
        if writer:
            writer.write(result.frame)
        for face in result.faces:
            tally.add(face)
            if rows:
                rows.writerow(_csv_row(tally.frames, t, face))
        tally.frames += 1
        bar.update(1)
        ok, frame = capture.read()
    return tally


def _csv_row(frame: int, t: float, face: Face) -> list:
    """A CSV_HEADER row: the frame, its time, the tracked face's id and the face as shown."""
    return [frame, f"{t:.3f}", face.face_id, *face.to_row(shown=True)]


def _writer_for(path: Path, fps: float, size: tuple[int, int], shown: str) -> cv2.VideoWriter:
    """An OpenCV writer for `path` (a temporary file); errors name `shown`, the user's --out."""
    # mp4v is the MPEG-4 encoder every OpenCV wheel has; MJPG for .avi.
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise VideoError(f"{shown}: cannot write a video there (use .mp4 or .avi)")
    return writer


class _StagedOutputs:
    """The video and CSV written to temporary files and put in place (renamed over a file, copied
    into a stream) only once every frame is in: a failure or Ctrl-C removes them and leaves
    whatever was at the targets."""

    def __init__(self, plans: dict[str, OutputPlan]):
        self.plans = plans
        self.video, self.table = plans.get("--out"), plans.get("--csv")
        self.pending: dict[Path, OutputPlan] = {}  # temporary file -> its plan
        self.current: OutputPlan | None = None  # the output being written, for the message

    def _stage(self, plan: OutputPlan, suffix: str) -> Path:
        self.current = plan
        tmp = staging_file(plan, suffix)
        self.pending[tmp] = plan
        return tmp

    def open_writers(self, closing: contextlib.ExitStack, fps: float, size: tuple[int, int]):
        """The video writer and the CSV writer (None where not asked for), closed by `closing`."""
        writer = rows = None
        if self.video:
            writer = _writer_for(self._stage(self.video, ".mp4"), fps, size, shown=self.video.given)
            closing.callback(writer.release)
        if self.table:
            tmp = self._stage(self.table, ".csv")
            rows = csv.writer(closing.enter_context(open(tmp, "w", newline="")))
            rows.writerow(CSV_HEADER)
        self.current = None
        return writer, rows

    def put_in_place(self, frames: int) -> None:
        """Check that the closed video holds every frame, then commit each output."""
        for tmp, plan in self.pending.items():
            if plan is self.video:
                check_written(tmp, frames, plan.given)
        for tmp, plan in list(self.pending.items()):
            self.current = plan
            commit(plan, tmp)
            del self.pending[tmp]

    def write_failure(self, exc: OSError) -> VideoError:
        """The one line for an output that could not be written; the partial files go in discard."""
        failed = self.current or next(iter(self.pending.values()), None)
        names = failed.given if failed else ", ".join(p.given for p in self.plans.values())
        return VideoError(sentence(exc, path=names, failed="could not be written"))

    def discard(self) -> None:
        """Remove what was not put in place."""
        for tmp in self.pending:
            tmp.unlink(missing_ok=True)
