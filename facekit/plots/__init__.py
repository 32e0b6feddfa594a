"""Every figure the notebooks and the story show, by topic: `data`, `curves`, `inside` (the network's
layers), `studies` (many seeds), `evaluation`. Functions take what facekit returns (a Dataset, a
History, a diagnose result) and return the matplotlib Figure. Their look (default or projector) is
set in `facekit.style`; `use_style`, `current_style` and `subplots` are re-exported here."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt

from facekit.plots.curves import plot_histories, plot_history
from facekit.plots.data import show_augmented, show_batch, show_bgr_rgb, show_grid
from facekit.plots.evaluation import plot_confusion, plot_group_accuracy, plot_reliability, show_most_wrong
from facekit.plots.inside import (
    color_dim,
    plot_grad_norms,
    plot_layer_stats,
    plot_lr_sweep,
    plot_stats_over_training,
)
from facekit.plots.live import LivePlot
from facekit.plots.studies import (
    OUTCOME_COLORS,
    OUTCOME_MARKERS,
    plot_ablation,
    plot_comparison,
    plot_mechanism,
)
from facekit.style import current_style, subplots, use_style

__all__ = ["use_style", "current_style", "show_grid", "show_batch", "show_bgr_rgb", "show_augmented",
           "plot_history", "plot_histories",
           "plot_layer_stats", "color_dim", "plot_grad_norms", "plot_lr_sweep", "plot_ablation",
           "plot_mechanism", "plot_stats_over_training", "plot_confusion",
           "plot_reliability", "plot_group_accuracy", "show_most_wrong", "plot_comparison", "save",
           "subplots", "LivePlot", "OUTCOME_COLORS", "OUTCOME_MARKERS"]


def save(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
