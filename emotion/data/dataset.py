"""What every loader returns (`Dataset` of `Split`s, with its `LoadReport`), `DataError`, and the
splits training uses: a stratified validation part, and a quick run's subset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import SEED, VALIDATION_FRACTION
from ..images import hidden, unreadable
from ..labels import EMOTIONS, NUM_CLASSES

DATA_WHAT = "a fer2013.csv or a FER2013 folder"  # what a data path should be, in messages
# The validation split holds out VALIDATION_FRACTION of the training faces, so training needs at
# least 1 / VALIDATION_FRACTION faces for it to hold out one and keep the rest.
MIN_TRAIN_FACES = round(1 / VALIDATION_FRACTION)


class DataError(ValueError):
    """The data given cannot be loaded; the message says what was wrong and where."""


@dataclass
class Split:
    """One split of faces: uint8 images (N, 48, 48), FER2013 label ids, and where each came from."""

    images: np.ndarray
    labels: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Images per emotion, in FER2013's order."""
        hist = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {name: int(hist[i]) for i, name in enumerate(EMOTIONS)}

    def take(self, index: np.ndarray) -> "Split":
        return Split(self.images[index], self.labels[index], [self.sources[i] for i in index])


@dataclass
class LoadReport:
    """What a load found besides the images: skipped files and how many needed resizing."""

    source: str
    resized: int = 0
    not_48x48_sizes: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    from_cache: bool = False


@dataclass
class Dataset:
    """The splits a source has (any of train, val, test) and the report of its load."""

    splits: dict[str, Split]
    report: LoadReport

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def total(self) -> int:
        return sum(len(s) for s in self.splits.values())


def _os_problem(path: Path, exc: OSError) -> str:
    """One line for an OSError met on `path`: permission, symlink loop, or the system's words."""
    return unreadable(path, exc, DATA_WHAT)


def _missing(path: Path, what: str, hint: str = "") -> DataError:
    """DataError for a path that is not there (`hint`: what to give instead), or that only seems
    absent (a symlink loop, a folder above it without permission)."""
    return DataError(hidden(path, DATA_WHAT) or f"{path}: no such {what}{hint}")


def split_validation(
    train: Split, fraction: float = VALIDATION_FRACTION, seed: int = SEED
) -> tuple[Split, Split]:
    """Hold out a stratified, seeded validation part of train (for early stopping and model choice)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    counts = np.bincount(train.labels, minlength=NUM_CLASSES)
    stratify = train.labels if counts[counts > 0].min() >= 2 else None
    n_val = max(1, int(round(len(index) * fraction)))
    if stratify is not None and n_val < len(np.unique(train.labels)):
        stratify = None
    keep, held = train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)
    return train.take(np.sort(keep)), train.take(np.sort(held))


def training_splits(dataset: Dataset) -> tuple[Split, Split, Split | None]:
    """(train, validation, test) for training: the source's own validation split where it has one."""
    if "train" not in dataset.splits:
        raise DataError(f"{dataset.report.source}: has no training split (a train/ folder or Training rows)")
    train = dataset["train"]
    # With its own validation split the data needs one face to train on; else enough to split.
    needed = 1 if "val" in dataset.splits else MIN_TRAIN_FACES
    if len(train) < needed:
        raise DataError(
            f"{dataset.report.source}: {len(train)} training face{'s' if len(train) != 1 else ''}; "
            f"training needs at least {needed} faces ({VALIDATION_FRACTION:.0%} of them are held "
            "out to validate)"
        )
    present = [EMOTIONS[i] for i in np.unique(train.labels)]
    if len(present) == 1:
        raise DataError(
            f"{dataset.report.source}: the training faces are all {present[0]}; a model needs "
            "faces of at least two emotions to learn to tell them apart"
        )
    if "val" in dataset.splits:
        train, val = dataset["train"], dataset["val"]
    else:
        train, val = split_validation(dataset["train"])
    return train, val, dataset.splits.get("test")


def limit_training_faces(dataset: Dataset, n: int, seed: int = SEED) -> Dataset:
    """The dataset with at most `n` training faces, drawn stratified by emotion from the seed
    (a quick trial run); validation and test splits stay whole."""
    train = dataset.splits.get("train")
    if train is None or len(train) <= n:
        return dataset
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    counts = np.bincount(train.labels, minlength=NUM_CLASSES)
    stratify = train.labels if counts[counts > 0].min() >= 2 else None
    keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=stratify)
    splits = dict(dataset.splits, train=train.take(np.sort(keep)))
    return Dataset(splits, dataset.report)
