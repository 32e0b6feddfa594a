"""One change at a time: the question's network with each change of `facekit.models.VARIANTS`,
over several seeds, on a profile's data. Answers "which change un-sticks it?" with a table.

`ablate` runs it; `Ablation.from_jsonl` reads the runs ``python -m benchmarks.ablation``
wrote. Both summarise runs with the same function, so a table means the same thing either way.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from facekit.core import guessing
from facekit.data import Dataset
from facekit.diagnose.batchnorm import BatchNormWatch, batchnorm_layers
from facekit.diagnose.callbacks import ChanceWatch
from facekit.models import VARIANTS, question_min_size, question_variant
from facekit.profiles import Profile, get_profile, load_profile_data
from facekit.results import read_jsonl_path
from facekit.text import markdown_table
from facekit.train import History, fit, label_callbacks

__all__ = ["Ablation", "ablate", "summarise", "run_record", "outcome", "classify", "train_variant",
           "StopWhenCertain", "LEARNS_AT", "OUTCOMES", "READINGS", "run_outcome"]

LEARNS_AT = 0.5  # inference-mode accuracy on held-out images that counts as "learns" (8 classes: 4x chance)
OUTCOMES = ("learns", "drifting", "guessing", "stuck")


def classify(stuck: bool, val_accuracy: Sequence[float], n_classes: int, n_val: int,
             learns_at: float = LEARNS_AT) -> tuple[str, int | None]:
    """The outcome of a run, judged as the student saw it, on held-out images in inference mode:
    ``("learns", epoch)`` when validation accuracy reached ``learns_at`` (the first such epoch);
    ``("stuck", None)`` when the training loss sits at ln C; ``("guessing", None)`` when the training
    loss left ln C but the last validation accuracy is still no better than chance
    (`facekit.core.guessing`); else ``("drifting", None)``: better than chance, below the bar."""
    acc = np.asarray(val_accuracy, dtype=float)
    hit = np.flatnonzero(acc >= learns_at)
    if hit.size:
        return "learns", int(hit[0]) + 1
    if stuck:
        return "stuck", None
    if acc.size and guessing(float(acc[-1]), n_classes, n_val):
        return "guessing", None
    return "drifting", None


def outcome(history: History, learns_at: float = LEARNS_AT, key: str = "val_accuracy",
            readings: Sequence[dict[str, float]] | None = None) -> tuple[str, int | None]:
    """`classify` for a `History`: its validation accuracy per epoch (``key``; from ``readings``, one
    dict per epoch such as `facekit.diagnose.BatchNormWatch.epochs`, when given)."""
    acc = [r[key] for r in readings] if readings is not None else history[key].tolist()
    return classify(history.stuck, acc, history.n_classes, history.n_val, learns_at)


class StopWhenCertain(ChanceWatch):
    """Stop a run once its outcome is certain: validation accuracy (inference mode, held-out
    images) reached ``learns_at``, or the training loss has sat at ln C for ``patience`` epochs
    (`facekit.core.sits_at_chance`) without going below it. Never on training accuracy: that is a
    training-mode number (BatchNorm on batch statistics, Dropout on). A network whose output ignores
    the image cannot score below the label entropy (ln C on balanced data), so a loss under
    ln C - 0.001 means it is learning, however slowly: it trains on. Epochs before ``first``
    (0-based) are not judged: a run whose learning rate is switched is judged on the epochs after
    the switch."""

    def __init__(self, patience: int = 4, learns_at: float = LEARNS_AT, first: int = 0):
        super().__init__(first)
        self.patience, self.learns_at = patience, learns_at

    def judge(self, epoch: int, logs: dict[str, Any]) -> None:
        c = self.n_classes
        if float(logs.get("val_accuracy", 0.0)) >= self.learns_at or (
                self.sits(self.patience) and min(self.losses[-self.patience:]) >= math.log(c) - 0.001):
            self.model.stop_training = True


def train_variant(name: str, profile: Profile, train: Dataset, val: Dataset, seed: int, epochs: int,
                  stop_early: bool = True, callbacks: list[keras.callbacks.Callback] | None = None,
                  watch: bool = True) -> tuple[keras.Model, History, BatchNormWatch | None]:
    """The question's network with the one change ``name`` (`facekit.models.VARIANTS`), trained on
    ``train`` for up to ``epochs`` epochs (stopped once its outcome is certain with ``stop_early``).
    With ``watch``, a network with BatchNormalization also gets a `BatchNormWatch` (returned third,
    else None): its held-out accuracy with recalibrated statistics and at momentum 0.9, read at every
    epoch without changing the run (it adds a forward pass over the training images an epoch)."""
    model = question_variant(name, profile.input_shape, train.n_classes, profile.filters, seed=seed)
    bn = BatchNormWatch(train.images, val) if watch and batchnorm_layers(model) and len(val.labels) else None
    cbs = [*(callbacks or []), *([bn] if bn else []), *([StopWhenCertain()] if stop_early else [])]
    history = fit(model, train, val, epochs=epochs, batch_size=profile.batch_size, seed=seed,
                  label=name, callbacks=cbs)
    return model, history, bn


# readings of a BatchNorm run besides Keras' own val_accuracy (`BatchNormWatch`): name -> what it is
READINGS = {"recalibrated": "moving statistics re-estimated on the training images (recalibrate_batchnorm)",
            "momentum_0.9": "moving statistics at momentum 0.9 instead of Keras' 0.99"}


def run_record(variant: str, seed: int, history: History, seconds: float,
               watch: BatchNormWatch | None = None) -> dict[str, Any]:
    """One run's numbers, as ``facekit/results/ablation.jsonl`` stores them: per epoch the training
    loss and Keras' training-mode accuracy, the held-out accuracy in inference mode and how many
    classes it predicts; for a BatchNorm run the `BatchNormWatch` readings and their outcomes."""
    what, learned_at = outcome(history)
    rec: dict[str, Any] = {
        "variant": variant, "seed": seed, "final_loss": history.final("loss"),
        "final_acc": history.final("accuracy"), "val_acc": history.final("val_accuracy"),
        "n_val": history.n_val, "n_classes": history.n_classes,
        "stuck": history.stuck, "outcome": what, "epochs_to_learn": learned_at,
        "epochs_run": len(history.epochs), "s_per_epoch": seconds / max(len(history.epochs), 1),
        "losses": [round(float(v), 5) for v in history["loss"]],
        "accuracy": [round(float(v), 4) for v in history["accuracy"]],
        "val_accuracy": [round(float(v), 4) for v in history["val_accuracy"]],
        "val_classes": [int(v) for v in history["val_classes"]]}
    if watch is not None:
        for way in ("batch", "recalibrated", *[f"momentum_{m:g}" for m in watch.momenta]):
            acc = [round(e[f"val_accuracy_{way}"], 4) for e in watch.epochs]
            rec[f"val_accuracy_{way}"] = acc
            rec[f"val_classes_{way}"] = [int(e[f"val_classes_{way}"]) for e in watch.epochs]
            if way in READINGS:
                rec[f"outcome_{way}"], rec[f"epochs_to_learn_{way}"] = classify(
                    history.stuck, acc, history.n_classes, history.n_val)
        key = "val_accuracy_recalibrated_dropout_on"
        rec[key] = round(watch.final[key], 4)
    return rec


def run_outcome(r: dict[str, Any], reading: str | None = None) -> tuple[str, int | None]:
    """A stored run's outcome (of a `READINGS` entry with ``reading``). Runs recorded before
    2026-12-01 hold only the last epoch's validation accuracy: they are judged on it."""
    if reading is not None:
        return r[f"outcome_{reading}"], r[f"epochs_to_learn_{reading}"]
    if "val_accuracy" in r:
        return r["outcome"], r["epochs_to_learn"]
    return classify(r["stuck"], [r["val_acc"]], r.get("n_classes", 8), r.get("n_val", 40))[0], None


def summarise(variant: str, runs: list[dict[str, Any]], reading: str | None = None) -> dict[str, Any]:
    """The table row of one variant (or of one `READINGS` entry of its runs): runs, how many learn /
    drift / guess / sit at ln C (`classify`), median epochs to learn, medians of final training
    loss, held-out accuracy (inference mode) and seconds per epoch."""
    judged = [run_outcome(r, reading) for r in runs]
    outcomes = [o for o, _ in judged]
    learned = [e for o, e in judged if o == "learns" and e]
    key = f"val_accuracy_{reading}" if reading else "val_accuracy"
    val = [r[key][-1] if key in r else r["val_acc"] for r in runs]
    change = VARIANTS[variant][0] if reading is None else f"{VARIANTS[variant][0]}; {READINGS[reading]}"
    return {"variant": variant if reading is None else f"{variant} [{reading}]", "change": change,
            "runs": len(runs), **{k: outcomes.count(k) for k in OUTCOMES},
            "epochs_to_learn": float(statistics.median(learned)) if learned else None,
            "final_loss": float(statistics.median(r["final_loss"] for r in runs)),
            "val_acc": float(statistics.median(val)),
            "s_per_epoch": _median_or_nan([r.get("s_per_epoch") for r in runs])}


def _median_or_nan(values: list[float | None]) -> float:
    known = [float(v) for v in values if v is not None]
    return float(statistics.median(known)) if known else math.nan


@dataclass
class Ablation:
    """Rows of (variant, what changed, runs, stuck runs, median final loss, median val acc,
    s/epoch); ``skipped`` lists the variants that could not run, with the reason.

    Taught in chapter 04, section 3."""

    rows: list[dict]
    histories: dict[str, list[History]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)  # per variant: each run's record

    def curves(self, variant: str) -> list[tuple[list[float], str]]:
        """Each run's training loss per epoch and its outcome (`OUTCOMES`)."""
        return [(list(r["losses"]), run_outcome(r)[0]) for r in self.runs.get(variant, []) if r.get("losses")]

    def val_curves(self, variant: str, reading: str | None = None) -> list[list[float]]:
        """Each run's held-out accuracy per epoch (inference mode; a `READINGS` entry with
        ``reading``); a run recorded with only its last epoch's gives one point."""
        key = f"val_accuracy_{reading}" if reading else "val_accuracy"
        return [list(r[key]) if key in r else [r["val_acc"]] for r in self.runs.get(variant, [])]

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> Ablation:
        """The table from runs written by ``python -m benchmarks.ablation`` (one JSON object a
        run), keeping each run's record for `curves`."""
        runs = read_jsonl_path(path)
        names = sorted(dict.fromkeys(r["variant"] for r in runs),
                       key=lambda n: list(VARIANTS).index(n) if n in VARIANTS else len(VARIANTS))
        by = {n: [r for r in runs if r["variant"] == n] for n in names}
        rows = []
        for n, rs in by.items():
            rows.append(summarise(n, rs))
            rows += [summarise(n, rs, way) for way in READINGS if all(f"outcome_{way}" in r for r in rs)]
        return cls(rows, runs=by)

    def table(self) -> str:
        rows = [[r["variant"], r["change"], f"{r['stuck']}/{r['runs']}", f"{r['final_loss']:.3f}",
                 f"{r['val_acc']:.2f}", f"{r['s_per_epoch']:.1f}"] for r in self.rows]
        out = [markdown_table(["variant", "change", "stuck", "final loss", "val acc", "s/epoch"], rows)]
        out += [f"| {name} | {VARIANTS[name][0]} | not run: {why} | | | |" for name, why in self.skipped]
        return "\n".join(out)

    def outcome_table(self) -> str:
        """The four-outcome table: how many runs learn, drift, guess or sit at ln C, judged on
        held-out images in inference mode."""
        rows = []
        for r in self.rows:
            n, e = r["runs"], r["epochs_to_learn"]
            learned = "-" if e is None else f"{e:g}"
            secs = "-" if math.isnan(r["s_per_epoch"]) else f"{r['s_per_epoch']:.1f}"
            rows.append([r["variant"], r["change"], f"{r['learns']}/{n}", f"{r['drifting']}/{n}",
                         f"{r['guessing']}/{n}", f"{r['stuck']}/{n}", learned, f"{r['final_loss']:.3f}",
                         f"{r['val_acc']:.2f}", secs])
        out = [markdown_table(["variant", "change", "learns", "drifting", "guessing", "stuck",
                               "epochs to learn", "final loss", "val acc", "s/epoch"], rows)]
        out += [f"| {name} | {VARIANTS[name][0]} | not run: {why} | | | | | | | |"
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
            _, h, watch = train_variant(name, prof, train, val, s, epochs, stop_early=stop_early,
                                        callbacks=list(callbacks))
            runs.append(run_record(name, s, h, time.perf_counter() - t, watch))
            hs.append(h)
        row = summarise(name, runs)
        result.rows.append(row)
        result.rows += [summarise(name, runs, way) for way in READINGS
                        if all(f"outcome_{way}" in r for r in runs)]
        result.histories[name] = hs
        result.runs[name] = runs
        if verbose:
            print(f"{name:16s} learns {row['learns']}/{row['runs']}, drifting {row['drifting']}, guessing "
                  f"{row['guessing']}, stuck {row['stuck']}  loss {row['final_loss']:.3f}  val acc "
                  f"{row['val_acc']:.2f}  "
                  f"{row['s_per_epoch']:.1f} s/epoch", flush=True)
    return result
