"""The doctor on a zoo of broken networks facekit did not build, each on synthetic faces at 32 px
(60 a class, a shuffled 80/20 split), judged on held-out images in inference mode.

    python -m benchmarks.doctor --zoo --seeds 5

For every network and seed: train it (12 epochs), ask ``doctor(model, train, val=val,
trials=True)``, read its first finding, apply that finding as written (`_apply`) and train again.
A row records whether the first finding names the planted fault (`ZOO`'s ``right``), the doctor's
top fix, and the outcome before and after (`facekit.ablation.outcome`). Rows are appended to
``benchmarks/results/doctor.jsonl`` as they finish (kind ``zoo:<name>``); a rerun skips them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

__all__ = ["ZOO", "zoo_runs", "zoo_table"]

SIZE, EPOCHS = 32, 12


def _compile(m: keras.Model, lr: float = 1e-3, loss: Any = "sparse_categorical_crossentropy") -> keras.Model:
    m.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    return m


def _head(rescale: bool = True) -> list:
    return [keras.Input((SIZE, SIZE, 3))] + ([keras.layers.Rescaling(1 / 255)] if rescale else [])


def deep_cnn_init_too_small(rescale: bool = True) -> keras.Model:
    init = keras.initializers.RandomNormal(stddev=0.01)
    convs = [keras.layers.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer=init)
             for f in (16, 16, 16, 32, 32, 32, 64, 64)]
    return _compile(keras.Sequential(_head(rescale) + convs + [
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8, activation="softmax")], name="deep_cnn"))


def mlp_lr_too_large(rescale: bool = True) -> keras.Model:
    return _compile(keras.Sequential(_head(rescale) + [
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(8, activation="softmax")], name="mlp"), lr=0.1)


def sigmoid_everywhere(rescale: bool = True) -> keras.Model:
    layers: list = _head(rescale)
    for f in (16, 16, 32, 32, 64, 64):
        layers.append(keras.layers.Conv2D(f, 3, padding="same", activation="sigmoid"))
        if f == 32:
            layers.append(keras.layers.MaxPooling2D())
    layers += [keras.layers.Flatten(), keras.layers.Dense(64, activation="sigmoid"),
               keras.layers.Dense(8, activation="softmax")]
    return _compile(keras.Sequential(layers, name="sigmoid_cnn"))


def small_cnn(rescale: bool = True, loss: Any = "sparse_categorical_crossentropy") -> keras.Model:
    """A sound small CNN (the answer's kind): the zoo's network for faults outside the network."""
    return _compile(keras.Sequential(_head(rescale) + [
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(8, activation="softmax")], name="small_cnn"), loss=loss)


def unscaled_inputs(rescale: bool = False) -> keras.Model:
    return small_cnn(rescale)


def softmax_from_logits(rescale: bool = True) -> keras.Model:
    return small_cnn(rescale, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def stale_batchnorm(rescale: bool = True) -> keras.Model:
    """BatchNorm whose moving averages lag far behind (momentum 0.999: the last ~1000 steps count,
    and 12 epochs here are 288 steps), Dropout before it."""
    layers: list = _head(rescale)
    for f in (16, 32, 64):
        layers += [keras.layers.Conv2D(f, 3, padding="same", use_bias=False),
                   keras.layers.BatchNormalization(momentum=0.999), keras.layers.Activation("relu"),
                   keras.layers.MaxPooling2D(), keras.layers.Dropout(0.3)]
    layers += [keras.layers.Flatten(), keras.layers.Dense(8, activation="softmax")]
    return _compile(keras.Sequential(layers, name="stale_bn"))


def residual_lr_too_large(rescale: bool = True) -> keras.Model:
    """A functional network with residual branches (not a chain) at Adam 0.05."""
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255)(inp) if rescale else inp
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    for _ in range(2):
        r = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
        r = keras.layers.Conv2D(32, 3, padding="same")(r)
        h = keras.layers.Activation("relu")(keras.layers.Add()([h, r]))
        h = keras.layers.MaxPooling2D()(h)
    out = keras.layers.Dense(8, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    return _compile(keras.Model(inp, out, name="residual"), lr=0.05)


@dataclass(frozen=True)
class Planted:
    """A zoo entry: how to build it, whether its labels are shuffled, and the openings of a first
    finding that names its fault."""

    build: Callable[..., keras.Model]
    right: tuple[str, ...]
    shuffled: bool = False


LR = ("learning rate", "a lower learning rate", "lower the learning rate")
ZOO: dict[str, Planted] = {
    "deep_cnn_init_too_small": Planted(deep_cnn_init_too_small, ("BatchNormalization", "He")),
    "mlp_adam_0.1": Planted(mlp_lr_too_large, LR),
    "sigmoid_everywhere": Planted(sigmoid_everywhere, ("ReLU instead of", "BatchNormalization")),
    "unscaled_0_255_inputs": Planted(unscaled_inputs, ("the inputs go up to", "check the inputs are scaled")),
    "labels_shuffled": Planted(small_cnn, ("the labels may not follow the images",), shuffled=True),
    "softmax_with_from_logits": Planted(softmax_from_logits, ("the loss reads the outputs wrongly",)),
    "stale_batchnorm": Planted(stale_batchnorm, ("recalibrate the BatchNorm",)),
    "residual_adam_0.05": Planted(residual_lr_too_large, LR),
}


def _shuffled(ds: Any, seed: int) -> Any:
    import dataclasses

    return dataclasses.replace(ds, labels=np.random.default_rng(seed).permutation(ds.labels))


def _apply(name: str, first: str, report: Any, seed: int, train: Any, val: Any) -> tuple[Any, ...]:
    """The doctor's first finding done as it is written: (model, train, val, callbacks), or None
    when it names nothing that can be done."""
    from facekit.diagnose import PreciseBatchNorm, batchnorm_layers
    from facekit.diagnose.trials import FIXES, compile_like

    planted = ZOO[name]
    keras.utils.set_random_seed(seed)
    model = planted.build()
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    if first.startswith("the labels may not follow the images"):
        return model, train, val, []  # the labels as they belong (the data before shuffling)
    if first.startswith("the loss reads the outputs wrongly"):
        logits = "from_logits=True" in first.split(";")[-1]
        return _compile(model, lr, keras.losses.SparseCategoricalCrossentropy(from_logits=logits)), \
            train, val, []
    if first.startswith(("the inputs go up to", "check the inputs are scaled")):
        return planted.build(rescale=True), train, val, []
    if first.startswith("recalibrate the BatchNorm"):
        return model, train, val, [PreciseBatchNorm(train.images)]
    fix = report.top_fix
    if fix is None or not first.startswith(next(t.what for t in report.trials if t.fix == fix)[:12]):
        return None
    fixed, rate = FIXES[fix][1](model, seed, lr)
    compile_like(fixed, model, rate)
    return fixed, train, val, [PreciseBatchNorm(train.images)] if batchnorm_layers(fixed) else []


def zoo_run(name: str, seed: int, train: Any, val: Any) -> dict[str, Any]:
    """One zoo network on one seed: train it, ask the doctor, apply its first finding, train again."""
    from facekit.ablation import outcome
    from facekit.diagnose import doctor
    from facekit.train import fit

    planted = ZOO[name]
    tr, va = (_shuffled(train, seed), _shuffled(val, seed + 1)) if planted.shuffled else (train, val)
    keras.utils.set_random_seed(seed)
    model = planted.build()
    h = fit(model, tr, va, epochs=EPOCHS, seed=seed)
    examined = model
    if h.non_finite:  # nothing left to measure in a diverged model: examine its fresh copy
        keras.utils.set_random_seed(seed)
        examined = planted.build()
    t = time.perf_counter()
    report = doctor(examined, tr, val=va, trials=True, seed=seed)
    seconds = round(time.perf_counter() - t, 1)
    first = report.suggestions[0] if report.suggestions else ""
    row: dict[str, Any] = {
        "kind": f"zoo:{name}", "seed": seed, "outcome": outcome(h)[0], "diverged": bool(h.non_finite),
        "doctor_s": seconds, "healthy": report.ok, "first": first[:160],
        "right_first": first.startswith(planted.right), "top_fix": report.top_fix,
        "failed_checks": [c.name for c in report.checks if not c.ok]}
    applied = _apply(name, first, report, seed, train, val) if first else None
    if applied is not None:
        fixed, ftr, fva, cbs = applied
        hf = fit(fixed, ftr, fva, epochs=EPOCHS, seed=seed, callbacks=cbs)
        row["after"], row["after_epochs_to_learn"] = outcome(hf)
        row["after_val_accuracy"] = round(float(hf["val_accuracy"][-1]), 4)
    else:
        row["after"] = None
    return row


def zoo_runs(seeds: int, done: set[tuple[str, int]], append: Callable[[dict[str, Any]], None]) -> None:
    """Every zoo network on ``seeds`` seeds, skipping ``done`` (kind, seed) pairs; each row is
    handed to ``append`` as it finishes."""
    from facekit.data import make_faces

    train, val = make_faces(60, SIZE, seed=0).split(0.2, seed=0)
    for name in ZOO:
        for seed in range(seeds):
            if (f"zoo:{name}", seed) not in done:
                append(zoo_run(name, seed, train, val))


def zoo_table(rows: list[dict[str, Any]]) -> list[str]:
    """doctor.md's zoo table: per network, the first finding right, the top fix, before/after."""
    from facekit.ablation import OUTCOMES

    z = [r for r in rows if r["kind"].startswith("zoo:")]
    if not z:
        return []
    right = sum(r["right_first"] for r in z)
    out = [f"\nThe zoo ({len(z)} runs; 32 px synthetic faces, {EPOCHS} epochs, judged in inference mode on "
           f"held-out images): the doctor's first finding names the planted fault on {right}/{len(z)} "
           f"({right / len(z):.0%}; target 90%).\n",
           "| network (planted fault) | seeds | trained | first finding right | doctor's top fix (seeds) | "
           "after applying the first finding | doctor s (median) |", "|---|---|---|---|---|---|---|"]
    for kind in dict.fromkeys(r["kind"] for r in z):
        rs = [r for r in z if r["kind"] == kind]

        def counts(key: str, rs: list = rs) -> str:
            return ", ".join(f"{o} {n}" for o in OUTCOMES if (n := sum(r.get(key) == o for r in rs))) or "-"

        tops = ", ".join(f"{f} ({sum(str(r['top_fix']) == f for r in rs)})"
                         for f in sorted({str(r["top_fix"]) for r in rs}))
        secs = sorted(r["doctor_s"] for r in rs)[len(rs) // 2]
        out.append(f"| {kind[4:]} | {len(rs)} | {counts('outcome')} | {sum(r['right_first'] for r in rs)}/"
                   f"{len(rs)} | {tops} | {counts('after')} | {secs:.0f} |")
    return out
