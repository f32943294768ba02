"""PNG plots of training curves and confusion matrices (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .labels import EMOTIONS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def history_figure(history: list[dict[str, float]]):
    """Loss and accuracy per epoch, train against validation."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [r.get(key) for r in history], label="train")
        if any(f"val_{key}" in r for r in history):
            ax.plot(epochs, [r.get(f"val_{key}") for r in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion_figure(matrix: list[list[int]]):
    """Row-normalised confusion matrix heat map, with the counts written in each cell."""
    plt = _pyplot()
    cm = np.asarray(matrix, dtype=float)
    totals = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    return fig


def reliability_figure(before: list[dict], after: list[dict], ece_before: float | None = None,
                       ece_after: float | None = None):
    """Accuracy against confidence per bin, before and after calibration, with the diagonal a
    perfectly calibrated model would follow; the bars under it count the faces per bin."""
    plt = _pyplot()
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for bins, name, ece, style in ((before, "before", ece_before, "o:"),
                                   (after, "after", ece_after, "o-")):
        used = [b for b in bins if b["count"]]
        label = f"{name} calibration" + (f" (ECE {ece:.3f})" if ece is not None else "")
        ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], style, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share right")
    ax.set_title("Confidence against accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    centres = [(b["low"] + b["high"]) / 2 for b in after]
    counts.bar(centres, [b["count"] for b in after], width=1 / len(after) * 0.9, color="#1f77b4")
    counts.set_xlabel("confidence shown (after calibration)")
    counts.set_ylabel("faces")
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    _save(history_figure(history), path)


def plot_confusion(matrix: list[list[int]], path: Path) -> None:
    _save(confusion_figure(matrix), path)


def plot_reliability(calibration: dict, path: Path) -> bool:
    """The reliability diagram of metrics.json's "calibration", when it has a test table."""
    table = calibration.get("reliability_test")
    if not table:
        return False
    test = calibration.get("test") or {}
    _save(reliability_figure(table["before"], table["after"], test.get("ece_before"),
                             test.get("ece_after")), path)
    return True
