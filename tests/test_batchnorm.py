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
from facekit.diagnose.batchnorm import scores
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
    order = np.random.default_rng(0).permutation(64)  # recalibrate_batchnorm's fixed shuffle
    batches = [h[np.sort(order[i:i + 16])] for i in range(0, 64, 16)]
    np.testing.assert_allclose(bn.moving_mean, np.mean([b.mean(0) for b in batches], 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
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


class _Block(keras.layers.Layer):
    """A custom layer holding Dense -> BatchNorm -> Dropout (no ``.layers`` attribute)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense, self.bn, self.drop = (keras.layers.Dense(3), keras.layers.BatchNormalization(),
                                          keras.layers.Dropout(0.5))

    def call(self, x):
        return self.drop(self.bn(self.dense(x)))


def test_recalibration_reaches_batchnorm_inside_a_custom_layer_and_restores_every_layer():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    block = _Block()
    model = keras.Model(inp, keras.layers.Dense(2)(block(inp)))
    x = np.random.default_rng(0).normal(2, 3, (64, 4)).astype("float32")
    assert batchnorm_layers(model) == [block.bn]
    recalibrate_batchnorm(model, x, batch_size=64)
    h = np.asarray(block.dense(x))
    np.testing.assert_allclose(block.bn.moving_mean, h.mean(0), rtol=1e-5, atol=1e-6)  # Dropout was off
    assert all("call" not in la.__dict__ for la in (block, block.dense, block.drop))  # patches removed


def test_frozen_batchnorm_and_class_sorted_data():
    model, upto = _dense_bn()
    bn = model.get_layer("bn")
    bn.trainable = False
    assert recalibrate_batchnorm(model, np.ones((8, 4), "float32")).layers == 0  # left as chosen
    assert float(np.asarray(bn.moving_variance)[0]) == 1.0
    bn.trainable = True
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (64, 4)), rng.normal(3, 1, (64, 4))]).astype("float32")  # sorted
    recalibrate_batchnorm(model, x, batch_size=32)
    h = np.asarray(upto(x))
    # shuffled batches: close to the variance of all images, not to the within-class variance
    np.testing.assert_allclose(bn.moving_variance, h.var(0), rtol=0.15)


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
    assert gap.inference == scores(model, val)  # 80 images, 3 batches: each judged with the same statistics


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
    seeds = lambda m: [np.asarray(v) for v in m.variables if "seed_generator" in v.path]  # noqa: E731
    assert seeds(model) and all(np.array_equal(a, b) for a, b in zip(seeds(model), seeds(trapped[0])))


def test_cli_doctor_judges_a_saved_model_on_a_val_folder(tmp_path, trapped, capsys):
    from facekit.cli import main
    from facekit.data import write_folder

    model, _ = trapped
    model.save(tmp_path / "bn.keras")
    data = write_folder(tmp_path / "T", n_per_class=8, size=32)
    held = write_folder(tmp_path / "V", n_per_class=6, size=32, seed=1)
    saved = str(tmp_path / "bn.keras")
    assert main(["doctor", saved, str(data), "--val", str(held), "--per-class", "8"]) == 1
    out = capsys.readouterr().out
    assert "[!!] inference mode: validation images: inference mode predicts" in out
    assert "1. recalibrate the BatchNorm moving statistics" in out
    assert main(["doctor", str(tmp_path / "bn.keras"), str(data), "--val", str(tmp_path / "nowhere")]) == 2
