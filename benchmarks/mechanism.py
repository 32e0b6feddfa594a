"""Why does the question's network sit at ln 8? Per-batch measurements of the first epochs.

    python -m benchmarks.mechanism --profile ci --seeds 10                       # the breadth sweep
    python -m benchmarks.mechanism --profile classroom --seeds 10 --optimizers adam \
        --inits glorot_uniform he_normal --lrs 1e-3 1e-4                         # headline contrasts
    python -m benchmarks.mechanism --table                                       # rebuild the .md

For every (learning rate, optimizer, initialiser, seed) the question's network is built with the
same initial weights for a given seed and initialiser, and trained on the profile's data as the
question did (batch 16). For the first ``--probe-epochs`` epochs, after every batch, on a fixed probe
batch of 16 training images: the dead-channel share per ReLU layer, the logit spread (std over
images of the centred logits), the gradient norm per layer, and the relative update |dW|/|W| per
layer (kernels; what the optimizer actually did to the weights in that step). Then training goes
on without probes for up to ``--epochs`` epochs and stops early once the outcome is certain.

Outcomes (`facekit.ablation.outcome`, as the ablation counts them): **learns** - training accuracy
>= 0.5 within the epochs; **stuck** - the loss sits at ln C (`History.stuck`); **drifting** - neither.
Runs are appended to ``facekit/results/mechanism.jsonl`` (shipped with the package) as they
finish; a rerun skips the runs already there, so a sweep can span sessions.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from benchmarks.notes import write_with_notes
from facekit.results import read_jsonl_path
from facekit.text import markdown_table

OUT = Path(__file__).resolve().parents[1] / "facekit" / "results" / "mechanism.jsonl"
MD = Path(__file__).resolve().parent / "results" / "mechanism.md"  # the committed table, beside the others


class Probe(keras.callbacks.Callback):
    """After every batch: dead share per ReLU layer, logit spread, gradient norm per layer (on a
    fixed probe batch) and the relative update |dW|/|W| of every kernel in that step. The dead share
    and the spread are `facekit.diagnose.probes`' (`dead_share`, `logit_spread`), as the doctor's."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batches: int):
        super().__init__()
        self.x, self.y, self.batches = tf.constant(x), tf.constant(y), batches
        self.rows: list[dict[str, Any]] = []
        self.step = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        from facekit.diagnose.probes import activation_layers, layer_of

        model = self.model
        self.layers = activation_layers(model)
        probe = keras.Model(model.inputs, [la.output for la in self.layers] + [model.output])
        self.kernels = [la.kernel for la in model.layers if getattr(la, "kernel", None) is not None]
        self.biases = [la.bias for la in self.layers if getattr(la, "bias", None) is not None]
        self.names = [layer_of(k.path) for k in self.kernels]

        @tf.function
        def measure(x: tf.Tensor, y: tf.Tensor) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
            """The probe batch's activations (the output last) and each kernel's gradient norm."""
            with tf.GradientTape() as tape:
                outs = probe(x, training=False)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, outs[-1]))
            grads = tape.gradient(loss, self.kernels)
            return outs, [tf.norm(g) for g in grads]

        self.measure = measure
        self._record(None)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.step < self.batches:
            self.before = [k.numpy() for k in self.kernels]

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step <= self.batches:
            upd = [float(np.linalg.norm(k.numpy() - b) / max(np.linalg.norm(b), 1e-30))
                   for k, b in zip(self.kernels, self.before)]
            self._record(upd, float((logs or {}).get("loss", math.nan)))

    def _record(self, update: list[float] | None, loss: float = math.nan) -> None:
        from facekit.diagnose.probes import dead_share, logit_spread

        outs, gnorm = self.measure(self.x, self.y)
        dead = [dead_share(a.numpy()) for a in outs[:-1]]
        self.rows.append({"step": self.step, "loss": loss, "dead": [round(d, 4) for d in dead],
                          "spread": logit_spread(self.model, outs[-1].numpy()),
                          "grad": [float(g) for g in gnorm],
                          "update": update,
                          "bias_mean": [round(float(np.mean(b.numpy())), 6) for b in self.biases]})


class SwitchLearningRate(keras.callbacks.Callback):
    """After ``at`` batches, set the optimizer's learning rate to ``lr`` (a rescue attempt)."""

    def __init__(self, at: int, lr: float):
        super().__init__()
        self.at, self.lr, self.step = at, lr, 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step == self.at:
            self.model.optimizer.learning_rate = self.lr


def run_one(profile: Any, train: Any, val: Any, lr: float, optimizer: str, init: str, seed: int,
            epochs: int, probe_epochs: int, switch: tuple[int, float] | None = None) -> dict[str, Any]:
    from facekit.ablation import StopWhenCertain, outcome
    from facekit.models import question_model
    from facekit.train import fit

    model = question_model(profile.input_shape, train.n_classes, profile.filters, seed=seed,
                           kernel_initializer=init, learning_rate=lr, optimizer=optimizer)
    per_epoch = math.ceil(len(train) / profile.batch_size)
    probe = Probe(train.images[:16], train.labels[:16], probe_epochs * per_epoch)
    t = time.perf_counter()
    extra = [SwitchLearningRate(*switch)] if switch else []
    # a rescue on classroom is judged on the epochs after the switch (the ci rescue rows used the
    # plain rule, which could stop a run before the new rate had four epochs)
    stop = StopWhenCertain(first=switch[0] // per_epoch if switch and profile.name != "ci" else 0)
    hist = fit(model, train, val, epochs=epochs, batch_size=profile.batch_size, seed=seed,
               callbacks=[probe, *extra, stop])
    what, learned_at = outcome(hist)
    return {"profile": profile.name, "filters": profile.filters, "size": profile.size, "lr": lr,
            "optimizer": optimizer, "init": init, "seed": seed, "outcome": what,
            "switch": list(switch) if switch else None,
            "epochs_to_learn": learned_at, "epochs_run": len(hist.epochs), "max_epochs": epochs,
            "losses": [round(float(v), 5) for v in hist["loss"]],
            "accuracy": [round(float(v), 4) for v in hist["accuracy"]],
            "val_accuracy": [round(float(v), 4) for v in hist["val_accuracy"]],
            "layers": probe.names, "batches": probe.rows, "seconds": round(time.perf_counter() - t, 1)}


def summarise(runs: list[dict[str, Any]]) -> str:
    """The markdown table: per configuration, outcomes over seeds and the per-batch medians."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["profile"], r["optimizer"], r["init"], r["lr"], tuple(r.get("switch") or ())),
                          []).append(r)
    out = []
    for (prof, opt, init, lr, switch), rs in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], kv[0][2], -kv[0][3], kv[0][4])):
        n = len(rs)
        counts = {k: sum(r["outcome"] == k for r in rs) for k in ("learns", "stuck", "drifting")}
        learned = [r["epochs_to_learn"] for r in rs if r["epochs_to_learn"]]
        per_epoch = max(1, (len(rs[0]["batches"]) - 1) // max(1, _probe_epochs(rs[0])))
        dead0 = statistics.median(max(r["batches"][0]["dead"]) for r in rs)
        at1 = [r["batches"][min(per_epoch, len(r["batches"]) - 1)] for r in rs]
        dead1 = statistics.median(max(b["dead"]) for b in at1)
        sp0 = statistics.median(r["batches"][0]["spread"] for r in rs)
        sp1 = statistics.median(b["spread"] for b in at1)
        upd_first = statistics.median(b["update"][0] for r in rs for b in r["batches"][1:])
        upd_last = statistics.median(b["update"][-2] for r in rs for b in r["batches"][1:])
        rate = f"{lr:g}" + (f" -> {switch[1]:g} after {switch[0]} batches" if switch else "")
        out.append([prof, opt, init, rate, n, counts["learns"], counts["stuck"], counts["drifting"],
                    statistics.median(learned) if learned else "-", f"{dead0:.0%} -> {dead1:.0%}",
                    f"{sp0:.2g} -> {sp1:.2g}", f"{upd_first:.2g} / {upd_last:.2g}"])
    return markdown_table(["profile", "optimizer", "init", "lr", "seeds", "learns", "stuck", "drifting",
                           "epochs to learn (median)", "max dead share: init -> after 1 epoch",
                           "logit spread: init -> after 1 epoch",
                           "relative update per step, median (conv1 / last conv)"], out)


def _probe_epochs(run: dict[str, Any]) -> int:
    return int(run.get("probe_epochs", 2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--profile", default="ci")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-4, 1e-4])
    p.add_argument("--optimizers", nargs="+", default=["adam", "momentum"])
    p.add_argument("--inits", nargs="+", default=["glorot_uniform", "he_normal"])
    p.add_argument("--epochs", type=int, default=12, help="at most this many epochs a run")
    p.add_argument("--probe-epochs", type=int, default=2, help="epochs measured batch by batch")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--rescue", type=int, nargs="+", default=[],
                   help="instead of the sweep: Adam, Glorot, lr 1e-3 switched to 1e-4 after each of these "
                        "many batches (when does the collapse become irreversible?)")
    p.add_argument("--table", action="store_true", help="only rebuild the markdown table")
    args = p.parse_args(argv)
    out = Path(args.out)
    runs = read_jsonl_path(out) if out.exists() else []
    if not args.table:
        from facekit.profiles import get_profile, load_profile_data

        prof = get_profile(args.profile)
        train, val = load_profile_data(prof)
        done = {(r["profile"], r["lr"], r["optimizer"], r["init"], r["seed"], tuple(r.get("switch") or ()))
                for r in runs}
        configs = ([("adam", "glorot_uniform", 1e-3, (k, 1e-4)) for k in args.rescue] if args.rescue else
                   [(o, i, lr, ()) for o in args.optimizers for i in args.inits for lr in args.lrs])
        for seed in range(args.seeds):  # seeds outermost: a cut-short sweep still covers every config
            for opt, init, lr, switch in configs:
                if (prof.name, lr, opt, init, seed, switch) in done:
                    continue
                row = run_one(prof, train, val, lr, opt, init, seed, args.epochs, args.probe_epochs,
                              switch or None)
                row["probe_epochs"] = args.probe_epochs
                runs.append(row)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{prof.name} {opt:8s} {init:14s} lr {lr:g} {switch or ''} seed {seed}: "
                      f"{row['outcome']:8s} after {row['epochs_run']} epochs, loss {row['losses'][-1]:.4f} "
                      f"({row['seconds']:.0f} s)", flush=True)
    table = summarise(runs) if runs else "(no runs yet)"
    write_with_notes(MD if out == OUT else out.with_suffix(".md"), __doc__.splitlines()[0], table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
