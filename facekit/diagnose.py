"""The training doctor: measure why a Keras classifier sits at chance.

Checks (each returns a `Check` with a one-line verdict): `loss_at_init`, `output_sensitivity`,
`input_baseline`, `activation_report`, `gradient_report`, `overfit_one_batch`, `lr_sweep`.
`doctor(model, data)` runs them and ranks the fixes. Callbacks that watch training live in
`facekit.callbacks`; the one-change-at-a-time experiment is `ablate`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from facekit.data import Dataset
from facekit.train import as_arrays

__all__ = ["Check", "LayerStats", "Report", "loss_at_init", "output_sensitivity", "input_baseline",
           "activation_report", "gradient_report", "overfit_one_batch", "lr_sweep", "doctor",
           "ablate", "Ablation", "activation_layers", "layer_stats", "signal_gains"]

_LINEAR = {"linear", "softmax", "sigmoid"}


@dataclass
class Check:
    """One measurement: ``ok`` (did it pass), a one-line ``verdict`` and the numbers."""

    name: str
    ok: bool
    verdict: str
    values: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else '!!'}] {self.name}: {self.verdict}"


@dataclass
class LayerStats:
    """Post-activation statistics of one layer over a batch. ``zero``: share of exact zeros;
    ``near_zero``: share of non-zero values with |a| < tol; ``dead``: share of channels that are
    zero for every position of every image."""

    name: str
    mean: float
    std: float
    rms: float
    zero: float
    near_zero: float
    dead: float
    channels: int


# ----------------------------------------------------------------------------- plumbing

def _ensure_built(model: keras.Model, x: np.ndarray) -> None:
    """Models built without keras.Input get their graph from one call."""
    try:
        model.inputs  # noqa: B018 - raises or is None when the model has no graph yet
        if model.inputs:
            return
    except (AttributeError, ValueError):
        pass
    model(x[:1])


def _act_name(layer) -> str | None:
    act = getattr(layer, "activation", None)
    if act is not None:
        return getattr(act, "__name__", type(act).__name__).lower()
    if isinstance(layer, keras.layers.ReLU | keras.layers.LeakyReLU | keras.layers.ELU):
        return type(layer).__name__.lower()
    return None


def activation_layers(model: keras.Model) -> list:
    """The layers whose output is a hidden activation (after ReLU etc.), in order."""
    out = model.layers[-1]
    return [la for la in model.layers
            if la is not out and (_act_name(la) or "linear") not in _LINEAR
            and not isinstance(la, keras.Model)]


def _probe(model: keras.Model, layers: list) -> keras.Model:
    inp = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inp, [la.output for la in layers])


def _predict(model: keras.Model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def _outputs_are_probs(model: keras.Model, p: np.ndarray) -> bool:
    return _act_name(model.layers[-1]) == "softmax" or (
        p.min() >= 0 and np.allclose(p.sum(-1), 1, atol=1e-3))


def _centered_logits(model: keras.Model, p: np.ndarray) -> np.ndarray:
    """Logits up to a per-image constant (log-probabilities minus their mean over classes)."""
    z = np.log(np.clip(p.astype(np.float64), 1e-30, 1)) if _outputs_are_probs(model, p) else p
    return z - z.mean(-1, keepdims=True)


def _cross_entropy(model: keras.Model, p: np.ndarray, y: np.ndarray) -> float:
    z = _centered_logits(model, p)
    z = z - z.max(-1, keepdims=True)  # stable log-softmax
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def _sample(data, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_arrays(data)
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx].astype(np.int64)


# ----------------------------------------------------------------------------- checks

def loss_at_init(model: keras.Model, data, n: int = 256) -> Check:
    """Loss vs ln C (uniform outputs) and the label entropy (the best a model that ignores its
    input can do). At init it should be close to ln C; after training, still ln C means stuck."""
    x, y = _sample(data, n)
    _ensure_built(model, x)
    c = int(model.output_shape[-1])
    loss = _cross_entropy(model, _predict(model, x), y)
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
    verdict = (f"loss {loss:.4f} vs ln {c} = {math.log(c):.4f} (label entropy {entropy:.4f}): {note}")
    return Check("loss vs ln C", ok, verdict, {"loss": loss, "ln_c": math.log(c), "entropy": entropy})


def output_sensitivity(model: keras.Model, data, n: int = 64, threshold: float = 0.01) -> Check:
    """How much the logits change from image to image (std over images, mean over classes).
    A network whose logits barely move gives every image the same prediction: loss ln C."""
    x, _ = _sample(data, n)
    _ensure_built(model, x)
    p = _predict(model, x)
    spread = float(_centered_logits(model, p).std(0).mean())
    prob_spread = float(p.std(0).mean()) if _outputs_are_probs(model, p) else float("nan")
    ok = spread >= threshold
    verdict = (f"logits vary across images by {spread:.2g} (std; healthy > {threshold:g}) - "
               + ("the output depends on the input" if ok else
                  "nearly input-independent: every image gets the same prediction"))
    return Check("output sensitivity", ok, verdict, {"logit_spread": spread, "prob_spread": prob_spread})


def input_baseline(model: keras.Model, data, n: int = 64) -> Check:
    """Karpathy's input-independent baseline: feed zeros instead of images. If the predictions
    hardly change, the network is not using its input."""
    x, y = _sample(data, n)
    _ensure_built(model, x)
    p, p0 = _predict(model, x), _predict(model, np.zeros_like(x))
    change = float(np.abs(p - p0).mean())
    loss, loss0 = _cross_entropy(model, p, y), _cross_entropy(model, p0, y)
    ok = change >= 1e-3
    verdict = (f"zeroing the images changes the outputs by {change:.2g} on average "
               f"(loss {loss:.4f} -> {loss0:.4f}): "
               + ("the input matters" if ok else "the network ignores its input"))
    return Check("input-independent baseline", ok, verdict,
                 {"output_change": change, "loss": loss, "loss_zero_input": loss0})


def layer_stats(name: str, a: np.ndarray, near_zero: float = 1e-3) -> LayerStats:
    """`LayerStats` of one activation array (batch first, channels last)."""
    a = np.asarray(a, dtype=np.float32)
    flat = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
    nz = flat != 0
    mean = float(flat.mean(dtype=np.float64))
    ms = float(np.square(flat, dtype=np.float64).mean())
    near = np.count_nonzero(nz & (flat > -near_zero) & (flat < near_zero)) / max(flat.size, 1)
    return LayerStats(name, mean, math.sqrt(max(ms - mean * mean, 0.0)), math.sqrt(ms),
                      1 - np.count_nonzero(nz) / max(flat.size, 1), float(near),
                      float((~nz.any(0)).mean()), flat.shape[1])


def activation_report(model: keras.Model, data, n: int = 32, near_zero: float = 1e-3,
                      collapse: float = 0.1, dead_limit: float = 0.5) -> Check:
    """Post-activation statistics per layer. The signal "dies" where its RMS falls below
    ``collapse`` x the first layer's, or where more than ``dead_limit`` of the channels are dead."""
    x, _ = _sample(data, n)
    _ensure_built(model, x)
    layers = activation_layers(model)
    if not layers:
        return Check("activations", True, "no hidden activation layers to measure", {"layers": []})
    outs = _probe(model, layers)(x, training=False)
    outs = outs if isinstance(outs, list | tuple) else [outs]
    stats = [layer_stats(la.name, np.asarray(o), near_zero) for la, o in zip(layers, outs)]
    first = stats[0].rms or 1e-30
    dying = [s.name for s in stats if s.rms < collapse * first or s.dead > dead_limit]
    worst = max(stats, key=lambda s: s.dead)
    ratio = first / max(stats[-1].rms, 1e-30)
    verdict = (f"signal RMS {stats[0].rms:.2g} at {stats[0].name} -> {stats[-1].rms:.2g} at "
               f"{stats[-1].name} ({ratio:.3g}x smaller); dead channels up to {worst.dead:.0%} "
               f"({worst.name})")
    verdict += f"; the signal dies from {dying[0]} on" if dying else "; the signal survives"
    return Check("activations", not dying, verdict, {"layers": stats, "dying": dying, "rms_drop": ratio})


def signal_gains(model: keras.Model) -> list[dict]:
    """The arithmetic of a vanishing signal, from the actual weights: for each conv/dense layer,
    its energy gain fan_in x Var(w) (1 keeps the mean square of the signal; Glorot gives
    2 fan_in / (fan_in + fan_out)), halved by a ReLU, and the running product from the input.
    Max-pooling (not counted) raises the signal a little, so measured drops are smaller.
    Meaningless after BatchNormalization, which re-scales the signal at every layer."""
    rows, total = [], 1.0
    for la in model.layers:
        kernel = getattr(la, "kernel", None)
        if kernel is None or la is model.layers[-1]:
            continue
        w = np.asarray(kernel)
        fan_in = int(np.prod(w.shape[:-1]))
        gain = fan_in * float(w.var())
        if _act_name(la) == "relu":
            gain *= 0.5  # a ReLU zeroes half of a symmetric signal: half the energy
        total *= gain
        rows.append({"layer": la.name, "fan_in": fan_in, "energy_gain": gain,
                     "cumulative": total, "rms_factor": math.sqrt(total)})
    return rows


def _layer_of(var_path: str) -> str:
    return var_path.split("/")[-2] if "/" in var_path else var_path


def gradient_report(model: keras.Model, data, n: int = 32, threshold: float = 1e-3) -> Check:
    """Gradient norm per layer, weight norm, and the relative update lr*|g|/|w| of one plain
    gradient step. Flags layers whose relative gradient is below ``threshold`` x the largest."""
    x, y = _sample(data, n)
    _ensure_built(model, x)
    with tf.GradientTape() as tape:
        p = model(x, training=False)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, p, from_logits=not _outputs_are_probs(model, np.asarray(p))))
    vars_ = model.trainable_variables
    grads = tape.gradient(loss, vars_)
    opt = getattr(model, "optimizer", None)
    lr = float(np.asarray(opt.learning_rate)) if opt is not None else 1e-3
    per: dict[str, list[float]] = {}
    for v, g in zip(vars_, grads):
        if g is None:
            continue
        entry = per.setdefault(_layer_of(v.path), [0.0, 0.0])
        entry[0] += float(tf.reduce_sum(tf.square(g)))
        entry[1] += float(tf.reduce_sum(tf.square(v)))
    rows = [{"layer": k, "grad_norm": math.sqrt(g2), "weight_norm": math.sqrt(w2),
             "relative": lr * math.sqrt(g2) / max(math.sqrt(w2), 1e-30)} for k, (g2, w2) in per.items()]
    top = max(r["relative"] for r in rows) or 1e-30
    weak = [r["layer"] for r in rows if r["relative"] < threshold * top]
    first, last = rows[0], rows[-1]
    verdict = (f"gradient norm {first['grad_norm']:.2g} at {first['layer']} vs "
               f"{last['grad_norm']:.2g} at {last['layer']}; relative update lr*|g|/|w| "
               f"{first['relative']:.2g} .. {top:.2g}")
    verdict += (f"; {', '.join(weak)} get {1 / threshold:.0f}x less than the top layer: "
                "they barely learn" if weak else "; every layer gets a usable gradient")
    return Check("gradients", not weak, verdict, {"layers": rows, "weak": weak, "loss": float(loss)})


def _clone(model: keras.Model, learning_rate: float | None = None) -> keras.Model:
    """A copy with the same weights and a fresh optimizer of the same kind (the original is
    untouched)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    opt_cfg = model.optimizer.get_config() if getattr(model, "optimizer", None) else None
    opt = type(model.optimizer).from_config(opt_cfg) if opt_cfg else keras.optimizers.Adam()
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    clone.compile(optimizer=opt, loss=model.loss or "sparse_categorical_crossentropy",
                  jit_compile=False)
    return clone


def overfit_one_batch(model: keras.Model, data, n: int = 16, steps: int = 60,
                      target: float | None = None, seed: int = 0) -> Check:
    """Can the network memorise ``n`` images? Trains a copy on one batch for ``steps`` steps;
    passes when the loss falls below ``target`` (default 0.1 x ln C)."""
    x, y = _sample(data, n, seed)
    _ensure_built(model, x)
    c = int(model.output_shape[-1])
    target = 0.1 * math.log(c) if target is None else target
    clone = _clone(model)
    losses = []
    for _ in range(steps):
        clone.reset_metrics()
        losses.append(float(np.ravel(clone.train_on_batch(x, y))[0]))
    ok = min(losses) < target
    verdict = (f"loss on one batch of {n}: {losses[0]:.3f} -> {losses[-1]:.3f} after {steps} steps "
               f"(target < {target:.2f}): " + ("it can memorise them" if ok else f"it does not memorise {n} "
                                               "images - suspect the network before the data"))
    return Check("overfit one batch", ok, verdict, {"losses": losses, "target": target})


def lr_sweep(model: keras.Model, data, lr_min: float = 1e-6, lr_max: float = 1.0, steps: int = 60,
             batch_size: int = 16, seed: int = 0) -> Check:
    """Train a copy for ``steps`` batches with the learning rate growing exponentially from
    ``lr_min`` to ``lr_max``, recording each batch's own loss; suggest the learning rates where
    the (smoothed) loss falls fastest. Stops early when the loss explodes."""
    x, y = as_arrays(data)
    _ensure_built(model, x)
    rng = np.random.default_rng(seed)
    clone = _clone(model)
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
                  "no learning rate makes it fall: the learning rate is not the problem"))
    return Check("learning-rate sweep", ok, verdict,
                 {"lrs": lrs.tolist(), "losses": losses, "smoothed": smooth.tolist(),
                  "suggested": (lo, hi) if ok else None})


# ----------------------------------------------------------------------------- doctor

@dataclass
class Report:
    """What `doctor` found: the checks, where the signal dies, ranked suggestions."""

    model_name: str
    checks: list[Check]
    dying_layers: list[str]
    suggestions: list[str]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def __str__(self) -> str:
        lines = [f"facekit doctor - {self.model_name}: "
                 + ("healthy" if self.ok else f"{sum(not c.ok for c in self.checks)} check(s) failed")]
        lines += [f"  {c}" for c in self.checks]
        if self.dying_layers:
            lines.append(f"  the signal dies in: {', '.join(self.dying_layers)}")
        if self.suggestions:
            lines.append("  try, in this order:")
            lines += [f"    {i}. {s}" for i, s in enumerate(self.suggestions, 1)]
        return "\n".join(lines)

    __repr__ = __str__


def _initializers(model: keras.Model) -> set[str]:
    return {type(la.kernel_initializer).__name__ for la in model.layers
            if hasattr(la, "kernel_initializer")}


def _suggest(model: keras.Model, checks: dict[str, Check], x: np.ndarray, y: np.ndarray) -> list[str]:
    s: list[str] = []
    acts, grads = checks["activations"], checks["gradients"]
    if not acts.ok or not checks["output sensitivity"].ok:
        n_act = len(acts.values.get("layers", []))
        if {"GlorotUniform", "GlorotNormal"} & _initializers(model):
            s.append("He initialisation (kernel_initializer='he_normal'): Glorot init lets each "
                     "ReLU layer halve the signal's energy")
        if not any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers):
            s.append("BatchNormalization after each convolution: re-scales the signal at every layer")
        s.append(f"fewer layers ({n_act} ReLU layers now): each one shrinks the signal")
    if not grads.ok:
        s.append("a different learning rate will not help vanishing gradients much; fix the "
                 "signal first, then run lr_sweep")
    if "overfit one batch" in checks and not checks["overfit one batch"].ok and acts.ok:
        s.append("lower the learning rate (run lr_sweep) and check the loss matches the outputs")
    if not checks["loss vs ln C"].ok:
        s.append("check the inputs are scaled (Rescaling(1/255) inside the model) and the last "
                 "layer starts small")
    counts = np.bincount(y)
    if x.dtype != np.uint8 and float(x.max()) > 2 and not any(
            isinstance(la, keras.layers.Rescaling) for la in model.layers):
        s.append(f"the inputs go up to {float(x.max()):g} and the model has no Rescaling layer")
    if counts.min() * 3 < counts.max():
        s.append(f"the labels are imbalanced ({counts.min()}..{counts.max()} per class)")
    s.append("data: look at exactly what enters the network (facekit.plots.show_batch) and check "
             "the labels match the images")
    return s


def doctor(model: keras.Model, data: Dataset | tuple[np.ndarray, np.ndarray], n: int = 64,
           overfit_steps: int = 40, sweep: bool = False) -> Report:
    """Run the checks on ``model`` (untouched: training checks use a copy) and a sample of
    ``data``; return a `Report` (``report.ok``, ``str(report)``). ``sweep=True`` adds the
    learning-rate sweep (slower)."""
    x, y = _sample(data, max(n, 16))
    _ensure_built(model, x)
    run = [loss_at_init(model, (x, y), n), output_sensitivity(model, (x, y), n),
           input_baseline(model, (x, y), n), activation_report(model, (x, y), min(n, 32)),
           gradient_report(model, (x, y), min(n, 32)),
           overfit_one_batch(model, (x, y), 16, overfit_steps)]
    if sweep:
        run.append(lr_sweep(model, (x, y)))
    checks = {c.name: c for c in run}
    return Report(model.name, run, checks["activations"].values.get("dying", []),
                  _suggest(model, checks, x, y) if not all(c.ok for c in run) else [])


# ----------------------------------------------------------------------------- ablation

@dataclass
class Ablation:
    """Rows of (variant, what changed, stuck share, median final loss, median val acc, s/epoch)."""

    rows: list[dict]
    histories: dict[str, list] = field(default_factory=dict)

    @classmethod
    def from_jsonl(cls, path) -> Ablation:
        """The table from runs written by ``python -m benchmarks.reproduction --variants ...``
        (one JSON object a run), medians over seeds as `ablate` computes them."""
        import json
        from pathlib import Path

        from facekit.models import VARIANTS

        runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        rows = []
        for name in dict.fromkeys(r["variant"] for r in runs):
            rs = [r for r in runs if r["variant"] == name]
            rows.append({"variant": name, "change": VARIANTS[name][0], "runs": len(rs),
                         "stuck": sum(r["stuck"] for r in rs),
                         "final_loss": float(np.median([r["final_loss"] for r in rs])),
                         "val_acc": float(np.median([r["val_acc"] for r in rs])),
                         "s_per_epoch": float(np.median([r["s_per_epoch"] for r in rs]))})
        return cls(rows)

    def table(self) -> str:
        out = ["| variant | change | stuck | final loss | val acc | s/epoch |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            out.append(f"| {r['variant']} | {r['change']} | {r['stuck']}/{r['runs']} | "
                       f"{r['final_loss']:.3f} | {r['val_acc']:.2f} | {r['s_per_epoch']:.1f} |")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def ablate(variants: list[str] | None = None, profile=None, seeds: tuple[int, ...] | None = None,
           data: str = "synthetic", epochs: int | None = None, verbose: bool = False) -> Ablation:
    """The question's network with one change at a time (`facekit.models.VARIANTS`), each over
    ``seeds``, on the profile's data. Answers "which change un-sticks it?"."""
    from facekit.models import VARIANTS, question_min_size, question_variant
    from facekit.profiles import get_profile
    from facekit.story import load_profile_data
    from facekit.train import fit

    prof = get_profile(profile)
    seeds = seeds or prof.seeds
    epochs = epochs or prof.epochs
    train, val = load_profile_data(prof, data)
    rows, histories = [], {}
    for name in variants or list(VARIANTS):
        if name == "first_5x5" and prof.size < question_min_size(first_kernel=5):
            continue
        hs, t = [], time.perf_counter()
        for s in seeds:
            model = question_variant(name, prof.input_shape, train.n_classes, prof.filters, seed=s)
            hs.append(fit(model, train, val, epochs=epochs, batch_size=prof.batch_size, seed=s,
                          label=name))
        row = {"variant": name, "change": VARIANTS[name][0], "runs": len(hs),
               "stuck": sum(h.stuck for h in hs),
               "final_loss": float(np.median([h.final("loss") for h in hs])),
               "val_acc": float(np.median([h.final("val_accuracy") for h in hs])),
               "s_per_epoch": (time.perf_counter() - t) / (len(hs) * epochs)}
        rows.append(row)
        histories[name] = hs
        if verbose:
            print(f"{name:16s} stuck {row['stuck']}/{row['runs']}  loss {row['final_loss']:.3f}  "
                  f"val acc {row['val_acc']:.2f}  {row['s_per_epoch']:.1f} s/epoch", flush=True)
    return Ablation(rows, histories)


from facekit.callbacks import ActivationStats, ChanceAlarm, GradientStats  # noqa: E402

__all__ += ["ActivationStats", "GradientStats", "ChanceAlarm"]
