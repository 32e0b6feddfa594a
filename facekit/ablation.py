"""One change at a time: the question's network with each change of `facekit.models.VARIANTS`,
over several seeds, on a profile's data. Answers "which change un-sticks it?" with a table.

`ablate` runs it; `Ablation.from_jsonl` reads the runs ``python -m benchmarks.ablation``
wrote. Both summarise runs with the same function, so a table means the same thing either way.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from facekit.data import Dataset
from facekit.models import VARIANTS, question_min_size, question_variant
from facekit.profiles import Profile, get_profile, load_profile_data
from facekit.train import History, fit, label_callbacks, sits_at_chance

__all__ = ["Ablation", "ablate", "summarise", "run_record", "outcome", "train_variant", "StopWhenCertain",
           "LEARNS_AT"]

LEARNS_AT = 0.5  # training accuracy that counts as "learns" (8 classes: 4x chance)


def outcome(history: History, learns_at: float = LEARNS_AT) -> tuple[str, int | None]:
    """What a run did: ``("learns", epoch)`` when its training accuracy reached ``learns_at`` (the
    first such epoch), ``("stuck", None)`` when it sits at ln C (`History.stuck`), else
    ``("drifting", None)``: below ln C or above it, but not learning."""
    hit = np.flatnonzero(history["accuracy"] >= learns_at)
    if hit.size:
        return "learns", int(hit[0]) + 1
    return ("stuck" if history.stuck else "drifting"), None


class StopWhenCertain(keras.callbacks.Callback):
    """Stop a run once its outcome is certain: training accuracy reached ``learns_at``, or the loss
    has sat at ln C for ``patience`` epochs (`facekit.train.sits_at_chance`) without going below it.
    A network whose output ignores the image cannot score below the label entropy (ln C on balanced
    data), so a loss under ln C - 0.001 means it is learning, however slowly: it trains on.
    Epochs before ``first`` (0-based) are not judged: a run whose learning rate is switched is
    judged on the epochs after the switch."""

    def __init__(self, patience: int = 4, learns_at: float = LEARNS_AT, first: int = 0):
        super().__init__()
        self.patience, self.learns_at, self.first = patience, learns_at, first
        self.losses: list[float] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.losses = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if epoch < self.first:
            return
        self.losses.append(float(logs.get("loss", float("nan"))))
        c = int(self.model.output_shape[-1])
        window = self.losses[-self.patience:]
        if float(logs.get("accuracy", 0.0)) >= self.learns_at or (
                len(window) == self.patience and sits_at_chance(window, c, self.patience)
                and min(window) >= math.log(c) - 0.001):
            self.model.stop_training = True


def train_variant(name: str, profile: Profile, train: Dataset, val: Dataset, seed: int, epochs: int,
                  stop_early: bool = True, callbacks: list[keras.callbacks.Callback] | None = None
                  ) -> tuple[keras.Model, History]:
    """The question's network with the one change ``name`` (`facekit.models.VARIANTS`), trained on
    ``train`` for up to ``epochs`` epochs (stopped once its outcome is certain with ``stop_early``)."""
    model = question_variant(name, profile.input_shape, train.n_classes, profile.filters, seed=seed)
    cbs = [*(callbacks or []), *([StopWhenCertain()] if stop_early else [])]
    return model, fit(model, train, val, epochs=epochs, batch_size=profile.batch_size, seed=seed,
                      label=name, callbacks=cbs)


def run_record(variant: str, seed: int, history: History, seconds: float) -> dict[str, Any]:
    """One run's numbers, as ``benchmarks/results/*.jsonl`` stores them."""
    what, learned_at = outcome(history)
    return {"variant": variant, "seed": seed, "final_loss": history.final("loss"),
            "final_acc": history.final("accuracy"), "val_acc": history.final("val_accuracy"),
            "stuck": history.stuck, "outcome": what, "epochs_to_learn": learned_at,
            "epochs_run": len(history.epochs), "s_per_epoch": seconds / max(len(history.epochs), 1),
            "losses": [round(float(v), 5) for v in history["loss"]],
            "accuracy": [round(float(v), 4) for v in history["accuracy"]]}


def summarise(variant: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The table row of one variant: runs, how many learn / sit at ln C / drift (`outcome`; runs
    recorded before outcomes existed count as learning when their final accuracy is >= LEARNS_AT),
    median epochs to learn, medians of final loss, val accuracy and seconds per epoch."""
    outcomes = [r.get("outcome") or ("stuck" if r["stuck"] else
                                     "learns" if r.get("final_acc", 0) >= LEARNS_AT else "drifting")
                for r in runs]
    learned = [r["epochs_to_learn"] for r in runs if r.get("epochs_to_learn")]
    return {"variant": variant, "change": VARIANTS[variant][0], "runs": len(runs),
            "learns": outcomes.count("learns"), "stuck": outcomes.count("stuck"),
            "drifting": outcomes.count("drifting"),
            "epochs_to_learn": float(statistics.median(learned)) if learned else None,
            "final_loss": float(statistics.median(r["final_loss"] for r in runs)),
            "val_acc": float(statistics.median(r["val_acc"] for r in runs)),
            "s_per_epoch": _median_or_nan([r.get("s_per_epoch") for r in runs])}


def _median_or_nan(values: list[float | None]) -> float:
    known = [float(v) for v in values if v is not None]
    return float(statistics.median(known)) if known else math.nan


@dataclass
class Ablation:
    """Rows of (variant, what changed, runs, stuck runs, median final loss, median val acc,
    s/epoch); ``skipped`` lists the variants that could not run, with the reason."""

    rows: list[dict]
    histories: dict[str, list[History]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)  # per variant: each run's record

    def curves(self, variant: str) -> list[tuple[list[float], str]]:
        """Each run's training loss per epoch and its outcome (learns / stuck / drifting)."""
        return [(list(r["losses"]), r.get("outcome") or ("stuck" if r["stuck"] else "drifting"))
                for r in self.runs.get(variant, []) if r.get("losses")]

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> Ablation:
        """The table from runs written by ``python -m benchmarks.ablation`` (one JSON object a
        run), keeping each run's record for `curves`."""
        runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        names = dict.fromkeys(r["variant"] for r in runs)
        by = {n: [r for r in runs if r["variant"] == n] for n in names}
        return cls([summarise(n, rs) for n, rs in by.items()], runs=by)

    def table(self) -> str:
        out = ["| variant | change | stuck | final loss | val acc | s/epoch |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            out.append(f"| {r['variant']} | {r['change']} | {r['stuck']}/{r['runs']} | "
                       f"{r['final_loss']:.3f} | {r['val_acc']:.2f} | {r['s_per_epoch']:.1f} |")
        out += [f"| {name} | {VARIANTS[name][0]} | not run: {why} | | | |" for name, why in self.skipped]
        return "\n".join(out)

    def outcome_table(self) -> str:
        """The three-outcome table: how many runs learn, sit at ln C, or drift."""
        out = ["| variant | change | learns | stuck | drifting | epochs to learn | final loss | val acc "
               "| s/epoch |", "|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            n, e = r["runs"], r["epochs_to_learn"]
            learned = "-" if e is None else f"{e:g}"
            secs = "-" if math.isnan(r["s_per_epoch"]) else f"{r['s_per_epoch']:.1f}"
            out.append(f"| {r['variant']} | {r['change']} | {r['learns']}/{n} | {r['stuck']}/{n} | "
                       f"{r['drifting']}/{n} | {learned} | {r['final_loss']:.3f} | "
                       f"{r['val_acc']:.2f} | {secs} |")
        out += [f"| {name} | {VARIANTS[name][0]} | not run: {why} | | | | | | |"
                for name, why in self.skipped]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def ablate(variants: list[str] | None = None, profile: str | Profile | None = None,
           seeds: tuple[int, ...] | None = None, data: str = "synthetic", epochs: int | None = None,
           stop_early: bool = False, verbose: bool = False,
           callbacks: Sequence[keras.callbacks.Callback] = ()) -> Ablation:
    """The question's network with one change at a time (`facekit.models.VARIANTS`), each over
    ``seeds``, on the profile's data. A variant the input size cannot take (``first_5x5`` below
    98 px) is not run and is listed in ``Ablation.skipped`` and the table. ``stop_early`` ends a run
    once its outcome is certain (`StopWhenCertain`). ``callbacks`` run in every training (a
    `facekit.plots.LivePlot` draws each run under "variant seed N")."""
    prof = get_profile(profile)
    seeds = seeds or prof.seeds
    epochs = epochs or prof.epochs
    unknown = [v for v in variants or [] if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    train, val = load_profile_data(prof, data)
    result = Ablation([])
    for name in variants or list(VARIANTS):
        need = question_min_size(first_kernel=5) if name == "first_5x5" else question_min_size()
        if prof.size < need:
            result.skipped.append((name, f"needs inputs of at least {need} px; the profile has {prof.size}"))
            if verbose:
                print(f"{name:16s} not run: {result.skipped[-1][1]}", flush=True)
            continue
        runs, hs = [], []
        for s in seeds:
            t = time.perf_counter()
            label_callbacks(callbacks, f"{name} seed {s}")
            _, h = train_variant(name, prof, train, val, s, epochs, stop_early=stop_early,
                                 callbacks=list(callbacks))
            runs.append(run_record(name, s, h, time.perf_counter() - t))
            hs.append(h)
        row = summarise(name, runs)
        result.rows.append(row)
        result.histories[name] = hs
        result.runs[name] = runs
        if verbose:
            print(f"{name:16s} learns {row['learns']}/{row['runs']}, stuck {row['stuck']}, drifting "
                  f"{row['drifting']}  loss {row['final_loss']:.3f}  val acc {row['val_acc']:.2f}  "
                  f"{row['s_per_epoch']:.1f} s/epoch", flush=True)
    return result
