"""The doctor's checks on held-out images, in inference mode (what Keras' ``val_accuracy`` and
``evaluate`` report): does the model beat chance there, and does BatchNorm collapse it there?

`mode_check` compares training-mode and inference-mode predictions (`facekit.diagnose.batchnorm`)
and measures the cure on a copy; `held_out_check` asks whether a trained model guesses.
"""

from __future__ import annotations

from typing import Any

import keras

from facekit.core import DataLike, as_arrays, guessing
from facekit.diagnose.batchnorm import (
    _classes,
    batchnorm_layers,
    mode_gap,
    recalibrate_batchnorm,
    scores,
)
from facekit.diagnose.checks import Check
from facekit.diagnose.probes import CopyError, copy_model, n_outputs
from facekit.runs import trained_steps

__all__ = ["mode_check", "held_out_check"]


def mode_check(model: keras.Model, fit_part: DataLike, held: DataLike, what: str) -> Check:
    """Training-mode (batch statistics, Dropout off) against inference-mode predictions on the
    ``held`` images. Fails when a model with BatchNormalization collapses in inference mode
    (`ModeGap.collapsed`); then measures the cure on a copy: `recalibrate_batchnorm` on ``fit_part``,
    inference accuracy on ``held`` again. ``what`` says which images ``held`` are.

    Taught in chapter 04, section 4."""
    if not batchnorm_layers(model):
        return Check("inference mode", True, "no BatchNormalization: inference differs from training only "
                     "by Dropout and other random layers", {})
    gap = mode_gap(model, held)
    values: dict[str, Any] = {"gap": gap}
    if not gap.collapsed:
        acc = gap.inference["accuracy"]
        return Check("inference mode", True, f"{what}: inference mode accuracy {acc:.2f} "
                     f"({_classes(gap.inference['classes'])}) vs {gap.batch['accuracy']:.2f} with batch "
                     "statistics: the moving statistics fit the network", values)
    try:
        copy = copy_model(model, as_arrays(fit_part)[0])
    except CopyError as e:
        i, b = gap.inference, gap.batch
        return Check("inference mode", False, f"{what}: inference mode predicts {_classes(i['classes'])}, "
                     f"accuracy {i['accuracy']:.2f}, batch statistics {b['accuracy']:.2f}; the cure was "
                     f"not measured ({e})", values)
    done = recalibrate_batchnorm(copy, fit_part)
    after = scores(copy, held)
    values.update(recalibrated=after, recalibration=done)
    i, b = gap.inference, gap.batch
    if after["accuracy"] < i["accuracy"] + 2 / max(gap.n, 1):  # not cured: say so, advise nothing
        return Check("inference mode", False, f"{what}: inference mode predicts {_classes(i['classes'])}, "
                     f"accuracy {i['accuracy']:.2f}, batch statistics {b['accuracy']:.2f}; recalibrating "
                     f"the BatchNorm statistics on a copy did not help ({after['accuracy']:.2f})", values)
    verdict = (f"{what}: inference mode predicts {_classes(i['classes'])}, accuracy {i['accuracy']:.2f}, "
               f"while batch statistics give {b['accuracy']:.2f} ({_classes(b['classes'])}): the "
               f"BatchNorm moving statistics do not fit the network. On a copy, recalibrate_batchnorm "
               f"({done.images} images): inference accuracy {i['accuracy']:.2f} -> {after['accuracy']:.2f}")
    values["advice"] = (f"recalibrate the BatchNorm moving statistics: facekit.diagnose.recalibrate_batchnorm"
                        f"(model, train) after training, or PreciseBatchNorm(train) in fit's callbacks - "
                        f"measured on a copy: inference accuracy {i['accuracy']:.2f} -> "
                        f"{after['accuracy']:.2f} "
                        f"on {gap.n} {what}. Keras' val_accuracy and evaluate() use these statistics, and so "
                        "did the other checks here: run the doctor again after recalibrating")
    return Check("inference mode", False, verdict, values)


def held_out_check(model: keras.Model, held: DataLike, what: str) -> Check:
    """Inference-mode accuracy on held-out images. A trained model no better than chance there
    (`facekit.core.guessing`) fails, whatever its training loss; an untrained one (0 optimizer
    steps) passes with a note."""
    x, y = as_arrays(held)
    c = n_outputs(model)
    s = scores(model, (x, y))
    chance = guessing(s["accuracy"], c, len(y))
    steps = trained_steps(model)
    head = (f"inference-mode accuracy {s['accuracy']:.2f} on {len(y)} {what} (chance {1 / c:.2f}), "
            f"{_classes(s['classes'])} predicted")
    values = {"scores": s, "steps": steps}
    if not chance:
        return Check("held-out accuracy", True, head + ": better than chance", values)
    if steps == 0:
        return Check("held-out accuracy", True, head + ": at chance, as an untrained model is (0 steps)",
                     values)
    return Check("held-out accuracy", False, head + ": no better than guessing", values)
