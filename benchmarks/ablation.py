"""One change at a time, over many seeds: which single change makes the question's network learn?

    python -m benchmarks.ablation --profile classroom --seeds 10 --epochs 8
    python -m benchmarks.ablation --table          # rebuild the .md from the jsonl

Every variant (`facekit.models.VARIANTS`) is the question's network with one change, built with the
seed's initial weights and trained on the profile's data exactly as chapter 04's `ablate` does
(`facekit.ablation.train_variant`: batch 16, Adam 1e-3 unless the change is the learning rate), for
up to ``--epochs`` epochs, stopped once the outcome is certain (`facekit.ablation.StopWhenCertain`).
Four outcomes (`facekit.ablation.classify`), judged as the student saw the run - on the held-out
images, in inference mode (Keras' ``val_accuracy``): **learns** - validation accuracy >= 0.5 (4x
chance) within the epochs; **stuck** - the training loss sits at ln C (`facekit.train.History.stuck`);
**guessing** - the training loss left ln C but validation accuracy is still no better than chance
(`facekit.train.guessing`); **drifting** - better than chance, below 0.5. A BatchNorm run also records
(`facekit.diagnose.BatchNormWatch`, read without changing the run) its validation accuracy after
`recalibrate_batchnorm` and with the moving statistics momentum 0.9 would have kept: two more rows.

The runs of ``question``, ``lr_1e-4`` and ``he_init`` are the mechanism study's runs
(`benchmarks/mechanism.py`: the same builder, seed, data, batches and callbacks' stopping rule, with
read-only per-batch probes added); when ``mechanism.jsonl`` holds such a run with the same epoch
budget it is copied (marked ``"from": "mechanism"``) instead of trained a second time.
Rows are appended as they finish; a rerun skips the runs already there.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "facekit" / "results"  # shipped with the package
OUT = RESULTS / "ablation.jsonl"
ORDER = ["question", "lr_1e-4", "he_init", "batch_norm", "bn_no_dropout", "fewer_layers", "growing_filters",
         "first_5x5", "padding_same"]
# mechanism-study configurations that are ablation variants: (optimizer, init, lr) -> variant
_FROM_MECHANISM = {("adam", "glorot_uniform", 1e-3): "question", ("adam", "glorot_uniform", 1e-4): "lr_1e-4",
                   ("adam", "he_normal", 1e-3): "he_init"}


def from_mechanism(profile: str, epochs: int, path: Path = RESULTS / "mechanism.jsonl") -> dict[tuple, dict]:
    """The mechanism study's runs that are ablation runs, as ablation rows keyed by (variant, seed)."""
    from facekit.ablation import classify
    from facekit.models import VARIANTS
    from facekit.results import read_jsonl_path

    out: dict[tuple, dict] = {}
    if not path.exists():
        return out
    for r in read_jsonl_path(path):
        if not r or r["profile"] != profile or r.get("switch") or r.get("max_epochs") != epochs:
            continue
        variant = _FROM_MECHANISM.get((r["optimizer"], r["init"], r["lr"]))
        if variant is None:
            continue
        what, learned_at = classify(r["outcome"] == "stuck", r["val_accuracy"], 8, r.get("n_val", 40))
        out[(variant, r["seed"])] = {
            "profile": profile, "variant": variant, "change": VARIANTS[variant][0], "seed": r["seed"],
            "max_epochs": epochs, "from": "mechanism", "outcome": what,
            "epochs_to_learn": learned_at, "epochs_run": r["epochs_run"],
            "val_accuracy": r["val_accuracy"],
            "final_loss": r["losses"][-1], "final_acc": r["accuracy"][-1],
            "val_acc": r["val_accuracy"][-1], "stuck": r["outcome"] == "stuck",
            "s_per_epoch": None, "losses": r["losses"], "accuracy": r["accuracy"]}
    return out


def run_one(profile: Any, train: Any, val: Any, variant: str, seed: int, epochs: int,
            watch: bool = True) -> dict[str, Any]:
    from facekit.ablation import run_record, train_variant

    t = time.perf_counter()
    _, hist, watch_ = train_variant(variant, profile, train, val, seed, epochs, watch=watch)
    return {"profile": profile.name, "max_epochs": epochs,
            **run_record(variant, seed, hist, time.perf_counter() - t, watch_)}


def table(rows: list[dict[str, Any]]) -> str:
    """Per variant (and per BatchNorm reading): outcomes over seeds, epochs to learn, medians."""
    from facekit.ablation import OUTCOMES, READINGS, summarise
    from facekit.text import markdown_table

    rows_out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["profile"], r["max_epochs"], r["variant"]), []).append(r)
    for (prof, ep, variant), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], ORDER.index(kv[0][2]) if kv[0][2] in ORDER else 99)):
        for way in (None, *[w for w in READINGS if all(f"outcome_{w}" in r for r in rs)]):
            row = summarise(variant, rs, way)
            e = row["epochs_to_learn"]
            rows_out.append([f"{prof} ({ep} epochs)", row["variant"], row["change"], len(rs),
                             *[row[k] for k in OUTCOMES], "-" if e is None else f"{e:g}",
                             f"{row['final_loss']:.3f}", f"{row['val_acc']:.3f}"])
    out = [markdown_table(["profile", "variant", "change", "seeds", "learns", "drifting", "guessing", "stuck",
                           "epochs to learn (median)", "final training loss (median)",
                           "val acc, inference mode (median)"], rows_out)]
    out.append(f"\nln 8 = {math.log(8):.4f}. Judged on the held-out images in inference mode: learns: "
               "validation accuracy >= 0.5 (4x chance) within the epochs; drifting: better than chance, "
               "below 0.5; guessing: the training loss left ln 8 but validation accuracy is no better than "
               "chance (below 1/8 + 2 binomial standard errors: 0.23 on 40 images); stuck: the training "
               "loss sits at ln 8. A run stops once its outcome is certain (validation accuracy >= 0.5, or "
               "4 epochs at ln 8). Runs recorded before 2026-12-01 (no per-epoch validation accuracy in "
               "the jsonl) are judged on their last epoch's.")
    return "\n".join(out)


MD = Path(__file__).resolve().parent / "results" / "ablation.md"


def write_table(out: Path) -> str:
    """The table of the runs in ``out``, written to benchmarks/results/ablation.md for the package's
    own jsonl (else beside ``out``), keeping the hand-written notes below the marker there."""
    from benchmarks.notes import write_with_notes
    from facekit.results import read_jsonl_path

    rows = read_jsonl_path(out)
    md = MD if out.resolve() == OUT.resolve() else out.with_suffix(".md")
    text = table(rows)
    write_with_notes(md, f"{__doc__.splitlines()[0]}\n\n    {__doc__.splitlines()[2].strip()}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--profile", default="classroom")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seed-order", type=int, nargs="+",
                   help="these seeds, in this order (instead of --seeds)")
    p.add_argument("--epochs", type=int, default=8, help="the epoch budget E of 'learns within E epochs'")
    p.add_argument("--variants", nargs="+", default=ORDER)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--table", action="store_true", help="only rebuild the markdown table")
    p.add_argument("--no-watch", action="store_true",
                   help="BatchNorm runs without the per-epoch BatchNormWatch readings (faster)")
    args = p.parse_args(argv)
    out = Path(args.out)
    if not args.table:
        from facekit.plots.live import TerminalProgress
        from facekit.profiles import get_profile, load_profile_data
        from facekit.results import read_jsonl_path
        from facekit.train import extra_callbacks

        prof = get_profile(args.profile)
        rows = read_jsonl_path(out) if out.exists() else []
        done = {(r["profile"], r["max_epochs"], r["variant"], r["seed"]) for r in rows}
        copied = from_mechanism(prof.name, args.epochs)
        train = val = None
        # seed outermost: a cut-short sweep covers every variant alike
        for seed in args.seed_order or range(args.seeds):
            for variant in args.variants:
                if (prof.name, args.epochs, variant, seed) in done:
                    continue
                row = copied.get((variant, seed))
                if row is None:
                    if variant in {"question", "lr_1e-4", "he_init"}:
                        print(f"{variant} seed {seed}: not in mechanism.jsonl yet, training it here")
                    if train is None:
                        train, val = load_profile_data(prof)
                    with extra_callbacks(TerminalProgress()):  # a bar on a terminal, nothing in a log
                        row = run_one(prof, train, val, variant, seed, args.epochs, not args.no_watch)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{prof.name} {variant:16s} seed {seed}: {row['outcome']:8s} after {row['epochs_run']} "
                      f"epochs, loss {row['final_loss']:.4f}", flush=True)
    print(write_table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
