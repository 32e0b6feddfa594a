"""Every figure the notebooks and the story show. Functions take what facekit returns
(a Dataset, a History, a diagnose result) and return the matplotlib Figure. Their look (default or
projector) is set in `facekit.style`; `use_style` and `current_style` are re-exported here."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from facekit.data import Dataset
from facekit.diagnose.checks import Check
from facekit.live import LivePlot
from facekit.style import (
    NOTEBOOK_INCHES,
    REF,
    STYLES,
    current_style,
    scaled_font,
    scaled_line,
    subplots,
    use_style,
)

if TYPE_CHECKING:  # plots read what the experiments return; nothing of theirs runs here
    from matplotlib.axes import Axes

    from facekit.ablation import Ablation
    from facekit.diagnose import ActivationStats, GradientStats, LayerStats
    from facekit.evaluate import Evaluation
    from facekit.generalize import Comparison
    from facekit.train import History

__all__ = ["use_style", "current_style", "show_grid", "show_batch", "show_bgr_rgb", "show_augmented",
           "plot_history", "plot_histories",
           "plot_layer_stats", "color_dim", "plot_grad_norms", "plot_lr_sweep", "plot_ablation",
           "plot_mechanism", "plot_stats_over_training", "plot_confusion",
           "plot_reliability", "plot_group_accuracy", "show_most_wrong", "plot_comparison", "save",
           "subplots", "LivePlot"]

def show_grid(ds: Dataset, per_class: int = 3, title: str | None = None) -> plt.Figure:
    """A grid with one column per class and ``per_class`` rows: what the classes look like."""
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
    and the same images flipped to RGB below, so the colour change reads at a glance."""
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
    versions of each, as ``augment`` (Keras layers, called with ``training=True``) makes them."""
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


def _reference_lines(ax_loss: Axes, ax_acc: Axes, n_classes: int) -> None:
    ax_loss.axhline(math.log(n_classes), **REF, label=f"ln {n_classes} = {math.log(n_classes):.3f} (chance)")
    ax_acc.axhline(1 / n_classes, **REF, label=f"chance = 1/{n_classes}")


def plot_histories(histories: Sequence[History], title: str = "training curves",
                   labels: Sequence[str] | None = None) -> plt.Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), for several runs,
    with ln C and chance accuracy drawn."""
    rows = 1 + len(histories)  # legend lines below the panels
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(11, 3.6 + 0.25 * rows))
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
        _reference_lines(ax_loss, ax_acc, c)
        lo, hi = ax_loss.get_ylim()
        if hi - lo < 0.2:  # a run stuck at ln C: show it flat, not magnified noise
            ax_loss.set_ylim(min(lo, math.log(c) - 0.1), max(hi, math.log(c) + 0.1))
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss (nats)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (fraction correct)", title="accuracy", ylim=(0, 1.02))
    last = max((len(h.epochs) for h in histories), default=1)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, last + 0.5)  # the data starts at epoch 1
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=scaled_font(8), loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=2, frameon=False)  # below the panel: never over the curves
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: History, title: str | None = None) -> plt.Figure:
    """Loss and accuracy of one run, train and validation, with ln C and chance lines."""
    return plot_histories([history], title or f"{history.label}: training curves")


def plot_layer_stats(check: Check | Sequence[LayerStats],
                     title: str = "activations after each layer") -> plt.Figure:
    """Per layer (after the activation): signal RMS on a log scale, and the shares of exact
    zeros, near-zero values and dead channels. Takes `facekit.diagnose.activation_report`'s result
    (or a list of `LayerStats`)."""
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
    the last labels the 0-1 axis). Takes an `ActivationStats` callback after training."""
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
    (dark); the deepest four conv layers (conv7-conv10 in the question's network) drawn thicker so they
    separate from the rest; a non-conv layer (the output) in grey."""
    convs = [n for n in names if n.startswith("conv")] or list(names)
    deep = set(convs[-4:])
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
    `ActivationStats` callback; drawn into ``ax`` when given (one panel of a larger figure)."""
    fig, ax = subplots(figsize=(8, 4)) if ax is None else (ax.figure, ax)
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
    given (one panel of a larger figure)."""
    fig, ax = subplots(figsize=(8.5, 4)) if ax is None else (ax.figure, ax)
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
    the suggested range shaded. Takes `facekit.diagnose.lr_sweep`'s result."""
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
    loss is its variant's."""
    from facekit.ablation import LEARNS_AT, READINGS, run_outcome

    n = len(ablation.rows)
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
            loss_ax.text(0.03, y, f"the {variant} runs", va="center", color="grey",
                         fontsize=scaled_font(8), transform=loss_ax.get_yaxis_transform())
        counts = ", ".join(f"{row[o]} {o}" for o in OUTCOME_COLORS if row.get(o))
        acc_ax.text(1.02, y, counts, va="center", fontsize=scaled_font(8),
                    transform=acc_ax.get_yaxis_transform())
    loss_ax.axvline(math.log(n_classes), **REF)
    loss_ax.set_yticks(range(n), [r["variant"] for r in ablation.rows], fontsize=scaled_font(8))
    loss_ax.set_ylim(n - 0.5, -0.5)
    loss_ax.set_xlim(0, max(3.0, math.log(n_classes) + 0.3))
    loss_ax.set_xlabel("training loss, last epoch (nats)")
    acc_ax.axvline(1 / n_classes, **REF)
    acc_ax.axvline(LEARNS_AT, color="#1a7f37", lw=scaled_line(1), ls=":")
    acc_ax.set_xlim(0, 1)
    acc_ax.set_xlabel("held-out accuracy, last epoch, inference mode (Keras' val_accuracy)")
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


def plot_mechanism(runs: Sequence[dict], deep: int = 4,
                   title: str = "the first epoch, batch by batch (median over seeds, band: middle half)"
                   ) -> plt.Figure:
    """The mechanism study's per-batch records (``facekit.results.mechanism_runs()``), one line per
    configuration: dead-channel share and mean bias of the last ``deep`` ReLU layers, and the logit
    spread across images."""
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


def plot_confusion(evaluation: Evaluation, title: str = "confusion matrix (rows: true class)") -> plt.Figure:
    """Confusion matrix of a `facekit.evaluate.Evaluation`: counts in each cell, shaded by the
    share of the true class (row)."""
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
    (a point made of 3 images says little). The legend sits below the axes, off the points."""
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
    for several evaluations; the overall accuracy drawn as a line."""
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
    class`` and the confidence, one to a line."""
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


def plot_comparison(comparison: Comparison,
                    title: str = "train vs validation accuracy per recipe") -> plt.Figure:
    """For each recipe of a `facekit.generalize.Comparison`: train and validation accuracy of
    every seed (the gap between them is the memorising), medians joined by a bar."""
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


def save(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
