"""Decoding files into one preallocated array: sniffing the format, catching truncated files,
converting any OpenCV image (BGR/BGRA/gray, 8/16-bit) to RGB uint8, and reading groups of files in
sorted order with a reason for every file that was not loaded."""

from __future__ import annotations

import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import cv2
import numpy as np

from facekit.data.dataset import Dataset

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "check_sizes", "read_image", "is_hidden", "decode_groups",
           "assemble"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini", "__macosx", ".ipynb_checkpoints"}


def is_hidden(name: str) -> bool:
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
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


MAX_PIXELS = 50_000_000  # images larger than this (by their header) are skipped before decoding
_HEAD = 1 << 16  # bytes read first: the signature and, for most files, the image size


def _jpeg_size(fd: int, head: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF marker, walking the segments from the descriptor (so a
    SOF after APPn/COM segments of any size is found without reading what lies between). Gives
    up after 4096 segments (real files have a few dozen)."""
    i = 2
    for _ in range(4096):
        seg = head[i:i + 9] if i + 9 <= len(head) else os.pread(fd, 9, i)
        if len(seg) < 4 or seg[0] != 0xFF:
            return None
        marker = seg[1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(seg) < 9:
                return None
            return int.from_bytes(seg[7:9], "big"), int.from_bytes(seg[5:7], "big")
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        i += 2 + int.from_bytes(seg[2:4], "big")
    return None


def _tiff_size(fd: int, head: bytes) -> tuple[int, int] | None:
    """(width, height) from a TIFF's first image directory (tags 256 and 257)."""
    order: Literal["little", "big"] = "little" if head[:2] == b"II" else "big"
    ifd = int.from_bytes(head[4:8], order)
    count_raw = os.pread(fd, 2, ifd)
    if len(count_raw) < 2:
        return None
    count = int.from_bytes(count_raw, order)
    table = os.pread(fd, 12 * min(count, 4096), ifd + 2)
    found: dict[int, int] = {}
    for k in range(0, len(table) - 11, 12):
        tag, typ = int.from_bytes(table[k:k + 2], order), int.from_bytes(table[k + 2:k + 4], order)
        if tag in (256, 257):
            width = 2 if typ == 3 else 4  # SHORT or LONG
            found[tag] = int.from_bytes(table[k + 8:k + 8 + width], order)
    return (found[256], found[257]) if len(found) == 2 else None


def _pillow_size(kind: str, fd: int) -> tuple[int, int] | None:
    """(width, height) as Pillow's plugin for ``kind`` reads it from the header (lazily: nothing is
    decoded; called directly, so Pillow's own bomb check does not hide the size)."""
    import warnings

    from PIL import Image

    Image.init()
    with open(os.dup(fd), "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind.upper() not in Image.OPEN:
            return None
        try:
            return Image.OPEN[kind.upper()][0](f, "").size
        except Exception:  # noqa: BLE001 - Pillow found no size either
            return None


def _header_size(kind: str, head: bytes, fd: int) -> tuple[int, int] | None:
    """(width, height) from a file's header, without decoding; None when not found. Headers beyond
    the first bytes (a late JPEG SOF, a TIFF directory) are read from ``fd``; Pillow is asked when
    the parsers here find nothing (not for JPEG: the walk here is complete)."""
    return _own_size(kind, head, fd) or (None if kind == "JPEG" else _pillow_size(kind, fd))


def _own_size(kind: str, head: bytes, fd: int) -> tuple[int, int] | None:
    """`_header_size` by the small parsers here."""
    try:
        if kind == "PNG" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if kind == "BMP":
            return (abs(int.from_bytes(head[18:22], "little", signed=True)),
                    abs(int.from_bytes(head[22:26], "little", signed=True)))
        if kind == "GIF":
            return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
        if kind == "WebP":
            chunk = head[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 ":
                return (int.from_bytes(head[26:28], "little") & 0x3FFF,
                        int.from_bytes(head[28:30], "little") & 0x3FFF)
        if kind == "JPEG":
            return _jpeg_size(fd, head)
        if kind == "TIFF":
            return _tiff_size(fd, head)
    except (IndexError, ValueError, OSError):
        return None
    return None


def _truncation(kind: str, raw: bytes) -> str | None:
    """Why a JPEG/PNG is incomplete, or None. OpenCV decodes a truncated JPEG with only a warning
    (grey bottom rows), so the end-of-image marker is checked here. Bytes after a PNG's IEND chunk
    (appended by some tools) are allowed."""
    if kind == "JPEG":
        last_scan = raw.rfind(b"\xff\xda")
        if raw.rfind(b"\xff\xd9") < max(last_scan, 2):
            return "truncated JPEG: no end-of-image marker after the last scan"
    if kind == "PNG" and raw.rfind(b"IEND") < 8:
        return "truncated PNG: no IEND chunk"
    return None


def _to_rgb8(img: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/gray, 8- or 16-bit or float -> RGB uint8."""
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


def _read_checked(path: str | os.PathLike, max_pixels: int) -> tuple[bytes | None, str, str]:
    """(bytes, format, "") of a file opened once by descriptor, or (None, "", reason). The checks
    are on that descriptor (no check-then-open race): opened non-blocking (a FIFO does not hang),
    a regular file, at most 8 bytes x ``max_pixels`` long, a known signature, a header size within
    ``max_pixels`` - all before the rest of the file is read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "", "not a regular file"
        if st.st_size == 0:
            return None, "", "empty file: 0 bytes"
        if st.st_size > 8 * max_pixels:  # more bytes than a raw 16-bit RGBA image of max_pixels
            return None, "", (f"too large: a file of {st.st_size:,} bytes, over 8 bytes x max_pixels "
                              f"({8 * max_pixels:,})")
        head = os.pread(fd, _HEAD, 0)
        kind = _sniff(head[:16])
        if kind is None:
            return None, "", "not an image: unknown file signature"
        wh = _header_size(kind, head, fd)
        if wh is None:
            return None, kind, f"corrupt {kind}: no image size found in its header"
        if wh[0] * wh[1] > max_pixels:
            return None, kind, (f"too large: {wh[0]}x{wh[1]} px by its header, over the limit of "
                                f"{max_pixels:,} pixels (max_pixels)")
        raw = os.pread(fd, st.st_size + 1, 0)  # one byte more: a file that grew is caught
        if len(raw) != st.st_size:
            return None, kind, f"changed while being read: {st.st_size:,} bytes, then {len(raw):,}"
        return raw, kind, ""
    finally:
        os.close(fd)


def read_image(path: str | os.PathLike, size: int, min_size: int = 16,
               max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray | None, str]:
    """Read one image as (size x size RGB uint8, "") or (None, reason it was not loaded).

    The file is opened once, by descriptor, and that descriptor is checked: a regular file, up to
    8 bytes x ``max_pixels`` long, its image size read from the header (PNG, JPEG wherever its
    frame header is, TIFF, WebP, BMP, GIF) within ``max_pixels`` - all before it is decoded; a file
    that decodes larger than its header said is skipped. JPEG EXIF orientation is applied (as photo
    viewers do); 16-bit and float images are scaled to 8 bits, gray and alpha images converted to
    RGB. A decoder error, or running out of memory, skips this file only."""
    try:
        raw, kind, why = _read_checked(path, max_pixels)
    except MemoryError:
        return None, "out of memory while reading it"
    except OSError as e:
        return None, f"unreadable: {e.strerror or e}"
    if raw is None:
        return None, why
    try:
        return _decode(raw, kind, size, min_size, max_pixels)
    except MemoryError:
        return None, f"out of memory while decoding this {kind}"


def _decode(raw: bytes, kind: str, size: int, min_size: int, max_pixels: int
            ) -> tuple[np.ndarray | None, str]:
    """Decode checked bytes (see `read_image`)."""
    why = _truncation(kind, raw)
    if why:
        return None, why
    try:
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as e:
        last = str(e).strip().splitlines()[-1][:160]
        if "allocate" in last.lower():
            return None, f"out of memory while decoding this {kind} (OpenCV: {last})"
        return None, f"corrupt {kind}: OpenCV: {last}"
    if img is None or img.size == 0:
        return None, f"corrupt {kind}: OpenCV could not decode it"
    h, w = img.shape[:2]
    if h * w > max_pixels:
        return None, (f"too large: decoded to {w}x{h} px, more than its header said, over the limit of "
                      f"{max_pixels:,} pixels (max_pixels)")
    if min(h, w) < min_size:
        return None, f"too small: {w}x{h} px, need at least {min_size}x{min_size}"
    if img.dtype.kind == "f" and not np.isfinite(img).all():
        return None, "non-finite pixels (NaN or infinity) in a float image"
    img = _to_rgb8(img)
    if h == size and w == size:
        return img, ""  # already the right size: no resampling, no copy
    shrink = h > size or w > size
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return img, ""


def _decode_all(paths: list[str], slots: list[int], out: np.ndarray, min_size: int,
                workers: int | None, progress: bool, max_pixels: int = MAX_PIXELS) -> list[str]:
    """Decode files in threads (OpenCV releases the GIL) straight into ``out[slot]``; return the
    reason each file was not loaded ("" when it was)."""
    if not paths:
        return []
    size = out.shape[1]

    def one(job: tuple[str, int]) -> str:
        img, why = read_image(job[0], size, min_size, max_pixels)
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


def check_sizes(size: int, per_class: int | None, min_size: int = 16, workers: int | None = None,
                max_pixels: int = MAX_PIXELS) -> None:
    """Raise ValueError, naming the argument, for a size, count or worker number that cannot work."""
    def whole(name: str, value: object, least: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}; found {value!r}")

    whole("size", size, 1)
    whole("min_size", min_size, 1)
    whole("max_pixels", max_pixels, 1)
    if per_class is not None:
        whole("per_class", per_class, 1)
    if workers is not None:
        whole("workers", workers, 1)


def decode_groups(groups: list[list[str]], size: int, per_class: int | None, min_size: int,
                  workers: int | None, progress: bool | None, max_pixels: int = MAX_PIXELS
                  ) -> tuple[np.ndarray, list[int], list[list[str]], list[tuple[str, str]]]:
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
                              workers, show, max_pixels)
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


def assemble(array: np.ndarray, counts: list[int], kept: list[list[str]], class_names: list[str],
             skipped: list[tuple[str, str]], attributes: dict[str, np.ndarray] | None = None,
             description: str = "") -> Dataset:
    """A `Dataset` from images stored class by class (``counts[i]`` images of class i)."""
    labels = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    paths = tuple(p for group in kept for p in group)
    return Dataset(array, labels, tuple(class_names), paths, tuple(skipped), attributes or {},
                   description)
