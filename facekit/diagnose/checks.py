"""The checks: each measures one thing about a classifier and returns a `Check` with a one-line
verdict. `loss_at_init`, `output_sensitivity`, `input_baseline`, `activation_report`,
`gradient_report`, `overfit_one_batch`, `lr_sweep`; `signal_gains` is the arithmetic behind
`activation_report`."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from facekit.core import DataLike, as_arrays, predict
from facekit.diagnose.backend import gradients, jit_compile
from facekit.diagnose.probes import (
    CopyError,
    StatsSum,
    act_name,
    activation_layers,
    compiled_loss,
    copy_layer,
    copy_model,
    cross_entropy,
    ensure_built,
    fresh_optimizer,
    layer_of,
    logit_spread,
    loss_from_logits,
    loss_function,
    n_outputs,
    outputs_are_probs,
    probe_model,
    sample,
    training_loss,
)
from facekit.text import ROOM, wrap

__all__ = ["Check", "loss_at_init", "loss_matches_outputs", "output_sensitivity", "input_baseline",
           "activation_report",
           "signal_gains", "gradient_report", "overfit_one_batch", "lr_sweep", "clone_for_training"]

CHUNK = 8  # images per probe call in activation_report


@dataclass
class Check:
    """One measurement: ``ok`` (did it pass), a one-line ``verdict`` and the numbers."""

    name: str
    ok: bool
    verdict: str
    values: dict = field(default_factory=dict)

    @property
    def line(self) -> str:
        """``[ok] name: verdict`` (or ``[!!]``) on one line, unwrapped."""
        return f"[{'ok' if self.ok else '!!'}] {self.name}: {self.verdict}"

    def __str__(self) -> str:
        """`line` wrapped to `facekit.text.WIDTH`, the first line leaving room for a label printed
        before it (``print("question net:", check)``)."""
        return wrap(self.line, room=ROOM)


def loss_at_init(model: keras.Model, data: DataLike, n: int = 256) -> Check:
    """Loss vs ln C (uniform outputs) and the label entropy (the best a model that ignores its
    input can do). At init it should be close to ln C; after training, still ln C means stuck.

    Taught in chapter 03, section 1."""
    x, y = sample(data, n)
    ensure_built(model, x)
    c = n_outputs(model)
    p = predict(model, x, 32, eager=True)
    loss = own = cross_entropy(model, p, y)
    if getattr(model, "loss", None) is not None and not isinstance(model.loss, list | tuple | dict):
        compiled = compiled_loss(model, p, y)  # what fit and evaluate report
        if not math.isclose(compiled, own, rel_tol=1e-3, abs_tol=1e-3):
            loss = compiled
    prior = np.bincount(y, minlength=c) / len(y)
    entropy = float(-(prior[prior > 0] * np.log(prior[prior > 0])).sum())
    ok = loss <= 1.2 * math.log(c)  # Karpathy: at init, ln C; 20% above is still fine
    if not ok:
        note = "too high: the network is confidently wrong (last-layer init, unscaled inputs?)"
    elif abs(loss - math.log(c)) < 0.01:
        note = "uniform outputs - right for an untrained network, stuck for a trained one"
    elif loss < math.log(c):
        note = "below chance level: the outputs carry information"
    else:
        note = "a little above ln C: fine for an untrained network"
    verdict = f"loss {loss:.4f} vs ln {c} = {math.log(c):.4f} (label entropy {entropy:.4f}): {note}"
    if loss != own:
        verdict = (f"the compiled loss {loss:.4f} vs ln {c} = {math.log(c):.4f} (cross-entropy of the "
                   f"outputs: {own:.4f}; label entropy {entropy:.4f}): {note}")
    return Check("loss vs ln C", ok, verdict, {"loss": loss, "ln_c": math.log(c), "entropy": entropy,
                                                "cross_entropy": own})


def loss_matches_outputs(model: keras.Model, data: DataLike, n: int = 16) -> Check:
    """Does the compiled loss read the outputs as what they are? A softmax output into a loss with
    ``from_logits=True`` applies softmax twice (the loss cannot fall far and the gradients shrink);
    logits into a loss that expects probabilities are clipped into nonsense."""
    x, _ = sample(data, n)
    logits = loss_from_logits(model)
    probs = outputs_are_probs(model, predict(model, x, 32, eager=True))
    act = act_name(model.layers[-1]) or "linear"
    if logits is None:
        return Check("loss vs outputs", True, "the loss does not say whether it takes logits", {})
    if logits and probs:
        return Check("loss vs outputs", False, f"the last layer gives probabilities ({act}) but the loss is "
                     "compiled with from_logits=True: softmax applied twice", {"fix": "from_logits=False"})
    if not logits and not probs:
        return Check("loss vs outputs", False, f"the last layer gives logits ({act}) but the loss expects "
                     "probabilities (from_logits=False)", {"fix": "from_logits=True"})
    return Check("loss vs outputs", True, f"{'logits' if logits else 'probabilities'} ({act}) into a loss "
                 f"compiled with from_logits={logits}", {})


def output_sensitivity(model: keras.Model, data: DataLike, n: int = 64, threshold: float = 0.01) -> Check:
    """How much the logits change from image to image (std over images, mean over classes).
    A network whose logits barely move gives every image the same prediction: loss ln C.

    Taught in chapter 03, section 2."""
    x, _ = sample(data, n)
    ensure_built(model, x)
    p = predict(model, x, 32, eager=True)
    spread = logit_spread(model, p)
    prob_spread = float(p.std(0).mean()) if outputs_are_probs(model, p) else float("nan")
    ok = spread >= threshold
    verdict = (f"logits vary across images by {spread:.2g} (std; healthy > {threshold:g}) - "
               + ("the output depends on the input" if ok else
                  "nearly input-independent: every image gets the same prediction"))
    return Check("output sensitivity", ok, verdict, {"logit_spread": spread, "prob_spread": prob_spread})


def input_baseline(model: keras.Model, data: DataLike, n: int = 64) -> Check:
    """Karpathy's input-independent baseline: feed zeros instead of images. If the predictions
    hardly change, the network is not using its input.

    Taught in chapter 03, section 2."""
    x, y = sample(data, n)
    ensure_built(model, x)
    p, p0 = predict(model, x, 32, eager=True), predict(model, np.zeros_like(x), 32, eager=True)
    change = float(np.abs(p - p0).mean())
    loss, loss0 = cross_entropy(model, p, y), cross_entropy(model, p0, y)
    ok = change >= 1e-3
    verdict = (f"zeroing the images changes the outputs by {change:.2g} on average "
               f"(loss {loss:.4f} -> {loss0:.4f}): "
               + ("the input matters" if ok else "the network ignores its input"))
    return Check("input-independent baseline", ok, verdict,
                 {"output_change": change, "loss": loss, "loss_zero_input": loss0})


def activation_report(model: keras.Model, data: DataLike, n: int = 32, near_zero: float = 1e-3,
                      collapse: float = 0.1, dead_limit: float = 0.5) -> Check:
    """Post-activation statistics per layer. The signal "dies" where its RMS falls below
    ``collapse`` x the first layer's, or where more than ``dead_limit`` of the channels are dead.

    Taught in chapter 03, section 3."""
    x, _ = sample(data, n)
    ensure_built(model, x)
    layers = activation_layers(model)
    if not layers:
        return Check("activations", True, "no hidden activation layers to measure", {"layers": []})
    try:
        probe = probe_model(model, layers)
    except (AttributeError, ValueError):
        return Check("activations", True, f"not measured: {type(model).__name__} has no graph of layers to "
                     "probe (a subclassed model calls them in call())", {"layers": []})
    sums = [StatsSum(near_zero) for _ in layers]
    for i in range(0, len(x), CHUNK):  # in chunks: bounded memory at the question's own size
        outs = probe(x[i:i + CHUNK], training=False)
        for acc, o in zip(sums, outs if isinstance(outs, list | tuple) else [outs]):
            acc.add(keras.ops.convert_to_numpy(o))
    stats = [acc.stats(la.name) for acc, la in zip(sums, layers)]
    first = stats[0].rms or 1e-30
    dying = [s.name for s in stats if s.rms < collapse * first or s.dead > dead_limit]
    worst = max(stats, key=lambda s: s.dead)
    ratio = first / max(stats[-1].rms, 1e-30)
    verdict = (f"signal RMS {stats[0].rms:.2g} at {stats[0].name} -> {stats[-1].rms:.2g} at "
               f"{stats[-1].name} ("
               + (f"{ratio:.3g}x smaller" if ratio >= 1 else f"{1 / ratio:.3g}x larger")
               + f"); dead channels up to {worst.dead:.0%} "
               f"({worst.name})")
    verdict += f"; the signal dies from {dying[0]} on" if dying else "; the signal survives"
    return Check("activations", not dying, verdict, {"layers": stats, "dying": dying, "rms_drop": ratio})


def signal_gains(model: keras.Model) -> list[dict]:
    """The arithmetic of a vanishing signal, from the actual weights: for each conv/dense layer,
    its energy gain fan_in x Var(w) (1 keeps the mean square of the signal; Glorot gives
    2 fan_in / (fan_in + fan_out)), halved by a ReLU, and the running product from the input.
    Max-pooling (not counted) raises the signal a little, so measured drops are smaller.
    Meaningless after BatchNormalization, which re-scales the signal at every layer.

    Taught in chapter 03, section 4."""
    rows, total = [], 1.0
    for la in model.layers:
        kernel = getattr(la, "kernel", None)
        if kernel is None or la is model.layers[-1]:
            continue
        w = keras.ops.convert_to_numpy(kernel)
        fan_in = int(np.prod(w.shape[:-1]))
        gain = fan_in * float(w.var())
        if act_name(la) == "relu":
            gain *= 0.5  # a ReLU zeroes half of a symmetric signal: half the energy
        total *= gain
        rows.append({"layer": la.name, "fan_in": fan_in, "energy_gain": gain,
                     "cumulative": total, "rms_factor": math.sqrt(total)})
    return rows


def gradient_report(model: keras.Model, data: DataLike, n: int = 32, threshold: float = 1e-3) -> Check:
    """Gradient norm per layer, weight norm, and the relative update lr*|g|/|w| of one plain
    gradient step. Flags layers whose relative gradient is below ``threshold`` x the largest."""
    x, y = sample(data, n)
    ensure_built(model, x)
    loss_fn = loss_function(model, predict(model, x[:2], 32, eager=True))
    loss, grads = gradients(model, loss_fn, x, y)
    vars_ = model.trainable_variables
    opt = getattr(model, "optimizer", None)
    lr = float(keras.ops.convert_to_numpy(opt.learning_rate)) if opt is not None else 1e-3
    per: dict[str, list[float]] = {}
    for v, g in zip(vars_, grads):
        if g is None:
            continue
        entry = per.setdefault(layer_of(v.path), [0.0, 0.0])
        entry[0] += float(np.square(g, dtype=np.float64).sum())
        entry[1] += float(np.square(keras.ops.convert_to_numpy(v), dtype=np.float64).sum())
    rows: list[dict[str, Any]] = [
        {"layer": k, "grad_norm": math.sqrt(g2), "weight_norm": math.sqrt(w2),
         "relative": lr * math.sqrt(g2) / max(math.sqrt(w2), 1e-30)} for k, (g2, w2) in per.items()]
    top = max(float(r["relative"]) for r in rows) or 1e-30
    weak = [str(r["layer"]) for r in rows if r["relative"] < threshold * top]
    first, last = rows[0], rows[-1]
    verdict = (f"gradient norm {first['grad_norm']:.2g} at {first['layer']} vs "
               f"{last['grad_norm']:.2g} at {last['layer']}; relative update lr*|g|/|w| "
               f"{first['relative']:.2g} .. {top:.2g}")
    verdict += (f"; {', '.join(weak)} get {1 / threshold:.0f}x less than the top layer: "
                "they barely learn" if weak else "; every layer gets a usable gradient")
    return Check("gradients", not weak, verdict, {"layers": rows, "weak": weak, "loss": float(loss)})


def clone_for_training(model: keras.Model, learning_rate: float | None = None, seed: int = 0,
                       x: np.ndarray | None = None) -> keras.Model:
    """A copy with the same weights and a fresh optimizer of the same kind (the original is
    untouched). Random layers (Dropout, noise, augmentation) get seeds drawn from ``seed``, so two
    copies train alike whatever the global random state. ``x``: images to build a subclassed
    model's copy on (`facekit.diagnose.probes.copy_model`)."""
    count = itertools.count(seed * 1000)

    def seeded(layer: keras.layers.Layer) -> keras.layers.Layer:
        return copy_layer(layer, seed=next(count)) if "seed" in layer.get_config() else copy_layer(layer)

    clone = copy_model(model, x, seeded)
    p = predict(model, x[:2], 2, eager=True) if x is not None else np.full((1, n_outputs(model)), 0.5)
    clone.compile(optimizer=fresh_optimizer(model, learning_rate), loss=training_loss(model, p),
                  jit_compile=jit_compile())
    return clone


def overfit_one_batch(model: keras.Model, data: DataLike, n: int = 16, steps: int = 60,
                      target: float | None = None, seed: int = 0) -> Check:
    """Can the network memorise ``n`` images? Trains a copy on one batch for ``steps`` steps;
    passes when the loss falls below ``target`` (default 0.1 x ln C).

    Taught in chapter 04, section 2."""
    x, y = sample(data, n, seed)
    ensure_built(model, x)
    c = n_outputs(model)
    target = 0.1 * math.log(c) if target is None else target
    try:
        clone = clone_for_training(model, seed=seed, x=x)
    except CopyError as e:
        return Check("overfit one batch", True, f"not run: {e}", {"losses": []})
    losses = []
    for _ in range(steps):
        clone.reset_metrics()
        losses.append(float(np.ravel(clone.train_on_batch(x, y))[0]))
    ok = min(losses) < target
    verdict = (f"loss on one batch of {n}: {losses[0]:.3f} -> {losses[-1]:.3f} after {steps} steps "
               f"(target < {target:.2f}): " + ("it can memorise them" if ok else f"it does not memorise {n} "
                                               "images - suspect the network before the data"))
    return Check("overfit one batch", ok, verdict, {"losses": losses, "target": target})


def lr_sweep(model: keras.Model, data: DataLike, lr_min: float = 1e-6, lr_max: float = 1.0, steps: int = 60,
             batch_size: int = 16, seed: int = 0) -> Check:
    """Train a copy for ``steps`` batches with the learning rate growing exponentially from
    ``lr_min`` to ``lr_max``, recording each batch's own loss; suggest the learning rates where
    the (smoothed) loss falls fastest. Stops early when the loss explodes.

    Taught in chapter 04, section 2."""
    x, y = as_arrays(data)
    ensure_built(model, x)
    rng = np.random.default_rng(seed)
    try:
        clone = clone_for_training(model, seed=seed, x=x)
    except CopyError as e:
        return Check("learning-rate sweep", True, f"not run: {e}", {"suggested": None})
    lrs = np.geomspace(lr_min, lr_max, steps)
    losses: list[float] = []
    for i, lr in enumerate(lrs):
        idx = rng.choice(len(x), batch_size, replace=len(x) < batch_size)
        clone.optimizer.learning_rate = float(lr)
        clone.reset_metrics()
        loss = float(np.ravel(clone.train_on_batch(x[idx], y[idx]))[0])
        losses.append(loss)
        if not math.isfinite(loss) or (i > 5 and loss > 4 * min(losses)):
            break
    lrs = lrs[:len(losses)]
    smooth = np.array(losses)
    for i in range(1, len(smooth)):  # exponential moving average
        smooth[i] = 0.8 * smooth[i - 1] + 0.2 * smooth[i] if math.isfinite(smooth[i]) else smooth[i - 1]
    slope = np.gradient(smooth, np.log10(lrs)) if len(lrs) > 2 else np.zeros(len(lrs))
    best = int(np.argmin(slope))
    drop = float(smooth[0] - np.nanmin(smooth)) / max(smooth[0], 1e-12)
    ok = drop > 0.05
    lo, hi = float(lrs[best]) / 3, float(lrs[best])
    verdict = (f"loss {losses[0]:.3f} -> min {np.nanmin(smooth):.3f} over lr {lrs[0]:.0e}..{lrs[-1]:.0e}; "
               + (f"falls fastest at lr {lrs[best]:.1e}: try {lo:.0e}..{hi:.0e}" if ok else
                  f"no learning rate makes it fall within {len(losses)} steps, so the sweep cannot pick one; "
                  "that does not clear the learning rate (a lower one can still help over epochs)"))
    return Check("learning-rate sweep", ok, verdict,
                 {"lrs": lrs.tolist(), "losses": losses, "smoothed": smooth.tolist(),
                  "suggested": (lo, hi) if ok else None})
