"""The built-in face set: cartoon faces drawn with OpenCV, offline and deterministic.

8 classes = 4 hair styles x glasses (no/yes), like the question's 4 groups x 2 genders.
Everything else varies at random and independently of the class: skin tone, hair colour,
face position, scale and tilt, background gradient, lighting, clutter, sensor noise and JPEG
artefacts. Image i of class c is a pure function of (seed, c, i, size, difficulty).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facekit.data.dataset import Dataset

__all__ = ["HAIR_STYLES", "CLASS_NAMES", "make_faces", "draw_face", "write_folder"]

HAIR_STYLES = ("bald", "long", "mohawk", "short")
CLASS_NAMES = tuple(sorted(h + g for h in HAIR_STYLES for g in ("", "+glasses")))
_SKIN = np.array([(255, 224, 196), (241, 194, 150), (224, 172, 105), (198, 134, 66),
                  (141, 85, 36), (92, 56, 32)], dtype=np.float64)
_HAIR = np.array([(20, 16, 14), (70, 45, 25), (120, 80, 40), (200, 160, 80), (160, 60, 30),
                  (140, 140, 140), (235, 225, 200)], dtype=np.float64)
_SHIFT = 4  # cv2 sub-pixel bits: coordinates are multiplied by 16
_ONE = 1 << _SHIFT
_grids: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size not in _grids:
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
        _grids[size] = (x[..., None], y[..., None])
    return _grids[size]


def _class_parts(label: int) -> tuple[str, bool]:
    name = CLASS_NAMES[label]
    return name.split("+")[0], name.endswith("+glasses")


def _col(c: np.ndarray) -> tuple[float, ...]:
    """A colour as OpenCV takes it: floats clipped to 0..255."""
    return tuple(min(max(float(v), 0.0), 255.0) for v in c)


def _pt(x: float, y: float) -> tuple[int, int]:
    """A pixel point in cv2's sub-pixel coordinates (`_SHIFT` bits)."""
    return int(x * _ONE + 0.5), int(y * _ONE + 0.5)


def _background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A linear gradient between two random colours, in a random direction: the image and the
    gradient's position 0..1 per pixel (the lighting follows it)."""
    gx, gy = _grid(size)
    c1 = rng.uniform(30, 235, 3).astype(np.float32)
    c2 = rng.uniform(30, 235, 3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    t = np.clip(np.float32(0.5) + (gx - 0.5) * np.float32(np.cos(ang))
                + (gy - 0.5) * np.float32(np.sin(ang)), 0, 1)
    return (c1 + (c2 - c1) * t).astype(np.uint8), t


def _clutter(img: np.ndarray, rng: np.random.Generator, s: float, d: float) -> None:
    """Circles and lines of random colours behind the face, more of them at higher difficulty."""
    for _ in range(rng.poisson(1 + 4 * d)):
        c = _col(rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            cv2.circle(img, _pt(*rng.uniform(0, s, 2)), int(rng.uniform(0.03, 0.09) * s * _ONE), c,
                       -1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.line(img, _pt(*rng.uniform(0, s, 2)), _pt(*rng.uniform(0, s, 2)), c,
                     max(1, int(s / 64)), cv2.LINE_AA, _SHIFT)


class _Face:
    """The face's tilted frame on ``img``: random scale, centre (cx, cy) and tilt; draws in face
    coordinates (u across, v down, in face half-widths/heights)."""

    def __init__(self, img: np.ndarray, rng: np.random.Generator, s: float, d: float):
        scale = rng.uniform(1 - 0.25 * d, 1 + 0.1 * d)
        self.img = img
        self.cx = s / 2 + rng.uniform(-1, 1) * 0.12 * d * s
        self.cy = s / 2 + 0.04 * s + rng.uniform(-1, 1) * 0.08 * d * s
        self.tilt = rng.uniform(-1, 1) * 25 * d
        self.fw, self.fh = 0.25 * s * scale, 0.32 * s * scale
        self.ca, self.sa = float(np.cos(np.radians(self.tilt))), float(np.sin(np.radians(self.tilt)))

    def at(self, u: float, v: float) -> tuple[int, int]:
        """Face coordinates -> pixel point."""
        x, y = u * self.fw, v * self.fh
        return _pt(self.cx + x * self.ca - y * self.sa, self.cy + x * self.sa + y * self.ca)

    def ell(self, u: float, v: float, a: float, b: float, colour: tuple[float, ...], thick: int = -1,
            start: int = 0, end: int = 360, rot: float = 0.0) -> None:
        """An ellipse centred at (u, v) with half-axes a, b (face units), turned with the face."""
        cv2.ellipse(self.img, self.at(u, v), (int(a * self.fw * _ONE), int(b * self.fh * _ONE)),
                    self.tilt + rot, start, end, colour, thick, cv2.LINE_AA, _SHIFT)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, ...]]:
    """A random skin tone and a hair colour kept visible against it."""
    skin = _SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 10, 3)
    hair_rgb = _HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 12, 3)
    if np.abs(hair_rgb - skin).sum() < 120:  # keep the hair visible against the skin
        hair_rgb = hair_rgb * 0.45 if hair_rgb.sum() > 250 else hair_rgb + 110
    return skin, _col(hair_rgb)


def _head(face: _Face, hair: str, skin: np.ndarray, hair_c: tuple[float, ...]) -> None:
    """The head and the class's hair style (long hair behind it, caps and crests over it)."""
    if hair == "long":  # hair behind the face, down to the shoulders
        face.ell(0, 0.05, 1.22, 1.12, hair_c)
        cv2.fillConvexPoly(face.img, np.array([face.at(-1.22, 0.05), face.at(1.22, 0.05), face.at(1.3, 1.05),
                                               face.at(-1.3, 1.05)], np.int32), hair_c, cv2.LINE_AA, _SHIFT)
    face.ell(0, 0, 1, 1, _col(skin))
    if hair == "short":  # a cap of hair over the top of the head
        face.ell(0, -0.22, 1.06, 0.85, hair_c, start=180, end=360)
    elif hair == "long":
        face.ell(0, -0.3, 1.04, 0.72, hair_c, start=180, end=360)
    elif hair == "mohawk":  # a narrow crest over the top
        face.ell(0, -0.95, 0.16, 0.42, hair_c)


def _features(face: _Face, rng: np.random.Generator, line_w: int, skin: np.ndarray,
              hair_c: tuple[float, ...]) -> None:
    """Eyes (random size, pupils looking a little aside), brows, nose and a random smile or frown."""
    fw, fh = face.fw, face.fh
    eye_r = 0.13 + rng.uniform(-0.02, 0.02)
    for side in (-1, 1):
        face.ell(side * 0.38, -0.12, eye_r, eye_r * fw / fh, (250, 250, 250))
        face.ell(side * 0.38 + rng.uniform(-0.03, 0.03), -0.12, eye_r * 0.5, eye_r * 0.5 * fw / fh,
                 (25, 20, 20))
        face.ell(side * 0.38, -0.34, 0.2, 0.07, _col(np.array(hair_c) * 0.7), line_w, 200, 340)
    face.ell(0, 0.15, 0.08, 0.12, _col(skin * 0.8))
    smile = rng.uniform(-1, 1)
    face.ell(0, 0.5 - 0.08 * smile, 0.3, 0.12 * abs(smile) + 0.02, (150, 40, 50), line_w,
             0 if smile > 0 else 180, 180 if smile > 0 else 360)


def _glasses(face: _Face, rng: np.random.Generator, s: float) -> None:
    """Two rings and a bridge, dark frames of a random colour."""
    fw, fh = face.fw, face.fh
    frame = _col(rng.uniform(0, 70, 3))
    gw = max(1, int(round(s / 55)))
    for side in (-1, 1):
        face.ell(side * 0.38, -0.12, 0.27, 0.27 * fw / fh, frame, gw)
    cv2.line(face.img, face.at(-0.11, -0.14), face.at(0.11, -0.14), frame, gw, cv2.LINE_AA, _SHIFT)
    for side in (-1, 1):
        cv2.line(face.img, face.at(side * 0.65, -0.14), face.at(side * 1.0, -0.2), frame, gw, cv2.LINE_AA,
                 _SHIFT)


def _camera(img: np.ndarray, t: np.ndarray, rng: np.random.Generator, d: float) -> np.ndarray:
    """Lighting along the background's gradient, sensor noise and JPEG artefacts (none at d = 0)."""
    gain = np.float32(rng.uniform(1 - 0.2 * d, 1 + 0.1 * d))
    light = gain * (1 + np.float32(rng.uniform(-0.35, 0.35) * d) * (2 * t - 1))
    out = img.astype(np.float32)
    out *= light
    if d > 0:
        out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(12 * d)
    img = np.clip(out, 0, 255).astype(np.uint8)
    if d > 0:
        quality = int(rng.uniform(95 - 55 * d, 95))
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        img = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))[..., ::-1]
    return img


def draw_face(label: int, size: int = 96, rng: np.random.Generator | None = None,
              difficulty: float = 0.5) -> np.ndarray:
    """Draw one face of class ``CLASS_NAMES[label]`` as a (size, size, 3) RGB uint8 image: background,
    clutter, the face in a random frame (head and hair, features, glasses when the class has them),
    then the camera (lighting, noise, JPEG). The random draws happen in that order."""
    rng = rng if rng is not None else np.random.default_rng()
    d = float(np.clip(difficulty, 0.0, 1.0))
    hair, glasses = _class_parts(label)
    s = float(size)
    img, t = _background(size, rng)
    _clutter(img, rng, s, d)
    face = _Face(img, rng, s, d)
    skin, hair_c = _colours(rng)
    _head(face, hair, skin, hair_c)
    _features(face, rng, max(1, int(round(s / 80))), skin, hair_c)
    if glasses:
        _glasses(face, rng, s)
    return np.ascontiguousarray(_camera(img, t, rng, d))


def _rng(seed: int, label: int, index: int, difficulty: float) -> np.random.Generator:
    return np.random.default_rng([seed, label, index, int(round(difficulty * 1000))])


def make_faces(n_per_class: int = 100, size: int = 96, seed: int = 0,
               difficulty: float = 0.5) -> Dataset:
    """The built-in synthetic faces: ``n_per_class`` images of each of the 8 classes.

    Images are grouped by class (like sorted folders); use `Dataset.split` for shuffled splits.
    ``difficulty`` (0..1) scales every nuisance: position, tilt, clutter, noise, JPEG quality.
    ``attributes`` holds ``hair`` (style name) and ``glasses`` (0/1) for every image.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1; found {n_per_class}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px; found {size}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be between 0 and 1; found {difficulty}")
    n = n_per_class * len(CLASS_NAMES)
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), n_per_class)
    for k, (c, i) in enumerate((c, i) for c in range(len(CLASS_NAMES)) for i in range(n_per_class)):
        images[k] = draw_face(c, size, _rng(seed, c, i, difficulty), difficulty)
    parts = [_class_parts(int(c)) for c in labels]
    attributes = {"hair": np.array([h for h, _ in parts]),
                  "glasses": np.array([int(g) for _, g in parts])}
    return Dataset(images, labels, CLASS_NAMES, attributes=attributes,
                   description=f"synthetic faces (seed={seed}, difficulty={difficulty})")


def write_folder(root: str | os.PathLike = "data/TRAINING", n_per_class: int = 100,
                 size: int = 200, seed: int = 0, difficulty: float = 0.5,
                 quality: int = 95, overwrite: bool = False) -> Path:
    """Write the synthetic faces as JPEGs in the question's layout ``root/<class>/<class>_0000.jpg``,
    so the question's own data script runs on them unchanged. Returns ``root``.

    A ``root`` that already holds files is refused (stale faces of another seed would mix in),
    unless ``overwrite=True``, which replaces facekit's own class folders (and nothing else). The
    set is written into a hidden folder next to ``root`` and renamed into place when complete, so
    an error or Ctrl-C leaves the old set (or nothing) and no partial one."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"{root}: not empty; write into an empty folder, or pass overwrite=True "
                         "(--overwrite) to replace facekit's class folders there")
    ds = make_faces(n_per_class, size, seed, difficulty)
    home = root.absolute()
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{home.name}.facekit-partial.", dir=home.parent))
    try:
        _write_set(ds, tmp / "new", quality)
        _swap_in(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _write_set(ds: Dataset, folder: Path, quality: int) -> None:
    """Every image of ``ds`` as ``folder/<class>/<class>_0000.jpg``."""
    counters = dict.fromkeys(CLASS_NAMES, 0)
    for name in CLASS_NAMES:
        (folder / name).mkdir(parents=True)
    for img, label in zip(ds.images, ds.labels):
        name = CLASS_NAMES[label]
        _write_jpeg(folder / name / f"{name.replace('+', '_')}_{counters[name]:04d}.jpg", img, quality)
        counters[name] += 1


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image")
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def _swap_in(tmp: Path, root: Path) -> None:
    """Move the complete set ``tmp/new`` into ``root``: one rename when ``root`` is missing or
    empty, else facekit's class folders one rename each (the old ones go to ``tmp/old``)."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    if not root.exists():
        os.replace(tmp / "new", root)
        return
    (tmp / "old").mkdir()
    for name in CLASS_NAMES:
        if (root / name).is_dir():
            os.replace(root / name, tmp / "old" / name)
        os.replace(tmp / "new" / name, root / name)
