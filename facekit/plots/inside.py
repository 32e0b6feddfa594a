"""Inside the network: activations and dead channels per layer, activation histograms over training,
gradient norms, the learning-rate sweep (chapters 03 and 04)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import matplotlib.pyplot as plt
import numpy as np

from facekit.core import deep_layers
from facekit.diagnose.checks import Check
from facekit.style import STYLES, scaled_font, scaled_line, subplots

if TYPE_CHECKING:  # plots read what the experiments return; nothing of theirs runs here
    from matplotlib.axes import Axes

    from facekit.diagnose import ActivationStats, GradientStats, LayerStats



__all__ = ["plot_layer_stats", "color_dim", "plot_stats_over_training", "plot_grad_norms", "plot_lr_sweep"]


def plot_layer_stats(check: Check | Sequence[LayerStats],
                     title: str = "activations after each layer") -> plt.Figure:
    """Per layer (after the activation): signal RMS on a log scale, and the shares of exact
    zeros, near-zero values and dead channels. Takes `facekit.diagnose.activation_report`'s result
    (or a list of `LayerStats`).

    Taught in chapter 03, section 3."""
    stats = check.values["layers"] if isinstance(check, Check) else list(check)
    names = [s.name for s in stats]
    x = np.arange(len(stats))
    fig, (a1, a2) = subplots(1, 2, figsize=(11, 3.8))
    a1.semilogy(x, [s.rms for s in stats], **STYLES[0], label="RMS of the activations")
    a1.set(xticks=x, ylabel="RMS (log scale)", title="signal strength by depth")
    a1.set_xticklabels(names, rotation=45, ha="right")
    for i, (key, lab) in enumerate((("zero", "exact zeros"), ("near_zero", "near zero (0<|a|<tol)"),
                                    ("dead", "dead channels"))):
        a2.plot(x, [getattr(s, key) for s in stats], **STYLES[i], label=lab)
    a2.set(xticks=x, ylabel="share (0-1)", ylim=(-0.02, 1.02), title="zeros and dead channels")
    a2.set_xticklabels(names, rotation=45, ha="right")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=scaled_font(8))
        ax.set_xlabel("layer (input -> output)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def color_dim(stats: ActivationStats, layers: Sequence[str] | None = None,
              title: str = "activation histograms over training"
              ) -> plt.Figure:
    """fastai's "colorful dimension": for each layer, the histogram of its non-zero activations
    (y: value, colour: share of the layer's activations in that bin, log scale, one colorbar) at every
    record (x: batch); the share of exact zeros is the white line on the right axis (0-1) of every
    panel. Panels in a row share their y-scale, so only the first panel of a row labels it (and only
    the last labels the 0-1 axis). Takes an `ActivationStats` callback after training.

    Taught in chapter 03, section 5."""
    from matplotlib.colors import LogNorm

    names = list(layers or stats.hists)
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = subplots(rows, cols, figsize=(2.05 * cols + 1.0, 2.6 * rows + 0.5), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    cmap = plt.get_cmap("viridis").with_extremes(bad="#1b0f2e")  # empty bins
    norm = LogNorm(vmin=1e-4, vmax=1)
    image = None
    for r in range(rows):
        row = names[r * cols:(r + 1) * cols]
        top = max(stats.edges[n][-1] for n in row)
        for c, name in enumerate(row):
            ax = axes[r, c]
            h = np.ma.masked_less_equal(np.array(stats.hists[name]).T, 0)  # bins x records
            e = stats.edges[name]
            image = ax.imshow(h, origin="lower", aspect="auto", cmap=cmap, norm=norm,
                              extent=(stats.steps[0], stats.steps[-1] or 1, e[0], e[-1]))
            ax.set_ylim(e[0], top)
            ax.set_facecolor(cmap.get_bad())  # above this layer's largest value: no activations
            ax.set_title(name, fontsize=scaled_font(9))
            if r == rows - 1 or (r + 1) * cols + c >= len(names):
                ax.set_xlabel("batch")
            if c == 0:
                ax.set_ylabel("activation value")
            else:
                ax.tick_params(labelleft=False)  # the row's y-scale, labelled on its first panel
            z = ax.twinx()
            z.plot(stats.steps, [s.zero for s in stats.stats[name]], color="white", lw=scaled_line(1.5))
            z.set_ylim(0, 1)
            z.set_yticks([0, 0.5, 1])
            if c == len(row) - 1:
                z.set_ylabel("exact zeros (white, share)", fontsize=scaled_font(8))
            else:
                z.tick_params(labelright=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if image is not None:
        cax = fig.add_axes((0.935, 0.15, 0.012, 0.7))
        fig.colorbar(image, cax=cax, label="share of activations in the bin (log)")
    return fig


def _layer_colors(names: Sequence[str]) -> list[tuple[tuple[float, ...], float]]:
    """(colour, line width) per layer: a sequential colormap from the first layer (light) to the last
    (dark); the deep layers (`facekit.core.deep_layers`: conv7-conv10 in the question's network)
    drawn thicker so they separate from the rest; a non-conv layer (the output) in grey."""
    convs = [n for n in names if n.startswith("conv")] or list(names)
    deep = set(deep_layers(names))
    out: list[tuple[tuple[float, ...], float]] = []
    for name in names:
        if name not in convs:
            out.append(((0.45, 0.45, 0.45, 1.0), scaled_line(1.2)))
            continue
        i = convs.index(name)
        out.append((plt.cm.plasma_r(0.1 + 0.85 * i / max(len(convs) - 1, 1)),
                    scaled_line(2.4 if name in deep else 1.2)))
    return out


def plot_stats_over_training(stats: ActivationStats, key: str = "dead",
                             title: str | None = None, ax: Axes | None = None,
                             legend: bool = True) -> plt.Figure:
    """One `LayerStats` field (``dead``, ``zero``, ``rms``...) per layer over training, from an
    `ActivationStats` callback; drawn into ``ax`` when given (one panel of a larger figure).

    Taught in chapter 03, section 5."""
    fig, ax = subplots(figsize=(8, 4)) if ax is None else (cast(plt.Figure, ax.figure), ax)
    series = stats.series(key)
    for (name, values), (color, lw) in zip(series.items(), _layer_colors(list(series))):
        ax.plot(stats.steps, values, color=color, lw=lw, label=name)
    ax.set(xlabel="batch", ylabel={"dead": "dead channels (share, 0-1)", "zero": "exact zeros (share, 0-1)",
                                   "near_zero": "near-zero values (share, 0-1)", "rms": "RMS (log scale)"
                                   }.get(key, key),
           title=title or f"{key} per layer over training")
    if key == "rms":
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=scaled_font(9), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def plot_grad_norms(grads: GradientStats | Check, title: str = "gradient norm per layer",
                    ax: Axes | None = None, legend: bool = True) -> plt.Figure:
    """Gradient norms per layer: over training from a `GradientStats` callback (log scale), or
    at one moment from `facekit.diagnose.gradient_report`'s result (bars); drawn into ``ax`` when
    given (one panel of a larger figure).

    Taught in chapter 03, section 5."""
    fig, ax = subplots(figsize=(8.5, 4)) if ax is None else (cast(plt.Figure, ax.figure), ax)
    if not isinstance(grads, Check):
        for (name, values), (color, lw) in zip(grads.norms.items(), _layer_colors(list(grads.norms))):
            ax.semilogy(grads.steps, values, color=color, lw=lw, label=name)
        ax.set(xlabel="batch", ylabel="gradient norm (log scale)")
        if legend:
            ax.legend(fontsize=scaled_font(9), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    else:
        rows = grads.values["layers"]
        ax.bar(range(len(rows)), [r["grad_norm"] for r in rows], color="#1f4e9c", hatch="//",
               label="|gradient| of the layer's weights")
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["layer"] for r in rows], rotation=45, ha="right")
        ax.set(xlabel="layer (input -> output)", ylabel="gradient norm (log scale)")
        ax.legend(fontsize=scaled_font(8))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_lr_sweep(check: Check, title: str = "learning-rate sweep") -> plt.Figure:
    """Per-batch loss (dots) and its smoothed curve against the learning rate (log scale), with
    the suggested range shaded. Takes `facekit.diagnose.lr_sweep`'s result.

    Taught in chapter 04, section 2."""
    v = check.values
    fig, ax = subplots(figsize=(7, 4))
    ax.semilogx(v["lrs"], v["losses"], ".", color="0.55", label="loss of each batch")
    ax.semilogx(v["lrs"], v["smoothed"], **{**STYLES[0], "marker": None}, label="smoothed")
    if v.get("suggested"):
        ax.axvspan(*v["suggested"], color="#2e8b57", alpha=0.2, hatch="\\\\", label="suggested range")
    finite = [v for v in v["smoothed"] if math.isfinite(v)]
    ax.set_ylim(min(finite) * 0.9, max(v["losses"][0], v["smoothed"][0]) * 1.5)
    ax.set(xlabel="learning rate (log scale)", ylabel="cross-entropy loss (nats)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=scaled_font(8))
    fig.tight_layout()
    return fig
