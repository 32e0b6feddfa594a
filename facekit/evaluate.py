"""An honest evaluation of a trained classifier: confusion matrix, accuracy per class and per
group of every attribute (hair style, glasses; age, gender, race on UTKFace), the images it gets
most wrong, and calibration (does 90% confidence mean 90% right?)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from facekit.core import predict
from facekit.data import Dataset
from facekit.data.utkface import UTKFACE_GENDERS, UTKFACE_RACES, age_group
from facekit.text import wrap

__all__ = ["confusion_matrix", "per_class_accuracy", "group_accuracy", "most_wrong", "reliability",
           "Reliability", "Evaluation", "evaluate"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (C, C): row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}; found {y.min()}..{y.max()}")
    return np.bincount(n_classes * y_true + y_pred, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Share of each true class predicted right (recall); NaN for a class with no images."""
    totals = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def _group_names(key: str, values: np.ndarray) -> np.ndarray:
    """Readable group names: UTKFace codes decoded, ages binned, booleans as yes/no."""
    if key == "age":  # the age bands of load_utkface(target="age_group")
        return np.array([age_group(int(a)) for a in values])
    if key == "race":
        return np.array([UTKFACE_RACES[v] for v in values])
    if key == "gender":
        return np.array([UTKFACE_GENDERS[v] for v in values])
    if values.dtype == bool or (key == "glasses" and set(np.unique(values)) <= {0, 1}):
        return np.where(values.astype(bool), "yes", "no")
    return values.astype(str)


def group_accuracy(ds: Dataset, y_pred: np.ndarray, attribute: str) -> dict[str, tuple[float, int]]:
    """Accuracy of the class predictions within each group of ``attribute``:
    {group: (accuracy, images)}, groups in sorted order."""
    if attribute not in ds.attributes:
        raise KeyError(f"no attribute {attribute!r}; this data set has {sorted(ds.attributes)}")
    groups = _group_names(attribute, ds.attributes[attribute])
    right = np.asarray(y_pred) == ds.labels
    return {g: (float(right[groups == g].mean()), int((groups == g).sum())) for g in sorted(set(groups))}


def most_wrong(probs: np.ndarray, labels: np.ndarray, k: int = 8) -> np.ndarray:
    """Indices of the ``k`` misclassified images with the least probability on their true class
    (the most confident mistakes first)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    true_p = probs[np.arange(len(labels)), labels]
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    return wrong[np.argsort(true_p[wrong], kind="stable")][:k]


@dataclass
class Reliability:
    """Per confidence bin: mean confidence, accuracy and count; ``ece`` = expected calibration
    error (count-weighted mean |accuracy - confidence|)."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Reliability:
    """Bin the top-class confidence into ``n_bins`` equal bins over [0, 1] and compare it with the
    accuracy in each bin. Empty bins get NaN."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    conf, right = probs.max(1), (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, n_bins) / counts
        acc = np.bincount(which, right, n_bins) / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] * np.abs(acc[filled] - mean_conf[filled])) / max(len(labels), 1))
    return Reliability(edges, mean_conf, acc, counts, ece)


@dataclass
class Evaluation:
    """Everything `evaluate` measured on one data set."""

    class_names: tuple[str, ...]
    probs: np.ndarray
    labels: np.ndarray
    confusion: np.ndarray
    groups: dict[str, dict[str, tuple[float, int]]]
    calibration: Reliability

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))

    @property
    def per_class(self) -> dict[str, float]:
        return dict(zip(self.class_names, per_class_accuracy(self.confusion).tolist()))

    def most_wrong(self, k: int = 8) -> np.ndarray:
        return most_wrong(self.probs, self.labels, k)

    def most_confused(self, k: int = 3) -> list[tuple[str, str, int]]:
        """The ``k`` largest off-diagonal cells: (true class, predicted class, images)."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(off, axis=None, kind="stable")[::-1][:k]
        return [(self.class_names[i], self.class_names[j], int(off[i, j]))
                for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0]

    def __str__(self) -> str:
        """A summary, each line at most `facekit.text.WIDTH` characters (longer ones wrapped on
        word boundaries, continuation lines indented)."""
        n = int(self.confusion.sum())
        lines = [f"accuracy {self.accuracy:.3f} on {n} images; calibration error (ECE) "
                 f"{self.calibration.ece:.3f}"]
        worst = min(self.per_class.items(), key=lambda kv: kv[1])
        lines.append(f"weakest class: {worst[0]} ({worst[1]:.2f})")
        for key, groups in self.groups.items():
            accs = [a for a, _ in groups.values()]
            spread = max(accs) - min(accs)
            lines.append(f"by {key}: " + ", ".join(f"{g} {a:.2f} (n={m})" for g, (a, m) in groups.items())
                         + f"; spread {spread:.2f}")
        confused = ", ".join(f"{t} -> {p} ({m})" for t, p, m in self.most_confused())
        lines.append(f"most confused: {confused or 'none'}")
        return wrap("\n".join(lines))


def evaluate(model: keras.Model, ds: Dataset, batch_size: int = 64) -> Evaluation:
    """Predict ``ds`` and measure: confusion matrix, accuracy per group of every attribute,
    calibration. ``Evaluation.most_wrong()`` gives the images to look at.

    Taught in chapter 06, section 6."""
    probs = np.asarray(predict(model, ds.images, batch_size), dtype=np.float64)  # (N, C)
    pred = probs.argmax(1)
    groups = {key: group_accuracy(ds, pred, key) for key in sorted(ds.attributes)}
    return Evaluation(ds.class_names, probs, ds.labels, confusion_matrix(ds.labels, pred, ds.n_classes),
                      groups, reliability(probs, ds.labels))
