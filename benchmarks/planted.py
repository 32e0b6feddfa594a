"""The doctor's validation on networks facekit did not build: two planted faults, each on
synthetic faces at 32 px (60 a class, 12 epochs), judged on held-out images in inference mode.

    python -m benchmarks.doctor --planted --seeds 10

An MLP with a learning rate 100x too large and a deep plain CNN with a too-small initialisation;
the doctor (trials on) must rank the fix that removes the fault first, and that fix must make the
network learn. Rows go to ``benchmarks/results/doctor.jsonl`` (``benchmarks.doctor`` writes the table).
"""

from __future__ import annotations

from typing import Any

import keras

from benchmarks.doctor import append_row, trial_rows


def _mlp(lr: float = 0.1) -> keras.Model:
    """Planted fault 1: an MLP at Adam 0.1 (100x the usual learning rate)."""
    m = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                          keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(8, activation="softmax")], name="mlp_lr_too_large")
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def _deep_cnn(std: float = 0.01) -> keras.Model:
    """Planted fault 2: a deep plain CNN initialised too small (normal, std 0.01)."""
    init = keras.initializers.RandomNormal(stddev=std)
    layers: list[keras.layers.Layer] = [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255)]
    for f in (16, 16, 16, 32, 32, 32, 64, 64):
        layers.append(keras.layers.Conv2D(f, 3, padding="same", activation="relu",
                                          kernel_initializer=init))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8, activation="softmax")]
    m = keras.Sequential(layers, name="deep_cnn_init_too_small")
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


# name -> (builder, the fixes that remove the fault)
PLANTED = {"mlp_lr_too_large": (_mlp, {"lower_lr", "lower_lr_30", "lower_lr_100"}),
           "deep_cnn_init_too_small": (_deep_cnn, {"he_init", "batch_norm"})}


def planted_run(name: str, seed: int, train: Any, val: Any, epochs: int) -> dict[str, Any]:
    """One planted fault on one seed: train it, ask the doctor (trials on), train its top fix."""
    from facekit.ablation import outcome
    from facekit.diagnose import PreciseBatchNorm, batchnorm_layers, doctor
    from facekit.diagnose.trials import FIXES, compile_like
    from facekit.train import fit

    build, fault_fixes = PLANTED[name]
    keras.utils.set_random_seed(seed)
    model = build()
    h = fit(model, train, val, epochs=epochs, seed=seed)
    examined = model
    if h.non_finite:  # a diverged model has nothing left to measure: examine its fresh copy
        keras.utils.set_random_seed(seed)
        examined = build()
    report = doctor(examined, train, trials=True, seed=seed)
    top = report.top_fix
    row = {"kind": name, "seed": seed, "outcome": outcome(h)[0], "top_fix": top,
           "diverged": bool(h.non_finite), "ranking": "held_out",
           "val_accuracy": [round(float(v), 4) for v in h["val_accuracy"]],
           "failed_checks": [c.name for c in report.checks if not c.ok],
           "fault_fixed_by_top": top in fault_fixes,
           "trials": trial_rows(report)}
    if top is not None:
        keras.utils.set_random_seed(seed)
        fixed, lr = FIXES[top][1](build(), seed, float(model.optimizer.learning_rate))
        compile_like(fixed, model, lr)
        cbs = [PreciseBatchNorm(train.images)] if batchnorm_layers(fixed) else []
        hf = fit(fixed, train, val, epochs=epochs, seed=seed, callbacks=cbs)
        row["top_fix_outcome"], row["top_fix_epochs_to_learn"] = outcome(hf)
        row["top_fix_val_accuracy"] = [round(float(v), 4) for v in hf["val_accuracy"]]
    return row


def planted_runs(seeds: int, epochs: int, done: set[tuple[str, int]] | None = None) -> list[dict[str, Any]]:
    """Each planted fault on ``seeds`` seeds (skipping ``done`` (kind, seed) pairs), every row
    appended to ``doctor.jsonl`` as it finishes. Runs are judged on held-out images in inference
    mode (`facekit.ablation.outcome`); a fix that adds BatchNorm is trained with `PreciseBatchNorm`,
    as the doctor words it (recalibrate before you judge it)."""
    from facekit.data import make_faces

    train, val = make_faces(60, 32, seed=0).split(0.2, seed=0)
    rows = []
    for name in PLANTED:
        for seed in range(seeds):
            if (name, seed) in (done or set()):
                continue
            rows.append(planted_run(name, seed, train, val, epochs))
            append_row(rows[-1])
    return rows


def planted_table(rows: list[dict[str, Any]]) -> list[str]:
    """The planted faults: the run with the fault, the doctor's top fix, the run after it."""
    from facekit.ablation import OUTCOMES

    out = []
    p = [r for r in rows if r["kind"] not in ("question", "rules_on_ablation", "trials_on_ablation")
         and not r["kind"].startswith("zoo:")]
    if p:
        out.append("\n| planted fault | seeds | run with the fault | doctor's top fix | top fix removes the "
                   "fault | after the top fix |")
        out.append("|---|---|---|---|---|---|")
        for kind in dict.fromkeys(r["kind"] for r in p):
            rs = [r for r in p if r["kind"] == kind]
            outcomes = ", ".join(f"{o} {n}" for o in OUTCOMES
                                 if (n := sum(r["outcome"] == o for r in rs)))
            tops = ", ".join(f"{f} ({sum(str(r['top_fix']) == f for r in rs)})" for f in
                             sorted({str(r["top_fix"]) for r in rs}))
            after = ", ".join(f"{o} {n}" for o in OUTCOMES
                              if (n := sum(r.get("top_fix_outcome") == o for r in rs)))
            out.append(f"| {kind} | {len(rs)} | {outcomes} | {tops} | "
                       f"{sum(r['fault_fixed_by_top'] for r in rs)}/{len(rs)} | "
                       f"{after or '-'} |")
    return out
