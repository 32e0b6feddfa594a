"""facekit.synthetic: the built-in faces are deterministic, balanced, and loadable as folders."""

from __future__ import annotations

import numpy as np
import pytest

from facekit.data import load_folder
from facekit.data.question_script import question_data_script
from facekit.synthetic import CLASS_NAMES, HAIR_STYLES, make_faces, write_folder


def test_make_faces_is_deterministic_and_balanced():
    a, b = make_faces(100, 96, seed=0), make_faces(100, 96, seed=0)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert a.images.dtype == np.uint8 and a.images.shape == (800, 96, 96, 3)
    assert a.class_names == CLASS_NAMES == tuple(sorted(CLASS_NAMES)) and len(CLASS_NAMES) == 8
    assert set(a.class_counts().values()) == {100}
    assert not np.array_equal(make_faces(2, 96, seed=1).images[:2], a.images[:2])  # class 0, i = 0, 1


def test_image_i_depends_only_on_seed_class_and_index():
    small, big = make_faces(3, 32, seed=5), make_faces(6, 32, seed=5)
    for c in range(8):
        assert np.array_equal(small.images[small.labels == c], big.images[big.labels == c][:3])


def test_attributes_match_the_class_names():
    ds = make_faces(2, 32)
    for label, hair, glasses in zip(ds.labels, ds.attributes["hair"], ds.attributes["glasses"]):
        name = ds.class_names[label]
        assert name.split("+")[0] == hair in HAIR_STYLES
        assert name.endswith("+glasses") == bool(glasses)


def test_faces_are_not_trivially_separable_by_colour():
    """Nuisance colour is independent of the class: mean colour per class is about the same."""
    ds = make_faces(60, 32, seed=0)
    means = np.array([ds.images[ds.labels == c].mean(axis=(0, 1, 2)) for c in range(8)])
    assert np.ptp(means, axis=0).max() < 25


def test_difficulty_zero_is_clean_and_arguments_are_checked():
    clean = make_faces(1, 64, difficulty=0.0)
    assert clean.images.std() > 10
    with pytest.raises(ValueError, match="difficulty"):
        make_faces(1, 32, difficulty=2)
    with pytest.raises(ValueError, match="size"):
        make_faces(1, 8)


def test_write_folder_round_trips_in_rgb_and_runs_the_question_script(tmp_path):
    root = write_folder(tmp_path / "TRAINING", n_per_class=3, size=64, seed=2)
    ds = load_folder(root, size=64)
    ref = make_faces(3, 64, seed=2)
    assert ds.class_names == ref.class_names and np.array_equal(ds.labels, ref.labels)
    err = np.abs(ds.images.astype(int) - ref.images.astype(int)).mean()
    swapped = np.abs(ds.images[..., ::-1].astype(int) - ref.images.astype(int)).mean()
    assert err < 4 < swapped  # JPEG error only; channels in RGB order
    X, y, categories = question_data_script(str(root), 64, 64, per_class=700, verbose=False)
    assert X.shape == (24, 64, 64, 3) and sorted(categories) == list(CLASS_NAMES)
