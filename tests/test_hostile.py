"""Hostile input (issue 16): every bad file is skipped for that file only, with its reason; bad
arguments raise a clear error naming them; nothing is mislabeled."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import solid, write_rgb
from facekit.data import load, load_folder, load_utkface, parse_utkface_name, read_image


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a bomb by header only)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    """A JPEG of ``rgb`` with an EXIF APP1 segment holding only the orientation tag."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    raw = buf.tobytes()
    return raw[:2] + app1 + raw[2:]



def test_a_header_claiming_60000_px_is_skipped_not_fatal(cls):
    (cls / "huge.png").write_bytes(png_claiming(60000, 60000))
    ds = load_folder(cls.parent, size=16)
    why = dict(ds.skipped)[str(cls / "huge.png")]
    assert len(ds) == 1 and "too large: 60000x60000 px by its header" in why


def test_a_decoder_error_skips_only_that_file(cls):
    (cls / "huge.png").write_bytes(png_claiming(60000, 60000))
    img, why = read_image(cls / "huge.png", 16, max_pixels=10**10)  # past our cap: OpenCV's own error
    assert img is None and why.startswith("corrupt PNG")


def test_a_decompression_bomb_is_refused_by_its_header_under_a_memory_limit(cls):
    for i in range(4):
        (cls / f"bomb{i}.png").write_bytes(png_claiming(20000, 20000))
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30));"
            f"from facekit.data import load_folder; ds = load_folder({str(cls.parent)!r}, size=16);"
            "assert len(ds) == 1 and sum('too large' in w for _, w in ds.skipped) == 4, ds.skipped")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_pixel_cap_is_settable(cls):
    write_rgb(cls / "big.png", solid((20, 200, 20), 300, 300))
    ds = load_folder(cls.parent, size=16, max_pixels=300 * 299)
    assert len(ds) == 1 and "too large: 300x300" in dict(ds.skipped)[str(cls / "big.png")]
    assert len(load_folder(cls.parent, size=16)) == 2


def test_a_huge_sparse_file_is_not_read_into_memory(cls):
    for name, head in (("sparse.jpg", b""), ("sparse2.jpg", b"\xff\xd8\xff\xe0")):
        with open(cls / name, "wb") as f:
            f.write(head)
            f.truncate(3 << 30)
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30));"
            f"from facekit.data import load_folder; ds = load_folder({str(cls.parent)!r}, size=16);"
            "r = dict(ds.skipped); print(r)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("too large: a file of 3,221,225,472 bytes") == 2, run.stdout


def test_jpeg_exif_orientation_is_honoured(cls):
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (230, 10, 10)   # left half red
    rgb[:, 20:] = (10, 10, 230)   # right half blue
    (cls / "phone.jpg").write_bytes(jpeg_with_orientation(rgb, 6))  # 6: rotate 90 degrees clockwise
    img, why = read_image(cls / "phone.jpg", 32)
    assert why == ""
    top, bottom = img[:12].reshape(-1, 3).mean(0), img[-12:].reshape(-1, 3).mean(0)
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]  # upright: red on top, blue below


def test_16_bit_and_alpha_still_load_with_orientation_handling(cls):
    img16 = np.full((30, 30, 3), 40000, np.uint16)
    cv2.imwrite(str(cls / "deep.png"), img16)
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (10, 200, 30), 128
    cv2.imwrite(str(cls / "alpha.png"), rgba)
    for name, expected in (("deep.png", 156), ("alpha.png", None)):
        img, why = read_image(cls / name, 16)
        assert why == "" and img.shape == (16, 16, 3) and img.dtype == np.uint8
        if expected:
            assert abs(int(img[0, 0, 0]) - expected) <= 1
    assert tuple(read_image(cls / "alpha.png", 16)[0][0, 0]) == (30, 200, 10)  # BGR file -> RGB


def test_utkface_in_the_wild_layout_is_read_as_utkface_not_as_classes(tmp_path):
    root = tmp_path / "UTKFace"
    for part, names in (("part1", ["25_0_1_20170116174525125.jpg", "30_1_0_20170116174525126.jpg"]),
                        ("part2", ["40_0_2_20170116174525127.jpg"])):
        (root / part).mkdir(parents=True)
        for n in names:
            write_rgb(root / part / n, solid((120, 90, 80)), ".jpg")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("hi")
    ds = load(root, size=16, per_class=10)
    assert "part1" not in ds.class_names and set(ds.class_names) == {"Black_male", "White_female",
                                                                     "Asian_male"}
    assert len(ds) == 3 and "not searched" in dict(ds.skipped)[str(root / "notes")]
    assert len(load_utkface(root, size=16)) == 3


def test_utkface_names_say_which_field_is_wrong():
    with pytest.raises(ValueError, match="gender 'x' is not a number"):
        parse_utkface_name("25_x_1_20170116174525125.jpg")
    with pytest.raises(ValueError, match="expected 4 fields .* found 3"):
        parse_utkface_name("25_0_20170116174525125.jpg")


def test_a_fifo_is_skipped_not_waited_on(cls):
    os.mkfifo(cls / "pipe.jpg")
    ds = load_folder(cls.parent, size=16)
    assert len(ds) == 1 and dict(ds.skipped)[str(cls / "pipe.jpg")] == "not a regular file"


def test_an_unreadable_class_folder_is_skipped_with_the_reason(cls, monkeypatch):
    dogs = cls.parent / "dogs"
    dogs.mkdir()
    write_rgb(dogs / "d.png", solid((20, 200, 20)))
    real = os.listdir

    def listdir(p="."):
        if Path(p) == dogs:
            raise PermissionError(13, "Permission denied")
        return real(p)

    monkeypatch.setattr(os, "listdir", listdir)
    ds = load_folder(cls.parent, size=16)
    assert ds.class_names == ("cats",)
    assert dict(ds.skipped)[str(dogs)] == "unreadable class folder: Permission denied"


def test_png_with_trailing_bytes_loads_and_a_truncated_png_does_not(cls):
    ok, buf = cv2.imencode(".png", solid((10, 20, 200)))
    (cls / "trailing.png").write_bytes(buf.tobytes() + b"appended by some tool")
    (cls / "cut.png").write_bytes(buf.tobytes()[: len(buf) // 2])
    assert read_image(cls / "trailing.png", 16)[1] == ""
    assert read_image(cls / "cut.png", 16)[1].startswith("truncated PNG")


def test_a_float_tiff_with_nan_rows_is_skipped(cls):
    img = np.full((30, 30, 3), 0.5, np.float32)
    img[5:9] = np.nan
    assert cv2.imwrite(str(cls / "nan.tif"), img)
    assert read_image(cls / "nan.tif", 16) == (None, "non-finite pixels (NaN or infinity) in a float image")


@pytest.mark.parametrize("kwargs, name", [({"per_class": 0}, "per_class"), ({"per_class": -3}, "per_class"),
                                          ({"size": 0}, "size"), ({"size": -1}, "size"),
                                          ({"size": 1.5}, "size"), ({"workers": -1}, "workers")])
def test_sizes_and_counts_are_validated_up_front(cls, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} must be a whole number"):
        load_folder(cls.parent, **kwargs)


# ----------------------------------------------------------------------------- caches and pickles

def small_ds(n=4, size=8):
    from facekit.data import Dataset

    rng = np.random.default_rng(0)
    return Dataset(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 2, ("a", "b"))


def test_every_single_byte_flip_loads_the_same_data_or_raises_cache_error(tmp_path):
    from facekit.data import CacheError, load_cache, save_cache

    ds = small_ds()
    raw = save_cache(ds, tmp_path / "c.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    odd = []
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            got = load_cache(bad)
        except CacheError:
            continue
        except Exception as e:  # noqa: BLE001 - the test is that nothing else escapes
            odd.append((i, type(e).__name__))
            continue
        if not (np.array_equal(got.images, ds.images) and np.array_equal(got.labels, ds.labels)):
            odd.append((i, "altered data loaded"))
    assert not odd, odd[:10]


def test_odd_caches_raise_cache_error_naming_the_file(tmp_path):
    import zipfile

    from facekit.data import CacheError, load_cache, save_cache

    np.save(tmp_path / "plain.npy", np.zeros(3))
    os.replace(tmp_path / "plain.npy", tmp_path / "plain.npz")
    good = save_cache(small_ds(), tmp_path / "good.npz")
    with np.load(good) as z:
        parts = {k: z[k] for k in z.files}
    np.savez(tmp_path / "version.npz", **{**parts, "version": np.array(["one"])})
    np.savez(tmp_path / "labels.npz", **{**parts, "labels": np.zeros((2, 2))})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as zf:  # compresses 1000x
        zf.writestr("images.npy", b"\0" * 3_000_000)
    for name in ("plain", "version", "labels", "bomb"):
        with pytest.raises(CacheError, match=f"{name}.npz"):
            load_cache(tmp_path / f"{name}.npz")


def test_a_tiny_cache_claiming_gigabytes_fails_before_allocating(tmp_path):
    from facekit.data import save_cache

    raw = bytearray(save_cache(small_ds(1, 4), tmp_path / "c.npz").read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # local and central headers: claim 6 GB for each member
        at = raw.find(sig)
        while at != -1:
            off = 22 if sig == b"PK\x03\x04" else 24
            raw[at + off:at + off + 4] = struct.pack("<I", 0xFFFFFFF0 >> 2 << 2)
            at = raw.find(sig, at + 4)
    (tmp_path / "liar.npz").write_bytes(bytes(raw))
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30));"
            f"from facekit.data import load_cache, CacheError\n"
            f"try:\n    load_cache({str(tmp_path / 'liar.npz')!r})\n"
            "except CacheError as e:\n    print('CacheError', e)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("CacheError"), run.stdout + run.stderr[-1500:]


def test_a_killed_save_leaves_nothing_for_good_and_files_respect_the_umask(tmp_path):
    from facekit.data import save_cache

    stale = tmp_path / ".c.npz.facekit-partial.999999999.abcd.tmp"  # a pid that does not exist
    stale.write_bytes(b"x" * 1000)
    old = os.umask(0o022)
    try:
        path = save_cache(small_ds(), tmp_path / "c.npz")
    finally:
        os.umask(old)
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_load_pickle_runs_nothing_unless_trust_is_exactly_true(tmp_path):
    from facekit.data import load_pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import pickle

    for name in ("X.pickle", "y.pickle"):
        (tmp_path / name).write_bytes(pickle.dumps(Payload()))
    for trust in ("no", "yes", 1, [True], None, False):
        with pytest.raises(PermissionError, match="trust=True"):
            load_pickle(tmp_path, trust=trust)
    assert not marker.exists()


def test_pickle_labels_are_checked_against_the_images_and_classes(tmp_path):
    import pickle

    from facekit.data import load_pickle

    x = np.zeros((3, 4, 4, 3), np.uint8)
    for y, words in ((np.array([0, 1, 10**7]), "labels run from 0 to 10000000"),
                     (np.array([0, 1]), "one per image"), (np.array([0, -1, 1]), "labels run from -1"),
                     (np.array([0.5, 1, 0]), "whole numbers")):
        (tmp_path / "X.pickle").write_bytes(pickle.dumps(x))
        (tmp_path / "y.pickle").write_bytes(pickle.dumps(y))
        with pytest.raises(ValueError, match=words):
            load_pickle(tmp_path, trust=True)


# ----------------------------------------------------------------------------- training and the doctor

def tiny_model(classes=4, rescale=True, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((12, 12, 3))] + ([keras.layers.Rescaling(1 / 255)] if rescale else [])
    m = keras.Sequential(layers + [keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
                                   keras.layers.Dense(classes, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def tiny_data(n=32, classes=4):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 12, 12, 3)).astype(np.uint8), np.arange(n) % classes


@pytest.mark.parametrize("change, words", [
    (lambda x, y: (np.where(np.arange(len(x))[:, None, None, None] == 3, np.nan, x / 255.0), y),
     "1 of 32 images hold NaN or infinity \\(the first is image 3\\)"),
    (lambda x, y: (x, np.where(y == 1, -1, y)), "labels run from -1 to 3"),
    (lambda x, y: (x, y[:-1]), "32 images but 31 labels"),
    (lambda x, y: (x, np.eye(4)[y]), "look one-hot"),
    (lambda x, y: (x, y + 1), "labels run from 1 to 4, but the model has 4 outputs"),
    (lambda x, y: (x[:0], y[:0]), "no images"),
])
def test_fit_refuses_bad_data_before_training_in_words(change, words):
    from facekit.train import fit

    x, y = change(*tiny_data())
    with pytest.raises(ValueError, match=words):
        fit(tiny_model(), (x, y), epochs=1)


def test_fit_checks_validation_data_and_its_own_arguments():
    from facekit.train import fit

    x, y = tiny_data()
    with pytest.raises(ValueError, match="validation labels run from 0 to 9"):
        fit(tiny_model(), (x, y), (x[:4], np.array([0, 1, 2, 9])), epochs=1)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1; found 0"):
        fit(tiny_model(), (x, y), batch_size=0)


def test_fit_stops_and_says_so_when_the_weights_go_non_finite(capsys):
    import keras

    from facekit.train import fit

    model = tiny_model()
    model.layers[-1].kernel.assign(np.full(model.layers[-1].kernel.shape, np.nan, np.float32))
    h = fit(model, tiny_data(), epochs=3)
    assert len(h.epochs) == 1 and h.non_finite and not h.stuck
    assert "fit stopped" in capsys.readouterr().out
    assert isinstance(model, keras.Model)


def test_doctor_flags_nan_weights_first_and_suggests_nothing_else():
    from facekit.diagnose import doctor

    model = tiny_model()
    model.layers[1].kernel.assign(np.full(model.layers[1].kernel.shape, np.nan, np.float32))
    report = doctor(model, tiny_data())
    assert not report.ok and [c.name for c in report.checks] == ["finite weights"]
    assert len(report.suggestions) == 1 and "NaN" in report.suggestions[0]


def test_doctor_says_inputs_scaled_twice():
    from facekit.diagnose import doctor

    x, y = tiny_data()
    report = doctor(tiny_model(rescale=True), (x.astype(np.float32) / 255.0, y))
    assert [c.name for c in report.checks] == ["input scale"]
    assert report.suggestions[0].startswith("inputs scaled twice")
    plain = doctor(tiny_model(rescale=False), (x.astype(np.float32) / 255.0, y), overfit_steps=2)
    assert plain.checks[0].name == "loss vs ln C"  # 0..1 floats into a model without Rescaling are fine


@pytest.mark.parametrize("y_change, words", [(lambda y: y + 1, "labels run from 1 to 4"),
                                             (lambda y: y - 1, "labels run from -1"),
                                             (lambda y: y[:0], "32 images but 0 labels")])
def test_doctor_checks_its_data_up_front(y_change, words):
    from facekit.diagnose import doctor

    x, y = tiny_data()
    with pytest.raises(ValueError, match=words):
        doctor(tiny_model(), (x, y_change(y)))
    with pytest.raises(ValueError, match="no images"):
        doctor(tiny_model(), (x[:0], y[:0]))


# ----------------------------------------------------------------------------- the command line

def test_synth_refuses_a_non_empty_folder_unless_overwrite(tmp_path, capsys):
    from facekit.cli import main

    out = tmp_path / "T"
    assert main(["synth", "--out", str(out), "--n-per-class", "2", "--size", "32", "--seed", "1"]) == 0
    assert main(["synth", "--out", str(out), "--n-per-class", "1", "--size", "32", "--seed", "2"]) == 2
    assert "not empty" in capsys.readouterr().err
    (out / "mine.txt").write_text("keep me")
    assert main(["synth", "--out", str(out), "--n-per-class", "1", "--size", "32", "--seed", "2",
                 "--overwrite"]) == 0
    assert len(list(out.rglob("*.jpg"))) == 8 and (out / "mine.txt").exists()


@pytest.mark.parametrize("argv, words", [
    (["story", "--profile", "huge"], "--profile: unknown profile 'huge'"),
    (["story", "--data", "/no/such/folder"], "--data /no/such/folder: no such folder"),
    (["synth", "--size", "10000"], "--size 10000: choose 16..1024"),
    (["synth", "--n-per-class", "0"], "--n-per-class 0"),
])
def test_cli_bad_arguments_end_in_one_line_and_exit_2(argv, words, capsys, tmp_path):
    from facekit.cli import main

    assert main(argv + (["--out", str(tmp_path / "o")] if argv[0] == "synth" else [])) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_story_checks_env_profile_file_data_empty_data_and_out(tmp_path, capsys, monkeypatch):
    from facekit.cli import main

    monkeypatch.setenv("FACEKIT_PROFILE", "nope")
    assert main(["story"]) == 2 and "$FACEKIT_PROFILE: unknown profile 'nope'" in capsys.readouterr().err
    monkeypatch.delenv("FACEKIT_PROFILE")
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    assert main(["story", "--data", str(tmp_path / "f.txt")]) == 2 and "is a file" in capsys.readouterr().err
    assert main(["story", "--data", str(tmp_path / "empty")]) == 2 and "empty" in capsys.readouterr().err
    assert main(["story", "--out", str(tmp_path / "f.txt" / "sub")]) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["story", "--seed", "-1"])
    assert e.value.code == 2 and "must be 0 or more" in capsys.readouterr().err


# ----------------------------------------------------------------------------- random messy folders

def _bad_file(path: Path, kind: int, rng) -> Path:
    good = cv2.imencode(".jpg", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))[1].tobytes()
    if kind == 0:
        path.write_bytes(b"")                                   # empty
    elif kind == 1:
        path.write_bytes(rng.bytes(200))                        # random bytes
    elif kind == 2:
        path.write_bytes(good[: len(good) // 2])                # truncated
    elif kind == 3:
        path = path.with_suffix(".txt")
        path.write_text("notes")                                # not an image
    elif kind == 4:
        path.write_bytes(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())  # too small
    else:
        path.write_bytes(png_claiming(30000, 30000))            # a bomb by header
    return path


@pytest.mark.parametrize("seed", range(40))
def test_random_messy_folders_lose_nothing_and_mislabel_nothing(tmp_path, seed):
    rng = np.random.default_rng(seed)
    root = tmp_path / "root"
    colours = {}
    every: set[str] = set()
    for c in range(int(rng.integers(2, 5))):
        name = f"class{c}"
        (root / name).mkdir(parents=True)
        colours[name] = np.array([40 + 60 * c, 200 - 50 * c, 30 + 40 * (c % 2)])
        for i in range(int(rng.integers(0, 7))):
            p = root / name / f"{i:02d}_{'bad' if rng.random() < 0.35 else 'ok'}.{'png' if i % 2 else 'jpg'}"
            if "bad" in p.name:
                p = _bad_file(p, int(rng.integers(0, 6)), rng)
            else:
                write_rgb(p, solid(tuple(int(v) for v in colours[name]), int(rng.integers(16, 60)),
                                   int(rng.integers(16, 60))), p.suffix)
            every.add(str(p))
        if rng.random() < 0.3:
            (root / name / ".DS_Store").write_bytes(b"junk")     # hidden: ignored, not listed
    per_class = None if rng.random() < 0.5 else int(rng.integers(1, 5))
    try:
        ds = load_folder(root, size=16, per_class=per_class)
    except ValueError as e:
        assert "no readable images" in str(e)
        return
    skipped = {p for p, _ in ds.skipped}
    loaded = set(ds.paths)
    assert not loaded & skipped
    assert every <= loaded | skipped | {str(root / c) for c in colours}, every - loaded - skipped
    for img, label, path in zip(ds.images, ds.labels, ds.paths):
        folder = Path(path).parent.name
        assert ds.class_names[label] == folder
        assert np.abs(img.reshape(-1, 3).mean(0) - colours[folder]).max() < 6, path
    if per_class is not None:
        assert np.bincount(ds.labels).max() <= per_class
