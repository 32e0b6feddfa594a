"""Deterministic training on uint8 data, with the true loss of every batch recorded.

`fit` feeds uint8 batches through tf.data (no float64 copy of the data set), records each
batch's own loss (Keras' batch logs hold a running mean over the epoch) and per-epoch metrics,
and returns a `History` that the plots and reports read.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from facekit.data import Dataset
from facekit.text import wrap

__all__ = ["set_seed", "fit", "History", "at_chance", "sits_at_chance", "stuck_at_chance", "as_arrays",
           "make_tf_dataset", "predict", "DataLike", "CHANCE_TOL", "check_data", "guessing", "trained_steps"]

DataLike = Dataset | tuple[np.ndarray, np.ndarray]  # what every facekit function accepts as data

CHANCE_TOL = 0.005  # a loss within this of ln C is "at chance" (the one definition in facekit)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic (same numbers every run
    on one machine; other CPUs may differ in the last bits, which can change a fragile run)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def as_arrays(data: DataLike) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) from a Dataset or an (x, y) pair."""
    if isinstance(data, Dataset):
        return data.images, data.labels
    x, y = data
    return np.asarray(x), np.asarray(y)


def check_data(x: np.ndarray, y: np.ndarray, n_classes: int, what: str = "training",
               allow_empty: bool = False) -> None:
    """Raise ValueError, in words, for data a model cannot train on: no images, images and labels of
    different lengths, one-hot or non-integer labels, labels outside 0..n_classes-1, NaN/inf pixels."""
    if len(x) != len(y):
        raise ValueError(f"{what} data: {len(x)} images but {len(y)} labels")
    if len(x) == 0:
        if allow_empty:
            return
        raise ValueError(f"{what} data: no images")
    if y.ndim == 2 and y.shape[1] == n_classes:
        raise ValueError(f"{what} labels look one-hot (shape {y.shape}); pass class numbers "
                         "(y.argmax(1)): facekit models use sparse categorical cross-entropy")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{what} labels are {y.dtype} {y.shape}; expected whole numbers, one per image")
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"{what} labels run from {int(y.min())} to {int(y.max())}, but the model has "
                         f"{n_classes} outputs (labels 0..{n_classes - 1})")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(1)
        if bad.any():
            raise ValueError(f"{what} data: {int(bad.sum())} of {len(x)} images hold NaN or infinity "
                             f"(the first is image {int(np.flatnonzero(bad)[0])})")


def check_shape(x: np.ndarray, model: keras.Model, what: str = "training") -> None:
    """Raise ValueError when the images are not the size the model's Input takes (Keras would
    otherwise train a fully convolutional model on them without a word)."""
    want = tuple(model.input_shape[1:])
    got = tuple(x.shape[1:])
    if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
        def size(s: tuple) -> str:
            return "x".join("any" if d is None else str(d) for d in s)

        raise ValueError(f"{what} images are {size(got)} but {model.name}'s Input takes "
                         f"{size(want)}; load them at that size")


def _no_autotune() -> tf.data.Options:
    # With tf.data's autotuning on (its default, and what Keras' own array input uses), destroying
    # an iterator waits for the autotune thread's next wake-up, 10 ms after the iterator began and
    # doubling (10, 30, 70, ... 20,470, 40,950 ms): we measured epochs of 24 s compute ending at
    # 40.96 s and of 3 s at 5.1 s. Keras makes a new iterator every epoch and every validation.
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def make_tf_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
                    seed: int = 0) -> tf.data.Dataset:
    """Batches of (x, y) read by index from the arrays: no copy of the data set, a new
    seeded shuffle every epoch, two batches prefetched, tf.data autotuning off (see
    `_no_autotune`: it cost up to 70% of an epoch's time)."""
    n = len(x)
    idx = tf.data.Dataset.range(n)
    if shuffle:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def take(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[i], y[i]

    def gather(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        xb, yb = tf.numpy_function(take, [i], (tf.as_dtype(x.dtype), tf.as_dtype(y.dtype)),
                                   stateful=False)
        xb.set_shape((None, *x.shape[1:]))
        yb.set_shape((None,))
        return xb, yb

    return idx.batch(batch_size).map(gather).prefetch(2).with_options(_no_autotune())


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``model.predict(x, batch_size=batch_size)`` without tf.data autotuning's wait at the end
    (see `_no_autotune`): the same batches, the same numbers."""
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(x[i: i + batch_size]))
                           for i in range(0, len(x), batch_size)])


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


def at_chance(loss: float, n_classes: int, tol: float = CHANCE_TOL) -> bool:
    """Is ``loss`` at the chance level ln C (within ``tol``)? facekit's one rule for "at chance"."""
    return abs(loss - math.log(n_classes)) <= tol


def sits_at_chance(losses: Sequence[float], n_classes: int, epochs: int = 2,
                   tol: float = CHANCE_TOL) -> bool:
    """Do the last ``epochs`` epoch losses sit at ln C? The last must be `at_chance`; the ones
    before within twice ``tol``, because an epoch's mean loss includes its first batches, a
    little above ln C even in a stuck run (e.g. 2.0845, 2.0809, 2.0802, 2.0799 against
    ln 8 = 2.0794). Used by `History.stuck` and `facekit.diagnose.ChanceAlarm`."""
    last = list(losses)[-epochs:]
    return bool(last) and at_chance(last[-1], n_classes, tol) and all(
        at_chance(v, n_classes, 2 * tol) for v in last[:-1])


def guessing(accuracy: float, n_classes: int, n: int) -> bool:
    """Is an accuracy on ``n`` held-out images no better than guessing? Below 1/C + 2 binomial
    standard errors of a guesser (8 classes, 40 images: below 0.230; 560 images: below 0.153)."""
    p = 1.0 / n_classes
    return bool(accuracy < p + 2 * math.sqrt(p * (1 - p) / max(n, 1)))


def stuck_at_chance(loss: float, accuracy: float | None, n_classes: int, loss_tol: float = CHANCE_TOL,
                    acc_tol: float = 0.05) -> bool:
    """Is a run stuck at chance? Loss at ln C (`at_chance`) and accuracy within ``acc_tol`` of 1/C
    (accuracy is ignored when None)."""
    return at_chance(loss, n_classes, loss_tol) and (
        accuracy is None or abs(accuracy - 1.0 / n_classes) <= acc_tol)


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
            out = [keras.ops.convert_to_numpy(self.model(self.x_val[i: i + 64], training=False)).argmax(-1)
                   for i in range(0, len(self.x_val), 64)]  # eager calls: no traced function to retrace
            row["val_classes"] = float(len(np.unique(np.concatenate(out))))
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
    key = (_fingerprint(model), id(train), id(val), epochs, batch_size, seed, shuffle)
    if reuse and (hit := _reused(key, train, val, model, callbacks or [])) is not None:
        print(wrap(f"{history.label}: reused the run made earlier in this session "
                   "(same network, initial weights, data and settings)"))
        return hit
    recorder = _BatchRecorder(history, len(x), batch_size, verbose,
                              as_arrays(val)[0] if val is not None and val_ds is not None else None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False,
                  callbacks=[recorder, *(callbacks or []), *_EXTRA.get()])
    _RUNS[key] = (train, val, [w.copy() for w in model.get_weights()], history, tuple(callbacks or ()),
                  trained_steps(model))
    while len(_RUNS) > _KEEP:
        del _RUNS[next(iter(_RUNS))]  # oldest first
    return history


# fit(reuse=True): key -> (train, val, trained weights, History, callbacks of that run, optimizer steps),
# the last _KEEP runs
_KEEP = 6
_RUNS: dict[tuple, tuple[Any, Any, list[np.ndarray], History, tuple, int | None]] = {}


def _fingerprint(model: keras.Model) -> tuple[str, int, str]:
    """Layers in order (type and settings; names left out, Keras numbers them per session), the
    weights' shapes and a CRC of their values, and the optimizer's settings."""
    def strip(c: Any) -> Any:
        if isinstance(c, dict):
            return {k: strip(v) for k, v in c.items() if k != "name"}
        return [strip(v) for v in c] if isinstance(c, list | tuple) else c
    crc, weights = 0, model.get_weights()
    for w in weights:
        crc = zlib.crc32(np.ascontiguousarray(w).tobytes(), crc)
    layers = [(type(la).__name__, strip(la.get_config())) for la in model.layers]
    opt = getattr(model, "optimizer", None)
    return (json.dumps([layers, [w.shape for w in weights]], sort_keys=True, default=str), crc,
            json.dumps(strip(opt.get_config()), sort_keys=True, default=str) if opt is not None else "")


def _reused(key: tuple, train: Any, val: Any, model: keras.Model,
            callbacks: Sequence[keras.callbacks.Callback]) -> History | None:
    """The stored run for ``key`` loaded into ``model`` and ``callbacks``; None if there is none
    or a recording callback has no equal in it."""
    if key not in _RUNS or _RUNS[key][0] is not train or _RUNS[key][1] is not val:
        return None
    _, _, weights, history, before, steps = _RUNS[key]
    pairs = []
    for cb in callbacks:
        if hasattr(cb, "adopt"):
            match = next((b for b in before if cb.same_recording(b)), None)
            if match is None:
                return None
            pairs.append((cb, match))
    for cb, match in pairs:
        cb.adopt(match)
    model.set_weights(weights)
    if steps is not None and getattr(model, "optimizer", None) is not None:
        model.optimizer.iterations.assign(steps)  # a reused run has taken its steps (the doctor asks)
    return history


def trained_steps(model: keras.Model) -> int | None:
    """How many optimizer steps the model has taken (None: not compiled)."""
    opt = getattr(model, "optimizer", None)
    try:
        return int(keras.ops.convert_to_numpy(opt.iterations)) if opt is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
