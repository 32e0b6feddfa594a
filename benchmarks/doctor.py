"""Does the doctor's advice work? Apply its top suggestion and train.

    python -m benchmarks.doctor --profile ci --seeds 10        # the question's network
    python -m benchmarks.doctor --planted                       # two networks facekit did not build
    python -m benchmarks.doctor --zoo --seeds 5                 # eight broken networks (benchmarks/zoo.py)
    python -m benchmarks.doctor --rules-on-ablation --profile classroom   # the rules, on the ablation
    python -m benchmarks.doctor --trials-on-ablation --profile classroom  # the trials, on the ablation
    python -m benchmarks.doctor --table                         # rebuild benchmarks/results/doctor.md

The question's network: for each seed, train it as the question did (the profile's epochs); if it
is stuck, ask `facekit.diagnose.doctor(model, data, trials=True)`, take the top-ranked fix (the
trials' ranking) and the first fix of the rule-only ranking, and train the question's network with
each fix from a fresh start (the ablation's variant, seed and epochs), recording the outcome
(`facekit.ablation.outcome`: learns / stuck / drifting). Planted faults: an MLP with a learning rate
100x too large and a deep plain CNN with a too-small initialisation, on synthetic faces at 32 px;
the doctor must rank the fix that removes the fault first. ``--rules-on-ablation``: for every seed
whose question network is stuck in ``ablation.jsonl``, the doctor's rule-only first fix on that
seed's network (checks at init; the rules do not depend on the trained weights' overfit check when
the signal checks fail) and the outcome of the ablation's run of that fix on that seed - the same
network, seed and training, so nothing is trained again (a fix the ablation has not run on that
seed is trained once, as the ablation would, and appended to ``ablation.jsonl``).
``--trials-on-ablation``: the same with the trials' top-ranked fix, ``doctor(..., trials=True,
seed=seed)``. The trials train fresh copies (weights drawn with the run's seed), so they do not
depend on the stuck weights; the checks at init decide that the network needs them. Runs append to
``benchmarks/results/doctor.jsonl``; a rerun skips what is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.notes import write_with_notes
from facekit.results import read_jsonl_path

OUT = Path(__file__).resolve().parent / "results" / "doctor.jsonl"
# the doctor's fixes as one-change variants of the question's network (facekit.models.VARIANTS)
AS_VARIANT = {"he_init": "he_init", "lower_lr": "lr_1e-4", "batch_norm": "batch_norm",
              "fewer_layers": "fewer_layers"}
# the ablation reading that is the fix applied as the doctor words it (BatchNorm: recalibrated)
READING = {"batch_norm": "recalibrated"}
RULE_PREFIX = {"He initialisation": "he_init", "BatchNormalization": "batch_norm",
               "fewer layers": "fewer_layers", "lower the learning rate": "lower_lr",
               "a lower learning rate": "lower_lr"}


def rule_fix(suggestions: list[str]) -> str | None:
    """The first rule-based suggestion that names a fix the trials can test."""
    for s in suggestions:
        for prefix, fix in RULE_PREFIX.items():
            if s.startswith(prefix):
                return fix
    return None


def question_run(prof: Any, train: Any, val: Any, seed: int, epochs: int) -> dict[str, Any]:
    from facekit.ablation import run_record, train_variant
    from facekit.diagnose import doctor

    model, h, _ = train_variant("question", prof, train, val, seed, prof.epochs, stop_early=False)
    row: dict[str, Any] = {"kind": "question", "profile": prof.name, "seed": seed, "stuck": h.stuck,
                           "ranking": "held_out"}
    if not h.stuck:
        return row
    report = doctor(model, train, val=val, trials=True, seed=seed)
    row["trials"] = trial_rows(report)
    row["top_fix"], row["rule_fix"] = report.top_fix, rule_fix(report.rules)
    for key in ("top_fix", "rule_fix"):
        fix = row[key]
        if fix in AS_VARIANT:  # a sized learning rate (lower_lr_30, _100) has no ablation variant
            _, hf, watch = train_variant(AS_VARIANT[fix], prof, train, val, seed, epochs)
            row[key + "_outcome"], row[key + "_epochs_to_learn"] = judged(
                run_record(AS_VARIANT[fix], seed, hf, 0.0, watch), fix)
    return row


def _ablation_runs(prof: Any) -> dict[tuple[str, int], dict[str, Any]]:
    from benchmarks.ablation import OUT as ABLATION_OUT

    path = ABLATION_OUT
    runs = read_jsonl_path(path)
    return {(r["variant"], r["seed"]): r for r in runs if r["profile"] == prof.name}


def ablation_run(prof: Any, train: Any, val: Any, variant: str, seed: int, epochs: int) -> dict[str, Any]:
    """The ablation's run of ``variant`` on ``seed``; trained (exactly as the ablation trains it) and
    appended to ``ablation.jsonl`` when the ablation has not reached that seed."""
    from benchmarks.ablation import OUT as ABLATION_OUT
    from benchmarks.ablation import run_one

    run = _ablation_runs(prof).get((variant, seed))
    if run is None:
        run = run_one(prof, train, val, variant, seed, epochs)
        with ABLATION_OUT.open("a") as f:
            f.write(json.dumps(run) + "\n")
    return run


def _stuck_seeds(prof: Any) -> list[tuple[int, int]]:
    """(seed, epochs) of every question run the ablation recorded as stuck, by seed."""
    from facekit.ablation import run_outcome

    return sorted((s, r["max_epochs"]) for (v, s), r in _ablation_runs(prof).items()
                  if v == "question" and run_outcome(r)[0] == "stuck")


def judged(run: dict[str, Any] | None, fix: str | None) -> tuple[str | None, int | None]:
    """The outcome of the ablation's run of ``fix``, applied as the doctor words it (BatchNorm
    recalibrated), judged on held-out images in inference mode."""
    from facekit.ablation import run_outcome

    return run_outcome(run, READING.get(fix or "")) if run else (None, None)


def rejudge(rows: list[dict[str, Any]], prof: Any) -> list[dict[str, Any]]:
    """The stored rules/trials rows with their fix's outcome judged again from ``ablation.jsonl``
    (the same fix choices; nothing trained)."""
    runs = _ablation_runs(prof)
    for r in rows:
        if r["kind"] in ("rules_on_ablation", "trials_on_ablation") and r["profile"] == prof.name:
            key = "rule_fix" if r["kind"] == "rules_on_ablation" else "top_fix"
            fix = r[key]
            run = runs.get((AS_VARIANT[fix], r["seed"])) if fix in AS_VARIANT else None
            r[key + "_outcome"], r[key + "_epochs_to_learn"] = judged(run, fix)
    return rows


def on_ablation(prof: Any, train: Any, val: Any, trials: bool, skip: set[int],
                only_run: bool = False) -> list[dict[str, Any]]:
    """For every stuck seed of the ablation's question network: the doctor's first fix (the trials'
    top-ranked one with ``trials``, else the rules' first) on that seed's network at init, and the
    outcome of the ablation's run of that fix on that seed - the same network, seed and training."""
    from facekit.diagnose import doctor
    from facekit.models import question_model

    kind = "trials_on_ablation" if trials else "rules_on_ablation"
    rows = []
    runs = _ablation_runs(prof)
    for seed, epochs in _stuck_seeds(prof):
        if seed in skip:
            continue
        if only_run and trials is False and ("batch_norm", seed) not in runs:
            print(f"seed {seed}: no BatchNorm run in ablation.jsonl yet - skipped (--only-run)", flush=True)
            continue
        model = question_model(prof.input_shape, train.n_classes, prof.filters, seed=seed)
        t = time.perf_counter()
        report = doctor(model, train, overfit_steps=1, trials=trials, seed=seed)
        seconds = round(time.perf_counter() - t, 1)  # the doctor alone, not a fix trained below
        fix = report.top_fix if trials else rule_fix(report.rules)
        run = ablation_run(prof, train, val, AS_VARIANT[fix], seed, epochs) if fix in AS_VARIANT else None
        what, learned_at = judged(run, fix)
        row = {"kind": kind, "profile": prof.name, "seed": seed, "rule_fix": rule_fix(report.rules),
               "failed_checks": [c.name for c in report.checks if not c.ok],
               "doctor_s": seconds,
               "rule_fix_outcome" if not trials else "top_fix_outcome": what,
               "rule_fix_epochs_to_learn" if not trials else "top_fix_epochs_to_learn": learned_at,
               "max_epochs": epochs}
        if trials:
            row.update(top_fix=fix, trials=trial_rows(report), ranking="held_out")
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "trials"}), flush=True)
        if trials:  # minutes a seed: keep each as it finishes
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
    return rows


def trial_rows(report: Any) -> dict[str, dict[str, Any]]:
    return {t.fix: {"start": t.start, "end": t.end, "tried": t.tried, "val_loss": t.val_loss,
                    "val_accuracy": t.val_accuracy} for t in report.trials}


def trials_ranking(row: dict[str, Any]) -> str:
    """How a trials row chose its fix: ``"held_out"`` (inference-mode accuracy on held-out images,
    since 2026-12-01) or ``"training_loss"`` (the rows recorded before, which carry no mark)."""
    return row.get("ranking", "training_loss")


def _ablation_tables(rows: list[dict[str, Any]]) -> list[str]:
    """The rules' and the trials' rows on the ablation's stuck seeds, one table per ranking."""
    out = []
    groups = (("rules_on_ablation", "rule_fix", "rules only", None),
              ("trials_on_ablation", "top_fix", "trials ranked by training loss (before 2026-12-01)",
               "training_loss"),
              ("trials_on_ablation", "top_fix", "trials (doctor(trials=True)), ranked on held-out images",
               "held_out"))
    for kind, key, name, ranking in groups:
        every = [r for r in rows if r["kind"] == kind and ranking in (None, trials_ranking(r))]
        ra = [r for r in every if r[key + "_outcome"] is not None or r[key] is None]
        missing = [r["seed"] for r in every if r not in ra]
        if not ra:
            continue
        res = [r[key + "_outcome"] for r in ra]
        eps = [r[key + "_epochs_to_learn"] for r in ra if r[key + "_epochs_to_learn"]]
        fixes = ", ".join(f"{f} ({sum(str(r[key]) == f for r in ra)})"
                          for f in sorted({str(r[key]) for r in ra}))
        took = f"; the doctor took {statistics.median(r['doctor_s'] for r in ra):.0f} s a seed (median)" \
            if all("doctor_s" in r for r in ra) else ""
        out.append(f"The {name} on the ablation ({ra[0]['profile']} profile, {ra[0]['max_epochs']} epochs): "
                   f"{len(ra)} stuck seeds of the question's network "
                   f"({', '.join(str(r['seed']) for r in ra)}){took}"
                   + (f"; not judged: seed(s) {', '.join(map(str, missing))}, whose fix has no run in "
                      "ablation.jsonl yet" if missing else "") + ".\n")
        out.append("| ranking | fix chosen (seeds) | learns after the fix | drifting | guessing | stuck | "
                   "epochs to learn (median) |")
        out.append("|---|---|---|---|---|---|---|")
        out.append(f"| {name} | {fixes} | {res.count('learns')}/{len(ra)} | {res.count('drifting')} | "
                   f"{res.count('guessing')} | {res.count('stuck')} | "
                   f"{statistics.median(eps) if eps else '-'} |\n")
    return out


def _question_table(rows: list[dict[str, Any]]) -> list[str]:
    """The question's network trained per seed, then the trials' and the rules' first fix."""
    out = []
    q = [r for r in rows if r["kind"] == "question"]
    if q:
        stuck = [r for r in q if r["stuck"]]
        out.append(f"The question's network ({q[0]['profile']} profile): {len(stuck)} of {len(q)} seeds "
                   "stuck.\n")
        out.append("| ranking | fix chosen (seeds) | learns after the fix | drifting | guessing | stuck | "
                   "epochs to learn (median) |")
        out.append("|---|---|---|---|---|---|---|")
        for key, name in (("top_fix", "trials (doctor(trials=True)), ranked on held-out images"),
                          ("rule_fix", "rules only")):
            chosen = [r for r in stuck if r.get(key)]
            fixes = ", ".join(f"{f} ({sum(r[key] == f for r in chosen)})"
                              for f in sorted({r[key] for r in chosen}))
            res = [r.get(key + "_outcome") for r in chosen]
            eps = [r[key + "_epochs_to_learn"] for r in chosen if r.get(key + "_epochs_to_learn")]
            out.append(f"| {name} | {fixes or '-'} | {res.count('learns')}/{len(stuck)} | "
                       f"{res.count('drifting')} | {res.count('guessing')} | {res.count('stuck')} | "
                       f"{statistics.median(eps) if eps else '-'} |")
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """doctor.md's tables from the rows of doctor.jsonl."""
    from benchmarks.planted import planted_table
    from benchmarks.zoo import zoo_table

    return "\n".join(_ablation_tables(rows) + _question_table(rows) + planted_table(rows) + zoo_table(rows))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--profile", default="ci")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=12, help="epochs a fixed network may take to learn")
    p.add_argument("--planted", action="store_true", help="the two planted-fault networks instead")
    p.add_argument("--zoo", action="store_true", help="the zoo of eight broken networks (benchmarks/zoo.py)")
    p.add_argument("--rules-on-ablation", action="store_true",
                   help="the rule-only first fix per stuck seed of ablation.jsonl, and its ablation outcome")
    p.add_argument("--trials-on-ablation", action="store_true",
                   help="the same with doctor(trials=True)'s top-ranked fix (minutes a seed)")
    p.add_argument("--table", action="store_true", help="only rebuild the markdown table")
    p.add_argument("--only-run", action="store_true",
                   help="with --rules-on-ablation: skip stuck seeds whose fix the ablation has not run")
    p.add_argument("--rejudge", action="store_true",
                   help="judge the stored rules/trials rows' fixes again from ablation.jsonl (no training)")
    return p.parse_args(argv)


def append_row(row: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in row.items() if k != "trials"}), flush=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")


def _on_ablation_rows(args: argparse.Namespace, rows: list[dict[str, Any]]) -> tuple[list, list]:
    """(rows kept, rows new) for ``--rules-on-ablation`` (recomputed whole: seconds) or
    ``--trials-on-ablation`` (minutes a seed: appended as they finish, resumed)."""
    from facekit.profiles import get_profile, load_profile_data

    prof = get_profile(args.profile)
    train, val = load_profile_data(prof)
    mine = {r["seed"]: r for r in rows if r["kind"] in ("rules_on_ablation", "trials_on_ablation")
            and r["profile"] == prof.name and r["kind"].startswith("rules") == args.rules_on_ablation
            and (args.rules_on_ablation or trials_ranking(r) == "held_out")}  # old trials rows: kept
    if not args.rules_on_ablation:
        return rows, on_ablation(prof, train, val, True, set(mine))
    rows = [r for r in rows if all(r is not m for m in mine.values())]
    new = on_ablation(prof, train, val, False, set(), only_run=args.only_run)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows + new))
    return rows, new


def _question_rows(args: argparse.Namespace, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The question's network on ``--seeds`` seeds of ``--profile`` (skipping those recorded)."""
    from facekit.profiles import get_profile, load_profile_data

    prof = get_profile(args.profile)
    train, val = load_profile_data(prof)
    done = {(r.get("profile"), r["seed"]) for r in rows if r["kind"] == "question"}
    new = []
    for seed in range(args.seeds):
        if (prof.name, seed) not in done:
            new.append(question_run(prof, train, val, seed, args.epochs))
            append_row(new[-1])
    return new


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.table:
        from facekit.train import set_seed

        set_seed(0)  # deterministic TF ops from the first doctor call on (fit() turns them on too)
    rows = read_jsonl_path(OUT) if OUT.exists() else []
    if args.rejudge:
        from facekit.profiles import get_profile

        rows = rejudge(rows, get_profile(args.profile))
        OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif args.table:
        pass
    elif args.planted:
        from benchmarks.planted import planted_runs

        rows += planted_runs(args.seeds, args.epochs,
                             {(r["kind"], r["seed"]) for r in rows if r.get("ranking") == "held_out"})
    elif args.zoo:
        from benchmarks.zoo import zoo_runs

        def keep(row: dict[str, Any]) -> None:
            rows.append(row)
            append_row(row)

        zoo_runs(args.seeds, {(r["kind"], r["seed"]) for r in rows}, keep)
    elif args.rules_on_ablation or args.trials_on_ablation:
        rows, new = _on_ablation_rows(args, rows)
        rows += new
    else:
        rows += _question_rows(args, rows)
    text = table(rows)
    write_with_notes(OUT.with_suffix(".md"), __doc__.splitlines()[0], text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
