"""`facekit doctor` on the student's own saved model: the question trained on X/255.0 outside the
model, saved as .keras or .h5 (or exported as a SavedModel folder); --scale, --json, --version,
the trials' options, one line and exit 2 for everything it cannot read."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from facekit.cli import main
from facekit.data import write_folder


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """The question's way: images / 255 outside the model, no Rescaling layer; saved both ways."""
    root = tmp_path_factory.mktemp("student")
    folder = write_folder(root / "TRAINING", n_per_class=8, size=32, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="softmax")], name="student_net")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    from facekit.data import load

    ds = load(folder, size=32)
    model.fit(ds.images / 255.0, ds.labels, epochs=1, batch_size=16, verbose=0)
    model.save(root / "student.keras")
    model.save(root / "student.h5")
    return root, folder, model


def test_scale_feeds_the_pixels_as_the_student_trained_on_them(student, capsys):
    root, folder, model = student
    assert main(["doctor", str(root / "student.keras"), str(folder), "--per-class", "8", "--json"]) in (0, 1)
    raw = json.loads(capsys.readouterr().out)
    assert main(["doctor", str(root / "student.keras"), str(folder), "--per-class", "8", "--json",
                 "--scale", "1/255"]) in (0, 1)
    scaled = json.loads(capsys.readouterr().out)
    loss = {r["name"]: r for r in scaled["checks"]}["loss vs ln C"]["values"]["loss"]
    unscaled = {r["name"]: r for r in raw["checks"]}["loss vs ln C"]["values"]["loss"]
    assert loss < 1.2 * np.log(8) < unscaled  # 0-255 pixels into a net trained on 0-1: confidently wrong
    assert any("Rescaling" in s for s in raw["suggestions"])
    assert not any("no Rescaling layer" in s for s in scaled["suggestions"])
    assert scaled["model_name"] == "student_net" and scaled["trials"] == []


def test_json_has_the_whole_report_and_the_trials(student, capsys):
    root, folder, _ = student
    code = main(["doctor", str(root / "student.h5"), str(folder), "--per-class", "8", "--json", "--scale",
                 "1/255", "--trials", "--steps", "5", "--seed", "3"])
    out = capsys.readouterr().out
    report = json.loads(out)  # stdout is the JSON alone
    assert code == (0 if report["ok"] else 1)
    assert {c["name"] for c in report["checks"]} >= {"loss vs ln C", "labels vs images", "held-out accuracy"}
    if not report["ok"]:
        assert [t["fix"] for t in report["trials"]][0] == "baseline"
        assert all(len(t["losses"]) == 5 for t in report["trials"] if t["tried"])


def test_a_savedmodel_folder_gets_one_line_saying_what_to_do(student, tmp_path, capsys):
    _, folder, model = student
    model.export(tmp_path / "exported", verbose=False)
    assert main(["doctor", str(tmp_path / "exported"), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "SavedModel folder" in err and "model.save('model.keras')" in err and err.count("\n") == 1
    assert main(["doctor", str(tmp_path), str(folder)]) == 2
    assert "is a folder, not a model" in capsys.readouterr().err


def test_a_model_of_any_input_size_needs_size_and_a_regression_model_is_refused(student, tmp_path, capsys):
    _, folder, _ = student
    inp = keras.Input((None, None, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    any_size = keras.Model(inp, keras.layers.Dense(8, activation="softmax")(h))
    any_size.compile("adam", "sparse_categorical_crossentropy")
    any_size.save(tmp_path / "any.keras")
    assert main(["doctor", str(tmp_path / "any.keras"), str(folder)]) == 2
    assert "give the size it was trained at with --size" in capsys.readouterr().err
    sized = ["doctor", str(tmp_path / "any.keras"), str(folder), "--size", "24", "--per-class", "8"]
    assert main(sized) in (0, 1)
    capsys.readouterr()
    reg = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(8)])
    reg.compile("adam", "mse")
    reg.save(tmp_path / "reg.keras")
    assert main(["doctor", str(tmp_path / "reg.keras"), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is not a classifier" in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_options_and_the_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["doctor", "m.keras", "synthetic", "--scale", "1/0"])
    assert e.value.code == 2 and "give a number or a fraction" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["doctor", "m.keras", "synthetic", "--steps", "0"])
    assert e.value.code == 2
    out = subprocess.run([sys.executable, "-m", "facekit", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("facekit 0.1.0 (Keras 3.")
    helptext = subprocess.run([sys.executable, "-m", "facekit", "--help"], capture_output=True,
                              text=True).stdout
    assert "``" not in helptext
