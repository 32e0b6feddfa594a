"""Keras callbacks that watch a training run: each records one thing well.

`ActivationStats` - post-activation statistics and histograms per layer (for `color_dim`);
`GradientStats` - gradient norm per layer over training; `ChanceWatch` - the base of the callbacks
that judge a run epoch by epoch against chance (`ChanceAlarm` here, which says when the loss sits at
ln C and what to check next; `facekit.ablation.StopWhenCertain`). Also importable from
`facekit.diagnose`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from facekit.core import CHANCE_TOL, deep_layers, sits_at_chance
from facekit.diagnose.backend import compiled_forward, squared_gradient_norms
from facekit.diagnose.probes import (
    activation_layers,
    layer_of,
    layer_stats,
    loss_function,
    n_outputs,
    probe_model,
)
from facekit.text import wrap

__all__ = ["ActivationStats", "GradientStats", "ChanceWatch", "ChanceAlarm"]


class _EveryN(keras.callbacks.Callback):
    """Calls ``self._record()`` at the start of training and every ``every`` batches; the batch
    counts of the records are in ``steps``."""

    def __init__(self, every: int):
        super().__init__()
        self.every, self._step = every, 0
        self.steps: list[int] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._step += 1
        if self._step % self.every == 0:
            self.model  # noqa: B018 - on JAX, reading it puts the weights back in the model mid-epoch
            self._record()

    def _record(self) -> None:
        raise NotImplementedError

    def same_recording(self, other: object) -> bool:
        """True when ``other`` records the same thing (class, ``every`` and probe data)."""
        probes = [k for k in ("x", "y") if hasattr(self, k)]
        return (type(other) is type(self) and other.every == self.every
                and all(np.array_equal(getattr(self, k), getattr(other, k)) for k in probes))

    def adopt(self, other: _EveryN) -> None:
        """Take ``other``'s records (`facekit.train.fit` with ``reuse=True``)."""
        self.__dict__.update({k: v for k, v in other.__dict__.items() if k not in ("_model", "model")})


class ActivationStats(_EveryN):
    """Every ``every`` batches, run a fixed probe batch through the model and record, per hidden
    activation layer (after the activation): mean, std, exact-zero share, near-zero share
    (0 < |a| < ``near_zero``), dead-channel share and a histogram of the non-zero values.

    The histogram range adapts to the data: 0 .. 1.5 x the largest value seen at the first
    record, per layer (later values above it land in the last bin). Exact zeros are counted
    separately, so a layer going dead shows as ``zero`` -> 1, not as a spike in bin 0.
    Statistics use every value; a histogram uses an evenly strided sample of at most
    ``max_values`` values per layer (its bins sum to the sample's non-zero share).

    Taught in chapter 03, section 5.
    """

    def __init__(self, x_probe: np.ndarray, every: int = 10, bins: int = 40, near_zero: float = 1e-3,
                 max_values: int = 100_000):
        super().__init__(every)
        self.x, self.max_values = np.asarray(x_probe), max_values
        self.bins, self.near_zero = bins, near_zero
        self.stats: dict[str, list] = {}
        self.hists: dict[str, list[np.ndarray]] = {}
        self.edges: dict[str, np.ndarray] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.layers = activation_layers(self.model)
        self._forward = compiled_forward(probe_model(self.model, self.layers))  # compiled once
        self._record()

    def _record(self) -> None:
        outs = self._forward(self.x)
        self.steps.append(self._step)
        for la, a in zip(self.layers, outs):
            self.stats.setdefault(la.name, []).append(layer_stats(la.name, a, self.near_zero))
            a = a.reshape(-1)[::max(1, a.size // self.max_values)]  # histogram of <= max_values
            nonzero = np.abs(a[a != 0])
            if la.name not in self.edges:
                hi = float(nonzero.max()) * 1.5 if nonzero.size else 1.0
                self.edges[la.name] = np.linspace(0, hi, self.bins + 1)
            e = self.edges[la.name]
            h, _ = np.histogram(np.minimum(nonzero, e[-1] * (1 - 1e-9)), bins=e)
            self.hists.setdefault(la.name, []).append(h / max(a.size, 1))

    def series(self, key: str) -> dict[str, np.ndarray]:
        """``{layer: values over records}`` for a `LayerStats` field, e.g. ``series("dead")``."""
        return {k: np.array([getattr(s, key) for s in v]) for k, v in self.stats.items()}

    def deep_dead(self) -> np.ndarray:
        """The deep layers' mean dead-channel share at each record (`facekit.core.deep_layers`:
        conv7-conv10 of the question's network; chapter 03, sections 5 and 6)."""
        dead = self.series("dead")
        deep = deep_layers(list(dead))
        return sum((dead[k] for k in deep), np.zeros(len(self.steps))) / len(deep)


class GradientStats(_EveryN):
    """Every ``every`` batches, compute the gradient of the loss on a fixed probe batch and
    record its norm per layer (all of the layer's weights together).

    Taught in chapter 03, section 5."""

    def __init__(self, x_probe: np.ndarray, y_probe: np.ndarray, every: int = 10):
        super().__init__(every)
        self.x, self.y = np.asarray(x_probe), np.asarray(y_probe)
        self.norms: dict[str, list[float]] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        model = self.model
        loss_fn = loss_function(model, keras.ops.convert_to_numpy(model(self.x[:2], training=False)))
        self._vars, self._squared_norms = model.trainable_variables, squared_gradient_norms(model, loss_fn)
        self._record()

    def _record(self) -> None:
        per: dict[str, float] = {}
        for v, g2 in zip(self._vars, self._squared_norms(self.x, self.y)):
            if g2 >= 0:
                per[layer_of(v.path)] = per.get(layer_of(v.path), 0.0) + g2
        self.steps.append(self._step)
        for k, g2 in per.items():
            self.norms.setdefault(k, []).append(math.sqrt(g2))


class ChanceWatch(keras.callbacks.Callback):
    """Keeps a run's epoch logs against chance and calls ``judge(epoch, logs)`` after each epoch
    from ``first`` (0-based) on: ``losses`` (training loss per epoch) and ``val`` (``val_accuracy``,
    inference mode, when the logs have it), cleared at the start of every ``fit``."""

    def __init__(self, first: int = 0):
        super().__init__()
        self.first = first
        self.losses: list[float] = []
        self.val: list[float] = []

    @property
    def n_classes(self) -> int:
        return n_outputs(self.model)

    def sits(self, epochs: int, tol: float = CHANCE_TOL) -> bool:
        """Have the last ``epochs`` training losses sat at ln C (`facekit.core.sits_at_chance`)?"""
        return len(self.losses) >= epochs and sits_at_chance(self.losses, self.n_classes, epochs, tol)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.losses, self.val = [], []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if epoch < self.first:
            return
        self.losses.append(float(logs.get("loss", float("nan"))))
        if "val_accuracy" in logs:
            self.val.append(float(logs["val_accuracy"]))
        self.judge(epoch, logs)

    def judge(self, epoch: int, logs: dict[str, Any]) -> None:
        raise NotImplementedError


class ChanceAlarm(ChanceWatch):
    """Raise the alarm when the training loss sits at ln C for ``patience`` epochs in a row
    (`facekit.core.sits_at_chance` within ``eps``: the rule `History.stuck` uses): print what
    that means and what to check next; with ``stop=True`` also stop training. ``alarm.fired``
    (and ``alarm.fired_epoch``) tell whether it did. With validation data it also watches the
    other symptom: the training loss below ln C while ``val_accuracy`` (inference mode) stays
    within 0.05 of 1/C for ``patience`` epochs (``alarm.guessing`` then holds that epoch)."""

    def __init__(self, patience: int = 3, eps: float = CHANCE_TOL, stop: bool = False,
                 verbose: bool = True):
        super().__init__()
        self.patience, self.eps, self.stop, self.verbose = patience, eps, stop, verbose
        self.fired: bool = False
        self.fired_epoch: int | None = None
        self.guessing: int | None = None

    def _watch_validation(self, epoch: int, c: int) -> None:
        recent = self.val[-self.patience:]
        if (self.guessing is not None or len(recent) < self.patience
                or not all(abs(a - 1 / c) <= 0.05 for a in recent)
                or not all(v < math.log(c) - 2 * self.eps for v in self.losses[-self.patience:])):
            return
        self.guessing = epoch + 1
        if self.verbose:
            print(wrap(f"ChanceAlarm: the training loss is below ln {c} but val_accuracy has stayed at "
                       f"chance ({1 / c:.3f} +/- 0.05) for {self.patience} epochs - in inference mode the "
                       "network still guesses. With BatchNormalization, its moving statistics may not fit "
                       "the network: facekit.diagnose.doctor(model, train, val=val) compares the two "
                       "modes (the 'inference mode' check) and measures recalibrate_batchnorm on a copy."),
                  flush=True)

    def judge(self, epoch: int, logs: dict[str, Any]) -> None:
        c = self.n_classes
        if "val_accuracy" in logs:
            self._watch_validation(epoch, c)
        if self.fired or not self.sits(self.patience, self.eps):
            return
        self.fired, self.fired_epoch = True, epoch + 1
        if self.verbose:
            print(wrap(f"ChanceAlarm: the loss has stayed at ln {c} = {math.log(c):.3f} "
                       f"(+/- {2 * self.eps:g}) for {self.patience} epochs - the network predicts the "
                       "same thing for every image. Next: facekit.diagnose.doctor(model, data, "
                       "trials=True) measures where the signal dies and tries each fix (BatchNorm, fewer "
                       "layers, a lower learning rate, He init) on a copy before suggesting it."),
                  flush=True)
        if self.stop:
            self.model.stop_training = True
