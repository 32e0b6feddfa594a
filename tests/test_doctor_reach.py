"""The doctor on models and data facekit never built: data bugs found before network fixes, every
model shape a user has either examined or refused in one line, the model's own loss judged."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import facekit.diagnose as d
from facekit.diagnose.intake import NotDiagnosable
from facekit.diagnose.labels import class_balance, labels_follow_images, thumbnails


def _images(n: int = 256, size: int = 16, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class sets the mean colour of one quadrant: a linear model on thumbnails
    learns it; a network must look at the image to."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.random((n, size, size, 3)).astype("float32")
    h = size // 2
    for k in range(classes):
        r, c = divmod(k, 2)
        x[y == k, r * h:(r + 1) * h, c * h:(c + 1) * h] += 0.8
    return x, y.astype("int64")


def _mlp(classes: int = 4, lr: float = 1e-3, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(classes, activation="softmax")])
    m.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_the_reference_model_follows_true_labels_and_not_shuffled_ones():
    x, y = _images()
    assert labels_follow_images((x, y)).ok
    check = labels_follow_images((x, np.random.default_rng(1).permutation(y)))
    assert not check.ok and check.values["accuracy"] < 0.35 and check.values["n"] == 256


def test_thumbnails_average_blocks_and_keep_flat_inputs_small():
    x = np.arange(2 * 16 * 16 * 3, dtype=np.float32).reshape(2, 16, 16, 3)
    t = thumbnails(x, side=8)
    assert t.shape == (2, 192)
    assert t[0, 0] == pytest.approx(x[0, :2, :2, 0].mean())
    assert thumbnails(np.ones((3, 2000))).shape == (3, 512)


def test_class_balance_counts_every_label_not_a_sample():
    assert class_balance(np.repeat(np.arange(8), 50), 8).ok
    unbalanced = class_balance(np.r_[np.zeros(100, int), np.ones(10, int)], 2)
    assert not unbalanced.ok and "10..100" in unbalanced.verdict
    assert "class 2 has none" in class_balance(np.r_[np.zeros(5, int), np.ones(5, int)], 3).verdict


def test_shuffled_labels_make_the_first_finding_about_the_data():
    x, y = _images()
    shuffled = np.random.default_rng(1).permutation(y)
    model = _mlp()
    model.fit(x, shuffled, epochs=3, batch_size=32, verbose=0)
    xv, yv = _images(128, seed=5)
    report = d.doctor(model, (x, shuffled), val=(xv, np.random.default_rng(2).permutation(yv)))
    assert report.suggestions[0].startswith("the labels may not follow the images: neither the network")
    # without val= the held-out images are training images the MLP memorised: still the data first
    no_val = d.doctor(model, (x, shuffled))
    assert no_val["held-out accuracy"].ok
    assert no_val.suggestions[0].startswith("the labels may not follow the images: the network's")
    assert not report["labels vs images"].ok
    assert not any("convolution" in s for s in report.suggestions)  # the MLP has none
    assert not any("imbalanced" in s for s in report.suggestions)
    healthy = _mlp()
    healthy.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert d.doctor(healthy, (x, y))["labels vs images"].ok


def test_an_mlp_gets_batchnorm_advice_for_its_dense_layers_and_the_trial_builds_it():
    model = _mlp(lr=0.1)
    x, y = _images()
    trials = d.try_fixes(model, (x, y), fixes=["batch_norm"], steps=3, n=64)
    bn = trials[1]
    assert bn.tried and "hidden Dense layer" in bn.what
    rebuilt = d.trials.rebuild(model, batch_norm=True)
    kinds = [type(la).__name__ for la in rebuilt.layers]
    assert kinds == ["Flatten", "Dense", "BatchNormalization", "Activation", "Dense", "BatchNormalization",
                     "Activation", "Dense"]


def test_a_model_with_two_outputs_is_examined_on_its_classifier_output():
    inp = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    two = keras.Model(inp, [keras.layers.Dense(1, name="age")(h),
                            keras.layers.Dense(4, activation="softmax", name="group")(h)])
    two.compile("adam", ["mse", "sparse_categorical_crossentropy"])
    report = d.doctor(two, _images(64))
    assert "output 'group' (2 of 2; the doctor examines one)" in report.model_name


@pytest.mark.parametrize("kind", ["variable input", "subclassed", "lambda"])
def test_models_of_every_build_get_a_report_without_a_traceback(kind):
    x, y = _images(64)
    if kind == "variable input":
        inp = keras.Input((None, None, 3))
        h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
        model = keras.Model(inp, keras.layers.Dense(4, activation="softmax")(h))
    elif kind == "subclassed":
        class Small(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv, self.pool = keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten()
                self.out = keras.layers.Dense(4, activation="softmax")

            def call(self, t):
                return self.out(self.pool(self.conv(t)))

        model = Small()
    else:
        model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Lambda(lambda t: t * 2.0 - 1.0),
                                  keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
                                  keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    report = d.doctor(model, (x, y), trials=True, trial_steps=4, trial_images=64)
    assert len(report.checks) >= 10
    baseline = report.trials[0]
    assert baseline.fix == "baseline" and baseline.tried and len(baseline.losses) == 4
    if kind == "subclassed":
        assert "not measured" in report["activations"].verdict
        assert "subclassed" in next(t for t in report.trials if t.fix == "he_init").why_not


def test_a_subclassed_model_that_cannot_be_copied_gets_its_forward_checks_and_a_note():
    class NeedsArgs(keras.Model):
        def __init__(self, units):
            super().__init__()
            self.flat, self.out = keras.layers.Flatten(), keras.layers.Dense(units, activation="softmax")

        def call(self, t):
            return self.out(self.flat(t))

    model = NeedsArgs(4)
    model.compile("adam", "sparse_categorical_crossentropy")
    report = d.doctor(model, _images(64), trials=True, trial_steps=3)
    assert report["overfit one batch"].verdict.startswith("not run: cannot copy NeedsArgs")
    assert all(not t.tried for t in report.trials)


@pytest.mark.parametrize(("build", "labels", "says"), [
    ("sigmoid", None, "one output unit"),
    ("regression", None, "is not a classifier: it is compiled with the loss 'mse'"),
    ("softmax", "text", "labels are text ('a', 'b', 'c', ...)"),
])
def test_what_the_doctor_cannot_examine_is_refused_in_one_line(build, labels, says):
    x, y = _images(64)
    units, act, loss = {"sigmoid": (1, "sigmoid", "binary_crossentropy"), "regression": (3, None, "mse"),
                        "softmax": (4, "softmax", "sparse_categorical_crossentropy")}[build]
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(units, activation=act)])
    model.compile("adam", loss)
    if labels == "text":
        y = np.array(["a", "b", "c", "d"])[y]
    with pytest.raises(NotDiagnosable) as e:
        d.doctor(model, (x, y))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_loss_judged_is_the_compiled_one_and_a_mismatch_comes_first():
    x, y = _images(64)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=False))
    report = d.doctor(model, (x, y))
    compiled = model.evaluate(x, y, verbose=0)
    assert report["loss vs ln C"].values["loss"] == pytest.approx(compiled, rel=0.05)
    assert not report["loss vs outputs"].ok
    assert report.suggestions[0].startswith("the loss reads the outputs wrongly")
    assert "from_logits=True" in report.suggestions[0]
    twice = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(4, activation="softmax")])
    twice.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match="produced by a Softmax activation"):  # Keras notices it too
        assert "softmax applied twice" in d.doctor(twice, (x, y)).suggestions[0]


def test_a_learning_rate_above_the_default_is_sized_by_trials_at_30x_and_100x_lower():
    x, y = _images()
    trials = d.try_fixes(_mlp(lr=0.1), (x, y), fixes=["lower_lr"], steps=5, n=64)
    assert [t.fix for t in trials] == ["baseline", "lower_lr", "lower_lr_30", "lower_lr_100"]
    assert [t.what for t in trials[1:]] == ["learning rate 0.1 -> 0.01", "learning rate 0.1 -> 0.00333",
                                           "learning rate 0.1 -> 0.001"]
    assert all(len(t.losses) == 5 for t in trials)
    at_default = d.try_fixes(_mlp(lr=1e-3), (x, y), fixes=["lower_lr"], steps=3, n=64)
    sized = [t.fix for t in at_default if t.fix.startswith("lower_lr_")]
    helped = any(t.fix == "lower_lr" for t in d.trials.ranked(at_default))
    assert bool(sized) == helped  # at Keras' default rate only a /10 that helped is sized


def test_a_time_budget_gives_every_trial_the_same_smaller_number_of_steps():
    x, y = _images()
    trials = d.try_fixes(_mlp(), (x, y), steps=10_000, n=64, budget=3.0)
    steps = {len(t.losses) for t in trials if t.tried}
    assert len(steps) == 1 and 10 <= steps.pop() < 10_000


def test_the_doctor_s_budget_covers_its_checks_and_the_report_says_it_scaled_the_trials_down():
    x, y = _images()
    y = np.random.default_rng(1).permutation(y)  # nothing to learn: the doctor has findings, runs trials
    report = d.doctor(_mlp(lr=0.5), (x, y), trials=True, trial_steps=10_000, budget=1.0)
    steps = {len(t.losses) for t in report.trials if t.tried}
    assert steps == {10}  # the checks spent the second: every trial gets the floor of 10 steps
    assert (report.asked_steps, report.budget) == (10_000, 1.0)
    assert "scaled down: 10 steps a trial, not 10000 - " in report.text()
    assert " s a step here, the budget 1 s" in report.text()
    assert all(t.seconds > 0 for t in report.trials if t.tried)
    if report.top_fix is None:  # 10 steps separated nothing: the rules' order stands, and it says so
        assert any("did not separate the fixes: the rules' order follows" in s for s in report.suggestions)


def test_activation_statistics_summed_over_chunks_equal_those_of_the_whole_batch():
    a = np.maximum(np.random.default_rng(0).standard_normal((20, 5, 5, 6)), 0).astype("float32")
    a[..., 2] = 0  # a dead channel
    a[:10, ..., 3] = 0  # dead in the first chunk only: alive over the batch
    whole = d.layer_stats("x", a)
    summed = d.probes.StatsSum().add(a[:8]).add(a[8:16]).add(a[16:]).stats("x")
    for f in ("mean", "std", "rms", "zero", "near_zero", "dead"):
        assert getattr(summed, f) == pytest.approx(getattr(whole, f), rel=1e-9, abs=1e-12), f
    assert whole.dead == pytest.approx(1 / 6)


def test_structural_fixes_say_what_they_change_on_this_model():
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([keras.Input((16, 16, 3))] + [keras.layers.Conv2D(4, 3, padding="same",
                           activation="relu") for _ in range(4)] + [keras.layers.Flatten(),
                           keras.layers.Dense(4, activation="softmax")])
    cnn.compile("adam", "sparse_categorical_crossentropy")
    trials = d.try_fixes(cnn, _images(64), fixes=["batch_norm", "fewer_layers"], steps=2, n=64)
    bn, fewer = trials[1], trials[2]
    assert "(+4 BatchNormalization layers; " in bn.what and " parameters)" in bn.what
    assert "(4 -> 1 convolutions; " in fewer.what


def test_trials_cut_short_that_separate_nothing_leave_the_rules_order_and_say_so():
    from facekit.diagnose.doctor import _measured
    from facekit.diagnose.trials import Trial

    base = Trial("baseline", "unchanged", losses=[2.0] * 12, val_loss=2.08, val_accuracy=0.17, n_val=64)
    bn = Trial("batch_norm", "BatchNormalization ...", losses=[2.0] * 12, val_loss=2.07, val_accuracy=0.18,
               n_val=64)
    rules = ["BatchNormalization after each convolution", "He initialisation of the convolutions"]
    cut = _measured([base, bn], rules, [], scaled=True)
    assert cut[0].startswith("the trials, cut to 12 steps by the budget, did not separate the fixes")
    assert cut[1:3] == rules and "did not beat the unchanged model in 12 steps" in cut[3]
    assert _measured([base, bn], rules, []) == [cut[3]]  # the full trials' verdict stands on its own
