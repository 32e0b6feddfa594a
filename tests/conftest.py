"""Shared fixtures: small image folders with good and bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

# Solid colours (RGB) per class, so a loaded pixel tells the class and the channel order.
COLOURS = {"cats": (220, 30, 30), "dogs": (30, 200, 40), "eels": (20, 40, 210)}


def write_rgb(path: Path, rgb: np.ndarray, ext: str = ".png", params: list[int] | None = None) -> Path:
    """Write an RGB image with OpenCV (which expects BGR)."""
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params or [])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def solid(rgb: tuple[int, int, int], h: int = 40, w: int = 50) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


@pytest.fixture()
def messy_folder(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A question-layout folder: good images of every kind plus bad and junk files.

    Returns (root, good {path: class}, bad {path: expected words in the skip reason}).
    """
    root = tmp_path / "TRAINING"
    good: dict[str, str] = {}
    bad: dict[str, str] = {}
    for cls, rgb in COLOURS.items():
        (root / cls).mkdir(parents=True)
        path = write_rgb(root / cls / "a_plain.jpg", solid(rgb), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 98])
        good[str(path)] = cls
    d = root / "cats"
    rgb = COLOURS["cats"]
    gray = cv2.cvtColor(solid(rgb), cv2.COLOR_RGB2GRAY)
    ok, buf = cv2.imencode(".png", gray)
    (d / "b_gray.png").write_bytes(buf.tobytes())
    good[str(d / "b_gray.png")] = "cats-gray"
    rgba = np.dstack([solid(rgb)[..., ::-1], np.full((40, 50), 128, np.uint8)])
    ok, buf = cv2.imencode(".png", rgba)
    (d / "c_alpha.png").write_bytes(buf.tobytes())
    good[str(d / "c_alpha.png")] = "cats"
    deep = (solid(rgb)[..., ::-1].astype(np.uint16) * 257)
    ok, buf = cv2.imencode(".png", deep)
    (d / "d_16bit.png").write_bytes(buf.tobytes())
    good[str(d / "d_16bit.png")] = "cats"
    good[str(write_rgb(d / "e_huge.jpg", solid(rgb, 3000, 4000), ".jpg"))] = "cats"
    good[str(write_rgb(d / "f_visage_ünïcödé_猫.png", solid(rgb)))] = "cats"
    good[str(write_rgb(d / "g_UPPER.JPG", solid(rgb), ".jpg"))] = "cats"
    # bad files
    (d / "h_empty.jpg").write_bytes(b"")
    bad[str(d / "h_empty.jpg")] = "empty"
    (d / "i_text.jpg").write_text("this is not a picture\n")
    bad[str(d / "i_text.jpg")] = "not an image"
    noisy = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    full = write_rgb(d / "tmp.jpg", noisy, ".jpg").read_bytes()
    (d / "tmp.jpg").unlink()
    (d / "j_truncated.jpg").write_bytes(full[: len(full) // 2])
    bad[str(d / "j_truncated.jpg")] = "truncated JPEG"
    png = write_rgb(d / "tmp.png", noisy).read_bytes()
    (d / "tmp.png").unlink()
    (d / "k_broken.png").write_bytes(png[: len(png) // 2])
    bad[str(d / "k_broken.png")] = "truncated PNG"
    write_rgb(d / "l_tiny.png", solid(rgb, 8, 8))
    bad[str(d / "l_tiny.png")] = "too small"
    (d / "m_notes.txt").write_text("labels: cats\n")
    bad[str(d / "m_notes.txt")] = "not an image file"
    # junk that is ignored altogether
    (d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (d / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (d / "._a_plain.jpg").write_bytes(b"\x00\x05\x16\x07")
    (root / ".hidden_class").mkdir()
    write_rgb(root / ".hidden_class" / "x.png", solid(rgb))
    (root / "zz_empty").mkdir()
    bad[str(root / "zz_empty")] = "empty class folder"
    return root, good, bad


@pytest.fixture()
def cls(tmp_path: Path) -> Path:
    """A class folder ``<tmp>/root/cats`` with one good image (the hostile-input tests add bad ones)."""
    d = tmp_path / "root" / "cats"
    d.mkdir(parents=True)
    write_rgb(d / "good.png", solid((200, 20, 20)))
    return d
