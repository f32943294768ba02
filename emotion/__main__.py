"""Command line: `python -m emotion {predict,evaluate,train,audit,webcam,video} ...`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .config import DEFAULT_MODEL
from .model import DEFAULT_BLOCKS


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


class UserError(Exception):
    """A mistake in what the user gave: printed as one line, exit status 2."""


def _check_train_options(args) -> None:
    """UserError naming the first option that cannot train a useful model; nothing touched yet."""
    if args.epochs < 1:
        raise UserError(f"--epochs {args.epochs}: give at least 1 epoch (the default is 60)")
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: give at least 1 (the default is 64)")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr {args.lr}: give a positive learning rate, such as 1e-3")
    if args.patience < 0:
        raise UserError(f"--patience {args.patience}: give 0 or more epochs (the default is 15)")
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise UserError(f"--minutes {args.minutes:g}: give a positive time limit, such as 60")
    if not 0 <= args.average <= 1:
        raise UserError(f"--average {args.average:g}: give the fraction of the epochs to average, "
                        "from 0 (off) to 1, e.g. 0.75")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file: give a folder for the model and its metrics")


def _cmd_train(args) -> int:
    from .train import TINY_BLOCKS, TrainConfig, train

    _check_train_options(args)
    config = TrainConfig(
        data=args.data, optimizer=args.optimizer, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, augment=not args.no_augment, out=args.out, resume=args.resume,
        patience=args.patience, init=args.init, minutes=args.minutes,
        average=args.average,
    )
    if args.blocks:
        config.blocks = args.blocks
    if args.tiny:
        config.blocks = TINY_BLOCKS
    result = train(config)
    summary = {"model": str(result.model_path), "epochs_run": len(result.history),
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
    result = evaluate_model(model, split.images, split.labels, tta=args.tta)
    if args.json:
        print(json.dumps({"data": str(args.data), "split": which, "model": str(args.model),
                          **result.to_dict()}))
        return 0
    print(f"{args.data} ({which}, {result.n_images} images), model {args.model}"
          f"{' with flip TTA' if args.tta else ''}")
    print(f"accuracy {result.accuracy:.4f}   macro-F1 {result.macro_f1:.4f}\n")
    print(f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for name, s in result.per_class.items():
        print(f"{name:<10}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9}")
    print("\nconfusion matrix (rows true, columns predicted)")
    from .labels import EMOTIONS

    print(" " * 10 + "".join(f"{n[:7]:>8}" for n in EMOTIONS))
    for name, row in zip(EMOTIONS, result.confusion_matrix):
        print(f"{name:<10}" + "".join(f"{v:>8}" for v in row))
    return 0


def _cmd_predict(args) -> int:
    from .draw import annotate
    from .faces import DetectionSettings
    from .images import read_image
    from .recognizer import EmotionRecognizer

    # Read every image and plan every output first, so a bad path or an unusable --out fails
    # fast, before the model loads and before anything is written (an ImageError is a
    # ValueError: main() prints it as one line).
    images = [read_image(path) for path in args.images]
    targets = _annotated_targets(args.out, args.images) if args.out else [None] * len(images)
    recognizer = EmotionRecognizer(args.model, DetectionSettings(profiles=args.profiles))
    results = []
    for path, image, target in zip(args.images, images, targets):
        faces = recognizer.recognize(image)
        results.append({"image": path, "faces": [f.to_dict() for f in faces]})
        if not faces:
            print(f"{path}: no face found (try a brighter, larger face, or --profiles)", file=sys.stderr)
        if target is not None:
            try:
                # A folder --out is made here, at the first write; one file's folder was checked.
                target.parent.mkdir(parents=True, exist_ok=True)
                written = cv2_write(target, annotate(image, faces))
            except OSError as exc:
                raise UserError(f"{target}: could not write the annotated image "
                                f"({exc.strerror or exc}): check the folder's space and permissions"
                                ) from None
            if not written:
                raise UserError(f"{target}: could not write the annotated image (use .jpg or .png)")
            print(f"{path}: annotated image written to {target}", file=sys.stderr)
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                x, y, w, h = f.box.as_list()
                print(f"  [{x}, {y}, {w}, {h}] {f.label} {f.confidence:.0%}")
    if args.json:
        print(json.dumps(results))
    return 0


def _same_file_key(path: str | Path) -> str:
    """One key per file: absolute, links resolved, case folded (a case-insensitive disk would
    make a.jpg and A.jpg one file)."""
    return str(Path(path).resolve()).casefold()


def _annotated_targets(out: str, images: list[str]) -> list[Path]:
    """Where each image's annotated copy goes; UserError, before anything is written, when --out
    cannot take them.

    One image and --out not a folder: that file, whose folder must exist. Otherwise --out is a
    folder (made when first written to) and image k gets STEM_annotated.jpg, or
    STEM_annotated-2.jpg and so on when an input or an earlier image of this run has that name.
    """
    import cv2

    out_path = Path(out)
    inputs = {_same_file_key(p) for p in images}
    if len(images) == 1 and not out_path.is_dir():
        if _same_file_key(out_path) in inputs:
            raise UserError(f"--out {out} is one of the input images: choose another name")
        if not out_path.suffix:
            raise UserError(f"--out {out}: give an image file name ending in .jpg or .png, "
                            "or an existing folder")
        if not cv2.haveImageWriter(str(out_path)):
            raise UserError(f"--out {out}: cannot write {out_path.suffix} images, use .jpg or .png")
        if not out_path.parent.is_dir():
            raise UserError(f"--out {out}: the folder {out_path.parent} does not exist: "
                            "create it first or choose another folder")
        return [out_path]
    if out_path.exists() and not out_path.is_dir():
        raise UserError(f"--out {out} is a file: with several images give a folder instead")
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
        targets.append(target)
    return targets


def cv2_write(path: Path, image) -> bool:
    """Write an image atomically; False when OpenCV cannot encode to the file's extension.

    The image is encoded in memory, written to a temporary file beside `path` and renamed over
    it, so a failure (a full disk, Ctrl-C) leaves no partial file and `path` as it was. OSError
    when the file cannot be written.
    """
    import cv2

    from .live_cli import replace_atomically, temp_beside

    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix, image)
    except cv2.error:
        return False
    if not ok:
        return False
    tmp = temp_beside(path)
    try:
        tmp.write_bytes(encoded.tobytes())
        replace_atomically(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _cmd_audit(args) -> int:
    from . import data
    from .audit import audit

    report = audit(data.load(args.data))
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emotion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="find faces in photos and name their emotions")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", help="annotated image file (one image) or folder (several)")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--json", action="store_true", help="print one JSON array, an object per image")
    p.add_argument("--profiles", action="store_true",
                   help="also find faces turned to the side (detection takes about 4x as long)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("audit", help="counts, sizes, duplicates and leakage of a dataset")
    p.add_argument("data", help="image-folder root or fer2013.csv")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("train", help="train a model on FER2013 (folder, fer2013.csv or kaggle)")
    p.add_argument("--data", required=True, help="image-folder root, fer2013.csv, or 'kaggle'")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 (adam) or 1e-2 (sgd)")
    p.add_argument("--patience", type=int, default=15, help="early-stopping patience in epochs")
    p.add_argument("--average", type=float, default=0.0, metavar="FRACTION",
                   help="average the weights of this last fraction of the epochs, holding the "
                        "learning rate there (stochastic weight averaging); the average is kept "
                        "if it scores best on validation")
    p.add_argument("--minutes", type=float, default=None,
                   help="train for as many epochs (up to --epochs) as fit in this many minutes, "
                        "the learning-rate schedule fitted to them")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--blocks", type=_blocks, metavar="WxN,...",
                   help="the network's conv blocks as width x convolutions, default "
                        + ",".join(f"{w}x{n}" for w, n in DEFAULT_BLOCKS))
    p.add_argument("--tiny", action="store_true",
                   help="a very small network: for trying the pipeline out in seconds")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--init", metavar="MODEL",
                   help="start from this .keras model's weights (fine-tuning, another cycle)")
    p.add_argument("--out", default=str(DEFAULT_MODEL.parent), help="folder for the model and metrics")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a model on labelled faces")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--tta", action="store_true", help="average with horizontally flipped faces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    from .live_cli import register

    register(sub)  # webcam and video
    return parser


def _os_error_line(exc: OSError) -> str:
    """One line for an OSError that reached the top: which file, and what went wrong with it."""
    if exc.filename is None or not exc.strerror:  # a message of our own (a missing model, say)
        return str(exc)
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied (check its permissions and its folder's)"
    return f"{exc.filename}: {exc.strerror[0].lower()}{exc.strerror[1:]}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataError

    try:
        return args.func(args)
    except (UserError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: one line, not a traceback
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
