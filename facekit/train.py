"""Deterministic training on uint8 data, with the true loss of every batch recorded.

`fit` feeds uint8 batches through tf.data (no float64 copy of the data set), records each
batch's own loss (Keras' batch logs hold a running mean over the epoch) and per-epoch metrics,
and returns a `History` that the plots and reports read.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from facekit.core import (
    CHANCE_TOL,
    DataLike,
    as_arrays,
    at_chance,
    check_data,
    check_shape,
    guessing,
    make_tf_dataset,
    predict,
    sits_at_chance,
    stuck_at_chance,
)
from facekit.data import Dataset
from facekit.runs import fit_key, remember_fit, reuse_fit, trained_steps
from facekit.text import wrap

__all__ = ["set_seed", "fit", "History", "extra_callbacks", "label_callbacks",
           # re-exported from facekit.core and facekit.runs, where they live (older code imports them here)
           "at_chance", "sits_at_chance", "stuck_at_chance", "as_arrays", "make_tf_dataset", "predict",
           "DataLike", "CHANCE_TOL", "check_data", "check_shape", "guessing", "trained_steps"]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic (same numbers every run
    on one machine; other CPUs may differ in the last bits, which can change a fragile run).
    One exception measured: TensorFlow's oneDNN CPU kernels now and then give a convolution's weight
    gradient different last bits (7e-9 after one step), which BatchNorm networks amplify into visible
    differences; ``TF_ENABLE_ONEDNN_OPTS=0`` (set before TensorFlow is imported) makes those runs
    bit-identical too, 1.6-2.6x slower on the networks we timed (chapter 04, section 1)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass
class History:
    """What one training run recorded. ``epochs[i]`` has loss and accuracy (Keras' training-mode
    numbers: BatchNorm on batch statistics, Dropout on), val_loss, val_accuracy (inference mode, on
    the held-out images) and val_classes (how many distinct classes its validation predictions
    use) when there was validation data, and seconds; ``batch_loss`` is every batch's own loss."""

    n_classes: int
    epochs: list[dict[str, float]] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_accuracy: list[float] = field(default_factory=list)
    label: str = ""
    non_finite: str = ""  # why training stopped on NaN/infinity ("" when it did not)
    n_val: int = 0  # validation images

    def __getitem__(self, key: str) -> np.ndarray:
        """Per-epoch values of ``key`` (e.g. ``h["val_accuracy"]``)."""
        return np.array([e.get(key, np.nan) for e in self.epochs], dtype=float)

    @property
    def chance_loss(self) -> float:
        return math.log(self.n_classes)

    def final(self, key: str = "loss") -> float:
        return float(self[key][-1]) if self.epochs else float("nan")

    def best_epoch(self, key: str = "val_loss") -> int:
        """The epoch (from 1, as Keras prints them) where ``key`` was lowest, NaN epochs ignored:
        the one early stopping keeps (chapter 05, section 3; exercise 05)."""
        return int(np.nanargmin(self[key])) + 1

    @property
    def stuck(self) -> bool:
        """True when the run *sits* at chance: `sits_at_chance` over its last two epochs and the
        last epoch's accuracy at 1/C (`stuck_at_chance`), so a loss merely passing through ln C
        on its way down does not count."""
        return bool(not self.non_finite
                    and stuck_at_chance(self.final("loss"), self.final("accuracy"), self.n_classes)
                    and sits_at_chance(self["loss"].tolist(), self.n_classes, epochs=2))

    def table(self) -> str:
        """A compact per-epoch table."""
        keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in self.epochs[0]] \
            if self.epochs else []
        head = "epoch " + " ".join(f"{k:>12}" for k in keys) + "       s"
        rows = [f"{i + 1:5d} " + " ".join(f"{e[k]:12.4f}" for k in keys) + f" {e['seconds']:7.1f}"
                for i, e in enumerate(self.epochs)]
        return "\n".join([head, *rows])


class _BatchRecorder(keras.callbacks.Callback):
    """Resets the metrics before each batch, so the batch logs hold that batch's own loss and
    accuracy; at the end of the epoch writes the true epoch means back into the logs."""

    def __init__(self, history: History, n_train: int, batch_size: int, verbose: int,
                 x_val: np.ndarray | None = None):
        super().__init__()
        self.h, self.n, self.bs, self.verbose = history, n_train, batch_size, verbose
        self.x_val = x_val

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.t0, self.step = time.perf_counter(), 0
        self.sums: dict[str, float] = {}

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.reset_metrics()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        size = min(self.bs, self.n - self.step * self.bs)
        self.step += 1
        for k, v in (logs or {}).items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * size
        logs = logs or {}
        self.h.batch_loss.append(float(logs["loss"]))
        if "accuracy" in logs:
            self.h.batch_accuracy.append(float(logs["accuracy"]))
        if not math.isfinite(float(logs["loss"])) and not self.h.non_finite:
            self._stop(f"the loss became {float(logs['loss'])} at batch {self.step}")

    def _stop(self, why: str) -> None:
        self.h.non_finite = f"epoch {len(self.h.epochs) + 1}: {why}"
        self.model.stop_training = True
        print(wrap(f"fit stopped ({self.h.label}): {self.h.non_finite}. NaN or infinity in training - "
                   "check the inputs for NaN and try a lower learning rate; a loss near ln C after this "
                   "is not a network stuck at chance."), flush=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        for k, total in self.sums.items():
            logs[k] = total / self.n  # true epoch means for every callback after this one
        row = {k: float(v) for k, v in logs.items() if np.isscalar(v) or np.ndim(v) == 0}
        if self.x_val is not None and len(self.x_val):  # which classes the held-out predictions use
            out = predict(self.model, self.x_val, 64, eager=True).argmax(-1)  # eager: nothing to retrace
            row["val_classes"] = float(len(np.unique(out)))
        row["seconds"] = time.perf_counter() - self.t0
        if not self.h.non_finite:  # NaN weights can hide behind a finite loss (ReLU(NaN) is 0 here)
            bad = next((w.path for w in self.model.weights
                        if not np.isfinite(keras.ops.convert_to_numpy(w)).all()), None)
            if bad is not None:
                self._stop(f"the weights {bad} hold NaN or infinity")
        self.h.epochs.append(row)
        if self.verbose:
            lines = self.h.table().splitlines()
            print(("\n".join(lines) if epoch == 0 else lines[-1]), flush=True)


_EXTRA: contextvars.ContextVar[tuple[keras.callbacks.Callback, ...]] = contextvars.ContextVar(
    "facekit_extra_callbacks", default=())


@contextlib.contextmanager
def extra_callbacks(*callbacks: keras.callbacks.Callback) -> Iterator[None]:
    """Within the block, every `fit` also runs ``callbacks`` (the CLI's progress bar uses this)."""
    token = _EXTRA.set((*_EXTRA.get(), *callbacks))
    try:
        yield
    finally:
        _EXTRA.reset(token)


def label_callbacks(callbacks: Sequence[keras.callbacks.Callback], label: str) -> None:
    """Name the next run for every callback that shows one (a `facekit.plots.LivePlot` has ``label``)."""
    for cb in callbacks:
        if hasattr(cb, "label"):
            cb.label = label


def fit(model: keras.Model, train: Dataset | tuple[np.ndarray, np.ndarray],
        val: Dataset | tuple[np.ndarray, np.ndarray] | None = None, epochs: int = 5,
        batch_size: int = 16, seed: int | None = 0, *, callbacks: list | None = None,
        verbose: int = 0, label: str = "", shuffle: bool = True,
        strategy: tf.distribute.Strategy | None = None, reuse: bool = False) -> History:
    """Train ``model`` (compiled) on uint8 images; return a `History`.

    Batches are shuffled with ``seed`` (a new order every epoch); with a seed, TF ops are
    deterministic too, so the same seed gives the same numbers on one machine. ``verbose=1``
    prints a compact per-epoch table. Multi-GPU: build and compile the model inside
    ``strategy.scope()`` and pass ``strategy``; `fit` runs under it.

    ``reuse=True``: if this process already ran the same fit (same architecture, initial weights,
    optimizer, data objects and settings), load that run's trained weights into ``model`` and
    return its `History` instead of training again; facekit's recording callbacks
    (`facekit.diagnose.ActivationStats`, `GradientStats`) get that run's records when it had an
    equal one, other callbacks are not called. Otherwise it trains. (A chapter section can then
    run without the section that trained the network.)

    Taught in chapter 02, section 6.
    """
    for name, value, least in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"fit: {name} must be a whole number >= {least}; found {value!r}")
    if seed is not None:
        set_seed(seed)
    x, y = as_arrays(train)
    n_classes = int(model.output_shape[-1])
    check_data(x, y, n_classes, "training")
    check_shape(x, model)
    if val is not None:
        check_data(*as_arrays(val), n_classes, "validation", allow_empty=True)
        if len(as_arrays(val)[0]):
            check_shape(as_arrays(val)[0], model, "validation")
    history = History(n_classes=n_classes, label=label or model.name,
                      n_val=len(as_arrays(val)[1]) if val is not None else 0)
    train_ds = make_tf_dataset(x, y, batch_size, shuffle=shuffle, seed=seed or 0)
    val_ds = None
    if val is not None and len(as_arrays(val)[1]):
        val_ds = make_tf_dataset(*as_arrays(val), batch_size)
    key = fit_key(model, train, val, epochs, batch_size, seed, shuffle)
    if reuse and (hit := reuse_fit(key, train, val, model, callbacks or [])) is not None:
        print(wrap(f"{history.label}: reused the run made earlier in this session "
                   "(same network, initial weights, data and settings)"))
        return hit
    recorder = _BatchRecorder(history, len(x), batch_size, verbose,
                              as_arrays(val)[0] if val is not None and val_ds is not None else None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False,
                  callbacks=[recorder, *(callbacks or []), *_EXTRA.get()])
    remember_fit(key, train, val, model, history, callbacks or ())
    return history
