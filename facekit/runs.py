"""Runs this process has already made, so a chapter section can run without the section that
trained its network: `fit(reuse=True)`, `story.reproduce(reuse=True)` and `story.beyond(reuse=True)`
all go through one `RunCache` each. A run is found again only with the *same* data objects (not
equal copies) and, for `fit`, the same architecture, initial weights, optimizer and settings."""

from __future__ import annotations

import json
import zlib
from collections.abc import Hashable, Sequence
from typing import Any

import keras
import numpy as np

__all__ = ["RunCache", "FITS", "fit_key", "remember_fit", "reuse_fit", "trained_steps"]


class RunCache:
    """Runs by key, each stored with the data objects it was made on; ``keep``: the most kept
    (oldest dropped first; None: all)."""

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep
        self._runs: dict[Hashable, tuple[tuple[Any, ...], Any]] = {}

    def get(self, key: Hashable, data: tuple[Any, ...]) -> Any | None:
        """The run stored under ``key`` if it was made on these very ``data`` objects, else None."""
        hit = self._runs.get(key)
        if hit is None or len(hit[0]) != len(data) or any(a is not b for a, b in zip(hit[0], data)):
            return None
        return hit[1]

    def put(self, key: Hashable, data: tuple[Any, ...], run: Any) -> None:
        self._runs[key] = (data, run)
        while self.keep is not None and len(self._runs) > self.keep:
            del self._runs[next(iter(self._runs))]  # oldest first

    def __len__(self) -> int:
        return len(self._runs)


# fit(reuse=True): the last 6 runs, each (trained weights, History, callbacks of that run, optimizer steps)
FITS = RunCache(keep=6)


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


def fit_key(model: keras.Model, train: Any, val: Any, *settings: Hashable) -> tuple:
    """The key of a `fit` call: the model before training (`_fingerprint`), the data objects'
    identities and ``settings`` (epochs, batch size, seed, shuffle)."""
    return (_fingerprint(model), id(train), id(val), *settings)


def remember_fit(key: tuple, train: Any, val: Any, model: keras.Model, history: Any,
                 callbacks: Sequence[keras.callbacks.Callback]) -> None:
    """Keep a finished `fit`: its trained weights, History, callbacks and optimizer steps."""
    FITS.put(key, (train, val), ([w.copy() for w in model.get_weights()], history, tuple(callbacks),
                                 trained_steps(model)))


def reuse_fit(key: tuple, train: Any, val: Any, model: keras.Model,
              callbacks: Sequence[keras.callbacks.Callback]) -> Any:
    """The stored run's `facekit.train.History` for ``key``, its weights loaded into ``model`` and
    its records into ``callbacks``; None if there is none or a recording callback has no equal in
    it. (Histories are typed Any here: train imports this module, not the other way.)"""
    hit = FITS.get(key, (train, val))
    if hit is None:
        return None
    weights, history, before, steps = hit
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
