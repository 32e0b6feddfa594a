"""facekit.plots as a student sees them: JupyterLab shows a figure saved at the inline dpi and scaled
down to the notebook's width, so every figure must fit that width with its text at least
`facekit.style.MIN_FONT` points; and a legend never covers the data it explains."""

from __future__ import annotations

import io
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image

from facekit import plots, results
from facekit.ablation import Ablation
from facekit.evaluate import Evaluation, confusion_matrix, reliability
from facekit.generalize import Comparison
from facekit.style import INLINE_DPI, MIN_FONT, NOTEBOOK_PX
from facekit.synthetic import make_faces
from facekit.train import History

CLASSES = ("bald", "bald+glasses", "long", "long+glasses", "mohawk", "mohawk+glasses", "short",
           "short+glasses")
CONVS = [f"conv{i}" for i in range(1, 11)]  # the question's network: two rows of five panels


def _evaluation(groups: dict | None = None, sharp: float = 2.0) -> Evaluation:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 25)
    logits = rng.normal(size=(200, 8)) + sharp * np.eye(8)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    groups = groups or {"glasses": {"no": (0.7, 100), "yes": (0.6, 100)},
                        "hair": {h: (0.65, 50) for h in ("bald", "long", "mohawk", "short")}}
    return Evaluation(CLASSES, probs, labels, confusion_matrix(labels, probs.argmax(1), 8), groups,
                      reliability(probs, labels))


def _activation_stats() -> SimpleNamespace:
    steps = list(range(0, 100, 10))
    return SimpleNamespace(
        steps=steps, hists={n: [np.full(40, 0.01)] * len(steps) for n in CONVS},
        edges={n: np.linspace(0, 0.6 if i < 5 else 0.08, 41) for i, n in enumerate(CONVS)},
        stats={n: [SimpleNamespace(zero=0.5)] * len(steps) for n in CONVS})


def _mechanism_run(lr: float, init: str, seed: int) -> dict:
    batches = [{"dead": [0.1 * i] * 10, "bias_mean": [-1e-4 * i] * 10, "spread": 1e-3 / (i + 1)}
               for i in range(5)]
    return {"optimizer": "adam", "init": init, "lr": lr, "seed": seed, "batches": batches}


def _history(label: str) -> History:
    return History(8, [dict(loss=2.0 - 0.1 * i, accuracy=0.2 + 0.05 * i, val_loss=2.0 - 0.05 * i,
                            val_accuracy=0.15 + 0.04 * i, seconds=1.0) for i in range(10)], label=label)


UTKFACE_GROUPS = {"age": {f"{a}-{a + 9}": (0.7, 20) for a in range(0, 70, 10)},
                  "gender": {"female": (0.78, 100), "male": (0.8, 100)},
                  "race": {r: (0.7, 40) for r in ("asian", "black", "indian", "others", "white")}}
FACES = make_faces(3, 64, seed=0)

FIGURES = {
    "show_grid": lambda: plots.show_grid(FACES, per_class=3),
    "show_batch": lambda: plots.show_batch(FACES.images[:16], FACES.labels[:16], FACES.class_names),
    "show_bgr_rgb": lambda: plots.show_bgr_rgb(FACES.images[:8], FACES.labels[:8], FACES.class_names),
    "plot_histories": lambda: plots.plot_histories([_history("answer net"), _history("improved net")]),
    "color_dim": lambda: plots.color_dim(_activation_stats()),
    "plot_ablation": lambda: plots.plot_ablation(Ablation.from_jsonl(results.path("ablation.jsonl"))),
    "plot_mechanism": lambda: plots.plot_mechanism(
        [_mechanism_run(1e-3, "glorot_uniform", 0), _mechanism_run(1e-4, "glorot_uniform", 0),
         _mechanism_run(1e-3, "he_normal", 0)]),
    "plot_confusion": lambda: plots.plot_confusion(_evaluation()),
    "plot_reliability": lambda: plots.plot_reliability([_evaluation(), _evaluation(sharp=4)],
                                                       ["answer net", "improved net"]),
    "plot_group_accuracy (UTKFace: 3 attributes)": lambda: plots.plot_group_accuracy(
        [_evaluation(UTKFACE_GROUPS)] * 2, ["answer net", "improved net"]),
    "show_most_wrong": lambda: plots.show_most_wrong(make_faces(25, 64, seed=0), _evaluation(sharp=0.5), k=8),
    "plot_comparison": lambda: plots.plot_comparison(Comparison.from_jsonl(results.path("generalize.jsonl"))),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figure_fits_the_notebook_width_with_legible_text(name):
    fig = FIGURES[name]()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=INLINE_DPI, bbox_inches="tight")  # as the inline backend does
    width = Image.open(buf).size[0]
    texts = [(t.get_fontsize(), t.get_text()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    plt.close(fig)
    assert width <= NOTEBOOK_PX, f"{name}: {width} px wide, shown shrunk to {NOTEBOOK_PX} px"
    size, text = min(texts)
    assert size >= MIN_FONT, f"{name}: {text!r} at {size} pt (at least {MIN_FONT})"


def test_reliability_legend_lies_outside_the_axes():
    # a bin of one image sits at accuracy 0 or 1 - where a legend inside the axes would cover it
    fig = plots.plot_reliability([_evaluation(sharp=0.5)], ["answer net"])
    fig.canvas.draw()
    ax = fig.axes[0]
    legend, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    plt.close(fig)
    assert legend.y1 <= box.y0 or legend.x0 >= box.x1
