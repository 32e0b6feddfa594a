"""BatchNorm's second trap: known answers for recalibration, the two modes, the doctor's check."""

import keras
import numpy as np
import pytest

from facekit.data import make_faces
from facekit.diagnose import (
    BatchNormWatch,
    PreciseBatchNorm,
    batchnorm_layers,
    doctor,
    mode_gap,
    recalibrate_batchnorm,
)
from facekit.train import fit


def _dense_bn(dropout: float = 0.5) -> tuple[keras.Model, keras.Model]:
    """Dense -> Dropout -> BatchNorm -> Dense, and the model up to the BatchNorm's input."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    h = keras.layers.Dense(3, name="hidden")(inp)
    x = keras.layers.Dropout(dropout)(h)
    x = keras.layers.BatchNormalization(name="bn")(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(x)
    return keras.Model(inp, out), keras.Model(inp, h)


def test_recalibration_is_the_mean_of_the_batch_statistics_with_dropout_off():
    model, upto = _dense_bn()
    x = np.random.default_rng(0).normal(2, 3, (64, 4)).astype("float32")
    done = recalibrate_batchnorm(model, x, batch_size=16)
    assert (done.layers, done.images, done.batches) == (1, 64, 4)
    assert str(done) == ("recalibrated the moving statistics of 1 BatchNormalization layers on 64 images "
                         "(4 batches)")
    h = np.asarray(upto(x))
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean, np.mean([h[i:i + 16].mean(0) for i in range(0, 64, 16)], 0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, np.mean([h[i:i + 16].var(0) for i in range(0, 64, 16)], 0),
                               rtol=1e-4)
    assert bn.momentum == 0.99  # restored


def test_recalibration_leaves_trainable_weights_and_works_nested_and_with_max_batches():
    model, _ = _dense_bn()
    before = [w.copy() for w in model.get_weights()]
    outer = keras.Sequential([keras.Input((4,)), model])
    x = np.random.default_rng(1).normal(0, 1, (100, 4)).astype("float32")
    done = recalibrate_batchnorm(outer, (x, np.zeros(100, int)), batch_size=32, max_batches=2)
    assert (done.layers, done.images, done.batches) == (1, 64, 2)
    trainable = {id(v) for v in model.trainable_weights}
    for v, w in zip(model.weights, before):
        if id(v) in trainable:
            np.testing.assert_array_equal(np.asarray(v), w)
    no_bn = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert recalibrate_batchnorm(no_bn, x).layers == 0 and batchnorm_layers(outer) == [model.get_layer("bn")]


def test_recalibration_with_dropout_on_differs():
    model, _ = _dense_bn(dropout=0.5)
    x = np.random.default_rng(0).normal(2, 3, (64, 4)).astype("float32")
    recalibrate_batchnorm(model, x)
    off = np.asarray(model.get_layer("bn").moving_variance).copy()
    recalibrate_batchnorm(model, x, dropout=True)
    on = np.asarray(model.get_layer("bn").moving_variance)
    assert np.all(on > 1.2 * off)  # Dropout's 1/(1-p) scaling inflates the variance: the variance shift


def _small_bn_cnn(bn: bool = True, momentum: float = 0.99) -> keras.Model:
    """A network facekit does not build: two small-init convs (with BatchNorm), Dropout, a softmax."""
    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(stddev=0.01)
    layers = [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255)]
    for f in (16, 32):
        layers.append(keras.layers.Conv2D(f, 3, padding="same", use_bias=not bn, kernel_initializer=init))
        if bn:
            layers.append(keras.layers.BatchNormalization(momentum=momentum))
        layers += [keras.layers.ReLU(), keras.layers.MaxPooling2D()]
    layers += [keras.layers.Dropout(0.3), keras.layers.Flatten(), keras.layers.Dense(8, activation="softmax")]
    model = keras.Sequential(layers, name="small_bn_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def faces():
    return make_faces(40, 32, seed=0).split(0.25, seed=0)


@pytest.fixture(scope="module")
def trapped(faces):
    """The small network trained 3 epochs: its moving variances still carry their start value 1
    while the real ones are tiny, so inference mode predicts one class."""
    train, val = faces
    model = _small_bn_cnn()
    history = fit(model, train, val, epochs=3, seed=0)
    return model, history


def test_the_trap_one_class_in_inference_mode_and_recalibration_cures_it(faces, trapped):
    train, val = faces
    model, history = trapped
    assert history["accuracy"][-1] > 0.3 and history["val_accuracy"][-1] <= 0.15  # what the student saw
    assert history["val_classes"][-1] <= 2
    gap = mode_gap(model, val)
    assert gap.collapsed and gap.inference["classes"] <= 2 and gap.batch["accuracy"] > 0.3
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    recalibrate_batchnorm(copy, train)
    cured = mode_gap(copy, val)
    assert not cured.collapsed
    assert cured.inference["accuracy"] >= cured.batch["accuracy"] - 0.05  # back to batch-statistics level
    assert mode_gap(model, val).inference == gap.inference  # mode_gap left the statistics as they were


def test_doctor_fails_the_mode_check_and_puts_recalibration_first(faces, trapped):
    train, val = faces
    model, _ = trapped
    report = doctor(model, train, val=val, overfit_steps=5)
    mode, held = report["inference mode"], report["held-out accuracy"]
    assert not mode.ok and not held.ok and not report.ok
    assert report.suggestions[0].startswith("recalibrate the BatchNorm moving statistics")
    assert report.first_step == "recalibrate_batchnorm"
    assert mode.values["recalibrated"]["accuracy"] > mode.values["gap"].inference["accuracy"] + 0.15
    assert "inference accuracy 0.1" in mode.verdict  # the measured cure, in words


def test_no_mode_finding_without_batchnorm(faces):
    train, val = faces
    model = _small_bn_cnn(bn=False)
    fit(model, train, val, epochs=1, seed=0)
    report = doctor(model, train, val=val, overfit_steps=5)
    assert report["inference mode"].ok and "no BatchNormalization" in report["inference mode"].verdict
    assert not any(s.startswith("recalibrate") for s in report.suggestions)


def test_untrained_model_at_chance_is_not_a_held_out_failure(faces):
    train, _ = faces
    model = _small_bn_cnn(bn=False)
    check = doctor(model, train, overfit_steps=5)["held-out accuracy"]
    assert check.ok and "untrained" in check.verdict


def test_precise_batchnorm_logs_the_true_validation_accuracy_and_leaves_training_alone(faces, trapped):
    train, val = faces
    _, plain = trapped
    model = _small_bn_cnn()
    precise = fit(model, train, val, epochs=3, seed=0, callbacks=[PreciseBatchNorm(train)])
    np.testing.assert_allclose(precise["loss"], plain["loss"], rtol=1e-6)  # training unchanged
    assert precise["val_accuracy"][-1] > plain["val_accuracy"][-1] + 0.15
    assert model.evaluate(val.images, val.labels, verbose=0)[1] == pytest.approx(precise["val_accuracy"][-1])


def test_watch_reads_momentum_without_changing_the_run(faces, trapped):
    train, val = faces
    _, plain = trapped
    model = _small_bn_cnn()
    watch = BatchNormWatch(train.images, val)
    watched = fit(model, train, val, epochs=3, seed=0, callbacks=[watch])
    np.testing.assert_allclose(watched["loss"], plain["loss"], rtol=1e-6)
    moving = [e["val_accuracy_moving"] for e in watch.epochs]
    np.testing.assert_allclose(moving, plain["val_accuracy"], atol=1e-6)
    real = _small_bn_cnn(momentum=0.9)  # the same network built with momentum 0.9
    h09 = fit(real, train, val, epochs=3, seed=0)
    np.testing.assert_allclose(h09["loss"], plain["loss"], rtol=1e-6)  # momentum never touches training
    np.testing.assert_allclose([e["val_accuracy_momentum_0.9"] for e in watch.epochs], h09["val_accuracy"],
                               atol=1.5 / len(val.labels))  # float rounding may flip one image
    assert "val_accuracy_recalibrated_dropout_on" in watch.final
