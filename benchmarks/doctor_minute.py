"""Is the doctor in a minute the doctor in five? ``doctor(trials=True, budget=60)`` next to the slow
version (100 steps a trial, no budget) on the classroom question network's stuck seeds.

    python -m benchmarks.doctor_minute --seeds 4     # appends to results/doctor_minute.jsonl, resumes

Each seed: the question network at that seed's fresh weights (the ablation's stuck seeds, in order),
the doctor run twice from the same weights, images and batches - once with the budget, once slow -
each timed from call to report (checks and trials together). The rankings are compared fix by fix.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.doctor import _stuck_seeds
from benchmarks.notes import write_with_notes
from facekit.results import read_jsonl_path
from facekit.text import markdown_table

OUT = Path(__file__).resolve().parent / "results" / "doctor_minute.jsonl"


def one(prof: Any, train: Any, seed: int, budget: float | None) -> dict[str, Any]:
    from facekit.diagnose import doctor
    from facekit.models import question_model

    model = question_model(prof.input_shape, train.n_classes, prof.filters, seed=seed)
    t = time.perf_counter()
    report = doctor(model, train, trials=True, seed=seed, budget=budget)
    seconds = time.perf_counter() - t
    tried = [t for t in report.trials if t.fix != "baseline" and t.val_accuracy is not None]
    ranking = [t.fix for t in sorted(tried, key=lambda t: -t.val_accuracy)]
    return {"seconds": round(seconds, 1), "top_fix": report.top_fix, "ranking": ranking,
            "steps": max((len(t.losses) for t in report.trials), default=0),
            "val_accuracy": {t.fix: t.val_accuracy for t in report.trials}}


def _same_order(row: dict[str, Any]) -> bool:
    """The fast and slow rankings agree over the fixes both tried (the slow one may add /30, /100)."""
    fast, slow = row["fast"]["ranking"], row["slow"]["ranking"]
    return [f for f in fast if f in slow] == [f for f in slow if f in fast]


def table(rows: list[dict[str, Any]]) -> str:
    body = [(r["seed"], f"{r['fast']['seconds']:.0f} s", r["fast"]["steps"], r["fast"]["top_fix"],
             f"{r['slow']['seconds']:.0f} s", r["slow"]["top_fix"],
             "yes" if r["fast"]["top_fix"] == r["slow"]["top_fix"] else "no",
             "yes" if _same_order(r) else "no") for r in rows]
    text = markdown_table(["seed", "budget 60: wall", "steps a trial", "top fix", "slow: wall", "top fix",
                           "same top fix", "same order (fixes both tried)"], body)
    if rows:
        same = sum(r["fast"]["top_fix"] == r["slow"]["top_fix"] for r in rows)
        text += (f"\n\nSame top fix on {same} of {len(rows)} seeds; median wall time "
                 f"{statistics.median(r['fast']['seconds'] for r in rows):.0f} s with the budget vs "
                 f"{statistics.median(r['slow']['seconds'] for r in rows):.0f} s without.")
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=4, help="how many of the stuck seeds")
    p.add_argument("--table", action="store_true", help="only rebuild the markdown table")
    args = p.parse_args(argv)
    rows = read_jsonl_path(OUT) if OUT.exists() else []
    if not args.table:
        from facekit.profiles import get_profile, load_profile_data
        from facekit.train import set_seed

        set_seed(0)
        prof = get_profile("classroom")
        train, _ = load_profile_data(prof)
        done = {r["seed"] for r in rows}
        for seed, _epochs in _stuck_seeds(prof)[:args.seeds]:
            if seed in done:
                continue
            row = {"profile": prof.name, "seed": seed, "fast": one(prof, train, seed, 60.0),
                   "slow": one(prof, train, seed, None)}
            rows.append(row)
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    title = " ".join(__doc__.splitlines()[:2])
    write_with_notes(OUT.with_suffix(".md"), title, table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
