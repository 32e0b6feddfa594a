"""Evaluation figures: confusion matrix, reliability, per-group accuracy, the most confident
mistakes (chapter 06)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from facekit.data import Dataset
from facekit.style import NOTEBOOK_INCHES, REF, STYLES, scaled_font, scaled_line, subplots

if TYPE_CHECKING:  # plots read what the experiments return; nothing of theirs runs here

    from facekit.evaluate import Evaluation



__all__ = ["plot_confusion", "plot_reliability", "plot_group_accuracy", "show_most_wrong"]


def plot_confusion(evaluation: Evaluation, title: str = "confusion matrix (rows: true class)") -> plt.Figure:
    """Confusion matrix of a `facekit.evaluate.Evaluation`: counts in each cell, shaded by the
    share of the true class (row).

    Taught in chapter 06, section 6."""
    cm, names = evaluation.confusion, evaluation.class_names
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(names)
    fig, ax = subplots(figsize=(0.62 * n + 2.6, 0.55 * n + 1.6))
    im = ax.imshow(share, cmap="Greys", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=scaled_font(8),
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=scaled_font(8))
    ax.set_yticks(range(n))
    ax.set_yticklabels(names, fontsize=scaled_font(8))
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"{title}\naccuracy {evaluation.accuracy:.2f} on {int(cm.sum())} images")
    fig.colorbar(im, ax=ax, label="share of the true class", fraction=0.046)
    fig.tight_layout()
    return fig


def plot_reliability(evaluations: Sequence[Evaluation], labels: Sequence[str],
                     title: str = "calibration: does confidence match accuracy?") -> plt.Figure:
    """Reliability curves (accuracy vs mean confidence per bin) of one or more evaluations, with
    the diagonal of perfect calibration; each point is labelled with the number of images in its bin
    (a point made of 3 images says little). The legend sits below the axes, off the points.

    Taught in chapter 06, section 6."""
    fig, ax = subplots(figsize=(5.6, 5.6))
    ax.plot([0, 1], [0, 1], **REF, label="perfectly calibrated")
    for i, (ev, name) in enumerate(zip(evaluations, labels)):
        st, rel = STYLES[i % len(STYLES)], ev.calibration
        ok = rel.counts > 0
        ax.plot(rel.confidence[ok], rel.accuracy[ok], color=st["color"], marker=st["marker"],
                ls=st["ls"], label=f"{name} (ECE {rel.ece:.2f}; n = images per bin)")
        for x, y, n in zip(rel.confidence[ok], rel.accuracy[ok], rel.counts[ok]):
            ax.annotate(f"{int(n)}", (x, y), textcoords="offset points", xytext=(4, -10 if i else 5),
                        fontsize=scaled_font(8), color=st["color"])
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence of the top class (bin mean)",
           ylabel="accuracy in the bin (fraction correct)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=scaled_font(8), loc="upper center", bbox_to_anchor=(0.5, -0.13),
              frameon=False)  # below the axes: never over a point (a bin of 1 image sits at 0 or 1)
    fig.tight_layout()
    return fig


def plot_group_accuracy(evaluations: Sequence[Evaluation], labels: Sequence[str],
                        title: str = "accuracy per group") -> plt.Figure:
    """Accuracy within each group of every attribute (one panel per attribute), side by side
    for several evaluations; the overall accuracy drawn as a line.

    Taught in chapter 06, section 6."""
    keys = list(evaluations[0].groups)
    n = max(len(keys), 1)
    fig, axes = subplots(1, n, figsize=(min(4.4 * n, NOTEBOOK_INCHES), 3.6), squeeze=False)
    width = 0.8 / len(evaluations)
    for ax, key in zip(axes[0], keys):
        groups = list(evaluations[0].groups[key])
        x = np.arange(len(groups))
        for i, (ev, name) in enumerate(zip(evaluations, labels)):
            st = STYLES[i % len(STYLES)]
            ax.bar(x + (i - (len(evaluations) - 1) / 2) * width, [ev.groups[key][g][0] for g in groups],
                   width, color=st["color"], alpha=0.85, hatch=["", "//", "..", "xx"][i % 4], label=name)
            ax.axhline(ev.accuracy, color=st["color"], ls=st["ls"], lw=scaled_line(1),
                       label=f"{name}: overall {ev.accuracy:.2f}")
        ax.set_xticks(x)
        ax.set_xticklabels(groups, rotation=30 if len(groups) > 3 else 0, fontsize=scaled_font(8))
        ax.set(ylim=(0, 1.02), xlabel=key, ylabel="accuracy (fraction correct)", title=f"by {key}")
        ax.grid(alpha=0.3, axis="y")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=scaled_font(8), loc="lower center", ncol=2 * len(evaluations),
               frameon=False)  # below the panels, off the bars
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def show_most_wrong(ds: Dataset, evaluation: Evaluation, k: int = 8,
                    title: str = "the most confident mistakes") -> plt.Figure:
    """The ``k`` images the model gets most wrong, each titled with its true class, ``-> predicted
    class`` and the confidence, one to a line.

    Taught in chapter 06, section 6."""
    idx = evaluation.most_wrong(k)
    cols = max(min(8, len(idx)), 1)
    rows = max(math.ceil(len(idx) / cols), 1)
    fig, axes = subplots(rows, cols, figsize=(1.4 * cols, 2.15 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, idx):
        p = evaluation.probs[i]
        ax.imshow(ds.images[i])
        ax.set_title(f"{ds.class_names[ds.labels[i]]}\n-> {ds.class_names[p.argmax()]}\n({p.max():.0%})",
                     fontsize=scaled_font(8))
    fig.suptitle(title + (" (none: no mistakes)" if not len(idx) else
                          "\neach image: true class -> predicted class (confidence)"))
    fig.tight_layout()
    fig.subplots_adjust(top=1 - 0.75 / fig.get_figheight())  # room for the two-line title
    return fig
