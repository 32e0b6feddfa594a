"""Trials: test each candidate fix before suggesting it. Every trial trains a fresh copy of the
model (the same initial weights for the same seed) with one change, on the same data sample,
for the same number of steps, and records the loss of every step. The unchanged copy is the
baseline, so a fix is judged by what it does against the same start, not by folklore.

Config-level fixes (initialiser, learning rate) work on any Keras model; structural ones
(BatchNorm after each convolution, fewer convolutions) need a model that is a plain chain of
layers (Sequential, or functional without branches): for others the trial says it was not tried.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from facekit.core import DataLike
from facekit.diagnose.backend import jit_compile
from facekit.diagnose.batchnorm import outputs, recalibrate_batchnorm, scores
from facekit.diagnose.probes import (
    act_name,
    copy_layer,
    copy_model,
    ensure_built,
    fresh_optimizer,
    has_graph,
    sample,
    training_loss,
)

__all__ = ["Trial", "FIXES", "try_fixes", "rebuild", "compile_like", "learning_rate", "is_conv", "ranked",
           "SIZES", "TRIED_FIRST", "SUSPECT_LR",
           "SATURATING", "saturating_layers"]


@dataclass
class Trial:
    """One fix tried for ``steps`` steps: the training loss of every step (``losses``), the accuracy
    on its training images at the end, and - what ranks it - the inference-mode loss and accuracy on
    held-out images (``val_loss``, ``val_accuracy``; BatchNorm statistics recalibrated first), or
    ``why_not`` when it could not be tried on this model."""

    fix: str
    what: str
    losses: list[float] = field(default_factory=list)
    accuracy: float = math.nan
    why_not: str = ""
    val_loss: float = math.nan
    val_accuracy: float = math.nan
    n_val: int = 0
    seconds: float = math.nan  # the training steps' wall time

    @property
    def tried(self) -> bool:
        return not self.why_not

    @property
    def start(self) -> float:
        return float(np.mean(self.losses[:5])) if self.losses else math.nan

    @property
    def end(self) -> float:
        """The mean loss of the last 10 steps (one batch's loss is noisy)."""
        return float(np.mean(self.losses[-10:])) if self.losses else math.nan

    def __str__(self) -> str:
        if not self.tried:
            return f"{self.fix}: not tried - {self.why_not}"
        return (f"{self.fix}: training loss {self.start:.3f} -> {self.end:.3f} in {len(self.losses)} steps; "
                f"held-out {self.val_loss:.3f}, accuracy {self.val_accuracy:.2f}")


# ----------------------------------------------------------------------------- rebuilding

def is_conv(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D)


def _as_chain(model: keras.Model) -> list[keras.layers.Layer] | None:
    """The model's layers in order when it is a plain chain (each layer feeds the next), else None."""
    if not has_graph(model):
        return None
    layers = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    previous = model.inputs[0]
    for la in layers:
        nodes = la._inbound_nodes  # noqa: SLF001 - no public graph walker; tests/test_trials.py pins it
        if len(nodes) != 1 or len(nodes[0].input_tensors) != 1 or nodes[0].input_tensors[0] is not previous:
            return None
        previous = nodes[0].output_tensors[0]
    return layers


def _fresh(layer: keras.layers.Layer, **changes: Any) -> keras.layers.Layer:
    return copy_layer(layer, keep_name=False, **changes)


SATURATING = ("sigmoid", "tanh", "hard_sigmoid", "softsign")  # slopes at most 1 (sigmoid: 1/4)


def saturating_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The hidden layers (not the output layer) whose activation saturates (`SATURATING`)."""
    return [la for la in model.layers[:-1] if act_name(la) in SATURATING]


def _as_relu(layer: keras.layers.Layer) -> keras.layers.Layer:
    """``layer`` with a ReLU instead of a saturating activation (He init where it has a kernel)."""
    if act_name(layer) not in SATURATING:
        return _fresh(layer)
    if isinstance(layer, keras.layers.Activation):
        return keras.layers.Activation("relu")
    extra = {"kernel_initializer": "he_normal"} if "kernel_initializer" in layer.get_config() else {}
    return _fresh(layer, activation="relu", **extra)


def rebuild(model: keras.Model, *, kernel_initializer: str | None = None, batch_norm: bool = False,
            fewer_layers: bool = False, relu: bool = False, seed: int = 0) -> keras.Model:
    """A copy of ``model`` with fresh weights (drawn with ``seed``) and the given changes.

    ``kernel_initializer`` replaces the initialiser of every layer that has one (any model);
    ``batch_norm`` puts BatchNormalization between each convolution (in a network without any:
    each hidden Dense layer) and its activation;
    ``fewer_layers`` keeps only the first convolution of each run of convolutions (between
    poolings). The structural changes raise ValueError when the model is not a plain chain.
    """
    keras.utils.set_random_seed(seed)
    if relu:
        hidden = saturating_layers(model)
        if not hidden:
            raise ValueError("no sigmoid or tanh hidden layers")
        last = model.layers[-1]
        return copy_model(model, layer_fn=lambda la: _fresh(la) if la is last else _as_relu(la),
                          weights=False)
    if kernel_initializer and not has_graph(model):
        raise ValueError(f"{type(model).__name__} is subclassed: its initialisers are set in its own code")
    if not (batch_norm or fewer_layers):
        return copy_model(model, layer_fn=lambda la: _fresh(la, kernel_initializer=kernel_initializer)
                          if kernel_initializer and "kernel_initializer" in la.get_config() else _fresh(la),
                          weights=False)
    chain = _as_chain(model)
    if chain is None:
        raise ValueError("the model is not a plain chain of layers (branches, several inputs, or "
                         "subclassed)")
    convs = [la for la in chain if is_conv(la)]
    dense = [la for la in chain[:-1] if isinstance(la, keras.layers.Dense)] if not convs else []
    if not convs and not (batch_norm and dense):
        raise ValueError("the model has no convolutions to change")
    if batch_norm and any(isinstance(la, keras.layers.BatchNormalization) for la in chain):
        raise ValueError("the model already has BatchNormalization")
    out: list[keras.layers.Layer] = []
    previous_conv = False
    for la in chain:
        conv = is_conv(la)
        if fewer_layers and conv and previous_conv:
            continue  # a second convolution in a row
        if not isinstance(la, keras.layers.Dropout):
            previous_conv = conv or (previous_conv and not isinstance(
                la, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D))
        if batch_norm and (conv or la in dense):
            act = act_name(la) or "linear"
            out += [_fresh(la, activation="linear", use_bias=False), keras.layers.BatchNormalization()]
            if act != "linear":
                out.append(keras.layers.Activation(act))
            continue
        out.append(_fresh(la, kernel_initializer=kernel_initializer)
                   if kernel_initializer and "kernel_initializer" in la.get_config() else _fresh(la))
    if fewer_layers and sum(is_conv(la) for la in out) == len(convs):
        raise ValueError("no two convolutions in a row to thin out")
    new = keras.Sequential([keras.Input(model.input_shape[1:]), *out], name=f"{model.name}_rebuilt")
    if new.output_shape != model.output_shape:
        raise ValueError(f"the changed model's output {new.output_shape} differs from {model.output_shape}")
    return new


# ----------------------------------------------------------------------------- the trials

def learning_rate(model: keras.Model) -> float | None:
    """The compiled model's learning rate; None when it has no optimizer or a schedule."""
    opt = getattr(model, "optimizer", None)
    try:
        return float(keras.ops.convert_to_numpy(opt.learning_rate)) if opt is not None else None
    except (TypeError, ValueError):
        return None


def compile_like(new: keras.Model, model: keras.Model, learning_rate: float,
                 p: np.ndarray | None = None) -> keras.Model:
    """Compile ``new`` with ``model``'s optimizer (a fresh one, at ``learning_rate``) and loss
    (`facekit.diagnose.probes.training_loss` of ``model``'s outputs ``p``)."""
    new.compile(optimizer=fresh_optimizer(model, learning_rate),
                loss=training_loss(model, p if p is not None else np.full((1, 2), 0.5)),
                metrics=["accuracy"], jit_compile=jit_compile())
    return new


# name -> (what it changes, how to build the trial model from (model, seed, learning rate))
FIXES: dict[str, tuple[str, Callable[[keras.Model, int, float], tuple[keras.Model, float]]]] = {
    "baseline": ("the model unchanged, fresh weights", lambda m, s, lr: (rebuild(m, seed=s), lr)),
    "he_init": ("He-normal initialisation (kernel_initializer='he_normal')",
                lambda m, s, lr: (rebuild(m, kernel_initializer="he_normal", seed=s), lr)),
    "lower_lr": ("learning rate / 10", lambda m, s, lr: (rebuild(m, seed=s), lr / 10)),
    "batch_norm": ("BatchNormalization between each convolution and its activation",
                   lambda m, s, lr: (rebuild(m, batch_norm=True, seed=s), lr)),
    "fewer_layers": ("only the first convolution of each run of convolutions",
                     lambda m, s, lr: (rebuild(m, fewer_layers=True, seed=s), lr)),
    "relu": ("ReLU instead of sigmoid/tanh in the hidden layers (He-normal init)",
             lambda m, s, lr: (rebuild(m, relu=True, seed=s), lr)),  # tried when the model has them
    # tried only after "lower_lr" helped, to size the fault (`SIZES`)
    "lower_lr_30": ("learning rate / 30", lambda m, s, lr: (rebuild(m, seed=s), lr / 30)),
    "lower_lr_100": ("learning rate / 100", lambda m, s, lr: (rebuild(m, seed=s), lr / 100)),
}
TRIED_FIRST = ("baseline", "he_init", "lower_lr", "batch_norm", "fewer_layers")  # try_fixes' default


def ranked(trials: list[Trial]) -> list[Trial]:
    """Tried fixes whose held-out accuracy (inference mode) beat the unchanged model's by more than
    one image, best first (ties: the lower held-out loss). Accuracy, not loss, ranks: a copy that
    memorised its images in 100 steps makes confident mistakes, and the loss punishes those more
    than it rewards what the copy got right (measured: an MLP at lr 0.05 reached held-out loss 7.2
    at accuracy 0.25 against the unchanged copy's 2.04 at 0.20)."""
    base = next((t for t in trials if t.fix == "baseline"), None)
    if base is None:
        return []
    better = [t for t in trials if t.fix != "baseline" and t.tried
              and t.val_accuracy > base.val_accuracy + 1.5 / max(t.n_val, 1)]
    return sorted(better, key=lambda t: (-t.val_accuracy, t.val_loss))


# the learning-rate trials that size a fault once "learning rate / 10" has helped (`FIXES`' lower_lr_<k>)
SIZES = (30, 100)
SUSPECT_LR = 1e-3  # above Keras' default Adam rate the larger steps are tried whatever / 10 did


def _changes(model: keras.Model, copy: keras.Model) -> str:
    """What a structural fix changes on this model, counted: layers and parameters."""
    def count(m: keras.Model, kind: type | tuple) -> int:
        return sum(isinstance(la, kind) for la in m.layers)

    conv = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    parts = []
    if count(copy, conv) != count(model, conv):
        parts.append(f"{count(model, conv)} -> {count(copy, conv)} convolutions")
    bn = keras.layers.BatchNormalization
    if count(copy, bn) != count(model, bn):
        k = count(copy, bn) - count(model, bn)
        parts.append(f"+{k} BatchNormalization layer" + ("s" if k != 1 else ""))
    parts.append(f"{model.count_params():,} -> {copy.count_params():,} parameters")
    return "; ".join(parts)


class _Clock:
    """Spends a time budget over the trials: the baseline's steps are timed, and every trial gets
    the number of steps the budget affords them all (at least ``least``, at most ``steps``)."""

    def __init__(self, budget: float | None, steps: int, n_trials: int, least: int = 10):
        self.budget, self.steps, self.n_trials, self.least = budget, steps, n_trials, least
        self.start = time.perf_counter()

    def plan(self, first: float, each: float) -> int:
        """Steps per trial after the baseline's first step took ``first`` s and later ones ``each``."""
        if self.budget is None:
            return self.steps
        left = self.budget - (time.perf_counter() - self.start)
        per_trial = left / self.n_trials + each  # the baseline has run its first steps already
        overhead = max(first - each, 0.0)  # tracing the step of every new copy
        return int(min(self.steps, max(self.least, (per_trial - overhead) / max(each, 1e-6))))

    def left(self) -> float:
        return math.inf if self.budget is None else self.budget - (time.perf_counter() - self.start)


def _train(trial: Trial, copy: keras.Model, order: np.ndarray, x: np.ndarray, y: np.ndarray,
           xv: np.ndarray, yv: np.ndarray) -> None:
    start = time.perf_counter()
    for idx in order:
        copy.reset_metrics()
        trial.losses.append(float(np.ravel(copy.train_on_batch(x[idx], y[idx]))[0]))
    trial.seconds = time.perf_counter() - start
    trial.accuracy = float(np.mean(outputs(copy, x).argmax(-1) == y))
    recalibrate_batchnorm(copy, x)
    held = scores(copy, (xv, yv))
    trial.val_loss, trial.val_accuracy, trial.n_val = held["loss"], held["accuracy"], len(yv)


def _sized(model: keras.Model, seed: int, lr: float, probs: np.ndarray, clock: _Clock,
           batches: tuple) -> list[Trial]:
    """The learning rate at / 30 and / 100 (`SIZES`), trained on the same ``batches`` (order, x, y,
    xv, yv) while the budget lasts."""
    out = []
    for k in SIZES:
        trial = Trial(f"lower_lr_{k}", f"learning rate {lr:.3g} -> {lr / k:.3g}")
        out.append(trial)
        if clock.left() < 0:
            trial.why_not = "over the time budget"
            continue
        copy, rate = FIXES[trial.fix][1](model, seed, lr)
        _train(trial, compile_like(copy, model, rate, probs), *batches)
    return out


def try_fixes(model: keras.Model, data: DataLike, fixes: list[str] | None = None, steps: int = 100,
              batch_size: int = 16, n: int = 256, seed: int = 0, val: DataLike | None = None,
              budget: float | None = None) -> list[Trial]:
    """Try each fix of `FIXES` (and the baseline) on a fresh copy of ``model``: ``steps`` training
    steps on batches drawn from the same images, every trial seeing the same batches; then judge
    each copy in inference mode on held-out images (``val``, else the last quarter of the ``n``
    sampled images, never trained on), its BatchNorm statistics recalibrated on the training
    images first (`facekit.diagnose.recalibrate_batchnorm`). The model itself is untouched.
    When "learning rate / 10" beats the baseline, or the rate is above 1e-3, /30 and /100 are tried
    too (`SIZES`): the size of the fault, measured. ``budget`` (seconds for all the trials) times
    the baseline's first steps and gives every trial the steps the budget affords (at least 10, at
    most ``steps``).
    Returns the trials, baseline first."""
    x, y = sample(data, n, seed)
    if val is not None:
        xv, yv = sample(val, max(n // 4, 1), seed)
    else:
        cut = len(x) - max(len(x) // 4, 1)
        x, y, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
    ensure_built(model, x)
    probs = outputs(model, x[:2])
    lr = learning_rate(model) or 1e-3
    names = ["baseline", *[f for f in (fixes or TRIED_FIRST) if f != "baseline"]]
    names += ["relu"] if fixes is None and saturating_layers(model) else []
    order = np.random.default_rng(seed).integers(0, len(x), (steps, min(batch_size, len(x))))
    clock = _Clock(budget, steps, len(names) + (len(SIZES) if "lower_lr" in names else 0))
    trials = []
    for name in names:
        what, make = FIXES[name]
        if name == "lower_lr":
            what = f"learning rate {lr:g} -> {lr / 10:g}"
        elif name == "batch_norm" and not any(is_conv(la) for la in model.layers):
            what = "BatchNormalization between each hidden Dense layer and its activation"
        trial = Trial(name, what)
        trials.append(trial)
        try:
            copy, rate = make(model, seed, lr)
        except ValueError as e:
            trial.why_not = str(e)
            continue
        if name in ("batch_norm", "fewer_layers"):
            trial.what += f" ({_changes(model, copy)})"
        compile_like(copy, model, rate, probs)
        if name == "baseline" and budget is not None:  # time its first steps, then plan every trial's
            t = [time.perf_counter()]
            for idx in order[:3]:
                copy.train_on_batch(x[idx], y[idx])
                t.append(time.perf_counter())
            order = order[:clock.plan(t[1] - t[0], (t[3] - t[1]) / 2)]
            copy, rate = make(model, seed, lr)  # the same fresh start again
            compile_like(copy, model, rate, probs)
        _train(trial, copy, order, x, y, xv, yv)
    if "lower_lr" in names and (lr > 1.01 * SUSPECT_LR or any(t.fix == "lower_lr" for t in ranked(trials))):
        trials += _sized(model, seed, lr, probs, clock, (order, x, y, xv, yv))  # how large is the fault?
    return trials
