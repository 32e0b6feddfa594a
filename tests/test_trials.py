"""facekit.diagnose.trials: fixes are tried on fresh copies, structural ones only where the graph
allows, and a planted fault is found by the trial that fixes it."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_diagnose import digits  # tests/ is on sys.path (pytest rootdir, prepend mode)

from facekit.diagnose.trials import rebuild, try_fixes
from facekit.models import question_model


def _convs(model: keras.Model) -> int:
    return sum(isinstance(la, keras.layers.Conv2D) for la in model.layers)


def test_rebuild_changes_one_thing_and_leaves_the_model_alone():
    model = question_model((96, 96, 3), 8, filters=8, seed=0)
    before = [w.copy() for w in model.get_weights()]
    fewer = rebuild(model, fewer_layers=True)
    assert _convs(model) == 10 and _convs(fewer) == 5 and fewer.output_shape == model.output_shape
    bn = rebuild(model, batch_norm=True)
    assert sum(isinstance(la, keras.layers.BatchNormalization) for la in bn.layers) == 10
    assert all(not la.use_bias for la in bn.layers if isinstance(la, keras.layers.Conv2D))
    he = rebuild(model, kernel_initializer="he_normal")
    assert {type(la.kernel_initializer).__name__ for la in he.layers if hasattr(la, "kernel_initializer")} \
        == {"HeNormal"}
    a, b = rebuild(model, seed=3), rebuild(model, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert a.count_params() == model.count_params()
    assert all(np.array_equal(u, v) for u, v in zip(before, model.get_weights()))


def test_structural_fixes_are_not_tried_on_a_model_with_branches():
    inp = keras.Input((28, 28, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(keras.layers.Add()([x, y])))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="not a plain chain"):
        rebuild(model, batch_norm=True)
    trials = {t.fix: t for t in try_fixes(model, digits(4), steps=3, n=32)}
    assert trials["he_init"].tried and len(trials["he_init"].losses) == 3
    assert not trials["batch_norm"].tried and "not a plain chain" in str(trials["batch_norm"])


def test_a_too_large_learning_rate_is_found_by_the_lower_lr_trial():
    x, y = digits(16)
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(64, activation="relu"),
                            keras.layers.Dense(10, activation="softmax")])
    mlp.compile(optimizer=keras.optimizers.Adam(0.5), loss="sparse_categorical_crossentropy")
    trials = {t.fix: t for t in try_fixes(mlp, (x, y), ["lower_lr"], steps=60, n=160)}
    assert list(trials) == ["baseline", "lower_lr", "lower_lr_30", "lower_lr_100"]  # 0.5 is sized too
    assert trials["lower_lr"].end < trials["baseline"].end - 0.5, (trials["baseline"], trials["lower_lr"])
    assert trials["lower_lr"].n_val == 40  # judged on the quarter it never trained on
    # /10 is a tenth of a 100x fault: its held-out accuracy depends on the machine (0.10 here),
    # while the sized trials learn (/30 0.575, /100 0.65 here; the baseline 0.075)
    sized = max(trials[k].val_accuracy for k in ("lower_lr_30", "lower_lr_100"))
    assert sized > trials["baseline"].val_accuracy + 10 / 40
    assert sized > trials["lower_lr"].val_accuracy + 5 / 40
    assert "0.5 -> 0.05" in trials["lower_lr"].what


def test_trials_repeat_for_a_seed_and_draw_new_weights_for_another():
    x, y = digits(4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    losses = [[t.losses for t in try_fixes(model, (x, y), ["he_init"], steps=3, n=32, seed=s)]
              for s in (1, 1, 2)]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_doctor_with_trials_ranks_by_measurement_and_says_what_it_measured():
    from facekit.diagnose import doctor

    x, y = digits(16)
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(64, activation="relu"),
                            keras.layers.Dense(10, activation="softmax")], name="mlp")
    mlp.compile(optimizer=keras.optimizers.Adam(0.5), loss="sparse_categorical_crossentropy")
    report = doctor(mlp, (x, y), trials=True, trial_steps=60, trial_images=160)
    # lr / 10 helps a little; the fault is 100x, and the sizing trials measure that
    assert not report.ok and report.top_fix == "lower_lr_100", str(report)
    assert report.suggestions[0].startswith("learning rate 0.5 -> 0.005: measured held-out loss")
    assert "fixes tried on fresh copies (60 steps each" in str(report)
    assert "not tried" in str(report)  # no convolutions: BatchNorm / fewer layers cannot apply


def test_cli_doctor_exit_codes(tmp_path, capsys):
    from facekit.cli import main
    from facekit.data import write_folder

    folder = write_folder(tmp_path / "T", n_per_class=4, size=32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(8, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 1]), verbose=0)  # a trained model, as saved
    model.save(tmp_path / "m.keras")
    assert main(["doctor", str(tmp_path / "m.keras"), str(folder), "--per-class", "4"]) in (0, 1)
    assert "facekit doctor" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "missing.keras"), str(folder)]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert main(["doctor", str(tmp_path / "m.keras"), str(tmp_path / "nowhere")]) == 2
    (tmp_path / "junk.keras").write_text("not a model")
    assert main(["doctor", str(tmp_path / "junk.keras"), str(folder)]) == 2
    small = write_folder(tmp_path / "S", n_per_class=2, size=32)
    for extra in sorted(small.iterdir())[2:]:
        for f in extra.iterdir():
            f.unlink()
        extra.rmdir()
    assert main(["doctor", str(tmp_path / "m.keras"), str(small)]) == 2
    assert "2 classes" in capsys.readouterr().err


def test_the_chain_walk_pins_keras_private_inbound_nodes():
    """`trials._as_chain` reads Keras' private ``layer._inbound_nodes`` (Keras 3 has no public graph
    walker): this fails the day Keras renames it, on a functional chain and on a branched model."""
    from facekit.diagnose.trials import _as_chain

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inp)
    chain = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    assert [type(la).__name__ for la in _as_chain(chain)] == ["Conv2D", "Flatten", "Dense"]
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    branched = keras.Model(inp, keras.layers.Flatten()(keras.layers.Add()([x, y])))
    assert _as_chain(branched) is None
