"""facekit.diagnose: known-answer tests for every check, the callbacks and the doctor,
on models facekit did not build (digits drawn with cv2.putText)."""

from __future__ import annotations

import json
import math

import cv2
import keras
import numpy as np
import pytest

from facekit.diagnose import (
    ActivationStats,
    ChanceAlarm,
    GradientStats,
    activation_report,
    doctor,
    gradient_report,
    input_baseline,
    loss_at_init,
    lr_sweep,
    output_sensitivity,
    overfit_one_batch,
)
from facekit.train import fit


def digits(n_per_class: int = 12, size: int = 28, classes: int = 10, seed: int = 0):
    """A small data set that is not faces: digits drawn with cv2.putText, float inputs 0..1."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c in range(classes):
        for _ in range(n_per_class):
            img = np.zeros((size, size), np.uint8)
            org = (int(rng.integers(2, 9)), int(rng.integers(20, 26)))
            cv2.putText(img, str(c), org, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
            x.append(np.repeat(img[..., None], 3, -1))
            y.append(c)
    return np.array(x, np.float32) / 255.0, np.array(y)


def small_cnn(classes=10, seed=0, bias=0.0, init="he_normal", dense_zero=False):
    """Built the plain Sequential way, without keras.Input."""
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([
        keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=init,
                            bias_initializer=keras.initializers.Constant(bias), name="conv_a"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu", kernel_initializer=init, name="conv_b"),
        keras.layers.Flatten(),
        keras.layers.Dense(classes, activation="softmax", name="out",
                           kernel_initializer="zeros" if dense_zero else "glorot_uniform"),
    ])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def test_large_negative_bias_makes_a_layer_100_percent_dead_and_gradients_vanish():
    x, y = digits()
    m = small_cnn(bias=-100.0)
    check = activation_report(m, (x, y))
    stats = {s.name: s for s in check.values["layers"]}
    assert stats["conv_a"].dead == 1.0 and stats["conv_a"].zero == 1.0
    assert not check.ok and "conv_a" in check.values["dying"]
    grads = gradient_report(m, (x, y))
    assert "conv_a" in grads.values["weak"] and not grads.ok


def test_three_classes_at_init_give_ln_3():
    x, y = digits(classes=3)
    check = loss_at_init(small_cnn(classes=3, dense_zero=True), (x, y))
    assert check.values["loss"] == pytest.approx(math.log(3), abs=1e-5)
    assert check.values["ln_c"] == pytest.approx(math.log(3)) and check.ok


def test_constant_output_model_has_zero_sensitivity_and_ignores_its_input():
    x, y = digits()
    m = small_cnn(dense_zero=True)
    s = output_sensitivity(m, (x, y))
    assert s.values["logit_spread"] == pytest.approx(0.0, abs=1e-9) and not s.ok
    assert not input_baseline(m, (x, y)).ok
    healthy = small_cnn()
    assert output_sensitivity(healthy, (x, y)).ok and input_baseline(healthy, (x, y)).ok


def test_activation_report_separates_exact_zeros_from_near_zeros():
    x, y = digits()
    stats = activation_report(small_cnn(), (x, y)).values["layers"]
    for s in stats:
        assert 0 < s.zero < 1 and 0 <= s.near_zero < 1 - s.zero


def test_overfit_one_batch_and_lr_sweep_on_a_healthy_model():
    x, y = digits()
    m = small_cnn()
    before = [w.copy() for w in m.get_weights()]
    assert overfit_one_batch(m, (x, y), steps=60).ok
    sweep = lr_sweep(m, (x, y), steps=50)
    assert sweep.ok and sweep.values["suggested"][0] < sweep.values["suggested"][1]
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))  # model untouched


def test_overfit_one_batch_gives_the_same_numbers_twice_on_a_model_with_dropout():
    x, y = digits()
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(), keras.layers.Dropout(0.5),
                          keras.layers.Dense(32, activation="relu"), keras.layers.Dropout(0.5),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    first = overfit_one_batch(m, (x, y), steps=5).values["losses"]
    np.random.default_rng(1).random(3), keras.random.uniform((2,))  # the global state moves on
    assert overfit_one_batch(m, (x, y), steps=5).values["losses"] == first


def test_lr_sweep_on_a_dead_network_cannot_pick_a_rate_and_does_not_clear_it():
    x, y = digits()
    check = lr_sweep(small_cnn(bias=-100.0, dense_zero=True), (x, y), steps=30, lr_max=1e-2)
    assert not check.ok and "cannot pick one" in check.verdict
    assert "not the problem" not in check.verdict  # chapter 03: a lower rate does help the question net


def test_chance_alarm_fires_on_a_stuck_history_only():
    m = small_cnn(classes=8)
    m.build((None, 28, 28, 3))
    stuck, learning = ChanceAlarm(patience=3), ChanceAlarm(patience=3, stop=True)
    stuck.set_model(m)
    for e, loss in enumerate([2.2, 2.0797, 2.0795, 2.0794]):
        stuck.on_epoch_end(e, {"loss": loss})
    assert stuck.fired and stuck.fired_epoch == 4
    learning.set_model(m)
    for e, loss in enumerate([2.0797, 2.0796, 1.9, 1.5, 1.2]):
        learning.on_epoch_end(e, {"loss": loss})
    assert not learning.fired and not m.stop_training


def test_chance_alarm_speaks_when_training_loss_falls_but_validation_guesses(capsys):
    m = small_cnn(classes=8)
    m.build((None, 28, 28, 3))
    alarm, fine = ChanceAlarm(patience=3), ChanceAlarm(patience=3)
    for a in (alarm, fine):
        a.set_model(m)
    for e, (loss, val) in enumerate([(2.5, 0.125), (1.8, 0.125), (1.5, 0.1), (1.2, 0.125)]):
        alarm.on_epoch_end(e, {"loss": loss, "val_accuracy": val})
        fine.on_epoch_end(e, {"loss": loss, "val_accuracy": 0.125 + 0.1 * e})
    assert alarm.guessing == 4 and not alarm.fired and fine.guessing is None
    out = capsys.readouterr().out
    assert "'inference mode' check" in " ".join(out.split())  # wrapped to the notebook's width


def test_chance_alarm_can_stop_training():
    m = small_cnn(classes=8)
    m.build((None, 28, 28, 3))
    alarm = ChanceAlarm(patience=2, stop=True, verbose=False)
    alarm.set_model(m)
    for e in range(2):
        alarm.on_epoch_end(e, {"loss": math.log(8)})
    assert alarm.fired and m.stop_training


def test_callbacks_record_during_fit():
    x, y = digits()
    m = small_cnn()
    m.build((None, 28, 28, 3))
    acts, grads = ActivationStats(x[:16], every=2), GradientStats(x[:16], y[:16], every=2)
    h = fit(m, (x, y), epochs=1, batch_size=16, callbacks=[acts, grads])
    assert len(h.batch_loss) == 8
    assert acts.steps == [0, 2, 4, 6, 8] and grads.steps == acts.steps
    assert set(acts.stats) == {"conv_a", "conv_b"} and set(grads.norms) == {"conv_a", "conv_b", "out"}
    hist = np.array(acts.hists["conv_a"])
    zero = acts.series("zero")["conv_a"]
    assert np.allclose(hist.sum(1), 1 - zero)  # the histogram holds exactly the non-zeros


def test_doctor_on_a_foreign_model_healthy_and_sick():
    x, y = digits()
    healthy = doctor(small_cnn(), (x, y))
    assert healthy.ok, str(healthy)
    sick = doctor(small_cnn(bias=-100.0, init="glorot_uniform"), (x, y))
    assert not sick.ok and "conv_a" in sick.dying_layers
    text = str(sick)
    assert "He initialisation" in text and "[!!] activations" in text
    assert sick["gradients"].ok is False


def test_ablation_from_jsonl_counts_and_takes_medians(tmp_path):
    from facekit.ablation import Ablation

    runs = [{"variant": "question", "stuck": True, "final_loss": v, "val_acc": 0.125, "s_per_epoch": 2.0}
            for v in (2.0796, 2.0797, 2.0798, 2.0799)]
    runs += [{"variant": "he_init", "stuck": False, "final_loss": v, "val_acc": a, "s_per_epoch": 1.0}
             for v, a in ((1.0, 0.5), (2.0, 0.25), (3.0, 0.75))]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    rows = {r["variant"]: r for r in Ablation.from_jsonl(path).rows}
    assert rows["question"]["stuck"] == rows["question"]["runs"] == 4
    assert rows["question"]["final_loss"] == pytest.approx(2.07975)  # the median of an even count
    assert rows["he_init"]["stuck"] == 0 and rows["he_init"]["val_acc"] == 0.5


def test_ablation_counts_four_outcomes_and_epochs_to_learn(tmp_path):
    from facekit.ablation import Ablation

    runs = [{"variant": "lr_1e-4", "stuck": False, "outcome": o, "epochs_to_learn": e, "final_loss": 1.0,
             "val_acc": 0.5, "val_accuracy": [0.5], "s_per_epoch": 1.0}
            for o, e in (("learns", 4), ("learns", 6), ("drifting", None), ("stuck", None),
                         ("guessing", None))]
    # a run recorded before per-epoch validation accuracy: judged on its last epoch's
    runs.append({"variant": "lr_1e-4", "stuck": False, "outcome": "learns", "epochs_to_learn": 3,
                 "final_loss": 1.0, "val_acc": 0.125, "s_per_epoch": 1.0})
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    a = Ablation.from_jsonl(path)
    row = a.rows[0]
    assert (row["learns"], row["drifting"], row["guessing"], row["stuck"], row["epochs_to_learn"]) == \
        (2, 1, 2, 1, 5.0)
    row_text = "| lr_1e-4 | Adam learning rate 1e-4 instead of 1e-3 | 2/6 | 1/6 | 2/6 | 1/6 | 5 |"
    assert row_text in a.outcome_table()


def test_ablation_reads_the_batchnorm_runs_recalibrated(tmp_path):
    from facekit.ablation import Ablation

    run = {"variant": "batch_norm", "stuck": False, "outcome": "guessing", "epochs_to_learn": None,
           "final_loss": 0.6, "val_acc": 0.125, "val_accuracy": [0.125, 0.125], "s_per_epoch": 1.0,
           "val_accuracy_recalibrated": [0.4, 0.8], "outcome_recalibrated": "learns",
           "epochs_to_learn_recalibrated": 2, "val_accuracy_momentum_0.9": [0.1, 0.3],
           "outcome_momentum_0.9": "drifting", "epochs_to_learn_momentum_0.9": None}
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(run) + "\n")
    rows = {r["variant"]: r for r in Ablation.from_jsonl(path).rows}
    assert list(rows) == ["batch_norm", "batch_norm [recalibrated]", "batch_norm [momentum_0.9]"]
    assert rows["batch_norm"]["guessing"] == 1 and rows["batch_norm"]["val_acc"] == 0.125
    recal = rows["batch_norm [recalibrated]"]
    assert recal["learns"] == 1 and recal["val_acc"] == 0.8
    assert rows["batch_norm [momentum_0.9]"]["drifting"] == 1


def test_ablation_keeps_each_runs_curve_and_tolerates_runs_without_timings(tmp_path):
    import matplotlib.pyplot as plt

    from facekit import plots
    from facekit.ablation import Ablation

    runs = [{"variant": "question", "stuck": True, "outcome": "stuck", "epochs_to_learn": None,
             "final_loss": 2.0799, "val_acc": 0.125, "s_per_epoch": None, "losses": [2.085, 2.080, 2.0799]},
            {"variant": "batch_norm", "stuck": False, "outcome": "learns", "epochs_to_learn": 2,
             "final_loss": 1.2, "val_acc": 0.4, "s_per_epoch": 3.0, "losses": [2.5, 1.2]}]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    a = Ablation.from_jsonl(path)
    assert a.curves("batch_norm") == [([2.5, 1.2], "drifting")] and a.curves("he_init") == []
    assert "| question |" in a.outcome_table() and "| 2.080 | 0.12 | - |" in a.outcome_table()
    fig = plots.plot_ablation(a)
    loss_ax, acc_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_yticklabels()] == ["question", "batch_norm"]
    assert [t.get_text() for t in acc_ax.texts] == ["1 stuck", "1 drifting"]
    assert sorted(float(c.get_offsets()[0][0]) for c in loss_ax.collections) == [1.2, 2.0799]
    plt.close(fig)


def test_plot_mechanism_draws_one_line_per_configuration():
    import matplotlib.pyplot as plt

    from facekit import plots

    def run(lr, seed):
        batches = [{"dead": [0.1 * i] * 10, "bias_mean": [-1e-4 * i] * 10, "spread": 1e-3 / (i + 1)}
                   for i in range(5)]
        return {"optimizer": "adam", "init": "glorot_uniform", "lr": lr, "seed": seed, "batches": batches}

    fig = plots.plot_mechanism([run(1e-3, 0), run(1e-3, 1), run(1e-4, 0)])
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 3, 2]  # the bias panel has its 0 line
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "Adam lr 0.001, Glorot (2 seeds)"
    plt.close(fig)
