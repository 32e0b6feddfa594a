"""The doctor's rule-based advice must agree with the committed multi-seed ablation."""

import statistics
from pathlib import Path

import pytest

from facekit import results
from facekit.ablation import run_outcome
from facekit.data import make_faces
from facekit.diagnose import doctor
from facekit.diagnose.doctor import RULE_ORDER
from facekit.models import question_model

ABLATION = results.path("ablation.jsonl")
# the doctor's fix -> the ablation variant that makes the same one change
VARIANT = {"batch_norm": "batch_norm", "fewer_layers": "fewer_layers", "lower_lr": "lr_1e-4",
           "he_init": "he_init"}
# the ablation reading of that variant which is the fix applied as the doctor words it: BatchNorm
# with its statistics recalibrated before it is judged
READING = {"batch_norm": "recalibrated"}
OPENINGS = {"batch_norm": "BatchNormalization", "fewer_layers": "fewer layers",
            "lower_lr": "a lower learning rate", "he_init": "He initialisation"}


def ablation_scores() -> dict[str, tuple[float, float, float]]:
    """Per doctor fix (and the unchanged network): (share that learns, share that leaves ln C,
    median held-out accuracy), judged in inference mode as `facekit.ablation` judges them."""
    rows = results.read_jsonl("ablation.jsonl")
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    out = {}
    for fix, variant in {**VARIANT, "question": "question"}.items():
        rs, way = by[variant], READING.get(fix)
        judged = [run_outcome(r, way)[0] for r in rs]
        key = f"val_accuracy_{way}" if way else "val_accuracy"
        out[fix] = (judged.count("learns") / len(rs), sum(o != "stuck" for o in judged) / len(rs),
                    statistics.median(r[key][-1] if key in r else r["val_acc"] for r in rs))
    return out


MIN_SEEDS = 10  # the ablation runs ten seeds a variant (benchmarks/ablation.py)


def test_the_ablation_has_several_seeds_of_every_variant_the_rules_name():
    scores = ablation_scores()
    rows = results.read_jsonl("ablation.jsonl")
    for fix in RULE_ORDER:
        n = sum(r["variant"] == VARIANT[fix] for r in rows)
        assert n >= MIN_SEEDS, f"{VARIANT[fix]}: {n} seeds in {ABLATION.name}"
    assert scores["question"][1] < 0.5, "the question's network should mostly sit at ln 8"


def test_rule_order_follows_the_ablation():
    scores = ablation_scores()
    ranked = [scores[f] for f in RULE_ORDER]
    assert ranked == sorted(ranked, reverse=True), dict(zip(RULE_ORDER, ranked))
    # every fix the rules name does better than the unchanged network on at least one count
    for fix in RULE_ORDER:
        s, q = scores[fix], scores["question"]
        assert s[0] > q[0] or s[1] > q[1], f"{fix} is not better than the unchanged network: {s} vs {q}"


@pytest.fixture(scope="module")
def question_report():
    data = make_faces(4, 96, seed=0)
    model = question_model((96, 96, 3), 8, filters=32, seed=0)
    return doctor(model, data, n=32, overfit_steps=10)


def test_the_question_net_gets_the_signal_fixes_in_the_ablations_order(question_report):
    rules = question_report.rules
    firsts = [next(i for i, r in enumerate(rules) if r.startswith(OPENINGS[f])) for f in RULE_ORDER]
    assert firsts == sorted(firsts) and firsts[0] == 0, rules


def test_no_rule_says_a_fix_that_the_ablation_shows_working_will_not_help(question_report):
    text = " ".join(question_report.rules).lower()
    for phrase in ("will not help", "not the problem", "does not help", "won't help"):
        assert phrase not in text, question_report.rules


DOCTOR = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "doctor.jsonl"


def test_the_doctor_validation_quotes_the_ablation_runs_it_names():
    """benchmarks/results/doctor.md scores the doctor's first fix by the ablation's run of that fix on
    the same seed: every such row must agree with ablation.jsonl, and name a seed stuck there."""
    runs = {(r["variant"], r["seed"]): r for r in results.read_jsonl("ablation.jsonl")
            if r["profile"] == "classroom"}
    rows = results.read_jsonl_path(DOCTOR)
    checked = 0
    for r in rows:
        if r["kind"] not in ("rules_on_ablation", "trials_on_ablation") or r["profile"] != "classroom":
            continue
        key = "rule_fix" if r["kind"] == "rules_on_ablation" else "top_fix"
        assert run_outcome(runs[("question", r["seed"])])[0] == "stuck", r["seed"]
        if r[key] is not None and r[key + "_outcome"] is None:  # "not judged": the ablation lacks that run
            assert (VARIANT[r[key]], r["seed"]) not in runs, (r["kind"], r["seed"])
        elif r[key] is not None:
            run = runs[(VARIANT[r[key]], r["seed"])]
            said = (r[key + "_outcome"], r[key + "_epochs_to_learn"])
            assert run_outcome(run, READING.get(r[key])) == said, (r["kind"], r["seed"])
            checked += 1
    assert checked >= MIN_SEEDS
