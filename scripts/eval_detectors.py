"""Compare face-detector configurations on photos with hand-checked face boxes.

For each configuration (OpenCV's bundled Haar cascades, alone or merged) and each photo:
true positives (IoU >= 0.3 with a ground-truth face, each face matched once), false positives,
missed faces, recall, precision and the median time per photo; then the totals.

    python scripts/eval_detectors.py                       # images/groups/faces.json
    python scripts/eval_detectors.py --external /tmp/photos  # + photos not shipped here
    python scripts/eval_detectors.py --only default,default+profile --draw /tmp/boxes

A truth file maps an image path (relative to the truth file's folder, or to --root) to a list
of [x, y, w, h] boxes; an empty list is a photo with no face, where anything found is a false
positive. The detector variants live here until one is chosen for emotion/faces.py; each is a
function gray image -> list[Box], the shape of the FaceDetector protocol's `detect`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from emotion.faces import (
    Box, DetectionSettings, detect_faces, detection_scale, iou, merge_boxes, min_face_px, scan)
from emotion.preprocess import to_gray

ROOT = Path(__file__).resolve().parents[1]

DEFAULT = "haarcascade_frontalface_default.xml"
ALT2 = "haarcascade_frontalface_alt2.xml"
PROFILE = "haarcascade_profileface.xml"  # trained on faces turned to the viewer's left
IOU_MATCH = 0.3

Detect = Callable[[np.ndarray], list[Box]]


def run_cascade(gray: np.ndarray, settings: DetectionSettings, name: str, min_neighbors: int,
                mirrored: bool = False) -> list[Box]:
    """One cascade over the image, shrunk as emotion.faces.detect_faces does; boxes in its pixels.
    mirrored: scan the horizontally flipped image and flip the boxes back (right-facing
    profiles for the left-facing profile cascade)."""
    scale = detection_scale(gray.shape, settings)
    image = cv2.flip(gray, 1) if mirrored else gray
    boxes = scan(image, scale=scale, min_px=min_face_px(gray.shape, settings) * scale,
                 scale_factor=settings.scale_factor, min_neighbors=min_neighbors, cascade=name)
    width = gray.shape[1]
    return [Box(width - b.x - b.w, b.y, b.w, b.h) for b in boxes] if mirrored else boxes


@dataclass(frozen=True)
class Combo:
    """Cascades to run (name, min_neighbors, mirrored) whose boxes are merged into one list."""

    parts: tuple[tuple[str, int, bool], ...]
    settings: DetectionSettings = field(default_factory=DetectionSettings)
    # False: of overlapping boxes keep the largest (merge_boxes). True: keep the first part's
    # box, so the frontal cascade's tighter box wins and the others only add faces it missed.
    prefer_first: bool = False

    def detect(self, gray: np.ndarray) -> list[Box]:
        gray = to_gray(gray)
        found = [run_cascade(gray, self.settings, name, neighbors, mirrored)
                 for name, neighbors, mirrored in self.parts]
        if not self.prefer_first:
            return merge_boxes([b for boxes in found for b in boxes], self.settings.overlap)
        return merge_in_order(found, self.settings.overlap)


def merge_in_order(found: list[list[Box]], overlap: float) -> list[Box]:
    """Merge each detector's boxes; a later detector's box counts only where no earlier one
    already found a face (overlap as in merge_boxes: intersection over the smaller box)."""
    kept: list[Box] = []
    for boxes in found:
        new = [b for b in merge_boxes(boxes, overlap)
               if all(b.intersection(k) <= overlap * min(b.area, k.area) for k in kept)]
        kept += new
    return sorted(kept, key=lambda b: (b.x, b.y))


def configs() -> dict[str, Detect]:
    d, a, p = DEFAULT, ALT2, PROFILE

    def both_profiles(n: int) -> tuple:
        return (p, n, False), (p, n, True)

    table = {
        "default": Combo(((d, 6, False),)),
        "default(mn4)": Combo(((d, 4, False),)),
        "alt2": Combo(((a, 3, False),)),
        "alt2(mn6)": Combo(((a, 6, False),)),
        "default+alt2": Combo(((d, 6, False), (a, 3, False))),
        "default+alt2(mn6)": Combo(((d, 6, False), (a, 6, False))),
        "default+profile": Combo(((d, 6, False), *both_profiles(4))),
        "default+profile(mn6)": Combo(((d, 6, False), *both_profiles(6))),
        "default+profile(mn8)": Combo(((d, 6, False), *both_profiles(8))),
        "alt2+profile(mn6)": Combo(((a, 6, False), *both_profiles(6))),
        "alt2+profile(mn6)+keep-first": Combo(((a, 6, False), *both_profiles(6)),
                                             prefer_first=True),
        "all": Combo(((d, 6, False), (a, 3, False), *both_profiles(4))),
        "all(mn6)": Combo(((d, 6, False), (a, 6, False), *both_profiles(6))),
        "all(mn6)+keep-first": Combo(((d, 6, False), (a, 6, False), *both_profiles(6)),
                                      prefer_first=True),
    }
    return {name: combo.detect for name, combo in table.items()}


def match(found: list[Box], truth: list[Box]) -> tuple[int, int, int]:
    """(true positives, false positives, missed): greedy by IoU, each face matched once."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
                   reverse=True)
    used_f, used_t = set(), set()
    for score, i, j in pairs:
        if score < IOU_MATCH:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    tp = len(used_t)
    return tp, len(found) - tp, len(truth) - tp


def load_truth(path: Path, root: Path | None) -> list[tuple[str, Path, list[Box]]]:
    data = json.loads(path.read_text())
    base = root or path.parent
    photos = []
    for key, boxes in data.items():
        if key.startswith("_"):  # comments
            continue
        photos.append((key, base / key, [Box(*b) for b in boxes]))
    return photos


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "  - "


def evaluate(photos, detectors: dict[str, Detect], repeats: int, draw: Path | None) -> dict:
    results = {}
    images = {}
    for key, path, _ in photos:
        img = cv2.imread(str(path))
        if img is None:
            print(f"skipped {key}: cannot read {path}", file=sys.stderr)
            continue
        images[key] = to_gray(img)
    # sanity check: the "alt2(mn6)" and "alt2+profile(mn6)" variants are what the photo path does
    for key, gray in images.items():
        for name, profiles in (("alt2(mn6)", False), ("alt2+profile(mn6)", True)):
            app = detect_faces(gray, DetectionSettings(profiles=profiles))
            mine = configs()[name](gray)
            if app != mine:
                print(f"note: {name} differs from emotion.faces.detect_faces on {key}: "
                      f"{len(mine)} vs {len(app)} boxes", file=sys.stderr)
    for name, detect in detectors.items():
        rows = {}
        for key, path, truth in photos:
            if key not in images:
                continue
            gray = images[key]
            times, cpu = [], []
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.thread_time()
                found = detect(gray)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
            tp, fp, missed = match(found, truth)
            rows[key] = {"tp": tp, "fp": fp, "missed": missed, "faces": len(truth),
                         "ms": statistics.median(times), "cpu_ms": statistics.median(cpu), "boxes": [b.as_list() for b in found]}
            if draw:
                draw_boxes(draw, name, key, path, truth, found)
        results[name] = rows
    return results


def draw_boxes(folder: Path, name: str, key: str, path: Path, truth, found) -> None:
    img = cv2.imread(str(path))
    for b in truth:
        cv2.rectangle(img, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 255, 0), 2)
    for b in found:
        cv2.rectangle(img, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 0, 255), 2)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(key).stem
    cv2.imwrite(str(folder / f"{stem}__{name.replace('+', '_').replace('(', '_').replace(')', '')}.png"), img)


def print_tables(results: dict, per_photo: bool) -> None:
    names = list(results)
    photos = list(next(iter(results.values())))
    if per_photo:
        print("Per photo: TP/FP/missed (faces)")
        width = max(len(p) for p in photos)
        print(f"{'photo':<{width}} {'faces':>5}  " + "  ".join(f"{n:>9.9}" for n in names))
        for p in photos:
            cells = [f"{results[n][p]['tp']}/{results[n][p]['fp']}/{results[n][p]['missed']}"
                     for n in names]
            print(f"{p:<{width}} {results[names[0]][p]['faces']:>5}  "
                  + "  ".join(f"{c:>9}" for c in cells))
        print("(columns, in order: " + ", ".join(names) + ")")
        print()
    print(f"{'configuration':<30} {'faces':>5} {'TP':>4} {'FP':>4} {'missed':>6} "
          f"{'recall':>6} {'precision':>9} {'median ms':>9} {'cpu ms':>7}")
    for n in names:
        rows = results[n].values()
        tp = sum(r["tp"] for r in rows)
        fp = sum(r["fp"] for r in rows)
        missed = sum(r["missed"] for r in rows)
        faces = sum(r["faces"] for r in rows)
        ms = statistics.median(r["ms"] for r in rows)
        cpu = statistics.median(r["cpu_ms"] for r in rows)
        print(f"{n:<30} {faces:>5} {tp:>4} {fp:>4} {missed:>6} {ratio(tp, faces):>6} "
              f"{ratio(tp, tp + fp):>9} {ms:>9.1f} {cpu:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--truth", type=Path, action="append",
                    help="ground-truth JSON (repeatable); default images/groups/faces.json")
    ap.add_argument("--root", type=Path,
                    help="folder the --truth files' paths are relative to (default: their own)")
    ap.add_argument("--external", type=Path, metavar="DIR",
                    help="also score images/groups/external.json, with its photos in DIR")
    ap.add_argument("--only", help="comma-separated configuration names")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per photo (median)")
    ap.add_argument("--draw", type=Path, help="write each photo with truth (green) and found (red)")
    ap.add_argument("--json", type=Path, help="write all results, boxes included, to this file")
    ap.add_argument("--totals-only", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenCV threads (default 1, so that 'cpu ms', this thread's CPU time, "
                         "counts all the work and stays comparable on a busy machine)")
    args = ap.parse_args(argv)

    cv2.setNumThreads(args.threads)
    photos = []
    for t in args.truth or [ROOT / "images" / "groups" / "faces.json"]:
        photos += load_truth(t, args.root)
    if args.external:
        photos += load_truth(ROOT / "images" / "groups" / "external.json", args.external)
    detectors = configs()
    if args.only:
        wanted = args.only.split(",")
        unknown = [w for w in wanted if w not in detectors]
        if unknown:
            ap.error(f"unknown configuration(s) {unknown}; known: {list(detectors)}")
        detectors = {w: detectors[w] for w in wanted}
    results = evaluate(photos, detectors, args.repeats, args.draw)
    print_tables(results, per_photo=not args.totals_only)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
