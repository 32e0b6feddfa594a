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
         "--notebooks")
    text = md.read_text()
    for row in ("load: facekit load_folder + cache (s)", "ready to train: facekit cache + tf.data",
                "facekit.train.fit(uint8) (samples/s)", "achieved FLOP/s"):
        assert row in text
    assert "x faster" in text and ">= 40%" in text


def test_generalize_benchmark_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "g.jsonl"
    stdout = _run("benchmarks.generalize", "--recipes", "answer", "improved", "--seeds", "0",
                  "--epochs", "1", "--train-per-class", "2", "--out", str(out))
    assert len(out.read_text().splitlines()) == 2 and "| improved |" in stdout
    md = out.with_suffix(".md").read_text()
    assert "Regenerate: `python -m benchmarks.generalize" in md and "Best recipe on validation" in md
