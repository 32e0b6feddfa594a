"""Smoke tests: the benchmark commands run end to end at a tiny size and write their tables.
(No timing asserts: the numbers live in benchmarks/, measured side by side.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_pipeline_benchmark_runs_at_a_tiny_size(tmp_path):
    md = tmp_path / "RESULTS.md"
    _run("benchmarks.run", "--per-class", "2", "--repeats", "1", "--train-images", "16", "--out", str(md),
         "--notebooks", "--fused", "16:1:1")
    text = md.read_text()
    for row in ("load: facekit load_folder, 1 decode thread (s)", "load_folder, 2 decode threads",
                "save_cache afterwards", "question pickle.load of X", "load_cache(mmap=True) (s)",
                "ready to train: facekit cache + tf.data", "facekit.train.fit(uint8) (samples/s)",
                "achieved FLOP/s", "fused step: batch 16, XLA on, steps_per_execution 1"):
        assert row in text
    assert "x faster" in text and ">= 40%" in text and "same seed twice, same losses: yes" in text


def test_generalize_benchmark_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "g.jsonl"
    stdout = _run("benchmarks.generalize", "--recipes", "answer", "improved", "--seeds", "0",
                  "--epochs", "1", "--train-per-class", "2", "--out", str(out))
    assert len(out.read_text().splitlines()) == 2 and "| improved |" in stdout
    md = out.with_suffix(".md").read_text()
    assert "Regenerate: `python -m benchmarks.generalize" in md and "Best recipe on validation" in md


def test_ablation_benchmark_copies_the_mechanism_runs_and_counts_three_outcomes(tmp_path):
    import json

    from benchmarks import ablation

    def mech(lr, init, seed, outcome, losses):
        return {"profile": "ci", "lr": lr, "optimizer": "adam", "init": init, "seed": seed, "switch": None,
                "max_epochs": 3, "outcome": outcome, "epochs_to_learn": 3 if outcome == "learns" else None,
                "epochs_run": len(losses), "losses": losses, "accuracy": [0.1, 0.2, 0.6][:len(losses)],
                "val_accuracy": [0.1, 0.2, 0.4][:len(losses)], "batches": []}

    path = tmp_path / "mechanism.jsonl"
    rows = [mech(1e-3, "glorot_uniform", 0, "stuck", [2.08, 2.08, 2.08]),
            mech(1e-4, "glorot_uniform", 0, "learns", [2.0, 1.5, 1.0]),
            mech(1e-3, "he_normal", 0, "drifting", [3.0, 2.0, 1.9]),
            {**mech(1e-3, "glorot_uniform", 1, "stuck", [2.08]), "max_epochs": 8}]  # another budget
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    copied = ablation.from_mechanism("ci", 3, path)
    assert sorted(copied) == [("he_init", 0), ("lr_1e-4", 0), ("question", 0)]
    table = ablation.table(list(copied.values()))
    # judged on held-out accuracy: lr_1e-4 reached 0.4 (< 0.5): drifting, though its old record said learns
    assert "| ci (3 epochs) | lr_1e-4 |" in table and "| 1 | 0 | 1 | 0 | 0 | - | 1.000 | 0.400 |" in table
    assert table.index("| question |") < table.index("| lr_1e-4 |") < table.index("| he_init |")


def test_a_rescued_run_is_judged_only_on_the_epochs_after_its_switch():
    import math

    import keras

    from facekit.ablation import StopWhenCertain

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="softmax")])
    model.stop_training = False  # as fit sets it
    stop = StopWhenCertain(first=2)
    stop.set_model(model)
    stop.on_train_begin()
    stopped_at = None
    for epoch in range(8):
        stop.on_epoch_end(epoch, {"loss": math.log(8) + 1e-4, "accuracy": 0.125})
        if model.stop_training and stopped_at is None:
            stopped_at = epoch
    assert stopped_at == 5  # epochs 2-5: four epochs at ln 8 after the switch


def test_the_doctor_table_keeps_the_two_trial_rankings_apart():
    """Trials rows recorded before 2026-12-01 chose their fix by training loss; the new ones by held-out
    accuracy: one table row each, and only the new ones count as done when the sweep resumes."""
    from benchmarks import doctor as bench

    row = {"kind": "trials_on_ablation", "profile": "classroom", "max_epochs": 8, "doctor_s": 300,
           "top_fix": "batch_norm", "top_fix_outcome": "learns", "top_fix_epochs_to_learn": 4}
    new = dict(row, seed=0, ranking="held_out", top_fix_outcome="drifting", top_fix_epochs_to_learn=None)
    rows = [dict(row, seed=0), dict(row, seed=1), new]
    text = bench.table(rows)
    assert "| trials ranked by training loss (before 2026-12-01) | batch_norm (2) | 2/2 |" in text
    assert "| trials (doctor(trials=True)), ranked on held-out images | batch_norm (1) | 0/1 | 1 |" in text
    assert [bench.trials_ranking(r) for r in rows] == ["training_loss", "training_loss", "held_out"]


def test_the_minute_table_compares_rankings_over_the_fixes_both_runs_tried():
    from benchmarks.doctor_minute import table

    fast = {"seconds": 55.9, "steps": 16, "top_fix": "batch_norm", "ranking": ["batch_norm", "he_init"]}
    slow = {"seconds": 215.1, "steps": 100, "top_fix": "batch_norm",
            "ranking": ["batch_norm", "lower_lr_30", "he_init"]}
    text = table([{"seed": 0, "fast": fast, "slow": slow},
                  {"seed": 1, "fast": {**fast, "top_fix": "he_init", "ranking": ["he_init", "batch_norm"]},
                   "slow": slow}])
    assert "| 0 | 56 s | 16 | batch_norm | 215 s | batch_norm | yes | yes |" in text
    assert "| 1 | 56 s | 16 | he_init | 215 s | batch_norm | no | no |" in text
    assert "Same top fix on 1 of 2 seeds" in text
