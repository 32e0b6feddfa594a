"""What the doctor can diagnose, and the data it reads: one pass over the model and the data
before any check runs.

`admit` turns what a user has - a model with several outputs, a variable input size, a subclassed
model, string labels, a model that is not a classifier - into either the classifier the doctor
examines (`Patient`) or one line saying why not (`NotDiagnosable`, a ValueError). Every check then
reads the patient's arrays; nothing else reads the data again.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from facekit.core import DataLike, as_arrays, check_data
from facekit.diagnose.probes import ensure_built, n_outputs, output_shape, sample

__all__ = ["NotDiagnosable", "Patient", "admit", "REGRESSION_LOSSES"]

# losses that say "not a classifier"
REGRESSION_LOSSES = ("mean_squared", "mean_absolute", "mse", "mae", "mape", "msle", "huber", "log_cosh",
                     "logcosh", "cosine", "poisson", "hinge", "kl_divergence", "kld")


class NotDiagnosable(ValueError):  # noqa: N818 - the doctor's refusal, said in one line
    """The model or the data is outside what the doctor examines; the message says what it found."""


@dataclass
class Patient:
    """The classifier the doctor examines and its data: ``model`` (the user's model, or a view of
    the one output examined), ``note`` (which output, when the model has several), the checks'
    sample ``x, y``, all images ``xa, ya``, the images to recalibrate on, the held-out images and
    what they are."""

    model: keras.Model
    note: str
    x: np.ndarray
    y: np.ndarray
    xa: np.ndarray
    ya: np.ndarray
    fit_part: tuple
    held: tuple
    what: str
    val: tuple | None = None

    @property
    def n_classes(self) -> int:
        return n_outputs(self.model)


def _loss_name(model: keras.Model) -> str:
    loss = getattr(model, "loss", None)
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss.lower()
    return str(getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__).lower()


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    """Whole-number labels, or a one-line refusal for labels of another kind (strings, floats)."""
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return y
    if y.dtype.kind == "f" and y.ndim == 1 and y.size and np.array_equal(y, np.round(y)):
        return y.astype(np.int64)
    if y.dtype.kind in "USO":
        names = ", ".join(repr(str(v)) for v in np.unique(y.astype(str))[:3])
        raise NotDiagnosable(f"the {what} labels are text ({names}, ...): give class numbers, e.g. "
                             "classes, y = np.unique(labels, return_inverse=True)")
    return y  # check_data says what is wrong with them


def _one_output(model: keras.Model) -> tuple[keras.Model, str]:
    """The model itself, or a view of its first classifier output (batch, classes >= 2) when it has
    several outputs."""
    try:
        outs = list(model.outputs or [])
    except (AttributeError, ValueError):
        outs = []
    if len(outs) <= 1:
        return model, ""
    shapes = [tuple(o.shape) for o in outs]
    k = next((i for i, s in enumerate(shapes) if len(s) == 2 and (s[-1] or 0) >= 2), None)
    if k is None:
        raise NotDiagnosable(f"{model.name} has {len(outs)} outputs ({', '.join(map(str, shapes))}) and "
                             "none is a classifier's (batch, classes)")
    names = list(getattr(model, "output_names", None) or [f"output {i}" for i in range(len(outs))])
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    view = keras.Model(inputs, outs[k], name=f"{model.name}_{names[k]}")
    view.optimizer = getattr(model, "optimizer", None)  # the trained steps and learning rate it had
    return view, f"output {names[k]!r} ({k + 1} of {len(outs)}; the doctor examines one)"


def _classifier(model: keras.Model, y: np.ndarray) -> None:
    """Refuse, in one line, a model the doctor cannot judge as a classifier."""
    shape = output_shape(model)
    loss = _loss_name(model)
    if any(r in loss for r in REGRESSION_LOSSES):
        raise NotDiagnosable(f"{model.name} is not a classifier: it is compiled with the loss {loss!r}; "
                             "the doctor examines classifiers trained with cross-entropy")
    if shape is None or len(shape) != 2 or shape[-1] is None:
        raise NotDiagnosable(f"{model.name} gives outputs {shape}; the doctor examines classifiers whose "
                             "output is (batch, classes)")
    if shape[-1] == 1:
        raise NotDiagnosable(f"{model.name} has one output unit ({loss or 'no loss compiled'}): the doctor "
                             "examines classifiers with one output per class; for two classes use "
                             "Dense(2, activation='softmax') with sparse_categorical_crossentropy")


def admit(model: keras.Model, data: DataLike, val: DataLike | None, n: int) -> Patient:
    """The doctor's one pass over its model and data: labels and images checked in words
    (`facekit.core.check_data`), the model built on the sample and admitted as a classifier; the
    held-out images chosen (`_held_out`). Raises `NotDiagnosable` (one line) otherwise."""
    xa, ya = as_arrays(data)
    if len(xa) == 0 or len(xa) != len(ya):
        check_data(xa, ya, 1, "doctor's")  # raises: no images, or images and labels of different lengths
    ya = _labels(ya, "doctor's")
    x, y = sample((xa, ya), max(n, 16))
    try:
        ensure_built(model, x)
    except Exception as e:  # noqa: BLE001 - whatever the model raises on these images, said in one line
        raise NotDiagnosable(f"{model.name} cannot take the images ({x.shape[1:]}, {x.dtype}): "
                             f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from e
    model, note = _one_output(model)
    _classifier(model, ya)
    c = n_outputs(model)
    check_data(xa, ya, c, "doctor's")
    if val is not None:
        xv, yv = as_arrays(val)
        yv = _labels(yv, "doctor's validation")
        check_data(xv, yv, c, "doctor's validation")
        val = (xv, yv)
    fit_part, held, what = _held_out((xa, ya), val, n)
    return Patient(model, note, x, y, xa, ya, fit_part, held, what, val)


def _held_out(data: DataLike, val: DataLike | None, n: int, n_held: int = 64,
              n_fit: int = 512) -> tuple[tuple, tuple, str]:
    """(images to recalibrate on, held-out images, what the held-out images are). Without ``val``
    the held-out images are drawn from ``data``, apart from the recalibration images and, when
    ``data`` holds more than ``n + n_held`` images, from the ``n`` the other checks sample."""
    x, y = as_arrays(data)
    perm = np.random.default_rng(0).permutation(len(x))
    if val is not None:
        xv, yv = sample(val, min(len(as_arrays(val)[1]), 4 * n_held))
        fit_idx = perm[:n_fit]
        return (x[fit_idx], y[fit_idx]), (xv, yv), "validation images"
    k = min(n_held, max(len(x) // 2, 1))
    held, rest = perm[len(x) - k:], perm[:len(x) - k][:n_fit]
    return ((x[rest], y[rest]), (x[held], y[held].astype(np.int64)),
            "images of the data not used to recalibrate (pass val= for images it never trained on)")
