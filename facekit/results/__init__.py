"""The committed measurements the chapters read, shipped inside the package.

``mechanism.jsonl`` (``python -m benchmarks.mechanism``), ``ablation.jsonl``
(``python -m benchmarks.ablation``) and ``generalize.jsonl`` (``python -m benchmarks.generalize``)
live here, so a notebook finds them wherever it runs (a clone, a pip install, Colab) and never
depends on the current folder. The benchmarks write them here; their tables are in
``benchmarks/results/*.md``.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from statistics import median

__all__ = ["NAMES", "path", "read_jsonl_path", "read_jsonl", "mechanism_runs",
           "first_epoch", "first_epoch_table"]


NAMES = ("mechanism.jsonl", "ablation.jsonl", "generalize.jsonl")


def path(name: str) -> Path:
    """The file `name` (one of `NAMES`) inside the installed package."""
    if name not in NAMES:
        raise ValueError(f"no committed result named {name!r}; there are {', '.join(NAMES)}")
    return Path(str(resources.files(__name__) / name))


def read_jsonl_path(file: str | os.PathLike) -> list[dict]:
    """Every record of a JSON-lines file (one JSON object a line, blank lines skipped), in the order
    they were written: the one reader of the benchmarks' ``*.jsonl`` files."""
    return [json.loads(line) for line in Path(file).read_text().splitlines() if line.strip()]


def read_jsonl(name: str) -> list[dict]:
    """Every record of one committed result file (one of `NAMES`), in the order the benchmark wrote
    them."""
    return read_jsonl_path(path(name))


def mechanism_runs(profile: str = "classroom") -> list[dict]:
    """The mechanism study's runs on one profile (rescue runs, which switch rate mid-way, left out).

    Taught in chapter 03, section 6."""
    return [r for r in read_jsonl("mechanism.jsonl") if r["profile"] == profile and not r.get("switch")]


def first_epoch(runs: list[dict], lr: float, init: str = "glorot_uniform", optimizer: str = "adam",
                deep: int | None = None) -> dict:
    """Medians over seeds of one configuration's first epoch: the share of dead channels in the last
    `deep` conv layers and the logit spread (at init, after the last recorded batch), the deep
    layers' mean bias after it, and Adam's relative step |dW|/|W| per conv kernel and batch.

    Taught in chapter 03, section 6."""
    if deep is None:  # the deep layers (facekit.core.DEEP); imported here, so reading results stays light
        from facekit.core import DEEP

        deep = DEEP
    rs = [r for r in runs if r["lr"] == lr and r["init"] == init and r["optimizer"] == optimizer]
    if not rs:
        raise ValueError(f"no run with {optimizer} lr {lr:g}, {init} in these records")
    first, last = [r["batches"][0] for r in rs], [r["batches"][-1] for r in rs]
    dead = [median(sum(b["dead"][-deep:]) / deep for b in bs) for bs in (first, last)]
    return {"seeds": len(rs), "dead": (dead[0], dead[1]),
            "bias": median(sum(b["bias_mean"][-deep:]) / deep for b in last),
            "spread": (median(b["spread"] for b in first), median(b["spread"] for b in last)),
            "step": median(u for r in rs for b in r["batches"][1:] for u in b["update"][:-1])}


def first_epoch_table(rows: dict[str, dict]) -> str:
    """`first_epoch` results side by side, one configuration a row (``{label: first_epoch(...)}``),
    its columns narrow enough for a notebook (`facekit.text.WIDTH`): medians over seeds of the deep
    layers' dead share and the logit spread (each at init -> after the first epoch), the deep
    layers' mean bias after it and Adam's relative step.

    Taught in chapter 03, section 6."""
    w = max([18, *map(len, rows)])
    lines = [f"{'':{w}s} {'seeds':>5s}  {'deep dead':15s}  {'deep bias':>9s}  {'logit spread':18s}  "
             f"{'step':>8s}",
             f"{'':{w}s} {'':5s}  {'init -> 1 epoch':15s}  {'':9s}  {'init -> 1 epoch':18s}  "
             f"{'|dW|/|W|':>8s}"]
    for name, t in rows.items():
        dead = f"{t['dead'][0]:.0%} -> {t['dead'][1]:.0%}"
        spread = f"{t['spread'][0]:.1e} -> {t['spread'][1]:.1e}"
        lines.append(f"{name:{w}s} {t['seeds']:5d}  {dead:15s}  {t['bias']:9.5f}  {spread:18s}  "
                     f"{t['step']:8.1e}")
    return "\n".join(line.rstrip() for line in lines)
