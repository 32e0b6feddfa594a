"""facekit.diagnose on any Keras backend. These tests import Keras and facekit.diagnose only (no
facekit.train, no tf.data), so the same file runs under ``KERAS_BACKEND=tensorflow``, ``jax`` and
``torch``; `.ci/run` runs it once per backend."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import facekit.diagnose as d
from facekit.diagnose.backend import backend, gradients


def _images(n: int = 48, size: int = 8, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is their brightness: easy to learn."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.random((n, size, size, 3)).astype("float32") * 0.2 + (y / classes)[:, None, None, None]
    return x.astype("float32"), y.astype("int64")


def _cnn(classes: int = 3, seed: int = 0, lr: float = 1e-2) -> keras.Model:
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
                          keras.layers.Conv2D(4, 3, activation="relu", name="conv2"),
                          keras.layers.Flatten(),
                          keras.layers.Dense(classes, activation="softmax", name="out")])
    m.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_the_backend_under_test_is_the_one_asked_for():
    assert backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


def test_importing_the_doctor_needs_keras_not_tensorflow():
    """With TensorFlow made unimportable, facekit.diagnose still imports and runs a check (JAX or
    PyTorch backend; under TensorFlow, Keras itself needs it, so the test runs on the others)."""
    if backend() == "tensorflow":
        pytest.skip("the TensorFlow backend imports TensorFlow itself")
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "import numpy as np, keras, facekit.diagnose as d\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='softmax')])\n"
            "x, y = np.zeros((8, 4), 'float32'), np.arange(8) % 3\n"
            "print(d.loss_at_init(m, (x, y)).ok, sys.modules.get('tensorflow') is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False"]


def test_gradients_match_the_softmax_regression_formula():
    """For a linear softmax layer the gradient of the mean cross-entropy is X^T (P - Y) / n: the
    backend's own mechanism must give exactly that."""
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax", name="out")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 5)).astype("float32"), rng.integers(0, 3, 10)
    w, b = (keras.ops.convert_to_numpy(v) for v in m.weights)
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss, (gw, gb) = gradients(m, d.probes.loss_function(m, p), x, y)
    onehot = np.eye(3)[y]
    assert loss == pytest.approx(float(-np.log(p[np.arange(10), y]).mean()), rel=1e-5)
    np.testing.assert_allclose(gw, x.T @ (p - onehot) / 10, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb, (p - onehot).mean(0), rtol=1e-4, atol=1e-6)


def test_gradients_leave_the_weights_and_batchnorm_statistics_alone():
    keras.utils.set_random_seed(2)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), keras.layers.BatchNormalization(),
                          keras.layers.Activation("relu"), keras.layers.Dense(3, activation="softmax")])
    before = [keras.ops.convert_to_numpy(v).copy() for v in m.weights]
    x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 3
    _, grads = gradients(m, d.probes.loss_function(m, np.full((1, 3), 1 / 3)), x, y)
    assert all(g is not None and np.isfinite(g).all() for g in grads)
    for a, v in zip(before, m.weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(v))


def test_the_checks_and_the_doctor_run_on_this_backend():
    x, y = _images()
    model = _cnn()
    init = d.loss_at_init(model, (x, y))
    assert init.values["loss"] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-4)
    assert init.values["ln_c"] == pytest.approx(math.log(3))
    assert d.activation_report(model, (x, y)).values["layers"][0].name == "conv1"
    grads = d.gradient_report(model, (x, y))
    assert [r["layer"] for r in grads.values["layers"]] == ["conv1", "conv2", "out"]
    assert all(r["grad_norm"] > 0 for r in grads.values["layers"])
    assert d.overfit_one_batch(model, (x, y), steps=60).ok
    model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    report = d.doctor(model, (x, y))
    assert report.ok, str(report)  # trained on easy images: healthy, nothing to suggest
    trials = d.try_fixes(model, (x, y), steps=20, n=48)
    # lr 0.01 is above 1e-3, so the fault's size is measured too (/30, /100)
    assert [t.fix for t in trials] == ["baseline", "he_init", "lower_lr", "batch_norm", "fewer_layers",
                                       "lower_lr_30", "lower_lr_100"]
    assert all(len(t.losses) == 20 and t.n_val == 12 for t in trials)
    assert trials[0].val_accuracy > 0.5  # the easy images are learnt in 20 steps at lr 0.01


def test_the_callbacks_record_inside_keras_fit():
    x, y = _images()
    model = _cnn()
    acts, grads = d.ActivationStats(x[:8], every=2), d.GradientStats(x[:8], y[:8], every=2)
    alarm = d.ChanceAlarm(patience=2, verbose=False)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[acts, grads, alarm])
    assert acts.steps == [0, 2, 4, 6, 8, 10, 12] == grads.steps
    assert set(acts.series("dead")) == {"conv1", "conv2"}
    assert set(grads.norms) == {"conv1", "conv2", "out"} and all(len(v) == 7 for v in grads.norms.values())
    assert len(alarm.losses) == 2


def test_gradient_stats_agree_with_gradient_report_on_the_same_images():
    x, y = _images(16)
    model = _cnn()
    stats = d.GradientStats(x, y, every=1000)
    model.fit(x[:1], y[:1], epochs=1, verbose=0, callbacks=[stats])  # one step: the record is at 0
    model2 = _cnn()
    report = d.gradient_report(model2, (x, y), n=16)
    first = {r["layer"]: r["grad_norm"] for r in report.values["layers"]}
    assert {k: v[0] for k, v in stats.norms.items()} == pytest.approx(first, rel=1e-4)


def test_batchnorm_recalibration_and_the_mode_gap_on_this_backend():
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, use_bias=False),
                          keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                          keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    x, y = _images()
    x = x * 40 + 7  # far from the moving statistics' start (mean 0, variance 1)
    gap = d.mode_gap(m, (x, y))
    done = d.recalibrate_batchnorm(m, x)
    bn = d.batchnorm_layers(m)[0]
    assert done.layers == 1 and done.images == len(x)
    assert float(keras.ops.convert_to_numpy(bn.moving_mean).mean()) != 0.0
    after = d.mode_gap(m, (x, y))
    assert after.inference["loss"] == pytest.approx(after.batch["loss"], abs=0.05)
    assert gap.n == after.n == len(x)


@pytest.mark.parametrize("other", ["jax", "torch"])
def test_this_file_passes_on_the_other_backends(other):
    """The TensorFlow run starts one pytest per other backend over this file (each backend in a
    process of its own: Keras picks its backend once, at import). Skipped where the backend's
    package is not installed (`.ci/run` installs both)."""
    import importlib.util

    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("started by the TensorFlow run")
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"{other} is not installed")
    env = {**os.environ, "KERAS_BACKEND": other}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                          __file__], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout.splitlines()[-1]
