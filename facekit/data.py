"""Images in, one `Dataset` out: the question's folder layout, UTKFace, caches and pickles.

Every loader returns a `Dataset` of uint8 RGB images and int labels, and lists every file it
did not load in ``Dataset.skipped`` with the reason. Nothing is dropped silently.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "Dataset",
    "load_folder",
    "load_utkface",
    "load",
    "save_cache",
    "load_cache",
    "save_pickle",
    "load_pickle",
    "CacheError",
    "parse_utkface_name",
    "IMAGE_EXTENSIONS",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini", "__macosx", ".ipynb_checkpoints"}



@dataclass(frozen=True, eq=False)
class Dataset:
    """Images, labels and where they came from.

    images: uint8 array (N, H, W, 3) in RGB order. labels: int64 array (N,), an index into
    ``class_names`` (sorted). paths: the source file of each image, None for generated images.
    skipped: (path, reason) for every file not loaded. attributes: per-image arrays of length N.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[str | None, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        images, labels = self.images, np.asarray(self.labels)
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4
                and images.shape[-1] == 3):
            found = (f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray)
                     else type(images).__name__)
            raise ValueError(f"images must be a uint8 array (N, H, W, 3); found {found}")
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {len(images)} integers; found {labels.dtype} {labels.shape}")
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be unique; found {self.class_names}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must lie in 0..{len(self.class_names) - 1}; "
                             f"found {labels.min()}..{labels.max()}")
        paths = tuple(self.paths) if len(self.paths) else (None,) * len(images)
        if len(paths) != len(images):
            raise ValueError(f"paths must have one entry per image ({len(images)}); found {len(paths)}")
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "skipped", tuple((str(p), str(r)) for p, r in self.skipped))
        attrs = {k: np.asarray(v) for k, v in self.attributes.items()}
        for k, v in attrs.items():
            if len(v) != len(images):
                raise ValueError(f"attribute {k!r} has {len(v)} values for {len(images)} images")
        object.__setattr__(self, "attributes", attrs)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def class_counts(self) -> dict[str, int]:
        """Images per class, in class order (zeros included)."""
        counts = np.bincount(self.labels, minlength=self.n_classes)
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    def skipped_summary(self) -> dict[str, int]:
        """How many files were skipped for each reason (the part of the reason before ':')."""
        return dict(Counter(reason.split(":")[0] for _, reason in self.skipped))

    def subset(self, indices: np.ndarray) -> Dataset:
        """The images at ``indices`` (in that order), with their labels, paths and attributes."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(self.images[idx], self.labels[idx], self.class_names,
                       tuple(self.paths[i] for i in idx), self.skipped,
                       {k: v[idx] for k, v in self.attributes.items()}, self.description)

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Shuffled, stratified split into (train, val): each class gives ``val_fraction`` of its
        images (rounded, at least one when it has two or more) to val. No image is in both."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1; found {val_fraction}")
        rng = np.random.default_rng(seed)
        train_idx, val_idx = [], []
        for c in range(self.n_classes):
            members = rng.permutation(np.flatnonzero(self.labels == c))
            n_val = int(round(val_fraction * len(members)))
            if len(members) >= 2:
                n_val = min(max(n_val, 1), len(members) - 1)
            val_idx.append(members[:n_val])
            train_idx.append(members[n_val:])
        train = rng.permutation(np.concatenate(train_idx)) if train_idx else np.zeros(0, np.int64)
        val = rng.permutation(np.concatenate(val_idx)) if val_idx else np.zeros(0, np.int64)
        return self.subset(train), self.subset(val)

    def __repr__(self) -> str:
        n, h, w, _ = self.images.shape
        counts = ", ".join(f"{k}={v}" for k, v in self.class_counts().items())
        head = f"{self.description}: " if self.description else ""
        skipped = f"; {len(self.skipped)} skipped {self.skipped_summary()}" if self.skipped else ""
        attrs = f"; attributes {sorted(self.attributes)}" if self.attributes else ""
        return (f"Dataset({head}{n} images {h}x{w} RGB uint8, {self.n_classes} classes "
                f"[{counts}]{attrs}{skipped})")


# ----------------------------------------------------------------------------- decoding one file

def _is_hidden(name: str) -> bool:
    low = name.lower()
    return low.startswith(".") or low.startswith("._") or low in _SYSTEM_FILES


def _sniff(head: bytes) -> str | None:
    """The image format from the file's first bytes, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _truncation(kind: str, data: np.ndarray) -> str | None:
    """Why a JPEG/PNG is incomplete, or None. OpenCV decodes a truncated JPEG with only a warning
    (grey bottom rows), so the end-of-image marker is checked here."""
    raw = data.tobytes()
    if kind == "JPEG":
        last_scan = raw.rfind(b"\xff\xda")
        if raw.rfind(b"\xff\xd9") < max(last_scan, 2):
            return "truncated JPEG: no end-of-image marker after the last scan"
    if kind == "PNG" and b"IEND" not in raw[-16:]:
        return "truncated PNG: no IEND chunk at the end"
    return None


def _to_rgb8(img: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/BGRA/gray, 8- or 16-bit -> RGB uint8."""
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255)
        img = img.round().astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)  # alpha dropped
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike, size: int, min_size: int = 16) -> tuple[np.ndarray | None, str]:
    """Read one image as (size x size RGB uint8, "") or (None, reason it was not loaded)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works with non-ASCII paths everywhere
    except OSError as e:
        return None, f"unreadable: {e.strerror or e}"
    if data.size == 0:
        return None, "empty file: 0 bytes"
    kind = _sniff(data[:16].tobytes())
    if kind is None:
        return None, "not an image: unknown file signature"
    why = _truncation(kind, data)
    if why:
        return None, why
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        return None, f"corrupt {kind}: OpenCV could not decode it"
    h, w = img.shape[:2]
    if min(h, w) < min_size:
        return None, f"too small: {w}x{h} px, need at least {min_size}x{min_size}"
    img = _to_rgb8(img)
    if h == size and w == size:
        return img, ""  # already the right size: no resampling, no copy
    shrink = h > size or w > size
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return img, ""


def _decode_all(paths: list[str], slots: list[int], out: np.ndarray, min_size: int,
                workers: int | None, progress: bool) -> list[str]:
    """Decode files in threads (OpenCV releases the GIL) straight into ``out[slot]``; return the
    reason each file was not loaded ("" when it was)."""
    if not paths:
        return []
    size = out.shape[1]

    def one(job: tuple[str, int]) -> str:
        img, why = read_image(job[0], size, min_size)
        if img is not None:
            out[job[1]] = img
        return why

    workers = workers or min(8, os.cpu_count() or 1)
    reasons: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, why in enumerate(pool.map(one, zip(paths, slots), chunksize=16), 1):
            reasons.append(why)
            if progress and (i % 250 == 0 or i == len(paths)):
                sys.stderr.write(f"\rdecoding {i}/{len(paths)} images")
                if i == len(paths):
                    sys.stderr.write("\n")
                sys.stderr.flush()
    return reasons


def _progress_default(progress: bool | None, n: int) -> bool:
    if progress is not None:
        return progress
    return n >= 2000 and sys.stderr.isatty()


def _load_lists(groups: list[list[str]], size: int, per_class: int | None, min_size: int,
                workers: int | None, progress: bool | None):
    """Decode the first ``per_class`` good files of each group (sorted order kept), refilling when
    files are bad. Images are decoded straight into one preallocated array, so peak memory stays
    near the size of the data. Returns (images class by class, count per group, kept paths per
    group, skipped)."""
    want = [len(g) if per_class is None else min(per_class, len(g)) for g in groups]
    offsets = np.concatenate([[0], np.cumsum(want)]).astype(int)
    out = np.empty((int(offsets[-1]), size, size, 3), np.uint8)
    filled, nexts = [0] * len(groups), [0] * len(groups)
    kept: list[list[str]] = [[] for _ in groups]
    skipped: list[tuple[str, str]] = []
    show = _progress_default(progress, int(offsets[-1]))
    while True:
        batch: list[tuple[int, str, int]] = []  # (group, path, slot)
        for gi, g in enumerate(groups):
            take = min(want[gi] - filled[gi], len(g) - nexts[gi])
            start = offsets[gi] + filled[gi]
            batch += [(gi, p, start + j) for j, p in enumerate(g[nexts[gi]:nexts[gi] + take])]
            nexts[gi] += max(take, 0)
        if not batch:
            break
        reasons = _decode_all([p for _, p, _ in batch], [s for _, _, s in batch], out, min_size,
                              workers, show)
        for (gi, p, slot), why in zip(batch, reasons):
            if why:
                skipped.append((p, why))
                continue
            target = offsets[gi] + filled[gi]  # close the gaps bad files left, keeping the order
            if slot != target:
                out[target] = out[slot]
            filled[gi] += 1
            kept[gi].append(p)
    for gi, g in enumerate(groups):
        skipped += [(p, f"beyond per_class: only the first {per_class} images of a class are loaded")
                    for p in g[nexts[gi]:]]
    pos = 0
    for gi in range(len(groups)):  # groups that came up short move down; usually a no-op
        if pos != offsets[gi] and filled[gi]:
            out[pos:pos + filled[gi]] = out[offsets[gi]:offsets[gi] + filled[gi]].copy()
        pos += filled[gi]
    return out[:pos], filled, kept, skipped


def _assemble(array, counts, kept, class_names, skipped, attributes=None, description=""):
    labels = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    paths = tuple(p for group in kept for p in group)
    return Dataset(array, labels, tuple(class_names), paths, tuple(skipped), attributes or {},
                   description)


def load_folder(root: str | os.PathLike, size: int = 200, per_class: int | None = None, *,
                min_size: int = 16, workers: int | None = None,
                progress: bool | None = None) -> Dataset:
    """Load the question's layout ``root/<class>/<image>``: classes and files in sorted order.

    The first ``per_class`` readable images of each class are resized to ``size`` x ``size`` RGB.
    Hidden and system files (``.DS_Store``, ``Thumbs.db``, ``._*``) are ignored; every other file
    not loaded is in ``skipped`` with its reason (empty, not an image, truncated, too small, ...).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; expected {root}/<class name>/<image files>")
    entries = sorted(os.listdir(root))
    class_dirs = [e for e in entries if (root / e).is_dir() and not _is_hidden(e)]
    skipped: list[tuple[str, str]] = [
        (str(root / e), "not in a class folder: files must be in root/<class>/")
        for e in entries if not (root / e).is_dir() and not _is_hidden(e)]
    if not class_dirs:
        raise ValueError(f"{root}: no class folders found; expected {root}/<class name>/<image files>")
    groups: list[list[str]] = []
    for c in class_dirs:
        files = []
        for name in sorted(os.listdir(root / c)):
            p = root / c / name
            if _is_hidden(name):
                continue
            if p.is_dir():
                skipped.append((str(p), "subfolder inside a class folder: not searched"))
            elif p.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append((str(p), f"not an image file: extension {p.suffix or '(none)'!r}"))
            else:
                files.append(str(p))
        if not files:
            skipped.append((str(root / c), "empty class folder: no image files"))
        groups.append(files)
    array, counts, kept, more = _load_lists(groups, size, per_class, min_size, workers, progress)
    keep = [i for i, n in enumerate(counts) if n]  # a class with no readable image is no class
    skipped += [(str(root / class_dirs[i]), "class dropped: no readable images")
                for i, g in enumerate(groups) if g and not counts[i]]
    if not keep:
        raise ValueError(f"{root}: no readable images in any class folder "
                         f"({len(skipped + more)} files skipped, e.g. {(skipped + more)[:1]})")
    return _assemble(array, [counts[i] for i in keep], [kept[i] for i in keep],
                     [class_dirs[i] for i in keep], skipped + more, description=f"folder {root}")


# ----------------------------------------------------------------------------- one entry point

def load(source: str | os.PathLike = "synthetic", size: int = 96, per_class: int = 100,
         seed: int = 0, difficulty: float = 0.5) -> Dataset:
    """Load the built-in synthetic faces (``"synthetic"``), a UTKFace folder or a question-layout
    folder, whichever ``source`` is. A folder of UTKFace-named files is read as UTKFace."""
    if str(source) == "synthetic":
        from facekit.synthetic import make_faces
        return make_faces(n_per_class=per_class, size=size, seed=seed, difficulty=difficulty)
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (give 'synthetic', a UTKFace folder, or "
                                "a folder laid out as <root>/<class>/<images>)")
    if looks_like_utkface(sorted(os.listdir(root))[:50]):
        return load_utkface(root, "race_gender", size, per_class)
    return load_folder(root, size, per_class)


# Re-exported so that `from facekit.data import ...` covers the whole data API.
from facekit.cache import CacheError, load_cache, load_pickle, save_cache, save_pickle  # noqa: E402
from facekit.utkface import load_utkface, looks_like_utkface, parse_utkface_name  # noqa: E402
