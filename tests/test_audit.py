"""The audit on made-up data whose duplicates, leaks and conflicts are known."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from emotion import data
from emotion.audit import audit


def _img(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def _write(root, layout):
    for (split, cls, name), image in layout.items():
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / cls / name), image)


def make_known_dataset(root):
    """train: a, a (same class), b, c, blank, big; test: a (leak), b with another label (leak + conflict)."""
    a, b, c = _img(1), _img(2), _img(3)
    _write(root, {
        ("train", "happy", "a1.png"): a,
        ("train", "happy", "a2.png"): a,
        ("train", "sad", "b.png"): b,
        ("train", "angry", "c.png"): c,
        ("train", "neutral", "blank.png"): np.full((48, 48), 128, np.uint8),
        ("train", "fear", "big.png"): cv2.resize(_img(4), (96, 96)),
        ("test", "happy", "a.png"): a,
        ("test", "surprise", "b.png"): b,
    })
    return root


def test_audit_finds_the_known_problems(tmp_path):
    report = audit(data.load_folder(make_known_dataset(tmp_path / "d"), cache=False))
    assert report.total == 8
    assert report.distinct == 5  # a, b, c, blank, big
    assert report.per_split_class["train"]["happy"] == 2
    assert report.per_split_class["test"]["surprise"] == 1
    assert report.not_48x48 == 1 and report.sizes_not_48x48 == {"96x96": 1}
    assert report.duplicate_groups_within == {"train": 1, "test": 0}
    assert report.duplicate_images_within == {"train": 1, "test": 0}
    assert report.cross_split_groups == 2
    assert report.cross_split_pairs == {"test-train": 2}
    assert report.conflicting_label_groups == 1
    assert set(report.conflict_examples[0].labels) == {"sad", "surprise"}
    assert report.near_blank == 1
    assert "blank.png" in report.near_blank_examples[0]


def test_audit_command_prints_json(tmp_path):
    root = make_known_dataset(tmp_path / "d")
    out = subprocess.run([sys.executable, "-m", "emotion", "audit", str(root), "--json"],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["cross_split_groups"] == 2 and report["total"] == 8
    text = subprocess.run([sys.executable, "-m", "emotion", "audit", str(root)],
                          capture_output=True, text=True, check=True).stdout
    assert "across splits (leakage): 2 groups" in text


@pytest.mark.slow
def test_audit_on_shared_fer2013(shared_fer2013):
    report = audit(data.load(shared_fer2013))
    assert report.total == 32298
    assert report.per_split_class["train"]["disgust"] == 436
    assert report.per_split_class["train"]["happy"] == 7215
    assert sum(report.per_split_class["test"].values()) == 3589
    assert report.cross_split_groups > 0  # FER2013 is known to leak between its splits
    print(report.summary())


def test_audit_of_no_faces_is_an_error_not_a_clean_report(hostile):
    import pytest

    from emotion.data import DataError, Dataset, LoadReport

    with pytest.raises(DataError, match="made-up: no faces to audit"):
        audit(Dataset({}, LoadReport(source="made-up")))
    for name, words in [("unreadable_images", "none of its 8 image files could be read"),
                        ("header_only.csv", "no rows, only the header"),
                        ("label_overflow.csv", "row 3: emotion 99999999999999999999999")]:
        done = subprocess.run([sys.executable, "-m", "emotion", "audit", str(hostile[name])],
                              capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 2 and "images: 0" not in done.stdout, done.stdout
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and words in errors[0] and "Traceback" not in done.stderr
