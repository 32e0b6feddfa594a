"""End to end, tiny: the story and the ablation on a cut-down ci profile; profiles; the CLI."""

from __future__ import annotations

import pytest

from facekit.ablation import ablate
from facekit.cli import main
from facekit.profiles import PROFILES, get_profile
from facekit.story import run_story


def test_profiles_and_env_var(monkeypatch):
    monkeypatch.setenv("FACEKIT_PROFILE", "full")
    assert get_profile().name == "full" and get_profile().size == 200 and get_profile().filters == 256
    monkeypatch.delenv("FACEKIT_PROFILE")
    assert get_profile().name == "classroom"
    assert get_profile("ci", epochs=1).epochs == 1
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    assert set(PROFILES) == {"ci", "classroom", "full"}


def test_a_frozen_profile_changes_the_documented_way():
    import dataclasses

    prof = get_profile("classroom", filters=16, regime={"epochs": 5})
    assert prof.filters == 16 and prof.regime.epochs == 5
    assert prof.regime.answer_epochs == PROFILES["classroom"].regime.answer_epochs  # the rest kept
    assert PROFILES["classroom"].filters == 128  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        prof.filters = 32  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("ci", filter=16)


def test_tiny_story_writes_figures_and_a_verdict(tmp_path, capsys):
    prof = get_profile("ci", per_class=10, epochs=1, answer_epochs=2, seeds=(0,),
                       regime={"size": 32, "per_class": 4, "held": 2, "answer_epochs": 1, "epochs": 2})
    result = run_story(prof, out=tmp_path)
    out = capsys.readouterr().out
    assert "verdict:" in out and "question's network" in out
    assert [p.name for p in result.figures] == ["question_net.png", "question_net_layers.png",
                                                "answer_net.png", "generalize.png"]
    assert result.report is not None and "facekit doctor" in out
    assert all(p.stat().st_size > 10_000 for p in result.figures)
    assert len(result.question) == 1 and len(result.answer.epochs) == 2
    assert "| answer net |" in result.table()
    assert result.generalize.recipes == ["answer", "improved"] and "| improved |" in out
    assert "improved network reaches val" in result.verdict()


def test_ablation_table_has_a_row_per_variant():
    prof = get_profile("ci", per_class=6, epochs=1, seeds=(0,))
    result = ablate(["question", "he_init"], prof)
    assert [r["variant"] for r in result.rows] == ["question", "he_init"]
    assert "| he_init |" in result.table() and all(r["runs"] == 1 for r in result.rows)


def test_ablation_says_which_variant_it_could_not_run():
    prof = get_profile("ci", size=96, per_class=4, epochs=1, seeds=(0,))  # first_5x5 needs 98 px
    result = ablate(["question", "first_5x5"], prof)
    assert [r["variant"] for r in result.rows] == ["question"]
    assert result.skipped and result.skipped[0][0] == "first_5x5" and "98 px" in result.skipped[0][1]
    assert "| first_5x5 |" in result.table() and "not run" in result.table()
    with pytest.raises(ValueError, match="unknown variant"):
        ablate(["no_such_change"], prof)


def test_cli_synth_writes_the_question_layout(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "T"), "--n-per-class", "2", "--size", "48"]) == 0
    assert sorted(p.name for p in (tmp_path / "T").iterdir())[:2] == ["bald", "bald+glasses"]
    assert len(list((tmp_path / "T").rglob("*.jpg"))) == 16


def test_projector_style_is_larger_and_default_is_restored():
    import matplotlib.pyplot as plt

    from facekit import plots

    assert plots.current_style() == "default"
    try:
        plots.use_style("projector")
        assert plots.current_style() == "projector" and plt.rcParams["font.size"] >= 16
        assert plt.rcParams["lines.linewidth"] >= 3
        fig = plots.plot_confusion(_tiny_evaluation())
        big = fig.get_size_inches()
        plt.close(fig)
    finally:
        plots.use_style("default")
    fig = plots.plot_confusion(_tiny_evaluation())
    assert plt.rcParams["font.size"] == 10 and (fig.get_size_inches() < big).all()
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown style"):
        plots.use_style("poster")


def _tiny_evaluation():
    import numpy as np

    from facekit.evaluate import Evaluation, confusion_matrix, reliability

    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 0, 1])
    return Evaluation(("a", "b"), probs, labels, confusion_matrix(labels, probs.argmax(1), 2), {},
                      reliability(probs, labels))


def test_outcome_judges_held_out_accuracy_not_training_accuracy():
    from facekit.ablation import outcome
    from facekit.train import History

    def history(losses, val, train_acc=0.9):
        epochs = [{"loss": v, "accuracy": train_acc, "val_accuracy": a} for v, a in zip(losses, val)]
        return History(8, epochs, n_val=40)

    assert outcome(history([2.08, 1.9, 1.2], [0.2, 0.4, 0.6])) == ("learns", 3)
    stuck = History(8, [{"loss": v, "accuracy": 0.125, "val_accuracy": 0.125} for v in (2.0845, 2.0799)])
    assert outcome(stuck) == ("stuck", None)
    assert outcome(history([2.09, 2.03, 1.98], [0.15, 0.2, 0.3])) == ("drifting", None)
    # training accuracy 0.9, training loss far below ln 8, validation at chance: the BatchNorm trap
    assert outcome(history([2.5, 1.5, 1.1], [0.125, 0.125, 0.125])) == ("guessing", None)
    assert outcome(history([2.5, 1.5, 1.1], [0.1, 0.2, 0.225])) == ("guessing", None)  # < 1/8 + 2 s.e.
    assert outcome(history([2.93, 2.3, 2.1], [0.1, 0.12, 0.25])) == ("drifting", None)  # above ln 8
    readings = [{"val_accuracy_recalibrated": a} for a in (0.3, 0.55, 0.7)]
    assert outcome(history([2.5, 1.5, 1.1], [0.125] * 3), key="val_accuracy_recalibrated",
                   readings=readings) == ("learns", 2)


def test_stop_when_certain_stops_stuck_and_learning_runs_but_not_slow_learners():
    import keras

    from facekit.ablation import StopWhenCertain

    def run(epochs):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="softmax")])
        model.stop_training = False
        stop = StopWhenCertain(patience=3)
        stop.set_model(model)
        stop.on_train_begin()
        for e, (loss, acc) in enumerate(epochs):
            stop.on_epoch_end(e, {"loss": loss, "accuracy": 0.9, "val_accuracy": acc})
            if model.stop_training:
                return e + 1
        return None

    assert run([(2.0845, 0.1), (2.0809, 0.12), (2.0802, 0.12), (2.0799, 0.12), (2.0797, 0.12)]) == 3
    assert run([(2.0, 0.3), (1.5, 0.45), (1.2, 0.55), (1.0, 0.6)]) == 3
    # training accuracy 0.9 with validation at chance does not stop it
    assert run([(2.0, 0.125), (1.5, 0.125), (1.2, 0.125), (1.0, 0.125)]) is None
    assert run([(2.083, 0.1), (2.080, 0.12), (2.078, 0.14), (2.077, 0.15), (2.070, 0.2)]) is None
