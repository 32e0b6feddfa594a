"""Chapter 06's comparison: every recipe of `facekit.generalize` over several seeds, in the regime
where the answer's network memorises (64 px, difficulty 1.0, 50 training images a class,
validation and test 25 a class each).

    python -m benchmarks.generalize                       # all recipes, seeds 0 1 2 (~35 min, 2 CPUs)
    python -m benchmarks.generalize --recipes answer improved --seeds 0 1 2 3 4

Runs are appended to a JSON-lines file as they finish (a rerun skips the ones already there);
the markdown table is rebuilt from it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def write_table(jsonl: Path, md: Path, setting: str, command: str) -> str:
    import keras
    import tensorflow as tf

    import facekit
    from facekit.generalize import RECIPES, Comparison

    comp = Comparison.from_jsonl(jsonl, setting)
    best = max((n for n in comp.recipes if n != "answer" and not RECIPES[n].more_data),
               key=lambda n: comp.median(n, "val_acc"), default=None)
    lines = [
        "# From memorising to generalising: the answer's network and the changes that close its gap",
        "",
        f"Setting: {setting}. Accuracies are measured after training, in inference mode, with the "
        "weights kept (the best validation-loss epoch for early-stopping recipes, the last one "
        "otherwise); medians over seeds, validation range in brackets. \"Gap closed\" = (val - "
        "val of the answer) / (train - val of the answer), medians. The test set is looked at only "
        "in this table.",
        "",
        comp.table(),
        "",
    ]
    if best and "answer" in comp.recipes:
        ratio = comp.of(best)[0].params / comp.of("answer")[0].params
        lines += [f"Best recipe on validation: **{best}**, {comp.gap_closed(best):.0%} of the answer's "
                  f"train-val gap closed with {ratio:.1%} of its parameters; validation accuracy higher "
                  f"than the answer's on every seed: {comp.beats_on_every_seed(best)}; test accuracy "
                  f"higher on every seed: {comp.beats_on_every_seed(best, key='test_acc')}.", ""]
    lines += [f"Regenerate: `{command}`", "",
              f"Machine: {platform.machine()}, {platform.processor() or platform.platform()}; "
              f"facekit {facekit.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
              f"{time.strftime('%Y-%m-%d')}."]
    md.write_text("\n".join(lines) + "\n")
    return comp.table()


def main(argv: list[str] | None = None) -> None:
    from facekit.generalize import RECIPES, regime_data, run_recipe
    from facekit.results import read_jsonl_path

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=15)
    p.add_argument("--train-per-class", type=int, default=50)
    p.add_argument("--more-per-class", type=int, default=700)
    p.add_argument("--out", default="facekit/results/generalize.jsonl")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        done = {(r["recipe"], r["seed"]) for r in read_jsonl_path(out) if r}
    train, val, test = regime_data(a.train_per_class)
    big = None
    for name in a.recipes:
        for s in a.seeds:
            if (name, s) in done:
                continue
            r = RECIPES[name]
            if r.more_data and big is None:
                big = regime_data(a.more_per_class)[0]
            t0 = time.perf_counter()
            res = run_recipe(r, big if r.more_data else train, val, test, seed=s, epochs=a.epochs,
                             patience=a.patience)
            row = res.record()
            row["val_curve"] = [round(v, 3) for v in res.history["val_accuracy"].tolist()]
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{name:>15} seed {s}: train {res.train_acc:.2f} val {res.val_acc:.2f} "
                  f"test {res.test_acc:.2f} epochs {res.epochs} (kept {res.best_epoch}) "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    setting = (f"synthetic faces at 64 px, difficulty 1.0; {a.train_per_class} training images a class "
               f"(more_data: {a.more_per_class}); validation and test 25 a class each; batch 16, Adam "
               f"1e-3; up to {a.epochs} epochs (more_data: 15), early-stopping patience {a.patience} on "
               f"validation loss; seeds {a.seeds}")
    print(write_table(out, out.with_suffix(".md"), setting,
                      "python -m benchmarks.generalize --seeds " + " ".join(map(str, a.seeds))))


if __name__ == "__main__":
    main()
