"""BatchNorm's second trap: a network that learns with batch statistics and guesses in inference mode.

In training, ``BatchNormalization`` normalises each batch with that batch's mean and variance and
keeps an exponential moving average of them (Keras' momentum 0.99: the last ~100 steps count) for
inference. A network whose statistics change fast - one leaving the ln C plateau - leaves those
averages behind, and Dropout before a BatchNorm layer shifts the variance between the two modes
(Li et al., CVPR 2019). Keras' ``val_accuracy`` and ``evaluate`` run in inference mode, so the
student's log shows chance while the training-mode accuracy climbs. Chapter 04 section 4 measures it.

`recalibrate_batchnorm` re-estimates the moving statistics from data (as PyTorch's
``swa_utils.update_bn`` and detectron2's PreciseBN do), `PreciseBatchNorm` does it before each
validation, `mode_gap` compares the two modes. Backend-neutral Keras 3: no ``tf.*`` inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from facekit.core import DataLike, as_arrays
from facekit.diagnose.probes import copy_model, cross_entropy
from facekit.text import ROOM, wrap

__all__ = ["batchnorm_layers", "recalibrate_batchnorm", "Recalibration", "PreciseBatchNorm", "mode_gap",
           "BatchNormWatch", "predict_modes", "scores", "outputs", "ModeGap", "kept_statistics"]


def _all_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``model`` once (nested models, Sequential blocks and the sublayers of custom
    Layer classes included; a layer shared between places counted once)."""
    seen: dict[int, keras.layers.Layer] = {}
    for la in model._flatten_layers(include_self=False, recursive=True):  # noqa: SLF001 - Keras' own walker
        seen.setdefault(id(la), la)
    return list(seen.values())


def _sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return list(layer._flatten_layers(include_self=False, recursive=False))  # noqa: SLF001


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's BatchNormalization layers, nested ones included, in order. Frozen ones
    (``trainable=False``) are left out: they use their moving statistics in training too, so they
    hold no trap, and recalibrating would overwrite statistics someone chose to keep.

    Taught in chapter 04, section 4."""
    return [la for la in _all_layers(model)
            if isinstance(la, keras.layers.BatchNormalization) and la.trainable]


@contextlib.contextmanager
def kept_statistics(model: keras.Model) -> Iterator[None]:
    """Within the block the moving statistics may change; afterwards they are what they were."""
    bns = batchnorm_layers(model)
    saved = _moving(bns)
    try:
        yield
    finally:
        for la, (mean, var) in zip(bns, saved):
            la.moving_mean.assign(mean)
            la.moving_variance.assign(var)


def _moving(bns: list[keras.layers.BatchNormalization]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(moving mean, moving variance) of each layer, as arrays."""
    return [(keras.ops.convert_to_numpy(la.moving_mean), keras.ops.convert_to_numpy(la.moving_variance))
            for la in bns]


@contextlib.contextmanager
def _batch_statistics_only(model: keras.Model, dropout: bool = False) -> Iterator[list]:
    """Within the block, ``model(x, training=True)`` puts only the (trainable) BatchNorm layers in
    training mode (batch statistics, moving averages updated); every other leaf layer (Dropout,
    noise, augmentation) runs as in inference, unless ``dropout`` is True. Restored on exit, errors
    included."""
    bns = batchnorm_layers(model)
    absent = object()
    patched: list[tuple[keras.layers.Layer, Any]] = []
    try:
        for la in _all_layers(model):
            if isinstance(la, keras.layers.BatchNormalization) or _sublayers(la):
                continue  # containers pass the call on; their leaves are patched
            if dropout and isinstance(la, keras.layers.Dropout | keras.layers.SpatialDropout2D):
                continue
            before = la.__dict__.get("call", absent)
            original = la.call

            def call(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                if "training" in kwargs:
                    kwargs["training"] = False
                return _original(*args, **kwargs)

            object.__setattr__(la, "call", call)  # an instance attribute: Keras' tracking left out
            patched.append((la, before))
        yield bns
    finally:
        for la, before in reversed(patched):
            if before is absent:
                object.__delattr__(la, "call")
            else:
                object.__setattr__(la, "call", before)


@dataclass
class Recalibration:
    """What `recalibrate_batchnorm` did: how many BatchNorm layers, images and batches."""

    layers: int
    images: int
    batches: int

    def __str__(self) -> str:
        if not self.layers:
            return "no BatchNormalization layer: nothing to recalibrate"
        return wrap(f"recalibrated the moving statistics of {self.layers} BatchNormalization layers "
                    f"on {self.images} images ({self.batches} batches)")


def recalibrate_batchnorm(model: keras.Model, data: DataLike | np.ndarray, batch_size: int = 32,
                          max_batches: int | None = None, dropout: bool = False) -> Recalibration:
    """Re-estimate every BatchNormalization layer's moving mean and variance from ``data``
    (images, ``(x, y)`` or a `Dataset`; usually the training images): the mean of the batch
    statistics over shuffled batches (a fixed shuffle, so class-sorted data gives mixed batches),
    each weighted by its number of images; Dropout and other random layers off during the pass
    (``dropout=True`` leaves Dropout on, to measure its variance shift). In place; trainable
    weights untouched; frozen BatchNorm layers left alone. Works on Sequential, functional and
    nested models and on custom layers that hold BatchNorm.

    >>> print(recalibrate_batchnorm(model, train))
    recalibrated the moving statistics of 10 BatchNormalization layers on 360 images (12 batches)

    Taught in chapter 04, section 4.
    """
    x = data if isinstance(data, np.ndarray) else as_arrays(data)[0]
    if len(x) == 0:
        raise ValueError("recalibrate_batchnorm: no images")
    order = np.random.default_rng(0).permutation(len(x))  # batches of mixed classes, same every call
    starts = list(range(0, len(x), batch_size))[:max_batches]
    with _batch_statistics_only(model, dropout) as bns:
        if not bns:
            return Recalibration(0, 0, 0)
        saved = [la.momentum for la in bns]
        seen = 0
        try:
            for start in starts:
                idx = np.sort(order[start: start + batch_size])
                for la in bns:  # moving = the image-weighted mean of the batch statistics so far
                    la.momentum = seen / (seen + len(idx))
                model(x[idx], training=True)
                seen += len(idx)
        finally:
            for la, m in zip(bns, saved):
                la.momentum = m
    return Recalibration(len(bns), seen, len(starts))


@dataclass
class ModeGap:
    """One model, one set of images, predicted in two modes: ``batch`` (BatchNorm with the batch's own
    statistics, Dropout off) and ``inference`` (moving statistics: what `evaluate` and
    ``val_accuracy`` use). Accuracy, loss and how many distinct classes the predictions use."""

    n: int
    batch: dict[str, float]
    inference: dict[str, float]

    @property
    def collapsed(self) -> bool:
        """Inference mode predicts far fewer classes and scores far lower than batch statistics."""
        b, i = self.batch, self.inference
        return i["classes"] <= max(2, b["classes"] // 2) and i["accuracy"] < b["accuracy"] - 0.15

    def __str__(self) -> str:
        b, i = self.batch, self.inference
        return wrap(f"on {self.n} images: batch statistics accuracy {b['accuracy']:.2f}, loss "
                    f"{b['loss']:.3f}, {_classes(b['classes'])} predicted; inference mode accuracy "
                    f"{i['accuracy']:.2f}, loss {i['loss']:.3f}, {_classes(i['classes'])} predicted",
                    room=ROOM)


def _classes(n: float) -> str:
    return f"{n:.0f} class" + ("" if round(n) == 1 else "es")


def _scores(model: keras.Model, out: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(np.mean(out.argmax(-1) == y)), "loss": cross_entropy(model, out, y),
            "classes": float(len(np.unique(out.argmax(-1))))}


def outputs(model: keras.Model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The model's inference-mode outputs for ``x``, by eager calls (no traced predict function
    per model, so no retracing warnings when many copies are judged)."""
    return np.concatenate([keras.ops.convert_to_numpy(model(x[s: s + batch_size], training=False))
                           for s in range(0, len(x), batch_size)])


def predict_modes(model: keras.Model, x: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The outputs for ``x`` with batch statistics (Dropout off) and in inference mode. The moving
    statistics are left as they were (the batch-statistics passes update them; they are restored)."""
    inference = outputs(model, x, batch_size)  # first: the passes below move the averages
    order = np.random.default_rng(0).permutation(len(x))  # mixed batches, as in training
    batch = np.zeros_like(inference)
    with kept_statistics(model), _batch_statistics_only(model):
        for s in range(0, len(x), batch_size):
            idx = order[s: s + batch_size]
            batch[idx] = keras.ops.convert_to_numpy(model(x[idx], training=True))
    return batch, inference


def mode_gap(model: keras.Model, data: DataLike, batch_size: int = 32) -> ModeGap:
    """Compare batch-statistics and inference-mode predictions on ``data`` (`ModeGap`).

    Taught in chapter 04, section 4."""
    x, y = as_arrays(data)
    batch, inference = predict_modes(model, x, batch_size)
    return ModeGap(len(x), _scores(model, batch, y), _scores(model, inference, y))


def scores(model: keras.Model, data: DataLike, batch_size: int = 32) -> dict[str, float]:
    """Inference-mode accuracy, loss and distinct classes predicted on ``data``."""
    x, y = as_arrays(data)
    return _scores(model, outputs(model, x, batch_size), y)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recalibrate the BatchNorm moving statistics on ``data`` (the training images) before each
    validation of ``fit`` and at the end of training, so ``val_accuracy`` in the log - and the
    trained model - use statistics of the network as it is now, not a lagging average
    (`recalibrate_batchnorm`). Training itself is unchanged: training mode uses batch statistics.

        model.fit(x, y, validation_data=(xv, yv), callbacks=[PreciseBatchNorm(x)])
    """

    def __init__(self, data: DataLike | np.ndarray, batch_size: int = 32, max_batches: int | None = None):
        super().__init__()
        self.data, self.batch_size, self.max_batches = data, batch_size, max_batches
        self.last: Recalibration | None = None
        self._training = False

    def _recalibrate(self) -> None:
        self.last = recalibrate_batchnorm(self.model, self.data, self.batch_size, self.max_batches)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._training = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._fresh = False

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._training:  # fit's own validation, not a user's evaluate()
            self._recalibrate()
            self._fresh = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._fresh = False

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._training = False
        if not getattr(self, "_fresh", False):
            self._recalibrate()


class BatchNormWatch(keras.callbacks.Callback):
    """Read a BatchNorm network's held-out accuracy four ways at every epoch end, without changing
    the run (moving statistics restored after each reading; no random layer is sampled):

    - ``moving``: inference mode with the moving statistics as trained (Keras' ``val_accuracy``);
    - ``recalibrated``: after `recalibrate_batchnorm` on ``x_train`` (Dropout off);
    - ``momentum_<m>``: the moving statistics Keras would hold had the layers been built with
      momentum ``m``: the same batch statistics (recovered from each step's update of the 0.99
      average; training mode never reads the averages, so the weights would be the same) averaged
      at ``m``;
    - ``batch``: batch statistics of the validation batches themselves (Dropout off).

    At the end of training it also reads ``recalibrated_dropout_on`` (the pass with Dropout on: the
    variance shift). ``epochs[i]`` holds ``val_accuracy_<way>`` and ``val_classes_<way>``."""

    def __init__(self, x_train: np.ndarray, val: DataLike, momenta: tuple[float, ...] = (0.9,),
                 batch_size: int = 32):
        super().__init__()
        self.x_train, (self.xv, self.yv) = np.asarray(x_train), as_arrays(val)
        self.momenta, self.batch_size = momenta, batch_size
        self.epochs: list[dict[str, float]] = []
        self.final: dict[str, float] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._bns, self.epochs = batchnorm_layers(self.model), []
        self._shadow = {m: _moving(self._bns) for m in self.momenta}

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._before = _moving(self._bns)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        after = _moving(self._bns)
        for m, shadow in self._shadow.items():
            for k, (la, (m0, v0), (m1, v1)) in enumerate(zip(self._bns, self._before, after)):
                a = float(la.momentum)
                mean, var = (m1 - a * m0) / (1 - a), (v1 - a * v0) / (1 - a)  # this batch's statistics
                shadow[k] = (m * shadow[k][0] + (1 - m) * mean, m * shadow[k][1] + (1 - m) * var)

    def _read(self, way: str, out: dict[str, float]) -> None:
        s = scores(self.model, (self.xv, self.yv), self.batch_size)
        out[f"val_accuracy_{way}"], out[f"val_classes_{way}"] = s["accuracy"], s["classes"]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row: dict[str, float] = {}
        self._read("moving", row)
        batch, _ = predict_modes(self.model, self.xv, self.batch_size)
        b = _scores(self.model, batch, self.yv)
        row["val_accuracy_batch"], row["val_classes_batch"] = b["accuracy"], b["classes"]
        with kept_statistics(self.model):
            for m, shadow in self._shadow.items():
                for la, (mean, var) in zip(self._bns, shadow):
                    la.moving_mean.assign(mean)
                    la.moving_variance.assign(np.maximum(var, 0.0))
                self._read(f"momentum_{m:g}", row)
        with kept_statistics(self.model):
            recalibrate_batchnorm(self.model, self.x_train, self.batch_size)
            self._read("recalibrated", row)
        self.epochs.append(row)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        # Dropout on draws random numbers: a copy's, not the model's
        copy = copy_model(self.model, self.x_train)
        recalibrate_batchnorm(copy, self.x_train, self.batch_size, dropout=True)
        s = scores(copy, (self.xv, self.yv), self.batch_size)
        self.final["val_accuracy_recalibrated_dropout_on"] = s["accuracy"]
        self.final["val_classes_recalibrated_dropout_on"] = s["classes"]
