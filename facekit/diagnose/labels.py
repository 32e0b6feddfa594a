"""Data before network: do the labels follow the images at all?

A network at chance may have nothing to learn: labels shuffled apart from their images, class
folders read in another order than the model's outputs. `labels_follow_images` asks the data
itself with a reference model no training bug can break - ridge regression on 8x8 thumbnails,
fitted on one half of the images and scored on the other, both ways round (two folds) - in well
under a second. `class_balance` counts every label of the data, not a sample.
"""

from __future__ import annotations

import numpy as np

from facekit.core import DataLike, as_arrays, guessing
from facekit.diagnose.checks import Check

__all__ = ["labels_follow_images", "class_balance", "thumbnails", "MAX_IMAGES", "MIN_PER_CLASS"]

MAX_IMAGES = 4096  # the reference model fits on at most this many images (a second on 2 cores)
MIN_PER_CLASS = 16  # below this many images a class, two folds cannot tell a weak signal from none


def thumbnails(x: np.ndarray, side: int = 8) -> np.ndarray:
    """One row of features per image: the image averaged down to ``side`` x ``side`` (area
    averaging, every channel), or a flat input itself (averaged in blocks down to 512 values)."""
    x = np.asarray(x)
    if x.ndim == 4 and min(x.shape[1:3]) >= side:
        h, w = x.shape[1] // side * side, x.shape[2] // side * side
        a = x[:, :h, :w].astype(np.float32)
        a = a.reshape(len(x), side, h // side, side, w // side, x.shape[3]).mean((2, 4))
        return a.reshape(len(x), -1).astype(np.float64)
    flat = x.reshape(len(x), -1).astype(np.float64)
    if flat.shape[1] > 512:
        cut = flat.shape[1] // 512 * 512
        flat = flat[:, :cut].reshape(len(x), 512, -1).mean(2)
    return flat


def _ridge_accuracy(f: np.ndarray, y: np.ndarray, c: int, fit: np.ndarray, score: np.ndarray,
                    lam: float) -> np.ndarray:
    """Ridge regression onto one-hot labels, fitted on ``fit`` rows, predicting ``score`` rows:
    whether each scored row's class was right."""
    mu, sd = f[fit].mean(0), f[fit].std(0) + 1e-6
    a = np.hstack([(f[fit] - mu) / sd, np.ones((len(fit), 1))])
    b = np.hstack([(f[score] - mu) / sd, np.ones((len(score), 1))])
    w = np.linalg.solve(a.T @ a + lam * len(fit) * np.eye(a.shape[1]), a.T @ np.eye(c)[y[fit]])
    return (b @ w).argmax(1) == y[score]


def labels_follow_images(data: DataLike, n_classes: int | None = None, side: int = 8, lam: float = 0.1,
                         seed: int = 0) -> Check:
    """Does a linear model on ``side`` x ``side`` thumbnails predict the labels better than chance
    on images it was not fitted on? Two folds over at most `MAX_IMAGES` images, each image scored
    once. Passes when it beats guessing (`facekit.core.guessing`); when it does not, the classes
    either differ only in detail or the labels do not follow the images."""
    x, y = as_arrays(data)
    y = y.astype(np.int64)
    c = int(n_classes or y.max() + 1)
    perm = np.random.default_rng(seed).permutation(len(x))[:MAX_IMAGES]
    if len(perm) < MIN_PER_CLASS * c:
        return Check("labels vs images", True, f"not measured: {len(perm)} images are too few to fit a "
                     f"reference model ({MIN_PER_CLASS * c}, {MIN_PER_CLASS} a class)", {"accuracy": None})
    f, yy = thumbnails(x[perm], side), y[perm]
    half = len(perm) // 2
    a, b = np.arange(half), np.arange(half, len(perm))
    right = np.concatenate([_ridge_accuracy(f, yy, c, a, b, lam), _ridge_accuracy(f, yy, c, b, a, lam)])
    acc = float(right.mean())
    chance = guessing(acc, c, len(right))
    what = (f"a linear model on {side}x{side} thumbnails, fitted on half of {len(right)} images and "
            f"scored on the other half (both ways), gets {acc:.2f} right (chance {1 / c:.2f})")
    values = {"accuracy": acc, "n": len(right), "chance": 1 / c}
    if not chance:
        return Check("labels vs images", True, what + ": the labels follow the images", values)
    return Check("labels vs images", False, what + ": no better than guessing - the classes differ only "
                 "in detail, or the labels do not follow the images", values)


def class_balance(y: np.ndarray, n_classes: int) -> Check:
    """Images per class over all of ``y``: fails when one class has over 3x the images of another
    (or none at all)."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    ok = counts.min() > 0 and counts.max() <= 3 * counts.min()
    verdict = f"{counts.min()}..{counts.max()} images per class over all {counts.sum()} labels"
    if not ok:
        verdict += ": imbalanced" if counts.min() else f": class {int(counts.argmin())} has none"
    return Check("class balance", bool(ok), verdict, {"counts": counts.tolist()})
