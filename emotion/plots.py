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


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    _save(history_figure(history), path)


def plot_confusion(matrix: list[list[int]], path: Path) -> None:
    _save(confusion_figure(matrix), path)
