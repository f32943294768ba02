"""Dataset audit: counts, image sizes, exact duplicates within and across splits, label conflicts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .data import DataError, Dataset
from .labels import EMOTIONS

# A face whose pixels barely vary (standard deviation below this, out of 255) is blank or nearly so.
NEAR_BLANK_STD = 5.0
EXAMPLES = 5


@dataclass
class DuplicateGroup:
    """Images with identical pixels: where each one is, with its split and label."""

    splits: list[str]
    labels: list[str]
    sources: list[str]


@dataclass
class AuditReport:
    source: str
    total: int
    distinct: int
    per_split_class: dict[str, dict[str, int]]
    not_48x48: int
    sizes_not_48x48: dict[str, int]
    unreadable: list[str]
    # Per split: groups of identical images inside it, and the images beyond the first of each.
    duplicate_groups_within: dict[str, int]
    duplicate_images_within: dict[str, int]
    # Groups whose images sit in more than one split (train/test leakage), per pair of splits.
    cross_split_groups: int
    cross_split_pairs: dict[str, int]
    conflicting_label_groups: int
    near_blank: int
    near_blank_examples: list[str] = field(default_factory=list)
    cross_split_examples: list[DuplicateGroup] = field(default_factory=list)
    conflict_examples: list[DuplicateGroup] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """A plain-text report for the terminal."""
        lines = [f"{self.source}", f"images: {self.total}, distinct: {self.distinct}"]
        width = max(len(s) for s in self.per_split_class) if self.per_split_class else 5
        lines.append(" " * (width + 2) + "".join(f"{e[:8]:>9}" for e in EMOTIONS) + f"{'total':>9}")
        for split, counts in self.per_split_class.items():
            lines.append(f"{split:<{width + 2}}" + "".join(f"{counts[e]:>9}" for e in EMOTIONS)
                         + f"{sum(counts.values()):>9}")
        sizes = ", ".join(f"{k}: {v}" for k, v in self.sizes_not_48x48.items()) or "none"
        lines.append(f"not 48x48 (resized on load): {self.not_48x48} ({sizes})")
        if self.unreadable:
            lines.append(f"unreadable files skipped: {len(self.unreadable)}")
        for split in self.duplicate_groups_within:
            lines.append(f"duplicates within {split}: {self.duplicate_groups_within[split]} groups, "
                         f"{self.duplicate_images_within[split]} extra copies")
        pairs = ", ".join(f"{k}: {v}" for k, v in self.cross_split_pairs.items()) or "none"
        lines.append(f"identical images across splits (leakage): {self.cross_split_groups} groups ({pairs})")
        lines.append(f"identical images with conflicting labels: {self.conflicting_label_groups} groups")
        lines.append(f"near-blank images (pixel std < {NEAR_BLANK_STD:g}): {self.near_blank}")
        return "\n".join(lines)


def _hashes(images: np.ndarray) -> list[bytes]:
    flat = images.reshape(len(images), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def audit(dataset: Dataset) -> AuditReport:
    """Audit every split of a loaded dataset; DataError when it has no faces at all."""
    if not dataset.total():  # "images: 0" with exit 0 would pass for a clean audit
        raise DataError(f"{dataset.report.source}: no faces to audit; give a FER2013 folder "
                        "(train/, test/, one sub-folder per emotion) or a fer2013.csv")
    groups = _identical_images(dataset)
    near_blank, near_blank_examples = _near_blank(dataset)
    found = _Duplicates({s: 0 for s in dataset.splits}, {s: 0 for s in dataset.splits})
    for members in groups.values():
        if len(members) > 1:
            found.add(DuplicateGroup([m[0] for m in members], [EMOTIONS[m[1]] for m in members],
                                     [m[2] for m in members]))
    report = dataset.report
    return AuditReport(
        source=report.source,
        total=dataset.total(),
        distinct=len(groups),
        per_split_class={split: part.counts() for split, part in dataset.splits.items()},
        not_48x48=report.resized,
        sizes_not_48x48=dict(report.not_48x48_sizes),
        unreadable=list(report.unreadable),
        duplicate_groups_within=found.within_groups,
        duplicate_images_within=found.within_images,
        cross_split_groups=found.cross,
        cross_split_pairs=dict(found.cross_pairs),
        conflicting_label_groups=found.conflicts,
        near_blank=near_blank,
        near_blank_examples=near_blank_examples,
        cross_split_examples=found.cross_examples,
        conflict_examples=found.conflict_examples,
    )


def _identical_images(dataset: Dataset) -> dict[bytes, list[tuple[str, int, str]]]:
    """Every image by the hash of its pixels: (split, label id, source) of each copy."""
    groups: dict[bytes, list[tuple[str, int, str]]] = defaultdict(list)
    for split, part in dataset.splits.items():
        for digest, label, source in zip(_hashes(part.images), part.labels, part.sources):
            groups[digest].append((split, int(label), source))
    return groups


def _near_blank(dataset: Dataset) -> tuple[int, list[str]]:
    """How many faces barely vary (pixel std under NEAR_BLANK_STD), and a few of them per split."""
    count, examples = 0, []
    for split, part in dataset.splits.items():
        stds = part.images.reshape(len(part), -1).std(axis=1)
        blank = np.flatnonzero(stds < NEAR_BLANK_STD)
        count += len(blank)
        examples += [f"{split}/{part.sources[i]}" for i in blank[:EXAMPLES]]
    return count, examples


@dataclass
class _Duplicates:
    """Groups of identical images counted within each split, across splits, and across labels."""

    within_groups: dict[str, int]
    within_images: dict[str, int]
    cross_pairs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cross: int = 0
    conflicts: int = 0
    cross_examples: list[DuplicateGroup] = field(default_factory=list)
    conflict_examples: list[DuplicateGroup] = field(default_factory=list)

    def add(self, group: DuplicateGroup) -> None:
        splits = sorted(set(group.splits))
        for split in splits:
            n = group.splits.count(split)
            if n > 1:
                self.within_groups[split] += 1
                self.within_images[split] += n - 1
        if len(splits) > 1:
            self.cross += 1
            for i, a in enumerate(splits):
                for b in splits[i + 1:]:
                    self.cross_pairs[f"{a}-{b}"] += 1
            if len(self.cross_examples) < EXAMPLES:
                self.cross_examples.append(group)
        if len(set(group.labels)) > 1:
            self.conflicts += 1
            if len(self.conflict_examples) < EXAMPLES:
                self.conflict_examples.append(group)
