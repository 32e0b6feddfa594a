"""What every facekit module uses: data as arrays (`DataLike`, `as_arrays`, the checks in words),
batches through tf.data, one batch predictor, and the one rule for "at chance" (`CHANCE_TOL`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

from facekit.data import Dataset

if TYPE_CHECKING:  # TensorFlow is imported where it is used: facekit.diagnose runs on any Keras backend
    import tensorflow as tf

__all__ = ["DataLike", "CHANCE_TOL", "DEEP", "deep_layers", "as_arrays", "check_data", "check_shape",
           "make_tf_dataset", "predict",
           "at_chance", "sits_at_chance", "guessing", "stuck_at_chance"]

DataLike = Dataset | tuple[np.ndarray, np.ndarray]  # what every facekit function accepts as data


DEEP = 4  # "the deep layers": the last 4 conv layers, conv7-conv10 of the question's network


def deep_layers(names: Sequence[str]) -> list[str]:
    """The deep layers of ``names`` (layer names, input to output): the last `DEEP` whose names
    start with "conv" (all names when none does). Chapter 03, section 5 watches them die."""
    convs = [n for n in names if n.startswith("conv")] or list(names)
    return convs[-DEEP:]


CHANCE_TOL = 0.005  # a loss within this of ln C is "at chance" (the one definition in facekit)


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
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def make_tf_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
                    seed: int = 0) -> tf.data.Dataset:
    """Batches of (x, y) read by index from the arrays: no copy of the data set, a new
    seeded shuffle every epoch, two batches prefetched, tf.data autotuning off (see
    `_no_autotune`: it cost up to 70% of an epoch's time)."""
    import tensorflow as tf

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


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 64, *, eager: bool = False) -> np.ndarray:
    """The model's outputs for ``x`` in inference mode, ``batch_size`` images at a time: facekit's one
    predictor. By default through ``predict_on_batch`` (Keras' compiled step: the numbers of
    ``model.predict`` without tf.data autotuning's wait at the end, see `_no_autotune`).
    ``eager=True`` calls ``model(x, training=False)`` instead: nothing is traced, so nothing is
    retraced when the caller changes the model between calls (the doctor's probes, `fit`'s count of
    the classes the validation predictions use)."""
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    if eager:
        parts = [keras.ops.convert_to_numpy(model(x[i: i + batch_size], training=False))
                 for i in range(0, len(x), batch_size)]
    else:
        parts = [np.asarray(model.predict_on_batch(x[i: i + batch_size]))
                 for i in range(0, len(x), batch_size)]
    return np.concatenate(parts)


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
