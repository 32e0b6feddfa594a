"""The studies over many seeds: the one-change ablation, the first-epoch mechanism, the recipe
comparison (chapters 03, 04 and 06)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from facekit.core import DEEP
from facekit.style import NOTEBOOK_INCHES, REF, current_style, scaled_font, scaled_line, subplots

if TYPE_CHECKING:  # plots read what the experiments return; nothing of theirs runs here

    from facekit.ablation import Ablation
    from facekit.generalize import Comparison



__all__ = ["OUTCOME_COLORS", "OUTCOME_MARKERS", "plot_ablation", "plot_mechanism", "plot_comparison"]


OUTCOME_COLORS = {"learns": "#1a7f37", "drifting": "#d97706", "guessing": "#7b3294", "stuck": "#c0392b"}
OUTCOME_MARKERS = {"learns": "o", "drifting": "s", "guessing": "^", "stuck": "x"}
def plot_ablation(ablation: Ablation, n_classes: int = 8,
                  title: str = "one change at a time, every seed: training loss and held-out accuracy"
                  ) -> plt.Figure:
    """One row per variant and per BatchNorm reading, one marker per run coloured by its outcome
    (`facekit.ablation.OUTCOMES`). Left: the training loss at the last epoch, against ln C where a
    guess sits. Right: the held-out accuracy at the last epoch in inference mode (what Keras'
    ``val_accuracy`` shows), against chance (1/C) and the "learns" bar; the outcome counts beside it.
    A reading row (``batch_norm [recalibrated]``) is the same runs read another way: its training
    loss is its variant's.

    Taught in chapter 04, section 3."""
    from facekit.ablation import LEARNS_AT, READINGS, run_outcome

    n = len(ablation.rows)
    big = current_style() == "projector"  # large type: short labels, or they run into each other
    height = 0.3 * n + 1.9
    fig, (loss_ax, acc_ax) = subplots(1, 2, figsize=(NOTEBOOK_INCHES, height), sharey=True,
                                      gridspec_kw={"width_ratios": [1, 1.6]})
    rng = np.random.default_rng(0)
    size = scaled_line(1.0) * 22
    for y, row in enumerate(ablation.rows):
        variant, _, rest = row["variant"].partition(" [")
        reading = rest.rstrip("]") or None
        for run in ablation.runs.get(variant, []):
            key = f"val_accuracy_{reading}" if reading else "val_accuracy"
            acc = run[key][-1] if key in run else run["val_acc"]
            what = run_outcome(run, reading if reading in READINGS else None)[0]
            style = {"color": OUTCOME_COLORS.get(what, "grey"), "marker": OUTCOME_MARKERS.get(what, "o"),
                     "s": size, "alpha": 0.8}
            jitter = y + rng.uniform(-0.18, 0.18)
            acc_ax.scatter(acc, jitter, **style)
            if reading is None:
                loss_ax.scatter(run["final_loss"], jitter, **style)
        if reading is not None:
            loss_ax.text(0.03, y, "(same runs)" if big else f"the {variant} runs", va="center", color="grey",
                         fontsize=scaled_font(8), transform=loss_ax.get_yaxis_transform())
        counts = ", ".join(f"{row[o]} {o}" for o in OUTCOME_COLORS if row.get(o))
        acc_ax.text(1.02, y, counts, va="center", fontsize=scaled_font(8),
                    transform=acc_ax.get_yaxis_transform())
    loss_ax.axvline(math.log(n_classes), **REF)
    loss_ax.set_yticks(range(n), [r["variant"] for r in ablation.rows], fontsize=scaled_font(8))
    loss_ax.set_ylim(n - 0.5, -0.5)
    loss_ax.set_xlim(0, max(3.0, math.log(n_classes) + 0.3))
    loss_ax.set_xlabel("training loss (nats)" if big else "training loss, last epoch (nats)")
    acc_ax.axvline(1 / n_classes, **REF)
    acc_ax.axvline(LEARNS_AT, color="#1a7f37", lw=scaled_line(1), ls=":")
    acc_ax.set_xlim(0, 1)
    acc_ax.set_xlabel("held-out accuracy, inference mode" if big else
                      "held-out accuracy, last epoch, inference mode (Keras' val_accuracy)")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3, axis="x")
    handles = [plt.Line2D([], [], color=c, marker=OUTCOME_MARKERS[k], lw=0, label=k)
               for k, c in OUTCOME_COLORS.items()]
    handles += [plt.Line2D([], [], **REF, label=f"ln {n_classes} (loss) / 1/{n_classes} (accuracy): a guess"),
                plt.Line2D([], [], color="#1a7f37", ls=":", label=f"accuracy {LEARNS_AT:g}: learns")]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=scaled_font(8), frameon=False)
    fig.suptitle(title, fontsize=scaled_font(11))
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    return fig


def plot_mechanism(runs: Sequence[dict], deep: int = DEEP,
                   title: str = "the first epoch, batch by batch (median over seeds, band: middle half)"
                   ) -> plt.Figure:
    """The mechanism study's per-batch records (``facekit.results.mechanism_runs()``), one line per
    configuration: dead-channel share and mean bias of the last ``deep`` ReLU layers, and the logit
    spread across images.

    Taught in chapter 03, section 6."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        label = f"{r['optimizer'].replace('adam', 'Adam')} lr {r['lr']:g}, " + r["init"].split("_")[0].title()
        groups.setdefault(label, []).append(r)
    fig, axes = subplots(1, 3, figsize=(NOTEBOOK_INCHES, 3.9))
    panels = (("dead", f"dead channels, last {deep} conv layers", "share of channels (0-1)", False),
              ("bias_mean", f"mean bias, last {deep} conv layers", "bias (activation units)", False),
              ("spread", "logit spread across images", "std of the logits across images (log)", True))
    colors = plt.get_cmap("tab10")
    for i, (label, rs) in enumerate(groups.items()):
        n = min(len(r["batches"]) for r in rs)
        for ax, (key, name, ylabel, log) in zip(axes, panels):
            vals = np.array([[np.mean(b[key][-deep:]) if isinstance(b[key], list) else b[key]
                              for b in r["batches"][:n]] for r in rs])
            q1, med, q3 = np.percentile(vals, [25, 50, 75], axis=0)
            steps = np.arange(n)
            ax.plot(steps, med, color=colors(i), lw=scaled_line(2), label=f"{label} ({len(rs)} seeds)")
            ax.fill_between(steps, q1, q3, color=colors(i), alpha=0.2)
            ax.set(title=name, xlabel="batches trained", ylabel=ylabel)
            if log:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    axes[1].axhline(0, **REF)
    axes[0].legend(fontsize=scaled_font(8), loc="upper left")
    fig.suptitle(title, fontsize=scaled_font(11))
    fig.tight_layout()
    return fig


def plot_comparison(comparison: Comparison,
                    title: str = "train vs validation accuracy per recipe") -> plt.Figure:
    """For each recipe of a `facekit.generalize.Comparison`: train and validation accuracy of
    every seed (the gap between them is the memorising), medians joined by a bar.

    Taught in chapter 06, section 3."""
    names = comparison.recipes
    y = np.arange(len(names))
    fig, ax = subplots(figsize=(8, 0.5 * len(names) + 1.5))
    for k, name in enumerate(names):
        runs = comparison.of(name)
        tr, va = comparison.median(name, "train_acc"), comparison.median(name, "val_acc")
        ax.plot([va, tr], [k, k], color="0.6", lw=scaled_line(4), solid_capstyle="butt",
                label="train - val gap (medians)" if k == 0 else None)
        ax.plot([r.train_acc for r in runs], [k] * len(runs), "s", color="#c0392b", mfc="white",
                label="train accuracy (each seed)" if k == 0 else None)
        ax.plot([r.val_acc for r in runs], [k] * len(runs), "o", color="#1f4e9c",
                label="validation accuracy (each seed)" if k == 0 else None)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n} ({comparison.of(n)[0].params:,} params)" for n in names],
                       fontsize=scaled_font(8))
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.02), xlabel="accuracy (fraction correct)", title=title)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=scaled_font(8), loc="lower left")
    fig.tight_layout()
    return fig
