"""From memorising to generalising: the data regime where the answer's network overfits, the
changes that close the gap (each one measured alone), and a fair train / validation / test
comparison over several seeds.

Validation picks the epoch (early stopping) and the recipe; the test set is looked at once,
at the end.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from facekit.core import predict
from facekit.data import Dataset, load, make_faces
from facekit.models import answer_model, improved_model
from facekit.profiles import Profile
from facekit.results import read_jsonl_path
from facekit.text import markdown_table
from facekit.train import History, fit

__all__ = ["Recipe", "RECIPES", "RunResult", "Comparison", "regime_data", "early_stopping",
           "build", "run_recipe", "load_regime"]


@dataclass(frozen=True)
class Recipe:
    """One way to train: changes to the answer's network (keywords of `answer_model`),
    whether to stop early on validation loss, and whether to use the larger training set."""

    name: str
    what: str
    changes: dict[str, Any] = field(default_factory=dict)
    early_stop: bool = False
    more_data: bool = False
    improved: bool = False
    epochs: int | None = None  # overrides the comparison's epochs (more data: fewer, longer epochs)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("answer", "the answer's network, as posted"),
    Recipe("early_stopping", "+ EarlyStopping on val loss, best weights restored", early_stop=True),
    Recipe("augment", "+ random flip/rotation/zoom/translation/contrast layers", {"augment": True}),
    Recipe("dropout", "+ Dropout(0.5) before the classifier", {"dropout": 0.5}),
    Recipe("weight_decay", "+ L2 weight decay 1e-3 on every kernel", {"weight_decay": 1e-3}),
    Recipe("batch_norm", "+ BatchNorm after every conv", {"batch_norm": True}),
    Recipe("global_pool", "GlobalAveragePooling -> Dense(8) instead of Flatten -> Dense(512)",
           {"head": "gap"}),
    Recipe("more_data", "the answer's network on 14x more training images (15 epochs)",
           more_data=True, epochs=15),
    Recipe("improved", "augmentation + 4th conv block + Dropout + weight decay, no Dense(512), "
           "early stopping: facekit.models.improved_model", early_stop=True, improved=True),
)}


def regime_data(train_per_class: int = 50, held_per_class: int = 25, size: int = 64,
                difficulty: float = 1.0, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """(train, val, test) synthetic faces in the regime where the answer's network memorises.

    Images 0 .. 2*held_per_class-1 of each class are split at random into validation and test
    (``held_per_class`` each); training images are the next ``train_per_class`` of each class,
    shuffled. So the test set is the same whatever the training size, and no image is in two sets.
    """
    if train_per_class < 1 or held_per_class < 1:
        raise ValueError(f"train_per_class and held_per_class must be >= 1; found "
                         f"{train_per_class}, {held_per_class}")
    ds = make_faces(2 * held_per_class + train_per_class, size, seed=seed, difficulty=difficulty)
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c in range(ds.n_classes):
        members = np.flatnonzero(ds.labels == c)  # in image-index order
        held = rng.permutation(members[:2 * held_per_class])
        parts[0].append(members[2 * held_per_class:])
        parts[1].append(held[:held_per_class])
        parts[2].append(held[held_per_class:])
    return tuple(ds.subset(rng.permutation(np.concatenate(p))) for p in parts)  # type: ignore[return-value]


def load_regime(profile: Profile, data: str = "synthetic", seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """(train, val, test) for chapter 06 from a profile's `facekit.profiles.Regime`: the synthetic
    regime (`regime_data`), or a folder / UTKFace set of ``per_class + 2 * held`` images a class
    at ``size`` px, split at random and stratified into ``held`` a class for validation, as many
    for test, and the rest for training."""
    r = profile.regime
    if data == "synthetic":
        return regime_data(r.per_class, r.held, r.size, 1.0, seed)
    n = r.per_class + 2 * r.held
    ds = load(data, size=r.size, per_class=n, seed=seed)
    train, held = ds.split(2 * r.held / n, seed=seed)
    val, test = held.split(0.5, seed=seed + 1)
    return train, val, test


def early_stopping(patience: int = 8) -> keras.callbacks.EarlyStopping:
    """Stop when validation loss has not improved for ``patience`` epochs; keep the best weights."""
    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                         restore_best_weights=True)


def build(recipe: str | Recipe, input_shape: tuple[int, int, int], n_classes: int = 8,
          seed: int | None = None) -> keras.Model:
    """The compiled model of ``recipe``."""
    r = RECIPES[recipe] if isinstance(recipe, str) else recipe
    if r.improved:
        return improved_model(input_shape, n_classes, seed=seed, **r.changes)
    return answer_model(input_shape, n_classes, seed=seed, **r.changes)


@dataclass
class RunResult:
    """One recipe on one seed: accuracies measured after training (inference mode, the weights
    kept), epochs run, the epoch whose weights were kept, seconds per epoch."""

    recipe: str
    seed: int
    params: int
    epochs: int
    best_epoch: int
    train_acc: float
    val_acc: float
    test_acc: float
    seconds_per_epoch: float
    history: History | None = None
    model: keras.Model | None = None

    @property
    def gap(self) -> float:
        return self.train_acc - self.val_acc

    def record(self) -> dict[str, Any]:
        """The numbers (no history, no model): one line of ``facekit/results/generalize.jsonl``."""
        return {k: getattr(self, k) for k in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f for f in RunResult.__dataclass_fields__ if f not in ("history", "model"))


def _accuracy(model: keras.Model, ds: Dataset) -> float:
    return float(np.mean(predict(model, ds.images).argmax(1) == ds.labels))


def run_recipe(recipe: str | Recipe, train: Dataset, val: Dataset, test: Dataset, *,
               seed: int = 0, epochs: int = 40, patience: int = 8, batch_size: int = 16,
               keep_model: bool = False, callbacks: Sequence[keras.callbacks.Callback] = ()) -> RunResult:
    """Train ``recipe`` (on ``train``; validation for early stopping) and measure it on all three
    sets. A ``more_data`` recipe must be given its larger training set by the caller."""
    r = RECIPES[recipe] if isinstance(recipe, str) else recipe
    model = build(r, train.image_shape, train.n_classes, seed=seed)
    stopper = early_stopping(patience) if r.early_stop else None
    h = fit(model, train, val, epochs=r.epochs or epochs, batch_size=batch_size, seed=seed, label=r.name,
            callbacks=[*([stopper] if stopper else []), *callbacks])
    ran = len(h.epochs)
    best = h.best_epoch() if stopper else ran
    return RunResult(r.name, seed, model.count_params(), ran, best, _accuracy(model, train),
                     _accuracy(model, val), _accuracy(model, test),
                     statistics.median(e["seconds"] for e in h.epochs), h, model if keep_model else None)


@dataclass
class Comparison:
    """Runs of several recipes over several seeds, with the table chapter 06 and the README show."""

    runs: list[RunResult]
    setting: str = ""

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike, setting: str = "") -> Comparison:
        """The runs written by ``python -m benchmarks.generalize`` (one JSON object a line)."""
        rows = read_jsonl_path(path)
        return cls([RunResult(**{k: r[k] for k in _RECORD_FIELDS}) for r in rows], setting)

    def of(self, recipe: str) -> list[RunResult]:
        return [r for r in self.runs if r.recipe == recipe]

    @property
    def recipes(self) -> list[str]:
        return list(dict.fromkeys(r.recipe for r in self.runs))

    def median(self, recipe: str, key: str) -> float:
        return float(statistics.median(getattr(r, key) for r in self.of(recipe)))

    def gap_closed(self, recipe: str, baseline: str = "answer") -> float:
        """How much of the baseline's train - val gap ``recipe`` wins back in validation accuracy
        (medians over seeds): (val - val_baseline) / (train_baseline - val_baseline)."""
        gap = self.median(baseline, "train_acc") - self.median(baseline, "val_acc")
        return (self.median(recipe, "val_acc") - self.median(baseline, "val_acc")) / gap if gap > 0 else 0.0

    def beats_on_every_seed(self, recipe: str, baseline: str = "answer", key: str = "val_acc") -> bool:
        """True when ``recipe`` scores higher than ``baseline`` on ``key`` for every shared seed."""
        base = {r.seed: getattr(r, key) for r in self.of(baseline)}
        pairs = [(getattr(r, key), base[r.seed]) for r in self.of(recipe) if r.seed in base]
        return bool(pairs) and all(a > b for a, b in pairs)

    def table(self, test: bool = True) -> str:
        """Markdown: one row per recipe, medians over seeds (min-max of validation accuracy)."""
        cols = ["recipe", "params", "epochs (kept)", "train acc", "val acc (min-max)",
                *["test acc"] * test, "gap closed", "s/epoch"]
        rows = []
        base = self.of("answer")
        for name in self.recipes:
            rs = self.of(name)
            vals = [r.val_acc for r in rs]
            closed = f"{self.gap_closed(name):+.0%}" if base and name != "answer" else "-"
            rows.append([name, f"{rs[0].params:,}",
                         f"{self.median(name, 'epochs'):.0f} ({self.median(name, 'best_epoch'):.0f})",
                         f"{self.median(name, 'train_acc'):.2f}",
                         f"{statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})",
                         *[f"{self.median(name, 'test_acc'):.2f}"] * test,
                         closed, f"{self.median(name, 'seconds_per_epoch'):.2f}"])
        return markdown_table(cols, rows)
