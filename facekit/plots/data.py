"""Figures of the data: faces by class, a batch as the network sees it, BGR vs RGB, augmented
versions (chapters 01 and 06)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from facekit.data import Dataset
from facekit.style import scaled_font, subplots

if TYPE_CHECKING:  # plots read what the experiments return; nothing of theirs runs here

    pass



__all__ = ["show_grid", "show_batch", "show_bgr_rgb", "show_augmented"]


def show_grid(ds: Dataset, per_class: int = 3, title: str | None = None) -> plt.Figure:
    """A grid with one column per class and ``per_class`` rows: what the classes look like.

    Taught in chapter 01, section 1."""
    n = ds.n_classes
    fig, axes = subplots(per_class, n, figsize=(1.4 * n, 1.55 * per_class + 0.4), squeeze=False)
    for c in range(n):
        idx = np.flatnonzero(ds.labels == c)[:per_class]
        for r in range(per_class):
            ax = axes[r, c]
            ax.axis("off")
            if r < len(idx):
                ax.imshow(ds.images[idx[r]])
            if r == 0:
                ax.set_title(ds.class_names[c], fontsize=scaled_font(9))
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
    fig, axes = subplots(rows, cols, figsize=(1.4 * cols, 1.7 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            img = images[i]
            ax.imshow(img if img.dtype == np.uint8 else np.clip(img, 0, 1))
            if labels is not None:
                lab = int(labels[i])
                ax.set_title(class_names[lab] if class_names else str(lab), fontsize=scaled_font(8))
    lo, hi = float(images.min()), float(images.max())
    fig.suptitle(f"{title}: {images.dtype}, values {lo:g}..{hi:g}"
                 + (" (BGR shown as RGB)" if bgr else ""))
    fig.tight_layout()
    return fig


def show_bgr_rgb(images: np.ndarray, labels: Sequence[int] | None = None,
                 class_names: Sequence[str] | None = None, n: int = 8,
                 title: str = "the question's X: as stored (BGR) and flipped to RGB") -> plt.Figure:
    """OpenCV-ordered (BGR) images in the top row as matplotlib shows them — red and blue swapped —
    and the same images flipped to RGB below, so the colour change reads at a glance.

    Taught in chapter 01, section 3."""
    images = np.asarray(images)[:n]
    fig, axes = subplots(2, len(images), figsize=(1.4 * len(images), 3.9), squeeze=False)
    for row, (imgs, name) in enumerate(((images, "BGR, shown as RGB"),
                                        (images[..., ::-1], "flipped to RGB"))):
        for i, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(imgs[i])
            if row == 0 and labels is not None:
                lab = int(labels[i])
                ax.set_title(class_names[lab] if class_names else str(lab), fontsize=scaled_font(8))
        axes[row, 0].set_ylabel(name, fontsize=scaled_font(9))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_augmented(ds: Dataset, augment: Callable[..., object], n_images: int = 4, n_versions: int = 5,
                   seed: int = 0, title: str = "what augmentation shows the network: each row one face"
                   ) -> plt.Figure:
    """The first ``n_images`` of ``ds`` (one per class) in the first column and ``n_versions`` random
    versions of each, as ``augment`` (Keras layers, called with ``training=True``) makes them.

    Taught in chapter 06, section 4."""
    import keras

    keras.utils.set_random_seed(seed)
    idx = [int(np.flatnonzero(ds.labels == c)[0]) for c in range(min(n_images, ds.n_classes))]
    x = ds.images[idx].astype("float32")
    versions = [np.asarray(augment(x, training=True)) for _ in range(n_versions)]
    fig, axes = subplots(len(idx), n_versions + 1, figsize=(1.45 * (n_versions + 1), 1.5 * len(idx) + 0.5),
                         squeeze=False)
    for r, i in enumerate(idx):
        for c in range(n_versions + 1):
            img = x[r] if c == 0 else versions[c - 1][r]
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(np.clip(img, 0, 255).astype(np.uint8))
            if r == 0:
                ax.set_title("original" if c == 0 else f"version {c}", fontsize=scaled_font(8))
        axes[r, 0].set_ylabel(ds.class_names[int(ds.labels[i])], fontsize=scaled_font(8))
    fig.suptitle(title)
    fig.tight_layout()
    return fig
