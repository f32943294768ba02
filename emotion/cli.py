"""Command line: `python -m emotion {predict,evaluate,calibrate,train,audit,webcam,video} ...`.

The parser and every command; `emotion/__main__.py` only calls `main`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import sys
import warnings
from pathlib import Path

from .config import app_model_path
from .files import os_error_line
from .labels import EMOTIONS

HEADLESS_MESSAGE = (
    "this OpenCV cannot open windows (it is the headless build): run "
    "`pip uninstall opencv-python-headless && pip install opencv-python` for the webcam window"
)
WINDOW = "Emotions (q to quit)"
CSV_HEADER = ["frame", "time_s", "face", "x", "y", "w", "h", "label", "confidence", *EMOTIONS]


MAX_BLOCKS, MAX_WIDTH, MAX_CONVS = 5, 4096, 16
MAX_LR = 10.0  # far above any useful rate (1e-3 for Adam, 1e-2 for SGD); beyond it Keras fails


def _blocks(text: str) -> tuple[tuple[int, int], ...]:
    """'32x1,64x2' -> ((32, 1), (64, 2)), for --blocks."""
    try:
        blocks = tuple((int(w), int(n)) for w, n in (b.lower().split("x") for b in text.split(",")))
    except ValueError:
        blocks = ()
    if not blocks or any(w < 1 or n < 1 for w, n in blocks):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected blocks as WIDTHxCONVS separated by commas, such as 32x1,64x2,128x2")
    return blocks


class UserError(ValueError):
    """A mistake in what the user gave: printed as one line, exit status 2."""


def _check_train_options(args) -> None:
    """UserError naming the first option that cannot train a useful model; nothing touched yet."""
    from .training.config import TrainConfig

    default = TrainConfig(data="")
    if args.epochs < 1:
        raise UserError(f"--epochs {args.epochs}: give at least 1 epoch (the default is {default.epochs})")
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: give at least 1 (the default is "
                        f"{default.batch_size})")
    if args.lr is not None and not (math.isfinite(args.lr) and 0 < args.lr <= MAX_LR):
        raise UserError(f"--lr {args.lr:g}: give a positive learning rate up to {MAX_LR:g}, "
                        "such as 1e-3")
    if args.tiny and args.blocks:
        raise UserError("--tiny and --blocks both set the network's size: give one of them")
    blocks = args.blocks or ()
    if len(blocks) > MAX_BLOCKS:
        # Each block halves the 48 px face: 24, 12, 6, 3, 1, and a sixth would leave nothing.
        raise UserError(f"--blocks: {len(blocks)} blocks, at most {MAX_BLOCKS} (each halves the "
                        "48x48 face)")
    if any(w > MAX_WIDTH or n > MAX_CONVS for w, n in blocks):
        raise UserError(f"--blocks: at most {MAX_WIDTH} filters and {MAX_CONVS} convolutions a "
                        "block")
    if args.patience < 0:
        raise UserError(f"--patience {args.patience}: give 0 or more epochs (the default is "
                        f"{default.patience})")
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise UserError(f"--minutes {args.minutes:g}: give a positive time limit, such as 60")
    if not 0 <= args.average <= 1:
        raise UserError(f"--average {args.average:g}: give the fraction of the epochs to average, "
                        "from 0 (off) to 1, e.g. 0.75")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file: give a folder for the model and its metrics")


def _cmd_train(args) -> int:
    from .training.config import TINY_BLOCKS, TrainConfig

    _check_train_options(args)  # before Keras loads: a mistake is told in a moment
    from .training.loop import train

    config = TrainConfig(
        data=args.data, optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, augment=not args.no_augment,
        robust=not args.basic_augment, precision=args.precision, out=args.out, resume=args.resume,
        patience=args.patience, init=args.init, minutes=args.minutes,
        average=args.average, force=args.force,
    )
    if args.blocks:
        config.blocks = args.blocks
    if args.tiny:
        config.blocks = TINY_BLOCKS
    result = train(config)
    summary = {"model": str(result.model_path), "replaced": not result.kept_previous,
               "epochs_run": len(result.history),
               "train_seconds": round(result.train_seconds, 1)}
    if result.evaluation:
        summary.update(accuracy=result.evaluation.accuracy, macro_f1=result.evaluation.macro_f1)
    print(json.dumps(summary))
    return 0


def _cmd_evaluate(args) -> int:
    from . import data
    from .evaluate import choose_split, evaluate_model
    from .model import load_model

    which, split = choose_split(data.load(args.data))
    model = load_model(args.model)
    # Both ways, as photos (mirror averaged) and live video (one pass) get them; --tta picks
    # which one the details below (and the JSON's top level) describe.
    single = evaluate_model(model, split.images, split.labels)
    mirrored = evaluate_model(model, split.images, split.labels, tta=True)
    result, other = (mirrored, single) if args.tta else (single, mirrored)
    if args.json:
        summary = {k: getattr(other, k) for k in ("accuracy", "macro_f1", "ece", "nll", "tta")}
        print(json.dumps({"data": str(args.data), "split": which, "model": str(args.model),
                          **result.to_dict(), "other": summary}))
        return 0
    print(f"{args.data} ({which}, {result.n_images} images), model {args.model}")
    for name, r in (("one pass", single), ("with flip TTA (photos)", mirrored)):
        print(f"{name:<24} accuracy {r.accuracy:.4f}   macro-F1 {r.macro_f1:.4f}   "
              f"ECE {r.ece:.4f}   NLL {r.nll:.4f}")
    print(f"\nper class ({'with flip TTA' if args.tta else 'one pass'}):")
    print(f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for name, s in result.per_class.items():
        print(f"{name:<10}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9}")
    print("\nconfusion matrix (rows true, columns predicted)")
    from .labels import EMOTIONS

    print(" " * 10 + "".join(f"{n[:7]:>8}" for n in EMOTIONS))
    for name, row in zip(EMOTIONS, result.confusion_matrix):
        print(f"{name:<10}" + "".join(f"{v:>8}" for v in row))
    return 0


def _cmd_calibrate(args) -> int:
    from .calibration import calibrate_saved

    out = Path(args.out) if args.out else Path(args.model)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give the .keras file to write")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    result = calibrate_saved(args.model, args.data, out=out)
    if args.json:
        print(json.dumps({"model": str(out), **result}))
        return 0
    val, test = result["val"], result.get("test")
    print(f"{out}: temperature {result['temperature']:.3f}; validation ({val['n']} faces) ECE "
          f"{val['ece_before']:.4f} -> {val['ece_after']:.4f}, NLL {val['nll_before']:.4f} -> "
          f"{val['nll_after']:.4f}")
    if test:
        print(f"test ({test['n']} faces): ECE {test['ece_before']:.4f} -> {test['ece_after']:.4f}, "
              f"NLL {test['nll_before']:.4f} -> {test['nll_after']:.4f}")
    return 0


def _cmd_predict(args) -> int:
    from .draw import annotate
    from .faces import DetectionSettings
    from .images import MultiFrameWarning, check_image_file, read_image
    from .outputs import report_stream
    from .recognizer import EmotionRecognizer

    # Check every image (without decoding it) and plan every output first, so a bad path or an
    # unusable --out fails fast, before the model loads and before anything is written (an
    # ImageError is a ValueError: main() prints it as one line).
    for path in args.images:
        check_image_file(path)
    targets = _annotated_targets(args.out, args.images) if args.out else [None] * len(args.images)
    report = report_stream([t for t in targets if t is not None])
    recognizer = EmotionRecognizer(args.model, DetectionSettings(profiles=args.profiles),
                                   tta=not args.no_tta)
    results = []
    # One image decoded at a time, after the model: memory does not grow with the inputs.
    for path, target in zip(args.images, targets):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MultiFrameWarning)
            image = read_image(path)
        for warning in caught:
            print(f"note: {warning.message}", file=sys.stderr)
        faces = recognizer.recognize(image)
        results.append({"image": path, "faces": [f.to_dict() for f in faces]})
        if not faces:
            print(f"{path}: no face found (try a brighter, larger face, or --profiles)", file=sys.stderr)
        if target is not None:
            try:
                if target.target is not None:
                    # A folder --out is made here, at the first write; one file's folder was checked.
                    target.target.parent.mkdir(parents=True, exist_ok=True)
                written = cv2_write(target, annotate(image, faces))
            except OSError as exc:
                raise UserError(f"{target.given}: could not write the annotated image "
                                f"({exc.strerror or exc}): check the folder's space and permissions"
                                ) from None
            if not written:
                raise UserError(f"{target.given}: could not write the annotated image (use .jpg or .png)")
            print(f"{path}: annotated image written to {target.given}", file=sys.stderr)
        del image
        if not args.json:
            print(f"{path}: {len(faces)} face(s)", file=report)
            for f in faces:
                x, y, w, h = f.box.as_list()
                print(f"  [{x}, {y}, {w}, {h}] {f.label} {f.confidence:.0%}", file=report)
    if args.json:
        print(json.dumps(results), file=report)
    return 0


def _same_file_key(path: str | Path) -> str:
    """One key per file: absolute, links resolved, case folded (a case-insensitive disk would
    make a.jpg and A.jpg one file)."""
    return str(Path(path).resolve()).casefold()


def _annotated_targets(out: str, images: list[str]):
    """Where each image's annotated copy goes (an `outputs.OutputPlan` each); UserError, before
    anything is written, when --out cannot take them.

    One image and --out not a folder: that file (whose folder must exist), or a stream ('-', a
    pipe). Otherwise --out is a folder (made when first written to) and image k gets
    STEM_annotated.jpg, or STEM_annotated-2.jpg and so on when an input or an earlier image of
    this run has that name.
    """
    import cv2

    from .outputs import OutputPlan, plan_output

    out_path = Path(out)
    inputs = {_same_file_key(p) for p in images}
    if len(images) == 1 and not out_path.is_dir():
        plan = plan_output(out, "--out")
        if plan.stream:
            if plan.suffix and not cv2.haveImageWriter(f"x{plan.suffix}"):
                raise UserError(f"--out {out}: cannot write {plan.suffix} images, use .jpg or .png")
            return [plan]
        if _same_file_key(plan.target) in inputs:
            raise UserError(f"--out {out} is one of the input images: choose another name")
        if not plan.target.suffix:
            raise UserError(f"--out {out}: give an image file name ending in .jpg or .png, "
                            "or an existing folder")
        if not cv2.haveImageWriter(str(plan.target)):
            raise UserError(f"--out {out}: cannot write {plan.target.suffix} images, use .jpg or .png")
        return [plan]
    if out == "-" or (out_path.exists() and not out_path.is_dir()):
        raise UserError(f"--out {out} is not a folder: with several images give a folder instead")
    if out_path.suffix and not out_path.exists():
        raise UserError(f"--out {out} names one file: with several images give a folder instead")
    taken = set(inputs)
    targets = []
    for image in images:
        stem, n = Path(image).stem, 1
        target = out_path / f"{stem}_annotated.jpg"
        while _same_file_key(target) in taken:
            n += 1
            target = out_path / f"{stem}_annotated-{n}.jpg"
        taken.add(_same_file_key(target))
        # Something already there (a link, a pipe) is planned like any --out; else a new file.
        exists = target.exists() or target.is_symlink()
        targets.append(plan_output(str(target), "--out") if exists
                       else OutputPlan("--out", str(target), target))
    return targets


def cv2_write(path, image) -> bool:
    """Write an image to a file path or an `outputs.OutputPlan`; False when OpenCV cannot encode
    to its extension.

    The image is encoded in memory and written to a temporary file, then renamed over a regular
    file (so a failure, a full disk or Ctrl-C, leaves no partial file and the old one as it was)
    or copied into a stream. OSError when it cannot be written.
    """
    import cv2

    from .outputs import OutputPlan, commit, staging_file

    plan = path if isinstance(path, OutputPlan) else OutputPlan("--out", str(path), Path(path))
    suffix = plan.suffix or ".jpg"  # '-' and a pipe without an extension get a JPEG
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error:
        return False
    if not ok:
        return False
    tmp = staging_file(plan, suffix)
    try:
        tmp.write_bytes(encoded.tobytes())
        commit(plan, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _cmd_audit(args) -> int:
    from . import data
    from .audit import audit

    report = audit(data.load(args.data))
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    model = str(app_model_path())  # $EMOTION_MODEL as it is now
    from .speech import LANGUAGES
    from .training.config import TrainConfig  # no Keras: training's defaults, cheaply

    train_defaults = TrainConfig(data="")
    # `emotion` when started by the installed command, `python -m emotion` otherwise.
    prog = "emotion" if Path(sys.argv[0]).name == "emotion" else "python -m emotion"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="find faces in photos and name their emotions")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", help="annotated image file (one image) or folder (several)")
    p.add_argument("--model", default=model)
    p.add_argument("--json", action="store_true", help="print one JSON array, an object per image")
    p.add_argument("--profiles", action="store_true",
                   help="also find faces turned to the side (detection takes about 4x as long)")
    p.add_argument("--no-tta", action="store_true",
                   help="one pass per face instead of averaging it with its mirror image")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("audit", help="counts, sizes, duplicates and leakage of a dataset")
    p.add_argument("data", help="image-folder root or fer2013.csv")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("train", help="train a model on FER2013 (folder, fer2013.csv or kaggle)")
    p.add_argument("--data", required=True, help="image-folder root, fer2013.csv, or 'kaggle'")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default=train_defaults.optimizer)
    p.add_argument("--epochs", type=int, default=train_defaults.epochs)
    p.add_argument("--batch-size", type=int, default=train_defaults.batch_size)
    p.add_argument("--lr", type=float, default=train_defaults.lr, help="default "
                   + " or ".join(f"{TrainConfig(data='', optimizer=name).learning_rate:g} ({name})"
                                 for name in ("adam", "sgd")))
    p.add_argument("--patience", type=int, default=train_defaults.patience,
                   help="early-stopping patience in epochs")
    p.add_argument("--average", type=float, default=train_defaults.average, metavar="FRACTION",
                   help="average the weights of this last fraction of the epochs, holding the "
                        "learning rate there (stochastic weight averaging); the average is kept "
                        "if it scores best on validation")
    p.add_argument("--minutes", type=float, default=train_defaults.minutes,
                   help="train for as many epochs (up to --epochs) as fit in this many minutes, "
                        "the learning-rate schedule fitted to them")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--precision", choices=("float32", "bf16"), default="float32",
                   help="bf16: mixed bfloat16, about 2x faster where the processor has bf16 "
                        "matrix units (scripts/bf16_throughput.py measures it); the model written "
                        "is float32 either way")
    p.add_argument("--basic-augment", action="store_true",
                   help="flip, shift, rotation and zoom only: without the light, contrast, blur "
                        "and noise that make the model hold up on other cameras")
    p.add_argument("--blocks", type=_blocks, metavar="WxN,...",
                   help="the network's conv blocks as width x convolutions, default "
                        + ",".join(f"{w}x{n}" for w, n in train_defaults.blocks))
    p.add_argument("--tiny", action="store_true",
                   help="a very small network: for trying the pipeline out in seconds")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--force", action="store_true",
                   help="replace the model in --out even if it scores better on validation than "
                        "the new one (otherwise the new one goes to --out/candidate)")
    p.add_argument("--init", metavar="MODEL",
                   help="start from this .keras model's weights (fine-tuning, another cycle)")
    p.add_argument("--out", default=str(app_model_path().parent), help="folder for the model and metrics")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("calibrate", help="fit the model's temperature on validation faces, so its "
                       "confidence matches its accuracy (labels do not change)")
    p.add_argument("--data", required=True, help="the training data (FER2013 folder or CSV): its "
                   "held-out validation faces are used, as in training")
    p.add_argument("--model", default=model, help="the .keras model to calibrate")
    p.add_argument("--out", help="where to write the calibrated model (default: in place, with "
                   "its metrics.json and reliability.png beside it)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("evaluate", help="score a model on labelled faces")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=model)
    p.add_argument("--tta", action="store_true", help="average with horizontally flipped faces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("webcam", help="live emotions from a camera in a desktop window")
    p.add_argument("--camera", type=camera_source, default=0,
                   help="camera index (default 0), or a video file or stream URL")
    p.add_argument("--speak", action="store_true", help="say the main face's emotion when it changes")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language of --speak")
    p.add_argument("--model", default=model)
    p.set_defaults(func=cmd_webcam)

    p = sub.add_parser("video", help="annotate a video file, optionally with a per-frame CSV")
    p.add_argument("input", metavar="IN", help="a video file OpenCV can read (mp4, avi, mov, ...)")
    p.add_argument("--out", help="annotated video to write (.mp4 or .avi)")
    p.add_argument("--csv", help="CSV with one row per frame and face")
    p.add_argument("--model", default=model)
    p.add_argument("--no-tta", action="store_true",
                   help="one pass per face instead of averaging it with its mirror image")
    p.set_defaults(func=cmd_video)
    return parser


def display_available() -> bool:
    """Whether this OpenCV build can open a window (the headless wheels cannot)."""
    import cv2

    try:
        cv2.namedWindow(WINDOW)
    except cv2.error:
        return False
    return True


MAX_CAMERA_INDEX = 9999  # OpenCV's indices are small (a backend adds multiples of 100)


def camera_source(text: str) -> int | str:
    """A camera index ('0', '1') as an int; anything else (a file, an rtsp:// URL) as given."""
    if not text.strip().isdigit():
        return text
    index = int(text)
    if index > MAX_CAMERA_INDEX:
        raise argparse.ArgumentTypeError(
            f"camera {text.strip()[:24]}: give a camera number from 0 to {MAX_CAMERA_INDEX} "
            "(0 is the first camera), or a video file or stream URL")
    return index


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
        from .videos import check_frame_size

        check_frame_size(capture, f"camera {args.camera}")
        processor = LiveProcessor(recognizer)
        from_file = isinstance(args.camera, str) and Path(args.camera).is_file()
        while True:
            ok, frame = capture.read()
            if not ok and from_file:  # a video file that ends is done, not broken
                print(f"{args.camera}: end of the video", file=sys.stderr)
                break
            if not ok:
                raise ValueError(f"camera {args.camera} stopped sending frames")
            result = processor.process(frame)
            if speaker:
                main = result.main_face
                speaker.update(main.shown_label if main else None)
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


def _writer_for(path: Path, fps: float, size: tuple[int, int], shown: Path):
    """An OpenCV writer for `path` (a temporary file); errors name `shown`, the user's --out."""
    import cv2

    # mp4v is the MPEG-4 encoder every OpenCV wheel has; MJPG for .avi.
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise ValueError(f"{shown}: cannot write a video there (use .mp4 or .avi)")
    return writer


def _video_source(source: Path):
    """The opened capture of `source`, its first frame, frame rate and announced frame count;
    ValueError, before the first frame is decoded, for a file that is not a readable video or
    whose frames are over the size limit."""
    import cv2

    from .videos import check_frame_size, check_video_file, frame_size_problem

    check_video_file(source)
    capture = cv2.VideoCapture(str(source))
    try:
        if capture.isOpened():
            check_frame_size(capture, str(source))
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise ValueError(f"{source}: not a readable video (expected mp4, avi, mov, mkv or webm)")
        # The container may not say the size: the first frame does.
        if problem := frame_size_problem(frame.shape[1], frame.shape[0], str(source)):
            raise ValueError(problem)
    except BaseException:
        capture.release()
        raise
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 25.0  # some containers do not say; 25 keeps times sensible
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return capture, frame, fps, (total if total > 0 else None)


def _video_outputs(source: Path, out: str | None, csv_name: str | None):
    """The plans for --out and --csv, checked before anything is read or written."""
    from .outputs import plan_output
    from .videos import video_output_problem

    plans = {}
    for option, value in (("--out", out), ("--csv", csv_name)):
        if not value:
            continue
        plan = plan_output(value, option)
        if option == "--out" and (
                problem := video_output_problem(option, value, plan.suffix, plan.stream)):
            raise UserError(problem)
        if plan.target is not None and plan.target.exists() \
                and _same_file_key(plan.target) == _same_file_key(source):
            raise UserError(f"{option} {value} is the input video: choose another name")
        for other in plans.values():
            if other.key() == plan.key():
                raise UserError(f"{option} and {other.option} name the same file: {value}")
        plans[option] = plan
    return plans


def cmd_video(args: argparse.Namespace) -> int:
    """Annotate every frame of a video; progress on stderr, a one-line JSON summary on stdout
    (on stderr when an output goes to standard output)."""
    from tqdm import tqdm

    from .live import LiveProcessor
    from .outputs import commit, report_stream, staging_file
    from .recognizer import EmotionRecognizer
    from .videos import check_written, frame_time

    source = Path(args.input)
    plans = _video_outputs(source, args.out, args.csv)
    out_plan, csv_plan = plans.get("--out"), plans.get("--csv")
    capture, frame, fps, total = _video_source(source)

    processor = LiveProcessor(EmotionRecognizer(args.model), draw_fps=False, tta=not args.no_tta)
    # Outputs are written to temporary files and put in place (renamed over a file, copied into a
    # stream) only once every frame is in: a failure or Ctrl-C removes them and leaves whatever
    # was at the targets.
    pending: dict[Path, object] = {}  # temporary file -> its plan
    writer = rows = None
    frames = faces_seen = 0
    labels: dict[str, int] = {}
    current = None  # the output being written, for the message if writing fails
    try:
        with contextlib.ExitStack() as closing:
            if out_plan:
                current = out_plan
                tmp = staging_file(out_plan, ".mp4")
                pending[tmp] = out_plan
                writer = _writer_for(tmp, fps, (frame.shape[1], frame.shape[0]), shown=out_plan.given)
                closing.callback(writer.release)
            if csv_plan:
                current = csv_plan
                tmp = staging_file(csv_plan, ".csv")
                pending[tmp] = csv_plan
                rows = csv.writer(closing.enter_context(open(tmp, "w", newline="")))
                rows.writerow(CSV_HEADER)
            current = None
            with tqdm(total=total, unit="frame", file=sys.stderr, desc=source.name) as bar:
                ok = True
                while ok:
                    # The frame's own timestamp (a variable frame rate keeps it right), so
                    # smoothing follows the video, not the CPU.
                    t = frame_time(capture, frames, fps)
                    result = processor.process(frame, t=t)
                    if writer:
                        writer.write(result.frame)
                    for face in result.faces:
                        faces_seen += 1
                        labels[face.shown_label] = labels.get(face.shown_label, 0) + 1
                        if rows:
                            b = face.box
                            rows.writerow([frames, f"{t:.3f}", face.face_id, b.x, b.y, b.w, b.h,
                                           face.shown_label, f"{face.confidence:.4f}",
                                           *(f"{face.probabilities[e]:.4f}" for e in EMOTIONS)])
                    frames += 1
                    bar.update(1)
                    ok, frame = capture.read()
        # Both were closed above: the mp4's index is written on release, and checked here.
        for tmp, plan in pending.items():
            if plan is out_plan:
                check_written(tmp, frames, out_plan.given)
        for tmp, plan in list(pending.items()):
            current = plan
            commit(plan, tmp)
            del pending[tmp]
    except OSError as exc:
        # A full disk or a folder we may not write to: one line; the partial files go below.
        failed = current or next(iter(pending.values()), None)
        names = failed.given if failed else ", ".join(p.given for p in plans.values())
        raise ValueError(f"{names}: could not be written ({exc.strerror or exc}): "
                         "check the folder's free space and permissions") from None
    finally:
        capture.release()
        for tmp in pending:
            tmp.unlink(missing_ok=True)
    stats = processor.stats()
    summary = {"input": str(source), "frames": frames, "fps": round(fps, 3),
               "frames_with_faces": stats.frames_with_faces, "faces": faces_seen,
               "labels": labels, "mean_process_ms": round(stats.mean_process_ms, 1),
               "out": args.out, "csv": args.csv}
    if total and frames < total:
        # A file cut short reads as a shorter video: say so rather than report success quietly.
        summary["frames_announced"] = total
        print(f"warning: {source}: only {frames} of the {total} frames it announces could be read; "
              "the file may be cut short or damaged", file=sys.stderr)
    print(json.dumps(summary), file=report_stream(list(plans.values())))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import environment_problems
    from .data import DataError

    if problems := environment_problems():  # a mistyped switch, said before any work
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2

    try:
        return args.func(args)
    except (UserError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: one line, not a traceback
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
