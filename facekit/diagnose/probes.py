"""Probes: what a model computes inside. Post-activation statistics per layer, the model's
outputs as centred logits, cross-entropy from any softmax or logit output, a data sample.

The bottom of `facekit.diagnose`: the checks, the doctor and the callbacks all read through these
functions, so each rule (what counts as a hidden activation, a dead channel, a logit) is written
once.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from facekit.core import DataLike, as_arrays

__all__ = ["LayerStats", "StatsSum", "layer_stats", "dead_share", "activation_layers", "act_name",
           "ensure_built", "probe_model", "outputs_are_probs", "centered_logits", "logit_spread",
           "cross_entropy", "sample", "layer_of", "fresh_optimizer", "loss_function", "compiled_loss",
           "loss_from_logits", "copy_layer", "copy_model", "CopyError", "n_outputs",
           "output_shape", "training_loss", "has_graph"]

_LINEAR = {"linear", "softmax"}  # not hidden activations (a hidden sigmoid or tanh is one)


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


_OUTPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its output shape
_INPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> one image it was built on


def has_graph(model: keras.Model) -> bool:
    """Is ``model`` a graph of layers (Sequential or functional), not a subclassed model?"""
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def ensure_built(model: keras.Model, x: np.ndarray) -> None:
    """Models built without keras.Input get their graph (or, subclassed, their weights) from one
    call; the output shape of a model with no graph is remembered for `n_outputs`."""
    try:
        model.inputs  # noqa: B018 - raises or is None when the model has no graph yet
        if model.inputs:
            return
    except (AttributeError, ValueError):
        pass
    out = model(x[:1], training=False)
    _INPUTS[model] = np.zeros_like(x[:1])
    if not hasattr(model, "output_shape") or model not in _OUTPUTS:
        _OUTPUTS[model] = (None, *tuple(out.shape)[1:]) if hasattr(out, "shape") else None


def output_shape(model: keras.Model) -> tuple | list | None:
    """``model.output_shape``, or for a subclassed model the shape its last call returned."""
    try:
        return model.output_shape
    except (AttributeError, ValueError):
        return _OUTPUTS.get(model)


def n_outputs(model: keras.Model) -> int:
    """How many outputs (classes) the model's one output has."""
    shape = output_shape(model)
    return int(shape[-1])  # type: ignore[index]


class CopyError(ValueError):
    """The model cannot be copied (a subclassed model whose class needs constructor arguments)."""


def copy_layer(layer: keras.layers.Layer, keep_name: bool = True, **changes: Any) -> keras.layers.Layer:
    """A new layer like ``layer`` (its config with ``changes``), unbuilt. A ``Lambda`` layer keeps
    its Python function itself: rebuilding one from its config is what Keras' safe mode refuses."""
    if isinstance(layer, keras.layers.Lambda):
        return keras.layers.Lambda(layer.function, arguments=layer.arguments, mask=layer.mask,
                                   name=layer.name if keep_name else None)
    cfg = layer.get_config()
    if not keep_name:
        cfg.pop("name", None)  # new names: Keras makes them unique
    cfg.update(changes)
    return type(layer).from_config(cfg)


def copy_model(model: keras.Model, x: np.ndarray | None = None,
               layer_fn: Callable[[keras.layers.Layer], keras.layers.Layer] | None = None,
               weights: bool = True) -> keras.Model:
    """The same layers (through ``layer_fn``, default `copy_layer`), another model, with the same
    weights when ``weights``: training or recalibrating it leaves ``model`` as it was. A subclassed
    model is copied by weights - a new instance of its class, built on ``x[:1]`` - when its
    config cannot rebuild it; `CopyError` says when neither works."""
    try:
        clone = keras.models.clone_model(model, clone_function=layer_fn or copy_layer)
    except (TypeError, ValueError, NotImplementedError) as e:
        x = x if x is not None else _INPUTS.get(model)
        try:
            clone = type(model)()
            if x is None:
                raise CopyError("no images to build the copy on") from e
            clone(x[:1], training=False)
        except Exception as e2:  # noqa: BLE001 - a user's class can raise anything; say it in one line
            raise CopyError(f"cannot copy {type(model).__name__}: keras.models.clone_model and "
                             f"{type(model).__name__}() both fail ({type(e2).__name__}); give it "
                             "get_config/from_config, or build it with the functional API") from e2
    if weights:
        clone.set_weights(model.get_weights())
    return clone


def act_name(layer: keras.layers.Layer) -> str | None:
    act = getattr(layer, "activation", None)
    if act is not None:
        return getattr(act, "__name__", type(act).__name__).lower()
    if isinstance(layer, keras.layers.ReLU | keras.layers.LeakyReLU | keras.layers.ELU):
        return type(layer).__name__.lower()
    return None


def activation_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers whose output is a hidden activation (after ReLU etc.), in order."""
    out = model.layers[-1]
    return [la for la in model.layers
            if la is not out and (act_name(la) or "linear") not in _LINEAR
            and not isinstance(la, keras.Model)]


def probe_model(model: keras.Model, layers: list[keras.layers.Layer]) -> keras.Model:
    """A model from ``model``'s input to the outputs of ``layers`` (raises AttributeError or
    ValueError for a subclassed model: it has no graph to probe)."""
    inp = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inp, [la.output for la in layers])


def outputs_are_probs(model: keras.Model, p: np.ndarray) -> bool:
    return act_name(model.layers[-1]) == "softmax" or (
        p.min() >= 0 and np.allclose(p.sum(-1), 1, atol=1e-3))


def centered_logits(model: keras.Model, p: np.ndarray) -> np.ndarray:
    """Logits up to a per-image constant (log-probabilities minus their mean over classes)."""
    z = np.log(np.clip(p.astype(np.float64), 1e-30, 1)) if outputs_are_probs(model, p) else p
    return z - z.mean(-1, keepdims=True)


def logit_spread(model: keras.Model, p: np.ndarray) -> float:
    """How much the outputs ``p`` change from image to image: the std over images of the centred
    logits, averaged over classes."""
    return float(centered_logits(model, p).std(0).mean())


def cross_entropy(model: keras.Model, p: np.ndarray, y: np.ndarray) -> float:
    z = centered_logits(model, p)
    z = z - z.max(-1, keepdims=True)  # stable log-softmax
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def loss_from_logits(model: keras.Model) -> bool | None:
    """Does the compiled loss expect logits (``from_logits=True``)? None when the model is not
    compiled or its loss does not say (a function of the user's own)."""
    loss = getattr(model, "loss", None)
    if loss is None:
        return None
    if isinstance(loss, str):
        return False if "crossentropy" in loss else None  # Keras' named losses take probabilities
    if isinstance(loss, keras.losses.Loss):
        value = loss.get_config().get("from_logits")
        return None if value is None else bool(value)
    return None


def loss_function(model: keras.Model, p: np.ndarray) -> Callable[[Any, Any], Any]:
    """The loss ``model`` is judged by, as (labels, outputs) -> mean over the batch: its compiled
    loss when it has one, else sparse categorical cross-entropy on its outputs ``p`` (from logits
    when they are not probabilities)."""
    loss = getattr(model, "loss", None)
    if loss is None or isinstance(loss, list | tuple | dict):
        logits = not outputs_are_probs(model, p)
        return lambda y, out: keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, out, from_logits=logits))
    fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    return lambda y, out: keras.ops.mean(fn(y, out))


def training_loss(model: keras.Model, p: np.ndarray) -> Any:
    """What a copy of ``model`` is compiled with: the model's own loss when it has one (and one
    output), else sparse categorical cross-entropy, from logits when the outputs ``p`` are not
    probabilities."""
    loss = getattr(model, "loss", None)
    if loss is None or isinstance(loss, list | tuple | dict):
        if outputs_are_probs(model, p):
            return "sparse_categorical_crossentropy"
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return loss


def compiled_loss(model: keras.Model, p: np.ndarray, y: np.ndarray) -> float:
    """The value of `loss_function` on outputs ``p`` and labels ``y`` (what Keras' fit logs for them)."""
    return float(keras.ops.convert_to_numpy(loss_function(model, p)(y, p)))


def sample(data: DataLike, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_arrays(data)
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx].astype(np.int64)


def layer_stats(name: str, a: np.ndarray, near_zero: float = 1e-3) -> LayerStats:
    """`LayerStats` of one activation array (batch first, channels last)."""
    return StatsSum(near_zero).add(a).stats(name)


class StatsSum:
    """`LayerStats` summed over chunks of images, so a large input (the question's 200 px and 256
    filters: 40 MB of activations an image in the first layer) is measured in bounded memory."""

    def __init__(self, near_zero: float = 1e-3):
        self.near_zero, self.size, self.total, self.squares = near_zero, 0, 0.0, 0.0
        self.zeros = self.near = 0
        self.alive: np.ndarray | None = None

    def add(self, a: np.ndarray) -> StatsSum:
        flat = _per_channel(a)
        nz = flat != 0
        self.size += flat.size
        self.total += float(flat.sum(dtype=np.float64))
        self.squares += float(np.square(flat, dtype=np.float64).sum())
        self.zeros += flat.size - np.count_nonzero(nz)
        self.near += np.count_nonzero(nz & (flat > -self.near_zero) & (flat < self.near_zero))
        alive = nz.any(0)
        self.alive = alive if self.alive is None else self.alive | alive
        return self

    def stats(self, name: str) -> LayerStats:
        n = max(self.size, 1)
        mean, ms = self.total / n, self.squares / n
        dead = float((~self.alive).mean()) if self.alive is not None else 0.0
        return LayerStats(name, mean, math.sqrt(max(ms - mean * mean, 0.0)), math.sqrt(ms),
                          self.zeros / n, self.near / n, dead)


def dead_share(a: np.ndarray) -> float:
    """`LayerStats.dead` alone, in one pass over ``a``: the share of channels that are zero for
    every position of every image (for probes that run after every batch)."""
    return _dead(_per_channel(a) != 0)


def _per_channel(a: np.ndarray) -> np.ndarray:
    """An activation array (batch first, channels last) as float32, one column per channel."""
    a = np.asarray(a, dtype=np.float32)
    return a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)


def _dead(nonzero: np.ndarray) -> float:
    return float((~nonzero.any(0)).mean())


def layer_of(var_path: str) -> str:
    return var_path.split("/")[-2] if "/" in var_path else var_path


def fresh_optimizer(model: keras.Model, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """A new optimizer of the kind and settings ``model`` was compiled with (Adam when it was not),
    at ``learning_rate`` when given: a copy trained with it starts from step 0, whatever the
    original has done."""
    opt = getattr(model, "optimizer", None)
    cfg = opt.get_config() if opt is not None else keras.optimizers.Adam().get_config()
    if learning_rate is not None:
        cfg["learning_rate"] = learning_rate
    return type(opt or keras.optimizers.Adam()).from_config(cfg)
