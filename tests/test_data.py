"""facekit.data: loading the question's layout, UTKFace names, splits, caches and pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import COLOURS, solid, write_rgb
from facekit.data import (
    CacheError,
    Dataset,
    load_cache,
    load_folder,
    load_pickle,
    load_utkface,
    parse_utkface_name,
    read_image,
    save_cache,
    save_pickle,
)


def tiny(n_per_class=(5, 3, 4), size=8, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    images = rng.integers(0, 256, (len(labels), size, size, 3), dtype=np.uint8)
    return Dataset(images, labels, tuple("abc"[: len(n_per_class)]),
                   attributes={"k": np.arange(len(labels))})


# ----------------------------------------------------------------------------- load_folder

def test_messy_folder_loads_every_good_file_and_reports_every_bad_one(messy_folder):
    root, good, bad = messy_folder
    ds = load_folder(root, size=32)
    assert ds.class_names == ("cats", "dogs", "eels")  # sorted; hidden and empty folders dropped
    assert sorted(p for p in ds.paths) == sorted(good)
    for img, label, path in zip(ds.images, ds.labels, ds.paths):
        cls = good[path].split("-")[0]
        assert ds.class_names[label] == cls
        expected = np.array(COLOURS[cls], float)
        if good[path].endswith("-gray"):
            expected = np.full(3, expected @ [0.299, 0.587, 0.114])
        assert np.abs(img.reshape(-1, 3).mean(0) - expected).max() < 4, path  # RGB, not BGR
    reasons = dict(ds.skipped)
    for path, words in bad.items():
        assert words in reasons[path], (path, reasons.get(path))
    skipped_names = {Path(p).name for p, _ in ds.skipped}
    assert not skipped_names & {".DS_Store", "Thumbs.db", "._a_plain.jpg", "x.png"}


def test_truncated_jpeg_is_detected_before_decoding(messy_folder):
    """OpenCV 4.x decodes a truncated JPEG with only a warning (grey rows); 5.x refuses it.
    facekit checks the end-of-image marker itself, so both report it the same way."""
    root, _, _ = messy_folder
    img, why = read_image(root / "cats" / "j_truncated.jpg", 32)
    assert img is None and "truncated JPEG" in why


def test_per_class_takes_first_good_files_in_sorted_order_and_refills(tmp_path):
    d = tmp_path / "r" / "only"
    d.mkdir(parents=True)
    for i in (3, 1, 2, 0):
        write_rgb(d / f"img{i}.png", solid((i * 60, 0, 0)))
    (d / "img05_bad.png").write_bytes(b"junk")  # sorts between img0 and img1
    ds = load_folder(tmp_path / "r", size=16, per_class=3)
    assert [Path(p).name for p in ds.paths] == ["img0.png", "img1.png", "img2.png"]
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert "not an image" in reasons["img05_bad.png"]
    assert "beyond per_class" in reasons["img3.png"]


def test_load_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    write_rgb(tmp_path / "flat" / "a.png", solid((1, 2, 3)))
    with pytest.raises(ValueError, match="no class folders"):
        load_folder(tmp_path / "flat")


# ----------------------------------------------------------------------------- Dataset

def test_split_is_stratified_shuffled_disjoint_and_seeded():
    ds = tiny((20, 10, 30))
    train, val = ds.split(0.1, seed=3)
    assert val.class_counts() == {"a": 2, "b": 1, "c": 3}
    assert train.class_counts() == {"a": 18, "b": 9, "c": 27}
    ids_t, ids_v = set(train.attributes["k"]), set(val.attributes["k"])
    assert not ids_t & ids_v and len(ids_t | ids_v) == len(ds)
    assert not np.all(np.diff(train.labels) >= 0)  # shuffled, not grouped by class
    again, _ = ds.split(0.1, seed=3)
    assert np.array_equal(again.attributes["k"], train.attributes["k"])
    other, _ = ds.split(0.1, seed=4)
    assert not np.array_equal(other.attributes["k"], train.attributes["k"])
    for part in (train, val):  # images travel with their labels and attributes
        assert np.array_equal(part.images, ds.images[part.attributes["k"]])
        assert np.array_equal(part.labels, ds.labels[part.attributes["k"]])


def test_dataset_rejects_wrong_inputs():
    img = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        Dataset(img.astype(np.float64), np.zeros(2, int), ("a",))
    with pytest.raises(ValueError, match="labels must lie"):
        Dataset(img, np.array([0, 2]), ("a", "b"))
    with pytest.raises(ValueError, match="attribute"):
        Dataset(img, np.zeros(2, int), ("a",), attributes={"x": [1]})


def test_repr_and_counts_are_readable():
    ds = tiny()
    assert ds.class_counts() == {"a": 5, "b": 3, "c": 4}
    assert "12 images 8x8" in repr(ds) and "a=5" in repr(ds)


# ----------------------------------------------------------------------------- UTKFace

@pytest.mark.parametrize("name, expected", [
    ("25_0_1_20170116174525125.jpg.chip.jpg", {"age": 25, "gender": 0, "race": 1}),
    ("1_1_4_20161221193016140.jpg", {"age": 1, "gender": 1, "race": 4}),
    ("24_0_1_20170116220224657 .jpg.chip.jpg", {"age": 24, "gender": 0, "race": 1}),  # typo: space
    ("55_0_0_20170116232725357jpg.chip.jpg", {"age": 55, "gender": 0, "race": 0}),  # typo: no dot
])
def test_utkface_names_parse(name, expected):
    assert parse_utkface_name(name) == expected


@pytest.mark.parametrize("name", [
    "39_1_20170116174525125.jpg.chip.jpg", "61_1_20170109142408075.jpg.chip.jpg",
    "61_1_20170109150557335.jpg.chip.jpg", "25_2_1_20170116174525125.jpg",
    "25_0_7_20170116174525125.jpg", "holiday.jpg"])
def test_malformed_utkface_names_raise(name):
    with pytest.raises(ValueError, match="malformed UTKFace name"):
        parse_utkface_name(name)


@pytest.fixture()
def utk_folder(tmp_path) -> Path:
    root = tmp_path / "UTKFace"
    root.mkdir()
    names = ["25_0_0_20170116000000001.jpg.chip.jpg", "30_1_0_20170116000000002.jpg.chip.jpg",
             "8_0_1_20170116000000003.jpg.chip.jpg", "70_1_2_20170116000000004.jpg.chip.jpg",
             "45_0_3_20170116000000005.jpg.chip.jpg", "33_1_4_20170116000000006.jpg.chip.jpg",
             "24_0_1_20170116220224657 .jpg.chip.jpg", "55_0_0_20170116232725357jpg.chip.jpg",
             "39_1_20170116174525125.jpg.chip.jpg"]
    for i, n in enumerate(names):
        write_rgb(root / n, solid((i * 20, 100, 50)), ".jpg")
    return root


def test_load_utkface_race_gender(utk_folder):
    ds = load_utkface(utk_folder, "race_gender", size=24)
    assert len(ds) == 7  # 9 files - 1 malformed - 1 "Others"
    assert list(ds.class_names) == sorted(ds.class_names)
    assert "White_male" in ds.class_names and "Black_male" in ds.class_names
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert "malformed" in reasons["39_1_20170116174525125.jpg.chip.jpg"]
    assert "Others" in reasons["33_1_4_20170116000000006.jpg.chip.jpg"]
    i = [Path(p).name for p in ds.paths].index("24_0_1_20170116220224657 .jpg.chip.jpg")
    assert ds.class_names[ds.labels[i]] == "Black_male" and ds.attributes["age"][i] == 24
    assert "non-commercial" in ds.description


def test_load_utkface_other_targets(utk_folder):
    assert load_utkface(utk_folder, "gender", 24).class_counts() == {"female": 3, "male": 5}
    assert "Others" in load_utkface(utk_folder, "race", 24).class_names
    groups = load_utkface(utk_folder, "age_group", 24).class_counts()
    assert groups["0-12"] == 1 and groups["60+"] == 1
    with pytest.raises(ValueError, match="target"):
        load_utkface(utk_folder, "hair")


# ----------------------------------------------------------------------------- caches

def test_cache_round_trip_is_exact_and_atomic(tmp_path):
    ds = tiny()
    path = save_cache(ds, tmp_path / "c.npz")
    back = load_cache(path, size=8, class_names=("a", "b", "c"))
    assert np.array_equal(back.images, ds.images) and np.array_equal(back.labels, ds.labels)
    assert back.class_names == ds.class_names and back.paths == ds.paths
    assert np.array_equal(back.attributes["k"], ds.attributes["k"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temp file left behind


def test_damaged_or_unexpected_cache_is_an_error(tmp_path):
    path = save_cache(tiny(), tmp_path / "c.npz")
    with pytest.raises(CacheError, match="expected 16x16"):
        load_cache(path, size=16)
    with pytest.raises(CacheError, match="classes"):
        load_cache(path, class_names=("x", "y", "z"))
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CacheError, match="cut.npz"):
        load_cache(tmp_path / "cut.npz")
    # flip one pixel inside the stored (uncompressed) images array: zip's CRC-32 of the member catches it
    ds = tiny()
    needle = ds.images.tobytes()[:64]
    at = raw.index(needle) + 10
    flipped = raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:]
    (tmp_path / "flip.npz").write_bytes(flipped)
    with pytest.raises(CacheError, match="flip.npz"):
        load_cache(tmp_path / "flip.npz")


# ----------------------------------------------------------------------------- pickles

def test_pickles_like_the_question_and_trust_is_required(tmp_path):
    ds = tiny()
    x_path, y_path = save_pickle(ds, tmp_path)
    with open(x_path, "rb") as f:  # what the question's model script does
        x = pickle.load(f)
    with open(y_path, "rb") as f:
        y = pickle.load(f)
    assert x.dtype == np.uint8 and x.shape == ds.images.shape and y.shape == ds.labels.shape
    with pytest.raises(PermissionError, match="runs code"):
        load_pickle(tmp_path)
    back = load_pickle(tmp_path, trust=True, class_names=ds.class_names)
    assert sorted(map(bytes, back.images)) == sorted(map(bytes, ds.images))
    assert np.array_equal(np.bincount(back.labels), np.bincount(ds.labels))


def test_load_dispatches_on_what_the_folder_holds(utk_folder, messy_folder):
    from facekit.data import load

    assert "UTKFace race_gender" in load(utk_folder, size=24, per_class=5).description
    assert load(messy_folder[0], size=24, per_class=5).class_names == ("cats", "dogs", "eels")
    assert len(load("synthetic", size=32, per_class=2)) == 16
    with pytest.raises(FileNotFoundError, match="synthetic"):
        load("no/such/folder")


def test_a_cache_maps_its_images_when_asked(tmp_path):
    ds = tiny()
    path = save_cache(ds, tmp_path / "c.npz")
    mapped = load_cache(path, mmap=True)
    assert isinstance(mapped.images, np.memmap) and not mapped.images.flags.writeable
    assert np.array_equal(mapped.images, ds.images) and np.array_equal(mapped.labels, ds.labels)
    assert mapped.class_names == ds.class_names
    with pytest.raises(CacheError, match="expected 16x16"):
        load_cache(path, size=16, mmap=True)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CacheError, match="cut.npz"):
        load_cache(tmp_path / "cut.npz", mmap=True)


def test_an_older_cache_version_asks_to_reload(tmp_path):
    path = save_cache(tiny(), tmp_path / "c.npz")
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files}
    np.savez(tmp_path / "v1.npz", **{**parts, "version": np.array(1), "checksum": np.array(0, np.uint64)})
    with pytest.raises(CacheError, match="v1.npz: cache version 1, expected 2"):
        load_cache(tmp_path / "v1.npz")
