"""Caches (`.npz`, no pickles, atomic, CRC-checked) and the question's pickles (also importable
from facekit.data).

A cache is an uncompressed `.npz`: a zip whose members are `.npy` arrays. Zip stores a CRC-32 of
every member and reading a member to its end checks it, so a damaged byte is caught without a second
checksum pass. ``load_cache(..., mmap=True)`` maps the images straight from the file instead of
reading them (ready at once; pages are read when training touches them; their CRC is not checked).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from facekit.data.dataset import Dataset
from facekit.text import ROOM, wrap

__all__ = ["CacheError", "save_cache", "load_cache", "save_pickle", "load_pickle", "CACHE_VERSION"]

CACHE_VERSION = 2  # 2: no separate checksum member (zip's CRC-32 per member covers the arrays)


class CacheError(ValueError):
    """A cache file that is missing parts, damaged, or not what was asked for."""


_PARTIAL = ".facekit-partial."  # in the name of a file being written: `.NAME.facekit-partial.PID.XXXX.tmp`


def _clean_stale(path: Path) -> None:
    """Remove partial files of an earlier save of ``path`` whose writer is gone (killed). A writer
    holds an exclusive `fcntl.flock` on its partial file, so a lock that can be taken means no one
    is writing it (a PID says nothing across PID namespaces or after PID reuse)."""
    for old in path.parent.glob(f".{path.name}{_PARTIAL}*.tmp"):
        try:
            fd = os.open(old, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            old.unlink(missing_ok=True)  # locked by us: no writer; a new writer gets a new name
        except OSError:
            continue  # locked by a live writer (or not ours to judge)
        finally:
            os.close(fd)


def _locked_partial(path: Path) -> tuple[int, str]:
    """A new partial file next to ``path``, flock-ed by this writer; (fd, name)."""
    while True:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_PARTIAL}{os.getpid()}.",
                                   suffix=".tmp")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp  # not removed by a cleaner between mkstemp and flock
        except FileNotFoundError:
            pass
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a partial file in the same folder, then rename it: a reader sees the old file
    or the new one, never half of one. The file gets the usual permissions (0666 minus the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(path)
    fd, tmp = _locked_partial(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.replace(tmp, path)  # while still locked: no cleaner removes it first
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_cache(ds: Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to an uncompressed ``.npz`` (no pickles inside) atomically: a temp file, then a
    rename. Only when asked: loading never writes a cache by itself."""
    path = Path(path)
    _check_round_trip(ds)
    arrays = {
        "version": np.array(CACHE_VERSION),
        "images": ds.images,
        "labels": ds.labels,
        "class_names": np.array(ds.class_names, dtype=str),
        "paths": np.array(["" if p is None else p for p in ds.paths], dtype=str),
        "skipped": np.array(ds.skipped, dtype=str).reshape(-1, 2),
        "description": np.array(ds.description),
    }
    for k, v in ds.attributes.items():
        arrays[f"attr.{k}"] = v
    _atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    return path


def _check_round_trip(ds: Dataset) -> None:
    """Refuse what `load_cache` could not give back as it was: object arrays (stored as pickles)
    and NUL characters in names (numpy strips them)."""
    for k, v in ds.attributes.items():
        if np.asarray(v).dtype.hasobject:
            raise ValueError(f"attribute {k!r} has dtype object; a cache stores plain arrays only "
                             "(numbers, booleans, strings), never pickles")
    texts = [*ds.class_names, *(p or "" for p in ds.paths), *(w for pair in ds.skipped for w in pair),
             ds.description, *ds.attributes]
    if bad := next((t for t in texts if "\x00" in str(t)), None):
        raise ValueError(f"{bad!r} holds a NUL character, which a cache cannot store; rename it")


def load_cache(path: str | os.PathLike, *, size: int | None = None,
               class_names: tuple[str, ...] | None = None, mmap: bool = False) -> Dataset:
    """Read a cache written by `save_cache`, verifying shapes, dtypes, classes and every member's
    CRC-32. ``mmap=True`` maps the images read-only from the file instead (no copy, no CRC check of
    the images; everything else is still checked): for a cache you just wrote, or data larger than
    memory.

    Raises `CacheError` naming the file and the problem for anything damaged or unexpected.
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - one descriptor for every read below, closed there
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such cache file") from None
    except PermissionError:
        raise PermissionError(f"{path}: cannot read this cache: permission denied (the file is not "
                              "damaged; check its permissions)") from None
    except IsADirectoryError:
        raise FileNotFoundError(f"{path}: is a folder, not a cache file") from None
    with f:
        try:
            return _read_cache(path, f, size, class_names, mmap)
        except CacheError:
            raise
        except MemoryError as e:
            raise CacheError(f"{path}: damaged cache (it asks for more memory than there is); delete "
                             "it and reload") from e
        except Exception as e:  # noqa: BLE001 - any failure to read a damaged file is a damaged cache
            raise CacheError(f"{path}: damaged cache ({type(e).__name__}: {e}); delete it and "
                             "reload") from e


def _check_members(path: Path, f: BinaryIO) -> None:
    """Refuse an archive that is not what `save_cache` writes (stored, not compressed), or whose
    members claim more bytes than the file holds - before anything is read into memory."""
    on_disk = os.fstat(f.fileno()).st_size
    with zipfile.ZipFile(f) as zf:
        for m in zf.infolist():
            if m.compress_type != zipfile.ZIP_STORED:
                raise CacheError(f"{path}: member {m.filename!r} is compressed; facekit caches are not "
                                 "(a zip bomb?); delete it and reload")
            if m.file_size > on_disk or m.file_size != m.compress_size:
                raise CacheError(f"{path}: member {m.filename!r} claims {m.file_size:,} bytes in a file "
                                 f"of {on_disk:,}; damaged, delete it and reload")


def _mapped(path: Path, f: BinaryIO, member: zipfile.ZipInfo) -> np.ndarray:
    """A read-only memory map of a stored `.npy` member, straight from the open zip file ``f``."""
    f.seek(member.header_offset)
    head = f.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise CacheError(f"{path}: member {member.filename!r} has no local header; damaged")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    f.seek(member.header_offset + 30 + name_len + extra_len)
    version = np.lib.format.read_magic(f)
    fmt = np.lib.format
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    if fortran or dtype.hasobject:
        raise CacheError(f"{path}: member {member.filename!r} is not a plain C-order array")
    offset = f.tell()
    if offset + int(np.prod(shape)) * dtype.itemsize > os.fstat(f.fileno()).st_size:
        raise CacheError(f"{path}: member {member.filename!r} runs past the end of the file; damaged")
    return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape)


def _read_cache(path: Path, f: BinaryIO, size: int | None, class_names: tuple[str, ...] | None,
                mmap: bool = False) -> Dataset:
    """Every member from the one open file ``f``, so one load sees one save."""
    _check_members(path, f)
    f.seek(0)
    with np.load(f, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files if not (mmap and k == "images")}
        if mmap and "images" in z.files:
            a["images"] = _mapped(path, f, z.zip.getinfo("images.npy"))
    need = {"version", "images", "labels", "class_names", "paths", "skipped"}
    if missing := need - a.keys():
        raise CacheError(f"{path}: not a facekit cache, missing {sorted(missing)}")
    if a["version"].shape != () or a["version"].dtype.kind not in "iu" or int(a["version"]) != CACHE_VERSION:
        raise CacheError(f"{path}: cache version {a['version'].tolist()!r}, expected {CACHE_VERSION}")
    images, labels = a["images"], a["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise CacheError(f"{path}: images are {images.dtype} {images.shape}, expected uint8 (N,H,W,3)")
    if size is not None and images.shape[1:3] != (size, size):
        raise CacheError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected {size}x{size}")
    names = tuple(str(c) for c in a["class_names"])
    if class_names is not None and tuple(class_names) != names:
        raise CacheError(f"{path}: classes {names}, expected {tuple(class_names)}")
    try:
        return Dataset(images, labels, names, tuple(p or None for p in a["paths"].tolist()),
                       tuple(map(tuple, a["skipped"].tolist())),
                       {k[5:]: v for k, v in a.items() if k.startswith("attr.")},
                       str(a.get("description", "")))
    except (ValueError, TypeError) as e:
        raise CacheError(f"{path}: inconsistent cache: {e}") from e


def save_pickle(ds: Dataset, folder: str | os.PathLike = ".", *, shuffle: bool = True,
                seed: int = 0) -> tuple[Path, Path]:
    """Write ``X.pickle`` (uint8 (N, H, W, 3), RGB) and ``y.pickle`` (int (N,)) like the question's
    data script did (shuffled), so its model script can read them. Prefer `save_cache`."""
    folder = Path(folder)
    order = np.random.default_rng(seed).permutation(len(ds)) if shuffle else np.arange(len(ds))
    x_path, y_path = folder / "X.pickle", folder / "y.pickle"
    _atomic_write(x_path, lambda f: pickle.dump(ds.images[order], f))
    _atomic_write(y_path, lambda f: pickle.dump(ds.labels[order], f))
    return x_path, y_path


def load_pickle(folder: str | os.PathLike = ".", *, trust: bool = False,
                class_names: tuple[str, ...] | None = None) -> Dataset:
    """Read ``X.pickle``/``y.pickle`` into a Dataset.

    Unpickling runs whatever code the file asks for, so a pickle from someone else can take over
    your machine. Pass ``trust=True`` only for files you wrote yourself; prefer `load_cache`.
    """
    folder = Path(folder)
    if trust is not True:  # not truthiness: trust="no" must not run the payload
        raise PermissionError(f"{folder}: " + wrap("loading a pickle runs code stored in it; pass "
                                                    "trust=True only for X.pickle/y.pickle you made "
                                                    "yourself (or use load_cache)", room=ROOM))
    with open(folder / "X.pickle", "rb") as f:
        x = pickle.load(f)  # noqa: S301 - the caller vouched for the file
    with open(folder / "y.pickle", "rb") as f:
        y = pickle.load(f)  # noqa: S301
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != np.uint8:
        raise ValueError(f"{folder / 'X.pickle'}: images are {x.dtype}, expected uint8 0-255")
    if y.ndim != 1 or len(y) != len(x) or (len(y) and y.dtype.kind not in "iu"):
        raise ValueError(f"{folder / 'y.pickle'}: labels are {y.dtype} {y.shape}, expected whole numbers, "
                         f"one per image ({len(x)})")
    limit = len(class_names) if class_names is not None else len(y)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= limit):
        why = "the class names given" if class_names is not None else "at most one class per image"
        raise ValueError(f"{folder / 'y.pickle'}: labels run from {int(y.min())} to {int(y.max())}; "
                         f"expected 0..{limit - 1} ({why})")
    n = int(y.max()) + 1 if len(y) else 0
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(n))
    return Dataset(x, y, names, description=f"pickles in {folder}")
