"""Render two of the kit's figures in the default and the projector style, from committed
benchmark results (no training): docs/img/{ablation,generalize}-{default,projector}.png.

    python docs/style_figures.py
"""

from __future__ import annotations

from pathlib import Path

from facekit import plots, results
from facekit.ablation import Ablation
from facekit.generalize import Comparison

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ablation = Ablation.from_jsonl(results.path("ablation.jsonl"))
    comparison = Comparison.from_jsonl(results.path("generalize.jsonl"))
    out = ROOT / "docs/img"
    out.mkdir(parents=True, exist_ok=True)
    for style in ("default", "projector"):
        plots.use_style(style)
        plots.save(plots.plot_ablation(ablation), out / f"ablation-{style}.png", dpi=80)
        plots.save(plots.plot_comparison(comparison, "train vs validation accuracy per recipe"),
                   out / f"generalize-{style}.png", dpi=80)
    plots.use_style("default")
    print("wrote", ", ".join(sorted(p.name for p in out.glob("*-default.png")) +
                             sorted(p.name for p in out.glob("*-projector.png"))))


if __name__ == "__main__":
    main()
