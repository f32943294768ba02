"""`webcam` and `video` subcommands: live emotions in an OpenCV window, and annotated video files."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import sys
from pathlib import Path

from .config import DEFAULT_MODEL
from .labels import EMOTIONS

HEADLESS_MESSAGE = (
    "this OpenCV cannot open windows (it is the headless build): run "
    "`pip uninstall opencv-python-headless && pip install opencv-python` for the webcam window"
)
WINDOW = "Emotions (q to quit)"
CSV_HEADER = ["frame", "time_s", "face", "x", "y", "w", "h", "label", "confidence", *EMOTIONS]


def register(subparsers) -> None:
    """Add the `webcam` and `video` subcommands to an argparse subparsers object."""
    from .speech import LANGUAGES

    p = subparsers.add_parser("webcam", help="live emotions from a camera in a desktop window")
    p.add_argument("--camera", type=camera_source, default=0,
                   help="camera index (default 0), or a video file or stream URL")
    p.add_argument("--speak", action="store_true", help="say the main face's emotion when it changes")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language of --speak")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.set_defaults(func=cmd_webcam)

    p = subparsers.add_parser("video", help="annotate a video file, optionally with a per-frame CSV")
    p.add_argument("input", metavar="IN", help="a video file OpenCV can read (mp4, avi, mov, ...)")
    p.add_argument("--out", help="annotated video to write (.mp4 or .avi)")
    p.add_argument("--csv", help="CSV with one row per frame and face")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.set_defaults(func=cmd_video)


def display_available() -> bool:
    """Whether this OpenCV build can open a window (the headless wheels cannot)."""
    import cv2

    try:
        cv2.namedWindow(WINDOW)
    except cv2.error:
        return False
    return True


def camera_source(text: str) -> int | str:
    """A camera index ('0', '1') as an int; anything else (a file, an rtsp:// URL) as given."""
    return int(text) if text.strip().isdigit() else text


def cmd_webcam(args: argparse.Namespace) -> int:
    """Show the camera with boxes, labels and FPS until `q` (or Esc) is pressed."""
    import cv2

    if not display_available():
        print(f"error: {HEADLESS_MESSAGE}", file=sys.stderr)
        return 2
    from .live import LiveProcessor
    from .recognizer import EmotionRecognizer
    from .speech import DesktopSpeaker

    recognizer = EmotionRecognizer(args.model)
    speaker = DesktopSpeaker(args.lang) if args.speak else None
    capture = cv2.VideoCapture(args.camera)
    try:
        if not capture.isOpened():
            raise ValueError(f"camera {args.camera} could not be opened (try --camera 1)")
        processor = LiveProcessor(recognizer)
        while True:
            ok, frame = capture.read()
            if not ok:
                raise ValueError(f"camera {args.camera} stopped sending frames")
            result = processor.process(frame)
            if speaker:
                main = result.main_face
                speaker.update(main.label if main else None)
            cv2.imshow(WINDOW, result.frame)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                break
    finally:
        capture.release()
        cv2.destroyAllWindows()
    if speaker:
        speaker.wait(timeout=5)
        if speaker.disabled_reason:
            print(f"note: speech was off: {speaker.disabled_reason}", file=sys.stderr)
    return 0


def temp_beside(target: Path) -> Path:
    """A new, empty, hidden file in `target`'s folder, ending in its extension (OpenCV picks the
    format by it), for writing `target` atomically; its folder must exist.

    Made with the usual permissions (umask), not tempfile.mkstemp's owner-only ones, since it
    becomes the output.
    """
    for _ in range(100):
        tmp = target.with_name(f".{target.stem}.partial-{secrets.token_hex(4)}{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{target.parent}: could not make a temporary file there")


def replace_atomically(tmp: Path, target: Path) -> None:
    """Rename the finished `tmp` over `target`: readers see the old file or the whole new one."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)  # the data reaches the disk before the rename does, so a crash cannot swap in a hole
    finally:
        os.close(fd)
    os.replace(tmp, target)


def _writer_for(path: Path, fps: float, size: tuple[int, int], shown: Path):
    """An OpenCV writer for `path` (a temporary file); errors name `shown`, the user's --out."""
    import cv2

    # mp4v is the MPEG-4 encoder every OpenCV wheel has; MJPG for .avi.
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise ValueError(f"{shown}: cannot write a video there (use .mp4 or .avi)")
    return writer


def _check_outputs(source: Path, outputs: dict[str, str | None]) -> None:
    """ValueError, before anything is written, for an output that is the input, a folder, or
    the same file as another output."""
    seen: dict[Path, str] = {}
    for option, value in outputs.items():
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise ValueError(f"{option} {value} is a folder: give a file name")
        if path.exists() and path.resolve() == source.resolve():
            raise ValueError(f"{option} {value} is the input video: choose another name")
        if path.resolve() in seen:
            raise ValueError(f"{option} and {seen[path.resolve()]} name the same file: {value}")
        seen[path.resolve()] = option


def cmd_video(args: argparse.Namespace) -> int:
    """Annotate every frame of a video; progress on stderr, a one-line JSON summary on stdout."""
    import cv2
    from tqdm import tqdm

    from .live import LiveProcessor
    from .recognizer import EmotionRecognizer

    source = Path(args.input)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    _check_outputs(source, {"--out": args.out, "--csv": args.csv})
    capture = cv2.VideoCapture(str(source))
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise ValueError(f"{source}: not a readable video (expected mp4, avi, mov, mkv or webm)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 25.0  # some containers do not say; 25 keeps times sensible
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None

    processor = LiveProcessor(EmotionRecognizer(args.model), draw_fps=False)
    out_path = Path(args.out) if args.out else None
    csv_path = Path(args.csv) if args.csv else None
    # Outputs are written to temporary files beside their targets and renamed only once every
    # frame is in: a failure or Ctrl-C removes them and leaves whatever was at the targets.
    pending: dict[Path, Path] = {}  # temporary file -> its target
    writer = rows = None
    frames = faces_seen = 0
    labels: dict[str, int] = {}
    try:
        with contextlib.ExitStack() as closing:
            if out_path:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = temp_beside(out_path)
                pending[tmp] = out_path
                writer = _writer_for(tmp, fps, (frame.shape[1], frame.shape[0]), shown=out_path)
                closing.callback(writer.release)
            if csv_path:
                csv_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = temp_beside(csv_path)
                pending[tmp] = csv_path
                rows = csv.writer(closing.enter_context(open(tmp, "w", newline="")))
                rows.writerow(CSV_HEADER)
            with tqdm(total=total, unit="frame", file=sys.stderr, desc=source.name) as bar:
                while ok:
                    # Times come from the frame number, so smoothing follows the video, not the CPU.
                    t = frames / fps
                    result = processor.process(frame, t=t)
                    if writer:
                        writer.write(result.frame)
                    for face in result.faces:
                        faces_seen += 1
                        labels[face.label] = labels.get(face.label, 0) + 1
                        if rows:
                            b = face.box
                            rows.writerow([frames, f"{t:.3f}", face.face_id, b.x, b.y, b.w, b.h,
                                           face.label, f"{face.confidence:.4f}",
                                           *(f"{face.probabilities[e]:.4f}" for e in EMOTIONS)])
                    frames += 1
                    bar.update(1)
                    ok, frame = capture.read()
        # Both were closed above, before the rename: the mp4's index is written on release.
        for tmp, target in list(pending.items()):
            replace_atomically(tmp, target)
            del pending[tmp]
    except OSError as exc:
        # A full disk or a folder we may not write to: one line; the partial files go below.
        names = ", ".join(str(t) for t in pending.values()) or "the outputs"
        raise ValueError(f"{names}: could not be written ({exc.strerror or exc}): "
                         "check the folder's space and permissions") from None
    finally:
        capture.release()
        for tmp in pending:
            tmp.unlink(missing_ok=True)
    stats = processor.stats()
    print(json.dumps({"input": str(source), "frames": frames, "fps": round(fps, 3),
                      "frames_with_faces": stats.frames_with_faces, "faces": faces_seen,
                      "labels": labels, "mean_process_ms": round(stats.mean_process_ms, 1),
                      "out": str(out_path) if out_path else None, "csv": args.csv}))
    return 0
