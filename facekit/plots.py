"""Every figure the notebooks and the story show. Functions take what facekit returns
(a Dataset, a History, a diagnose result) and return the matplotlib Figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from facekit.data import Dataset

__all__ = ["show_grid", "show_batch", "plot_history", "plot_histories", "save"]

# Greyscale-safe: distinct line styles and markers, not only colours.
STYLES = [dict(color="#1f4e9c", ls="-", marker="o"), dict(color="#c0392b", ls="--", marker="s"),
          dict(color="#2e8b57", ls=":", marker="^"), dict(color="#7f4f9f", ls="-.", marker="D"),
          dict(color="#b8860b", ls=(0, (5, 1)), marker="v")]
REF = dict(color="0.35", lw=1.2, ls=(0, (2, 2)))


def show_grid(ds: Dataset, per_class: int = 3, title: str | None = None) -> plt.Figure:
    """A grid with one column per class and ``per_class`` rows: what the classes look like."""
    n = ds.n_classes
    fig, axes = plt.subplots(per_class, n, figsize=(1.4 * n, 1.55 * per_class + 0.4), squeeze=False)
    for c in range(n):
        idx = np.flatnonzero(ds.labels == c)[:per_class]
        for r in range(per_class):
            ax = axes[r, c]
            ax.axis("off")
            if r < len(idx):
                ax.imshow(ds.images[idx[r]])
            if r == 0:
                ax.set_title(ds.class_names[c], fontsize=9)
    fig.suptitle(title or f"{ds.n_classes} classes, {per_class} examples each "
                 f"({ds.images.shape[1]}x{ds.images.shape[2]} px)")
    fig.tight_layout()
    return fig


def show_batch(images: np.ndarray, labels: Sequence[int] | None = None,
               class_names: Sequence[str] | None = None, n: int = 16, bgr: bool = False,
               title: str = "exactly what enters the network") -> plt.Figure:
    """The first ``n`` images of a batch as the network sees them (uint8 or 0-1 floats).
    ``bgr=True`` shows OpenCV-ordered arrays as matplotlib would show them wrongly unless flipped."""
    images = np.asarray(images)[:n]
    cols = min(8, len(images))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            img = images[i]
            ax.imshow(img if img.dtype == np.uint8 else np.clip(img, 0, 1))
            if labels is not None:
                lab = int(labels[i])
                ax.set_title(class_names[lab] if class_names else str(lab), fontsize=8)
    lo, hi = float(images.min()), float(images.max())
    fig.suptitle(f"{title}: {images.dtype}, values {lo:g}..{hi:g}"
                 + (" (BGR shown as RGB)" if bgr else ""))
    fig.tight_layout()
    return fig


def _reference_lines(ax_loss, ax_acc, n_classes: int) -> None:
    ax_loss.axhline(math.log(n_classes), **REF, label=f"ln {n_classes} = {math.log(n_classes):.3f} (chance)")
    ax_acc.axhline(1 / n_classes, **REF, label=f"chance = 1/{n_classes}")


def plot_histories(histories: Sequence, title: str = "training curves",
                   labels: Sequence[str] | None = None) -> plt.Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), for several runs,
    with ln C and chance accuracy drawn."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, h in enumerate(histories):
        st = STYLES[i % len(STYLES)]
        name = (labels[i] if labels else h.label) or f"run {i + 1}"
        ep = np.arange(1, len(h.epochs) + 1)
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(ep, h[key], color=st["color"], marker=st["marker"], ls="-", label=f"{name} train")
            if "val_" + key in (h.epochs[0] if h.epochs else {}):
                ax.plot(ep, h["val_" + key], color=st["color"], marker=st["marker"], ls="--",
                        mfc="white", label=f"{name} val")
    if histories:
        _reference_lines(ax_loss, ax_acc, histories[0].n_classes)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss (nats)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (fraction correct)", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8, loc="best")
    ax_loss.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history, title: str | None = None) -> plt.Figure:
    """Loss and accuracy of one run, train and validation, with ln C and chance lines."""
    return plot_histories([history], title or f"{history.label}: training curves")


def save(fig: plt.Figure, path, dpi: int = 110) -> None:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
