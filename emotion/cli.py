"""Command line: `python -m emotion {predict,evaluate,calibrate,average,train,audit,webcam,video} ...`.

The parser and every command; `emotion/__main__.py` only calls `main`.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import data
from .audit import audit
from .calibration import calibrate_saved
from .config import MODEL_FILE, app_model_path, environment_problems
from .draw import annotate
from .errors import EmotionError, UserError, sentence
from .evaluate import choose_split, evaluate_model
from .faces import DetectionSettings
from .images import MultiFrameWarning, check_image_file, read_image
from .labels import EMOTIONS
from .model import DEFAULT_BLOCKS, load_model
from .outputs import annotated_plans, report_stream, write_image
from .recognizer import EmotionRecognizer
from .speech import LANGUAGES
from .training.config import TINY_BLOCKS, TrainConfig
from .video import annotate_video
from .window import HEADLESS_MESSAGE, display_available, show_live


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


def _network_blocks(args) -> tuple[tuple[int, int], ...]:
    """The network's blocks from --tiny or --blocks, else the default network's."""
    if args.tiny and args.blocks:
        raise UserError("--tiny and --blocks both set the network's size: give one of them")
    return TINY_BLOCKS if args.tiny else args.blocks or DEFAULT_BLOCKS


def _cmd_train(args) -> int:
    # TrainConfig checks every option before Keras loads: a mistake is told in a moment.
    config = TrainConfig(
        data=args.data, optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, augment=not args.no_augment,
        robust=not args.basic_augment, precision=args.precision, out=args.out, resume=args.resume,
        patience=args.patience, init=args.init, minutes=args.minutes,
        average=args.average, force=args.force, blocks=_network_blocks(args), mixup=args.mixup,
        balance=args.balance, teachers=tuple(args.teacher or ()), distill=args.distill,
    )
    from .training.loop import train  # Keras loads with it: only `train` pays for that

    result = train(config)
    summary = {"model": str(result.model_path), "replaced": not result.kept_previous,
               "epochs_run": len(result.history),
               "train_seconds": round(result.train_seconds, 1)}
    if result.evaluation:
        summary.update(accuracy=result.evaluation.accuracy, macro_f1=result.evaluation.macro_f1)
    print(json.dumps(summary))
    return 0


def _cmd_evaluate(args) -> int:
    which, split = choose_split(data.load(args.data), args.split)
    model = load_model(args.model)
    # Both ways, as photos (the test-time views) and live video (one pass) get them; --tta
    # picks which one the details below (and the JSON's top level) describe.
    single = evaluate_model(model, split.images, split.labels)
    views = evaluate_model(model, split.images, split.labels, tta=True)
    result, other = (views, single) if args.tta else (single, views)
    if args.json:
        summary = {k: getattr(other, k) for k in ("accuracy", "macro_f1", "ece", "nll", "tta")}
        print(json.dumps({"data": str(args.data), "split": which, "model": str(args.model),
                          **result.to_dict(), "other": summary}))
        return 0
    print(f"{args.data} ({which}, {result.n_images} images), model {args.model}")
    for name, r in (("one pass", single), ("with TTA (photos)", views)):
        print(f"{name:<24} accuracy {r.accuracy:.4f}   macro-F1 {r.macro_f1:.4f}   "
              f"ECE {r.ece:.4f}   NLL {r.nll:.4f}")
    how, unsure = ("with TTA" if args.tta else "one pass"), result.uncertain
    print(f"\nshown as uncertain (confidence under {unsure.below:.0%}, {how}): {unsure.share:.1%} "
          f"of the faces, their label right {unsure.accuracy:.1%} of the time; the rest right "
          f"{unsure.accuracy_rest:.1%}")
    print(f"\nper class ({how}):")
    print(f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for name, s in result.per_class.items():
        print(f"{name:<10}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9}")
    print("\nconfusion matrix (rows true, columns predicted)")
    print(" " * 10 + "".join(f"{n[:7]:>8}" for n in EMOTIONS))
    for name, row in zip(EMOTIONS, result.confusion_matrix):
        print(f"{name:<10}" + "".join(f"{v:>8}" for v in row))
    return 0


def _cmd_calibrate(args) -> int:
    out = Path(args.out) if args.out else Path(args.model)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give the .keras file to write")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    result = calibrate_saved(args.model, args.data, out=out, sharpen=args.sharpen)
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


def _cmd_average(args) -> int:
    from .averaging import average_models, check_share

    check_share(args.share)
    for model in (args.first, args.second):
        if not Path(model).is_file():
            raise UserError(f"{model}: no such model file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder for the averaged model")
    if any((out / MODEL_FILE).resolve() == Path(m).resolve() for m in (args.first, args.second)):
        raise UserError(f"--out {out} holds one of the models being averaged: give another folder")
    result = average_models(Path(args.first), Path(args.second), args.share, args.data, out)
    print(json.dumps({"model": str(result.model_path), "share": result.share,
                      "val_accuracy": round(result.val_accuracy, 4),
                      "test_accuracy": result.test_accuracy, "tta_accuracy": result.tta_accuracy}))
    return 0


def _cmd_predict(args) -> int:
    # Check every image (without decoding it) and plan every output first, so a bad path or an
    # unusable --out fails fast, before the model loads and before anything is written (an
    # ImageError is an EmotionError: main() prints it as one line).
    for path in args.images:
        check_image_file(path)
    targets = annotated_plans(args.out, args.images) if args.out else [None] * len(args.images)
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
                written = write_image(target, annotate(image, faces))
            except OSError as exc:
                raise UserError(sentence(exc, path=target.given,
                                         failed="could not write the annotated image")) from None
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


def _cmd_audit(args) -> int:
    report = audit(data.load(args.data))
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    # `emotion` when started by the installed command, `python -m emotion` otherwise.
    prog = "emotion" if Path(sys.argv[0]).name == "emotion" else "python -m emotion"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predict(sub)
    _add_audit(sub)
    _add_train(sub)
    _add_calibrate(sub)
    _add_average(sub)
    _add_evaluate(sub)
    _add_webcam(sub)
    _add_video(sub)
    return parser


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="find faces in photos and name their emotions")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", help="annotated image file (one image) or folder (several)")
    p.add_argument("--model", default=str(app_model_path()))
    p.add_argument("--json", action="store_true", help="print one JSON array, an object per image")
    p.add_argument("--profiles", action="store_true",
                   help="also find faces turned to the side (detection takes about 4x as long)")
    p.add_argument("--no-tta", action="store_true",
                   help="one pass per face instead of averaging it over the test-time views "
                        "(mirrored, framed tighter and looser)")
    p.set_defaults(func=_cmd_predict)


def _add_audit(sub) -> None:
    p = sub.add_parser("audit", help="counts, sizes, duplicates and leakage of a dataset")
    p.add_argument("data", help="image-folder root or fer2013.csv")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_audit)


def _add_train(sub) -> None:
    train_defaults = TrainConfig(data="")
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
                        "instructions and several times slower where it has none (training warns; "
                        "scripts/bf16_throughput.py measures it); the model written "
                        "is float32 either way")
    p.add_argument("--mixup", type=float, default=train_defaults.mixup, metavar="ALPHA",
                   help="blend pairs of faces and their labels in shares drawn from Beta(ALPHA, "
                        "ALPHA), such as 0.2 (mixup); default 0, off")
    p.add_argument("--balance", type=float, default=train_defaults.balance, metavar="POWER",
                   help="class-balanced loss: each face weighs (mean count / its emotion's count) "
                        "** POWER, so rarer emotions count more; 1 weighs every emotion the same, "
                        "0.5 halfway; default 0, off")
    p.add_argument("--teacher", action="append", metavar="MODEL",
                   help="distillation: a trained .keras model whose probabilities for each "
                        "training face share its target; repeat for several (their mean)")
    p.add_argument("--distill", type=float, default=train_defaults.distill, metavar="SHARE",
                   help="with --teacher: the share of each target given to the teachers, from 0 "
                        f"to 1 (default {train_defaults.distill:g})")
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


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the model's temperature on validation faces, so its "
                       "confidence matches its accuracy (labels do not change)")
    p.add_argument("--data", required=True, help="the training data (FER2013 folder or CSV): its "
                   "held-out validation faces are used, as in training")
    p.add_argument("--model", default=str(app_model_path()), help="the .keras model to calibrate")
    p.add_argument("--out", help="where to write the calibrated model (default: in place, with "
                   "its metrics.json and reliability.png beside it)")
    p.add_argument("--sharpen", action="store_true", help="first give a model made before it the "
                   "layer that sharpens blurred faces (no training needed: it has no weights)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_calibrate)


def _add_average(sub) -> None:
    p = sub.add_parser("average", help="average two models of the same network weight by weight "
                       "(a model and one fine-tuned from it), then calibrate and score the result")
    p.add_argument("first", help="a .keras model")
    p.add_argument("second", help="a .keras model of the same network, e.g. fine-tuned from the first")
    p.add_argument("--share", type=float, default=0.5,
                   help="the second model's share of the average (default 0.5)")
    p.add_argument("--data", required=True, help="the training data (FER2013 folder or CSV): batch "
                   "norm is recomputed on its training faces, the temperature fitted on its "
                   "validation faces, the result scored on its test faces")
    p.add_argument("--out", required=True, help="folder for the averaged model and its metrics")
    p.set_defaults(func=_cmd_average)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on labelled faces")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=str(app_model_path()))
    p.add_argument("--split", choices=("test", "val"),
                   help="test faces, or the validation faces that training holds out of --data "
                        "(default: test where the data has them)")
    p.add_argument("--tta", action="store_true",
                   help="average each face over the test-time views (mirrored, framed tighter "
                        "and looser), as photos get them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_evaluate)


def _add_webcam(sub) -> None:
    p = sub.add_parser("webcam", help="live emotions from a camera in a desktop window")
    p.add_argument("--camera", type=camera_source, default=0,
                   help="camera index (default 0), or a video file or stream URL")
    p.add_argument("--speak", action="store_true", help="say the main face's emotion when it changes")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language of --speak")
    p.add_argument("--model", default=str(app_model_path()))
    p.set_defaults(func=cmd_webcam)


def _add_video(sub) -> None:
    p = sub.add_parser("video", help="annotate a video file, optionally with a per-frame CSV")
    p.add_argument("input", metavar="IN", help="a video file OpenCV can read (mp4, avi, mov, ...)")
    p.add_argument("--out", help="annotated video to write (.mp4 or .avi)")
    p.add_argument("--csv", help="CSV with one row per frame and face")
    p.add_argument("--model", default=str(app_model_path()))
    p.add_argument("--no-tta", action="store_true",
                   help="one pass per face instead of averaging it over the test-time views "
                        "(mirrored, framed tighter and looser)")
    p.set_defaults(func=cmd_video)


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
    if not display_available():
        print(f"error: {HEADLESS_MESSAGE}", file=sys.stderr)
        return 2
    result = show_live(args.camera, args.model, speak=args.speak, lang=args.lang)
    if result.video_ended:
        print(f"{args.camera}: end of the video", file=sys.stderr)
    if result.speech_off:
        print(f"note: speech was off: {result.speech_off}", file=sys.stderr)
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    """Annotate every frame of a video; progress on stderr, a one-line JSON summary on stdout
    (on stderr when an output goes to standard output)."""
    result = annotate_video(args.input, args.out, args.csv, model=args.model,
                            tta=not args.no_tta, progress=True)
    if result.cut_short:
        # A file cut short reads as a shorter video: say so rather than report success quietly.
        print(f"warning: {result.input}: only {result.frames} of the {result.frames_announced} "
              "frames it announces could be read; the file may be cut short or damaged",
              file=sys.stderr)
    print(json.dumps(result.to_dict()), file=sys.stderr if result.to_stdout else sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if problems := environment_problems():  # a mistyped switch, said before any work
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2

    try:
        return args.func(args)
    # A user's mistake, or a file the system cannot read or write: one line, not a traceback.
    except (EmotionError, OSError) as exc:
        print(f"error: {sentence(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
