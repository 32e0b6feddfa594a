"""Training curves: loss and accuracy per epoch, train and validation, against ln C and 1/C
(chapters 02-06). `LivePlot` (`facekit.plots.live`) draws the same two panels while a run trains."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from facekit.style import REF, STYLES, scaled_font, subplots

if TYPE_CHECKING:  # plots read what the experiments return; nothing of theirs runs here
    from matplotlib.axes import Axes

    from facekit.train import History



__all__ = ["loss_accuracy_figure", "reference_lines", "finish", "plot_histories", "plot_history"]


def loss_accuracy_figure(n_runs: int) -> tuple[plt.Figure, Axes, Axes]:
    """The two panels, loss | accuracy, of `plot_histories` and `LivePlot`, with room below them
    for one legend line a run."""
    rows = 1 + n_runs  # legend lines below the panels
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(11, 3.6 + 0.25 * rows))
    return fig, ax_loss, ax_acc


def reference_lines(ax_loss: Axes, ax_acc: Axes, n_classes: int) -> None:
    """ln C on the loss panel and chance accuracy 1/C on the accuracy panel: where a guess sits."""
    ax_loss.axhline(math.log(n_classes), **REF, label=f"ln {n_classes} = {math.log(n_classes):.3f} (chance)")
    ax_acc.axhline(1 / n_classes, **REF, label=f"chance = 1/{n_classes}")


def finish(fig: plt.Figure, title: str) -> None:
    """Grid and legend below each panel (never over the curves), the title, a tight layout."""
    for ax in fig.axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=scaled_font(8), loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=2, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()


def plot_histories(histories: Sequence[History], title: str = "training curves",
                   labels: Sequence[str] | None = None) -> plt.Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), for several runs,
    with ln C and chance accuracy drawn.

    Taught in chapter 02, section 4."""
    fig, ax_loss, ax_acc = loss_accuracy_figure(len(histories))
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
        c = histories[0].n_classes
        reference_lines(ax_loss, ax_acc, c)
        lo, hi = ax_loss.get_ylim()
        if hi - lo < 0.2:  # a run stuck at ln C: show it flat, not magnified noise
            ax_loss.set_ylim(min(lo, math.log(c) - 0.1), max(hi, math.log(c) + 0.1))
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss (nats)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (fraction correct)", title="accuracy", ylim=(0, 1.02))
    last = max((len(h.epochs) for h in histories), default=1)
    for ax in (ax_loss, ax_acc):
        ax.set_xlim(0.5, last + 0.5)  # the data starts at epoch 1
        ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # an AutoLocator
    finish(fig, title)
    return fig


def plot_history(history: History, title: str | None = None) -> plt.Figure:
    """Loss and accuracy of one run, train and validation, with ln C and chance lines.

    Taught in chapter 05, section 3."""
    return plot_histories([history], title or f"{history.label}: training curves")
