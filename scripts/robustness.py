"""Accuracy under the shifts real cameras and detectors make: `python scripts/robustness.py`.

Scores one or more models side by side on FER2013's test faces (and, with `--split val`, on the
validation faces that training holds out, for choosing between models without looking at test)
as they are and under each shift of `emotion.robustness.SHIFTS`, then prints accuracy per shift,
the mean over the shifts, and recall per emotion averaged over the shifts.

    python scripts/robustness.py [--model A.keras --model B.keras] [--data ../shared/fer2013]
                                 [--split test|val] [--tta] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emotion import data as data_module  # noqa: E402
from emotion.config import SHARED_FER2013, app_model_path  # noqa: E402
from emotion.labels import EMOTIONS  # noqa: E402
from emotion.preprocess import normalise  # noqa: E402
from emotion.robustness import Robustness, evaluate_shifts  # noqa: E402
from emotion.runtime import load_classifier  # noqa: E402
from emotion.tta import predict as over_views  # noqa: E402


def predictor(model_path: Path, tta: bool):
    """uint8 faces -> probabilities through the app's runtime, with TTA (`emotion.tta`) if asked."""
    classifier = load_classifier(model_path)

    def batched(x: np.ndarray) -> np.ndarray:
        return np.concatenate([classifier.predict(x[i:i + 512]) for i in range(0, len(x), 512)])

    def predict(faces: np.ndarray) -> np.ndarray:
        x = np.asarray(normalise(faces))
        return over_views(batched, x) if tta else batched(x)

    return predict


def table(results: dict[str, Robustness]) -> str:
    names = list(results)
    first = results[names[0]]
    lines = ["| faces | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    rows = [("clean", [r.clean.accuracy for r in results.values()])]
    rows += [(s.name, [r.shifts[i].accuracy for r in results.values()])
             for i, s in enumerate(first.shifts)]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(f"{v:.1%}" for v in values) + " |")
    lines.append("| **mean over the shifts** | "
                 + " | ".join(f"**{r.mean:.1%}**" for r in results.values()) + " |")
    lines.append("")
    lines.append("| recall, mean over the shifts | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for e in EMOTIONS:
        values = [np.mean([s.recall[e] for s in r.shifts]) for r in results.values()]
        lines.append(f"| {e} | " + " | ".join(f"{v:.1%}" for v in values) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path,
                        help="a .keras model (repeat to compare; default: the app's model)")
    parser.add_argument("--data", type=Path, default=SHARED_FER2013,
                        help="FER2013 folder or CSV (default: ../shared/fer2013)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="test faces, or the validation faces training holds out")
    parser.add_argument("--tta", action="store_true", help="also average with mirrored faces")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    models = args.model or [app_model_path()]
    for m in models:
        if not m.is_file():
            parser.error(f"--model {m}: no such file")

    dataset = data_module.load(args.data)
    if args.split == "val":
        _, split, _ = data_module.training_splits(dataset)
    else:
        split = dataset.splits.get("test")
        if split is None or not len(split):
            parser.error(f"{args.data} has no test faces: give FER2013 with its test/ folder")
    results: dict[str, Robustness] = {}
    for m in models:
        started = time.perf_counter()
        label = m.parent.name + "/" + m.name if len(models) > 1 else m.name
        results[label] = evaluate_shifts(predictor(m, args.tta), split.images, split.labels)
        print(f"{label}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({"data": str(args.data), "split": args.split, "tta": args.tta,
                          "faces": len(split), "models": {k: r.to_dict() for k, r in results.items()}}))
        return 0
    print(f"{args.data} {args.split} ({len(split)} faces){', TTA' if args.tta else ''}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
