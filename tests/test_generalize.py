"""facekit.generalize: the three-way split, the recipes, the comparison arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from facekit.generalize import RECIPES, Comparison, RunResult, build, load_regime, regime_data, run_recipe


def _keys(ds):
    return {img.tobytes() for img in ds.images}


def test_regime_data_three_disjoint_stratified_sets_with_a_fixed_test_set():
    train, val, test = regime_data(train_per_class=6, held_per_class=3, size=32, seed=0)
    assert (len(train), len(val), len(test)) == (48, 24, 24)
    assert set(train.class_counts().values()) == {6} and set(test.class_counts().values()) == {3}
    assert not (_keys(train) & _keys(val)) and not (_keys(train) & _keys(test))
    assert not (_keys(val) & _keys(test))
    assert len(np.unique(train.labels[:8])) > 1  # shuffled, not sorted by class
    big_train, val2, test2 = regime_data(train_per_class=12, held_per_class=3, size=32, seed=0)
    assert _keys(test2) == _keys(test) and _keys(val2) == _keys(val)
    assert _keys(train) < _keys(big_train)
    with pytest.raises(ValueError, match="must be >= 1"):
        regime_data(train_per_class=0)


def test_every_recipe_builds_and_changes_what_it_says():
    shape = (64, 64, 3)  # chapter 06's size: the improved net has 149,144 parameters, 7% of the answer's
    models = {name: build(name, shape, seed=0) for name in RECIPES}
    base = models["answer"].count_params()
    assert models["global_pool"].count_params() < base / 20
    assert models["improved"].count_params() <= base / 10
    assert models["more_data"].count_params() == base and RECIPES["more_data"].more_data
    assert RECIPES["early_stopping"].early_stop and RECIPES["improved"].early_stop
    assert "augment" in [la.name for la in models["augment"].layers]


def _run(recipe, seed, train, val):
    return RunResult(recipe, seed, 100, 10, 10, train, val, val, 0.1)


def test_comparison_gap_closed_and_beats_on_every_seed():
    runs = [_run("answer", s, 1.0, v) for s, v in enumerate((0.5, 0.6, 0.55))]
    runs += [_run("better", s, 0.9, v) for s, v in enumerate((0.8, 0.9, 0.85))]
    runs += [_run("mixed", s, 0.9, v) for s, v in enumerate((0.4, 0.9, 0.85))]
    c = Comparison(runs)
    assert c.median("answer", "val_acc") == 0.55
    assert c.gap_closed("better") == pytest.approx((0.85 - 0.55) / (1.0 - 0.55))
    assert c.beats_on_every_seed("better") and not c.beats_on_every_seed("mixed")
    table = c.table()
    assert table.splitlines()[2].startswith("| answer | 100 | 10 (10) | 1.00 | 0.55 (0.50-0.60) |")
    assert "+67%" in table


def test_run_recipe_with_early_stopping_keeps_the_best_epoch():
    train, val, test = regime_data(train_per_class=4, held_per_class=2, size=32, seed=0)
    res = run_recipe("early_stopping", train, val, test, seed=0, epochs=3, patience=1)
    assert 1 <= res.best_epoch <= res.epochs <= 3
    assert res.best_epoch == int(np.argmin(res.history["val_loss"])) + 1
    assert 0.0 <= res.test_acc <= 1.0 and res.params == build("answer", (32, 32, 3)).count_params()


def test_load_regime_splits_a_folder_three_ways(tmp_path):
    from facekit.profiles import get_profile
    from facekit.synthetic import write_folder

    write_folder(tmp_path / "faces", n_per_class=8, size=40, seed=0)
    prof = get_profile("ci", regime={"size": 32, "per_class": 4, "held": 2})
    train, val, test = load_regime(prof, str(tmp_path / "faces"))
    assert (len(train), len(val), len(test)) == (32, 16, 16)
    assert train.image_shape == (32, 32, 3) and set(val.class_counts().values()) == {2}
    paths = [set(d.paths) for d in (train, val, test)]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])


def test_records_round_trip_through_jsonl(tmp_path):
    import json

    runs = [_run("answer", 0, 1.0, 0.5), _run("better", 0, 0.9, 0.8)]
    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps(r.record()) + "\n" for r in runs))
    back = Comparison.from_jsonl(path)
    assert [r.record() for r in back.runs] == [r.record() for r in runs]
    assert "history" not in runs[0].record() and back.table() == Comparison(runs).table()
