"""Render two of the kit's figures in the default and the projector style, from committed
benchmark results (no training): docs/img/{ablation,generalize}-{default,projector}.png.

    python docs/style_figures.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from facekit import plots
from facekit.diagnose import Ablation
from facekit.generalize import Comparison
from facekit.models import VARIANTS

ROOT = Path(__file__).resolve().parents[1]


def ablation_from_jsonl(path: Path) -> Ablation:
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for name in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == name]
        rows.append({"variant": name, "change": VARIANTS[name][0], "runs": len(rs),
                     "stuck": sum(r["stuck"] for r in rs),
                     "final_loss": statistics.median(r["final_loss"] for r in rs),
                     "val_acc": statistics.median(r["val_acc"] for r in rs),
                     "s_per_epoch": statistics.median(r["s_per_epoch"] for r in rs)})
    return Ablation(rows)


def main() -> None:
    ablation = ablation_from_jsonl(ROOT / "benchmarks/results/ablation.jsonl")
    comparison = Comparison.from_jsonl(ROOT / "benchmarks/results/generalize.jsonl")
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
