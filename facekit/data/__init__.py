"""Images in, one `Dataset` out: the question's folder layout, UTKFace, the built-in synthetic
faces, caches and pickles.

Every loader returns a `Dataset` of uint8 RGB images and int labels, and lists every file it
did not load in ``Dataset.skipped`` with the reason. Nothing is dropped silently.

Modules: `dataset` (the type) <- `decode` (files -> pixels) <- `folder`, `utkface`, `cache`,
`synthetic`, `question_script` (the question's own script, kept for the lessons).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from facekit.data.cache import CacheError, load_cache, load_pickle, save_cache, save_pickle
from facekit.data.dataset import Dataset
from facekit.data.decode import IMAGE_EXTENSIONS, read_image
from facekit.data.folder import load_folder
from facekit.data.synthetic import make_faces, write_folder
from facekit.data.utkface import load_utkface, parse_utkface_name, utkface_layout, utkface_names_inside

__all__ = [
    "Dataset",
    "load_folder",
    "load_utkface",
    "load",
    "make_faces",
    "write_folder",
    "save_cache",
    "load_cache",
    "save_pickle",
    "load_pickle",
    "CacheError",
    "parse_utkface_name",
    "read_image",
    "IMAGE_EXTENSIONS",
]


def load(source: str | os.PathLike = "synthetic", size: int = 96, per_class: int = 100,
         seed: int = 0, difficulty: float = 0.5) -> Dataset:
    """Load the built-in synthetic faces (``"synthetic"``), a UTKFace folder or a question-layout
    folder, whichever ``source`` is. Class folders win: UTKFace-named files directly in ``source``
    (or in UTKFace's own ``part1/``... folders) are read as UTKFace, but ``<source>/<class>/``
    folders of UTKFace-named files are read as those classes, and the description says so."""
    if str(source) == "synthetic":
        return make_faces(n_per_class=per_class, size=size, seed=seed, difficulty=difficulty)
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (give 'synthetic', a UTKFace folder, or "
                                "a folder laid out as <root>/<class>/<images>)")
    if utkface_layout(root):  # also UTKFace's part1/, part2/ folders: never take them for classes
        return load_utkface(root, "race_gender", size, per_class)
    ds = load_folder(root, size, per_class)
    if utkface_names_inside(root):
        note = "class folders; the UTKFace labels in the file names are ignored"
        ds = dataclasses.replace(ds, description=f"{ds.description} ({note})")
    return ds
