"""facekit.train: true per-batch losses, determinism, the stuck detector, strategies."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from facekit.data import Dataset
from facekit.models import compile_like_question
from facekit.train import History, fit, make_tf_dataset, predict, stuck_at_chance


def tiny_data(n=40, size=8, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    x[..., 0] = (y[:, None, None] * 60).astype(np.uint8)  # learnable: red channel encodes the class
    return Dataset(x, y, tuple(f"c{i}" for i in range(classes)))


def tiny_model(size=8, classes=4, lr=1e-2, seed=0, optimizer="adam"):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(classes, activation="softmax")(x)
    return compile_like_question(keras.Model(inp, out), lr, optimizer)


def test_batch_loss_is_each_batchs_own_loss_not_a_running_mean():
    ds = tiny_data(n=40)
    model = tiny_model(lr=0.0, optimizer="sgd")  # weights never change: losses can be recomputed
    h = fit(model, ds, epochs=1, batch_size=16, seed=0, shuffle=False)
    p = model.predict(ds.images, verbose=0)
    ce = -np.log(np.clip(p[np.arange(len(ds)), ds.labels], 1e-7, 1))
    expected = [ce[i:i + 16].mean() for i in range(0, 40, 16)]  # batches of 16, 16, 8
    assert np.allclose(h.batch_loss, expected, atol=1e-5)
    assert h.final("loss") == pytest.approx(ce.mean(), abs=1e-5)  # epoch loss: mean over images
    running = np.cumsum([e * n for e, n in zip(expected, (16, 16, 8))]) / np.array([16, 32, 40])
    assert not np.allclose(h.batch_loss[1:], running[1:], atol=1e-4)


def test_same_seed_same_history_and_it_learns():
    ds = tiny_data(n=64)
    h1 = fit(tiny_model(seed=1), ds, ds, epochs=3, batch_size=8, seed=1)
    h2 = fit(tiny_model(seed=1), ds, ds, epochs=3, batch_size=8, seed=1)
    assert h1.batch_loss == h2.batch_loss and h1["val_loss"].tolist() == h2["val_loss"].tolist()
    assert h1.final("loss") < h1.epochs[0]["loss"]
    h3 = fit(tiny_model(seed=1), ds, ds, epochs=3, batch_size=8, seed=2)  # other shuffling
    assert h3.batch_loss != h1.batch_loss
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(h1.epochs[0])
    assert "epoch" in h1.table() and len(h1.table().splitlines()) == 4


def test_fit_accepts_arrays_and_a_strategy():
    ds = tiny_data(n=32)
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = tiny_model()
    h = fit(model, (ds.images, ds.labels), epochs=1, batch_size=8, strategy=strategy)
    assert len(h.batch_loss) == 4 and "val_loss" not in h.epochs[0]


def test_fit_rejects_labels_beyond_the_outputs():
    ds = tiny_data(n=16, classes=4)
    with pytest.raises(ValueError, match="labels run from 0 to 3, but the model has 2 outputs"):
        fit(tiny_model(classes=2), ds, epochs=1)


@pytest.mark.parametrize("loss, acc, c, stuck", [
    (2.0797, 0.12, 8, True), (math.log(8) + 0.004, 0.125, 8, True), (2.07, 0.125, 8, False),
    (2.0797, 0.30, 8, False), (math.log(3), 0.33, 3, True), (1.2, 0.5, 3, False)])
def test_stuck_at_chance(loss, acc, c, stuck):
    assert stuck_at_chance(loss, acc, c) is stuck


def test_history_stuck_property_reads_the_last_epoch():
    h = History(8, epochs=[{"loss": 2.0845, "accuracy": 0.1}, {"loss": 2.0796, "accuracy": 0.126}])
    assert h.stuck and h["loss"].tolist() == [2.0845, 2.0796]
    assert History(8, epochs=[{"loss": 2.0796, "accuracy": 0.125}]).stuck  # one epoch: its own word
    h.epochs.append({"loss": 1.5, "accuracy": 0.4})
    assert not h.stuck
    passing = History(8, epochs=[{"loss": 2.53, "accuracy": 0.13}, {"loss": 2.0963, "accuracy": 0.14},
                                 {"loss": 2.0785, "accuracy": 0.14}])  # on its way down (He init)
    assert not passing.stuck


def test_reuse_returns_the_same_run_only_for_the_same_start():
    from facekit.diagnose import ActivationStats
    ds = tiny_data(n=32)
    stats = ActivationStats(ds.images[:4], every=2)
    first = tiny_model(seed=3)
    h = fit(first, ds, ds, epochs=2, batch_size=8, seed=0, callbacks=[stats])
    again, stats2 = tiny_model(seed=3), ActivationStats(ds.images[:4], every=2)
    assert fit(again, ds, ds, epochs=2, batch_size=8, seed=0, callbacks=[stats2], reuse=True) is h
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights()))
    assert int(again.optimizer.iterations) == int(first.optimizer.iterations) == 8  # 2 epochs x 4 batches
    assert stats2.steps == stats.steps
    assert stats2.series("dead").keys() == stats.series("dead").keys()
    assert fit(tiny_model(seed=4), ds, ds, epochs=2, batch_size=8, seed=0, reuse=True) is not h  # init
    assert fit(tiny_model(seed=3), ds, ds, epochs=3, batch_size=8, seed=0, reuse=True) is not h  # epochs
    copy = tiny_data(n=32)   # equal data, another object
    assert fit(tiny_model(seed=3), copy, ds, epochs=2, batch_size=8, seed=0, reuse=True) is not h
    other = ActivationStats(ds.images[:4], every=3)   # records something the first run did not
    assert fit(tiny_model(seed=3), ds, ds, epochs=2, batch_size=8, seed=0, callbacks=[other],
               reuse=True) is not h
    assert other.steps   # it trained, so it recorded


def test_datasets_turn_tf_data_autotuning_off_and_predict_matches_keras():
    # autotuning's thread made each epoch's iterator wait for its next wake-up (10 ms doubling):
    # a 24 s epoch ended at 40.96 s. facekit's datasets must keep it off.
    ds = tiny_data(n=40)
    data = make_tf_dataset(ds.images, ds.labels, 16, shuffle=True)
    assert data.options().autotune.enabled is False
    assert [len(b[0]) for b in data] == [16, 16, 8]
    model = tiny_model()
    assert np.array_equal(predict(model, ds.images, 16), model.predict(ds.images, batch_size=16, verbose=0))
    assert predict(model, ds.images[:0]).shape == (0, 4)
