"""Hostile input, second pass (issue 28): every format sized from its header before decoding, one
descriptor per file, one save per cache load, folder labels kept, bounded model archives, words
instead of tracebacks."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import solid, write_rgb
from facekit.data import load_folder, read_image


def tiff_claiming(width: int, height: int) -> bytes:
    """A tiny little-endian TIFF whose first directory claims ``width`` x ``height`` RGB pixels."""
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
            (262, 3, 1, 2), (273, 4, 1, 8), (277, 3, 1, 3), (278, 4, 1, height),
            (279, 4, 1, width * height * 3)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags) + b"\0" * 4
    return b"II*\x00" + struct.pack("<I", 8 + 4096) + b"\0" * 4096 + ifd


def jpeg_with_comments(rgb: np.ndarray, n: int) -> bytes:
    """A JPEG of ``rgb`` with ``n`` 64 KB comment segments before its frame header."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    com = b"\xff\xfe" + struct.pack(">H", 65535) + b"x" * 65533
    raw = buf.tobytes()
    return raw[:2] + com * n + raw[2:]


def claim_jpeg(raw: bytes, width: int, height: int) -> bytes:
    """``raw`` with its SOF0 frame header rewritten to claim ``width`` x ``height``."""
    i = raw.index(b"\xff\xc0")
    return raw[:i + 5] + struct.pack(">HH", height, width) + raw[i + 9:]


def gif_claiming(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x3b"



def test_a_tiff_bomb_is_refused_from_its_header(cls):
    (cls / "bomb.tif").write_bytes(tiff_claiming(20000, 20000))
    ds = load_folder(cls.parent, size=16)
    assert len(ds) == 1
    assert "too large: 20000x20000 px by its header" in dict(ds.skipped)[str(cls / "bomb.tif")]


def test_a_late_jpeg_frame_header_is_still_found(cls):
    raw = jpeg_with_comments(solid((1, 2, 3), 20, 20), 3)  # SOF ~196 KB in: past the first 64 KB
    (cls / "late.jpg").write_bytes(claim_jpeg(raw, 10000, 10000))
    (cls / "fine.jpg").write_bytes(raw)
    ds = load_folder(cls.parent, size=16)
    assert "too large: 10000x10000 px by its header" in dict(ds.skipped)[str(cls / "late.jpg")]
    assert str(cls / "fine.jpg") in ds.paths


@pytest.mark.parametrize("make, name", [(gif_claiming, "bomb.jpg"), (None, "bomb.webp"),
                                        (None, "bomb.bmp")])
def test_every_format_is_sized_before_decoding(cls, make, name):
    from PIL import Image

    if make is None:
        Image.new("RGB", (200, 300)).save(cls / name)
        ds = load_folder(cls.parent, size=16, max_pixels=200 * 300 - 1)
        assert "too large: 200x300 px by its header" in dict(ds.skipped)[str(cls / name)]
    else:
        (cls / name).write_bytes(make(20000, 20000))
        ds = load_folder(cls.parent, size=16)
        assert "too large: 20000x20000 px by its header" in dict(ds.skipped)[str(cls / name)]


def test_tiff_and_gif_that_are_fine_still_load(cls):
    from PIL import Image

    Image.new("RGB", (30, 20), (0, 200, 0)).save(cls / "ok.tif")
    Image.new("RGB", (30, 20), (0, 0, 200)).save(cls / "ok.gif")
    img, why = read_image(cls / "ok.tif", 16)
    assert why == "" and img[0, 0].tolist() == [0, 200, 0]
    img, why = read_image(cls / "ok.gif", 16)
    assert why == "" and img.shape == (16, 16, 3)


def test_tiff_bombs_under_a_memory_limit_are_called_too_large(cls):
    for i in range(4):
        (cls / f"bomb{i}.tif").write_bytes(tiff_claiming(20000, 20000))
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30));"
            f"from facekit.data import load_folder; ds = load_folder({str(cls.parent)!r}, size=16);"
            "assert len(ds) == 1 and sum('too large' in w for _, w in ds.skipped) == 4, ds.skipped")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_format_with_no_size_in_its_header_is_not_decoded_blind(cls):
    (cls / "nosof.jpg").write_bytes(b"\xff\xd8\xff\xfe\x00\x04ab\xff\xd9")
    ds = load_folder(cls.parent, size=16)
    assert "no image size found in its header" in dict(ds.skipped)[str(cls / "nosof.jpg")]


def test_a_fifo_swapped_in_is_checked_on_the_open_descriptor(cls, monkeypatch):
    import threading

    fifo, real = cls / "pipe.png", os.stat
    os.mkfifo(fifo)  # the path's stat says "regular file" (as before a swap); the open finds a FIFO
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real(cls / "good.png") if str(p) == str(fifo)
                        else real(p, *a, **k))
    got: list[tuple] = []
    reader = threading.Thread(target=lambda: got.append(read_image(fifo, 16)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # a blocking open(): release it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert got and got[0][0] is None and got[0][1] == "not a regular file"


def test_a_file_that_grows_after_its_check_is_skipped(cls, monkeypatch):
    import facekit.data.decode as decode

    real = os.pread

    def grow(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        return data + b"\0" * 10 if n != decode._HEAD else data

    monkeypatch.setattr(decode.os, "pread", grow)
    img, why = read_image(cls / "good.png", 16)
    assert img is None and why.startswith("changed while being read")


def test_memory_error_while_decoding_skips_only_that_file(cls, monkeypatch):
    import facekit.data.decode as decode

    write_rgb(cls / "two.png", solid((1, 2, 3)))
    real = decode.cv2.imdecode

    def imdecode(buf: np.ndarray, flags: int) -> np.ndarray:
        if len(buf) == (cls / "two.png").stat().st_size:
            raise MemoryError
        return real(buf, flags)

    monkeypatch.setattr(decode.cv2, "imdecode", imdecode)
    ds = load_folder(cls.parent, size=16)
    assert len(ds) == 1 and "out of memory" in dict(ds.skipped)[str(cls / "two.png")]


# --- caches -------------------------------------------------------------------------------------

def _writer(path: str, value: int, seconds: float) -> None:
    import time

    from facekit.data import Dataset, save_cache

    ds = Dataset(np.full((64, 16, 16, 3), value, np.uint8), np.full(64, value), ("a", "b"))
    end = time.monotonic() + seconds
    save_cache(ds, path)
    while time.monotonic() < end:
        save_cache(ds, path)


def test_a_mapped_load_never_mixes_two_saves(tmp_path):
    import multiprocessing as mp
    import time

    from facekit.data import load_cache

    path = str(tmp_path / "c.npz")
    _writer(path, 0, 0)
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(path, v, 4.0)) for v in (0, 1)]
    for w in writers:
        w.start()
    loads = mixed = 0
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        ds = load_cache(path, mmap=True)
        loads += 1
        mixed += int(ds.images[0, 0, 0, 0]) != int(ds.labels[0])
    for w in writers:
        w.join()
    assert loads > 50 and mixed == 0, (loads, mixed)


def test_save_cache_refuses_what_it_cannot_give_back(tmp_path):
    from facekit.data import Dataset, load_cache, save_cache

    x = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="attribute 'who' has dtype object"):
        save_cache(Dataset(x, np.array([0, 1]), ("a", "b"), attributes={"who": np.array([{}, 1], object)}),
                   tmp_path / "o.npz")
    with pytest.raises(ValueError, match="NUL character"):
        save_cache(Dataset(x, np.array([0, 1]), ("a", "a\x00")), tmp_path / "n.npz")
    assert not list(tmp_path.iterdir())
    save_cache(Dataset(x, np.array([0, 1]), ("a", "b")), tmp_path / "ok.npz")
    assert load_cache(tmp_path / "ok.npz").class_names == ("a", "b")


def test_an_unreadable_cache_is_called_unreadable_not_damaged(tmp_path, monkeypatch):
    import facekit.data.cache as cache
    from facekit.data import Dataset, save_cache

    path = save_cache(Dataset(np.zeros((1, 4, 4, 3), np.uint8), np.array([0]), ("a",)), tmp_path / "c.npz")

    def denied(*a, **k):  # tests may run as root, for whom mode 000 reads fine
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache, "open", denied, raising=False)
    with pytest.raises(PermissionError, match="permission denied.*not damaged") as e:
        cache.load_cache(path)
    assert "delete" not in str(e.value)


# --- layout ---------------------------------------------------------------------------------------

def test_class_folders_win_over_utkface_names_inside_them(tmp_path):
    from facekit.data import load

    root = tmp_path / "TRAINING"
    for cls, names in (("happy", ["25_0_1_20170116174525125.jpg", "30_1_0_20170116174525126.jpg"]),
                       ("sad", ["40_0_2_20170116174525127.jpg"])):
        (root / cls).mkdir(parents=True)
        for n in names:
            write_rgb(root / cls / n, solid((120, 90, 80)), ".jpg")
    ds = load(root, size=16, per_class=10)
    assert ds.class_names == ("happy", "sad") and ds.labels.tolist() == [0, 0, 1]
    assert "UTKFace labels in the file names are ignored" in ds.description
    assert "ignored" in str(ds)


# --- Dataset, fit -------------------------------------------------------------------------------

def test_split_refuses_a_fraction_that_empties_a_class(tmp_path):
    from facekit.data import Dataset

    ds = Dataset(np.zeros((3, 4, 4, 3), np.uint8), np.array([0, 0, 1]), ("many", "one"))
    with pytest.raises(ValueError, match="class 'one' has only 1 image"):
        ds.split(0.99)
    train, val = ds.split(0.4)  # round(0.4) = 0 for the single image: it trains
    assert train.class_counts()["one"] == 1


def test_a_name_that_is_not_utf8_prints(capsys):
    from facekit.data import Dataset

    name = os.fsdecode(b"caf\xe9")  # a Latin-1 folder name, as os.listdir gives it
    ds = Dataset(np.zeros((1, 4, 4, 3), np.uint8), np.array([0]), (name,))
    text = repr(ds)
    text.encode("utf-8")  # would raise UnicodeEncodeError, as print() did
    assert "caf\\udce9=1" in text


def test_fit_refuses_images_of_the_wrong_size_before_training():
    import keras

    from facekit.train import fit

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = np.zeros((4, 20, 20, 3), np.uint8), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="training images are 20x20x3 but .*Input takes 32x32x3"):
        fit(model, (x, y), epochs=1)
    with pytest.raises(ValueError, match="validation images are 20x20x3"):
        fit(model, (np.zeros((4, 32, 32, 3), np.uint8), y), (x, y), epochs=0)


# --- command line -------------------------------------------------------------------------------

def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_story_data_without_usable_images_or_empty_is_one_line(tmp_path, capsys, monkeypatch):
    from facekit.cli import main

    (tmp_path / "bad" / "cats").mkdir(parents=True)
    (tmp_path / "bad" / "cats" / "x.jpg").write_bytes(b"not a jpeg")
    assert main(["story", "--data", str(tmp_path / "bad"), "--out", str(tmp_path / "o")]) == 2
    assert "no readable images" in one_line(capsys)
    assert main(["story", "--data", "", "--out", str(tmp_path / "o")]) == 2
    assert "--data ''" in one_line(capsys)
    locked, real = tmp_path / "locked", os.listdir
    locked.mkdir()
    (locked / "cats").mkdir()

    def listdir(p="."):  # tests may run as root, for whom mode 000 lists fine
        if Path(p) == locked:
            raise PermissionError(13, "Permission denied", str(p))
        return real(p)

    monkeypatch.setattr(os, "listdir", listdir)
    assert main(["story", "--data", str(locked), "--out", str(tmp_path / "o")]) == 2
    assert "Permission denied" in one_line(capsys)


def test_a_zip_bomb_model_is_refused_before_keras_parses_it(tmp_path, capsys, monkeypatch):
    import zipfile

    import keras

    from facekit.cli import MAX_CONFIG_BYTES, check_model_archive, main

    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("config.json", "w") as f:
        for _ in range(MAX_CONFIG_BYTES // (1 << 20) + 1):
            f.write(b" " * (1 << 20))
    assert bomb.stat().st_size < 1 << 20
    assert "config.json inflates to" in check_model_archive(bomb)
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: pytest.fail("Keras parsed it"))
    assert main(["doctor", str(bomb), "synthetic"]) == 2
    assert "not opened: member config.json inflates" in one_line(capsys)


def test_doctor_refuses_a_synthetic_sample_too_large_for_memory(tmp_path, capsys):
    import keras

    from facekit.cli import main

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(8, activation="softmax")])
    model.save(tmp_path / "m.keras")
    assert main(["doctor", str(tmp_path / "m.keras"), "synthetic", "--per-class", "10000000"]) == 2
    assert "GiB of synthetic images" in one_line(capsys)


def _failing_writer(monkeypatch, error: BaseException, after: int) -> None:
    import facekit.data.synthetic as synthetic

    real, calls = synthetic._write_jpeg, []

    def write(*a) -> None:
        calls.append(1)
        if len(calls) > after:
            raise error
        real(*a)

    monkeypatch.setattr(synthetic, "_write_jpeg", write)


@pytest.mark.parametrize("error, code, words", [
    (OSError(28, "No space left on device"), 2, "the disk is full"),
    (KeyboardInterrupt(), 130, "interrupted; nothing was changed"),
])
def test_synth_replaces_the_old_set_only_when_the_new_one_is_complete(tmp_path, capsys, monkeypatch,
                                                                      error, code, words):
    from facekit.cli import main

    out = tmp_path / "T"
    args = ["synth", "--out", str(out), "--n-per-class", "2", "--size", "32"]
    assert main(args) == 0
    before = sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob("*.jpg"))
    capsys.readouterr()
    _failing_writer(monkeypatch, error, after=5)
    assert main(args + ["--seed", "3", "--overwrite"]) == code
    assert words in one_line(capsys)
    assert sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob("*.jpg")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["T"]  # no partial folder left
    assert main(["synth", "--out", str(tmp_path / "new"), "--n-per-class", "2", "--size", "32"]) == code
    assert not (tmp_path / "new").exists()


def test_stale_partial_files_are_judged_by_the_writers_lock_not_its_pid(tmp_path):
    import fcntl

    from facekit.data import Dataset, save_cache

    ds = Dataset(np.zeros((1, 4, 4, 3), np.uint8), np.array([0]), ("a",))
    live = tmp_path / ".c.npz.facekit-partial.999999999.abcd.tmp"  # a PID from another namespace
    dead = tmp_path / f".c.npz.facekit-partial.{os.getpid()}.efgh.tmp"  # a live PID, reused
    live.write_bytes(b"being written")
    dead.write_bytes(b"left by a killed save")
    with open(live, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # as the writer holds it
        save_cache(ds, tmp_path / "c.npz")
        assert live.exists() and not dead.exists()
    save_cache(ds, tmp_path / "c.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_pillow_reads_the_size_where_the_parsers_here_find_none(cls, monkeypatch):
    import facekit.data.decode as decode

    monkeypatch.setattr(decode, "_tiff_size", lambda fd, head: None)
    (cls / "bomb.tif").write_bytes(tiff_claiming(20000, 20000))
    img, why = read_image(cls / "bomb.tif", 16)
    assert img is None and why.startswith("too large: 20000x20000 px by its header")
    from PIL import Image

    Image.new("RGB", (30, 20), (0, 200, 0)).save(cls / "ok.tif")
    assert read_image(cls / "ok.tif", 16)[1] == ""


def test_a_jpeg_of_endless_empty_segments_is_given_up_on(cls):
    ok, buf = cv2.imencode(".jpg", solid((1, 2, 3), 20, 20))
    raw = buf.tobytes()
    (cls / "many.jpg").write_bytes(raw[:2] + b"\xff\xfe\x00\x02" * 5000 + raw[2:])  # SOF past 5000
    ds = load_folder(cls.parent, size=16)
    assert "no image size found in its header" in dict(ds.skipped)[str(cls / "many.jpg")]
