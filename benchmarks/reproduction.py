"""How reliably does the question's network sit at ln 8? Stuck share over many seeds per setting.

    python -m benchmarks.reproduction --settings 100:64:100:5 100:32:50:3 --seeds 10
    python -m benchmarks.reproduction --settings 100:128:50:4 --seeds 5 \
        --variants question he_init batch_norm ... --out facekit/results/ablation.jsonl

A setting is size:filters:per_class:epochs (batch 16, Adam 1e-3, synthetic faces at difficulty
0.5, 10% stratified validation). A run is "stuck" (`facekit.train.History.stuck`) when its
last two epochs' training losses are within 0.005 of ln 8 (`facekit.train.at_chance`) and its
last accuracy within 0.05 of 1/8 (a loss passing through ln 8 does not count). Records and
medians come from `facekit.ablation` (`run_record`, `summarise`), as `ablate` computes them.
Rows are appended to a JSON-lines file as they finish; the markdown table is rebuilt from it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path


def run_one(size: int, filters: int, per_class: int, epochs: int, seed: int,
            variant: str = "question") -> dict:
    from facekit.ablation import run_record
    from facekit.data import make_faces
    from facekit.models import question_variant
    from facekit.train import fit

    train, val = make_faces(per_class, size, seed=0).split(0.1, seed=0)
    t = time.perf_counter()
    model = question_variant(variant, (size, size, 3), 8, filters, seed=seed)
    h = fit(model, train, val, epochs=epochs, batch_size=16, seed=seed)
    return {"variant": variant, "size": size, "filters": filters, "per_class": per_class,
            "epochs": epochs, **run_record(variant, seed, h, time.perf_counter() - t)}


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["variant"], r["size"], r["filters"], r["per_class"], r["epochs"])
        groups.setdefault(key, []).append(r)
    from facekit.ablation import summarise
    from facekit.profiles import PROFILES
    from facekit.text import markdown_table

    def profile_of(size, f, pc, ep):
        return next((p.name for p in PROFILES.values()
                     if (p.size, p.filters, p.per_class, p.epochs) == (size, f, pc, ep)), "-")

    cells = []
    for (variant, size, f, pc, ep), rs in groups.items():
        row = summarise(variant, rs)
        stuck, n = row["stuck"], row["runs"]
        cells.append([profile_of(size, f, pc, ep), variant, size, f, 8 * pc, ep, n,
                      f"{stuck}/{n} ({100 * stuck / n:.0f}%)", f"{row['final_loss']:.4f}",
                      f"{row['val_acc']:.3f}", f"{row['s_per_epoch']:.1f}"])
    out = [markdown_table(["profile", "variant", "size", "filters", "images", "epochs", "seeds", "stuck",
                           "final loss (median)", "val acc (median)", "s/epoch (median)"], cells)]
    out.append(f"\nln 8 = {math.log(8):.4f}. images = 8 x per_class (90% train, 10% validation). "
               f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
               "s/epoch includes building the model.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--settings", nargs="+", default=["100:64:100:5"])
    p.add_argument("--seeds", type=int, default=10, help="how many seeds per setting")
    p.add_argument("--first-seed", type=int, default=0, help="to resume an interrupted run")
    p.add_argument("--variants", nargs="+", default=["question"],
                   help="one-change variants of facekit.models.VARIANTS (default: question)")
    p.add_argument("--out", default="benchmarks/results/reproduction.jsonl")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for setting in args.settings:
        size, filters, per_class, epochs = map(int, setting.split(":"))
        for variant, seed in ((v, s) for v in args.variants for s in range(args.first_seed, args.seeds)):
            row = run_one(size, filters, per_class, epochs, seed, variant)
            row["command"] = "python -m benchmarks.reproduction " + " ".join(argv or sys.argv[1:])
            print(json.dumps(row), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    write_table(out)


def write_table(out: Path) -> str:
    """Rebuild the markdown table next to a JSON-lines file of runs."""
    from facekit.results import read_jsonl_path

    rows = read_jsonl_path(out)
    cmds = sorted({r.get("command", "") for r in rows} - {""})
    text = "Regenerate with:\n\n" + "".join(f"    {c}\n" for c in cmds) + f"\n{table(rows)}\n"
    out.with_suffix(".md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
