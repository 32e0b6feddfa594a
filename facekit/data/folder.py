"""The question's layout, ``root/<class>/<image>``, read in sorted order into a `Dataset`."""

from __future__ import annotations

import os
from pathlib import Path

from facekit.data.dataset import Dataset
from facekit.data.decode import IMAGE_EXTENSIONS, MAX_PIXELS, assemble, check_sizes, decode_groups, is_hidden

__all__ = ["load_folder"]


def load_folder(root: str | os.PathLike, size: int = 200, per_class: int | None = None, *,
                min_size: int = 16, workers: int | None = None,
                progress: bool | None = None, max_pixels: int = MAX_PIXELS) -> Dataset:
    """Load the question's layout ``root/<class>/<image>``: classes and files in sorted order.

    The first ``per_class`` readable images of each class are resized to ``size`` x ``size`` RGB.
    Hidden and system files (``.DS_Store``, ``Thumbs.db``, ``._*``) are ignored; every other file
    not loaded is in ``skipped`` with its reason (empty, not an image, truncated, too small, too
    large: over ``max_pixels`` by its header, unreadable folder, ...).

    Taught in chapter 01, section 3.
    """
    check_sizes(size, per_class, min_size, workers, max_pixels)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; expected {root}/<class name>/<image files>")
    entries = sorted(os.listdir(root))
    class_dirs = [e for e in entries if (root / e).is_dir() and not is_hidden(e)]
    skipped: list[tuple[str, str]] = [
        (str(root / e), "not in a class folder: files must be in root/<class>/")
        for e in entries if not (root / e).is_dir() and not is_hidden(e)]
    if not class_dirs:
        raise ValueError(f"{root}: no class folders found; expected {root}/<class name>/<image files>")
    groups: list[list[str]] = []
    for c in list(class_dirs):
        files = []
        try:
            names = sorted(os.listdir(root / c))
        except OSError as e:
            skipped.append((str(root / c), f"unreadable class folder: {e.strerror or e}"))
            class_dirs.remove(c)
            continue
        for name in names:
            p = root / c / name
            if is_hidden(name):
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
    array, counts, kept, more = decode_groups(groups, size, per_class, min_size, workers, progress,
                                              max_pixels)
    keep = [i for i, n in enumerate(counts) if n]  # a class with no readable image is no class
    skipped += [(str(root / class_dirs[i]), "class dropped: no readable images")
                for i, g in enumerate(groups) if g and not counts[i]]
    if not keep:
        raise ValueError(f"{root}: no readable images in any class folder "
                         f"({len(skipped + more)} files skipped, e.g. {(skipped + more)[:1]})")
    return assemble(array, [counts[i] for i in keep], [kept[i] for i in keep],
                     [class_dirs[i] for i in keep], skipped + more, description=f"folder {root}")
