"""Run sizes: ``ci`` (seconds, for tests), ``classroom`` (default: minutes on a laptop CPU) and
``full`` (the question's true sizes; GPU recommended). Choose with an argument or the
``FACEKIT_PROFILE`` environment variable.

The ``ci`` and ``classroom`` settings were picked from measured stuck rates of the question's
network over many seeds: see ``benchmarks/results/reproduction.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from facekit.data import Dataset, load
from facekit.text import WIDTH, wrap

__all__ = ["Profile", "Regime", "PROFILES", "get_profile", "setup", "load_profile_data"]


@dataclass(frozen=True)
class Regime:
    """Chapter 06's regime, where the answer's network memorises (`facekit.generalize`):
    ``per_class`` training images a class at ``size`` px, ``held`` a class each for validation
    and test; the answer's network trains ``answer_epochs``, the improved one up to ``epochs``
    with early stopping after ``patience`` epochs without a better validation loss."""

    size: int = 64
    per_class: int = 50
    held: int = 25
    answer_epochs: int = 25
    epochs: int = 60
    patience: int = 15


@dataclass(frozen=True)
class Profile:
    """Sizes for one kind of run. The question's network uses ``filters`` at ``size`` px on
    ``per_class`` images per class; the answer's network trains for ``answer_epochs``."""

    name: str
    size: int
    per_class: int
    filters: int
    epochs: int
    answer_epochs: int
    batch_size: int = 16
    seeds: tuple[int, ...] = (0, 1, 2)
    difficulty: float = 0.5
    val_fraction: float = 0.1
    regime: Regime = field(default_factory=Regime)  # chapter 06 (facekit.generalize)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    def describe(self, width: int | None = WIDTH) -> str:
        """The profile's sizes in words, wrapped to ``width`` (None: one line)."""
        text = (f"profile {self.name!r}: {self.size}x{self.size} px, {self.per_class} images/class, "
                f"question net {self.filters} filters x {self.epochs} epochs, answer net "
                f"{self.answer_epochs} epochs, batch {self.batch_size}, seeds {list(self.seeds)}; "
                f"chapter 06: {self.regime.size} px, {self.regime.per_class} training images/class, "
                f"answer net {self.regime.answer_epochs} epochs, improved net up to {self.regime.epochs}")
        return wrap(text, width) if width else text


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", size=100, per_class=50, filters=32, epochs=3, answer_epochs=8, seeds=(0, 1, 2),
                  regime=Regime(answer_epochs=20, epochs=40)),
    "classroom": Profile("classroom", size=100, per_class=50, filters=128, epochs=4, answer_epochs=10,
                         seeds=(0, 1, 2)),
    "full": Profile("full", size=200, per_class=700, filters=256, epochs=5, answer_epochs=10,
                    seeds=(0,), regime=Regime(answer_epochs=40, epochs=100)),
}


def get_profile(name: str | Profile | None = None, **overrides: Any) -> Profile:
    """The profile called ``name`` (default: ``$FACEKIT_PROFILE``, else ``classroom``), with any
    field overridden by keyword: ``get_profile("classroom", filters=16)``; chapter 06's fields
    with a dict, ``get_profile("ci", regime={"epochs": 10})``. Profiles are frozen: change one
    this way, not by assigning to it."""
    if isinstance(name, Profile):
        profile = name
    else:
        key = (name or os.environ.get("FACEKIT_PROFILE") or "classroom").strip().lower()
        if key not in PROFILES:
            raise ValueError(f"unknown profile {key!r}; choose from {sorted(PROFILES)}")
        profile = PROFILES[key]
    known = {f.name for f in fields(Profile)}
    if unknown := sorted(set(overrides) - known):
        raise ValueError(f"unknown profile field(s) {unknown}; a profile has {sorted(known)}")
    if isinstance(overrides.get("regime"), dict):
        overrides["regime"] = replace(profile.regime, **overrides["regime"])
    return replace(profile, **overrides) if overrides else profile


def setup(profile: str | Profile | None = None, seed: int = 0, verbose: bool = True,
          **overrides: Any) -> Profile:
    """Start a notebook or script: pick the profile (with any ``overrides``, as `get_profile`),
    seed everything (deterministic TF ops), and print the versions, the devices TensorFlow sees
    and the profile."""
    import keras
    import tensorflow as tf

    import facekit
    from facekit.train import set_seed

    prof = get_profile(profile, **overrides)
    set_seed(seed)
    if verbose:
        devices = ", ".join(d.device_type for d in tf.config.list_physical_devices())
        print(wrap(f"facekit {facekit.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
                   f"devices: {devices}"))
        print(prof.describe())
    return prof


def load_profile_data(profile: Profile, data: str = "synthetic", seed: int = 0) -> tuple[Dataset, Dataset]:
    """The profile's data set (``data``: "synthetic", a UTKFace folder or a question-layout folder),
    split (shuffled, stratified) into train and validation.

    Taught in chapter 02, section 2."""
    ds = load(data, size=profile.size, per_class=profile.per_class, seed=seed,
              difficulty=profile.difficulty)
    return ds.split(profile.val_fraction, seed=seed)
