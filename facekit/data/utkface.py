"""UTKFace: parse its file names and load it as a `Dataset` (also importable from facekit.data).

Files are ``[age]_[gender]_[race]_[yyyymmddHHMMSSFFF].jpg.chip.jpg``; gender 0 male / 1 female;
race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. Licence: non-commercial research only;
facekit never downloads it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from facekit.data.dataset import Dataset
from facekit.data.decode import MAX_PIXELS, assemble, check_sizes, decode_groups, is_hidden

__all__ = ["load_utkface", "parse_utkface_name", "utkface_class", "UTKFACE_RACES", "UTKFACE_GENDERS",
           "UTKFACE_AGE_GROUPS", "UTKFACE_LICENCE", "looks_like_utkface", "utkface_layout",
           "utkface_names_inside", "age_group"]

UTKFACE_RACES = ("White", "Black", "Asian", "Indian", "Others")
UTKFACE_GENDERS = ("male", "female")
UTKFACE_AGE_GROUPS = ((0, 12, "0-12"), (13, 19, "13-19"), (20, 29, "20-29"), (30, 39, "30-39"),
                      (40, 49, "40-49"), (50, 59, "50-59"), (60, 200, "60+"))
UTKFACE_LICENCE = ("UTKFace is licensed for non-commercial research purposes only "
                   "(https://susanqq.github.io/UTKFace/); facekit never downloads it.")

_UTK_NAME = re.compile(
    r"^(?P<age>\d{1,3})_(?P<gender>\d+)_(?P<race>\d+)_(?P<date>\d+)\s*\.?(?:jpe?g|png)(?:\.chip\.jpg)?$",
    re.IGNORECASE)


def parse_utkface_name(name: str) -> dict[str, int]:
    """``age_gender_race_date.jpg[.chip.jpg]`` -> {"age", "gender", "race"}; ValueError if malformed.

    Tolerates the data set's two known typos (a space before ``.jpg``; ``jpg`` without the dot).
    """
    m = _UTK_NAME.match(name)
    if not m:
        fields = name.split(".")[0].split("_")
        expected = ("age", "gender", "race", "date")
        if len(fields) != 4:
            raise ValueError(f"malformed UTKFace name: expected 4 fields age_gender_race_date, "
                             f"found {len(fields)} ({'_'.join(fields)[:60]!r})")
        bad = next((f"{what} {v!r} is not a number" for what, v in zip(expected, fields)
                    if not v.strip().isdigit()), None)
        raise ValueError(f"malformed UTKFace name: {bad or 'the extension is not .jpg/.jpeg/.png'}")
    age, gender, race = int(m["age"]), int(m["gender"]), int(m["race"])
    if gender not in (0, 1):
        raise ValueError(f"malformed UTKFace name: gender must be 0 or 1, found {gender}")
    if race not in range(5):
        raise ValueError(f"malformed UTKFace name: race must be 0-4, found {race}")
    if not 0 <= age <= 130:
        raise ValueError(f"malformed UTKFace name: age must be 0-130, found {age}")
    return {"age": age, "gender": gender, "race": race}


def age_group(age: int) -> str:
    """The `UTKFACE_AGE_GROUPS` band of ``age`` (e.g. 25 -> "20-29")."""
    return next(name for lo, hi, name in UTKFACE_AGE_GROUPS if lo <= age <= hi)


def utkface_class(attrs: dict[str, int], target: str) -> str | None:
    """The class name of one UTKFace image for ``target``, or None when the target excludes it."""
    race, gender = UTKFACE_RACES[attrs["race"]], UTKFACE_GENDERS[attrs["gender"]]
    if target == "race_gender":
        return None if attrs["race"] == 4 else f"{race}_{gender}"
    if target == "gender":
        return gender
    if target == "race":
        return race
    if target == "age_group":
        return age_group(attrs["age"])
    raise ValueError(f"target must be 'race_gender', 'gender', 'race' or 'age_group'; found {target!r}")


def load_utkface(root: str | os.PathLike, target: str = "race_gender", size: int = 200,
                 per_class: int | None = None, *, min_size: int = 16, workers: int | None = None,
                 progress: bool | None = None, max_pixels: int = MAX_PIXELS) -> Dataset:
    """Load a UTKFace folder (files ``[age]_[gender]_[race]_[date].jpg.chip.jpg``).

    target: ``race_gender`` (the question's 8 classes, races 0-3 x 2 genders; race 4 "Others" is
    excluded and listed in ``skipped``), ``gender``, ``race`` or ``age_group``. Malformed names are
    skipped with the reason. ``attributes`` holds age, gender and race of every image. The files may
    also sit one level down, as in UTKFace's "in the wild" download (``part1/``, ``part2/``, ...).
    Licence: UTKFace is for non-commercial research only; facekit never downloads it.
    """
    utkface_class({"age": 0, "gender": 0, "race": 0}, target)  # validates target early
    check_sizes(size, per_class, min_size, workers, max_pixels)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; expected a folder of UTKFace .jpg files")
    by_class: dict[str, list[tuple[str, dict[str, int]]]] = {}
    skipped: list[tuple[str, str]] = []
    for p in _utkface_files(root, skipped):
        name = p.name
        try:
            attrs = parse_utkface_name(name)
        except ValueError as e:
            skipped.append((str(p), str(e)))
            continue
        cls = utkface_class(attrs, target)
        if cls is None:
            skipped.append((str(p), f'excluded by target {target}: race 4 "Others"'))
            continue
        by_class.setdefault(cls, []).append((str(p), attrs))
    if not by_class:
        raise ValueError(f"{root}: no UTKFace images found (names like 25_0_1_20170116174525125.jpg)")
    class_names = sorted(by_class)
    lookup = {p: a for items in by_class.values() for p, a in items}
    groups = [[p for p, _ in by_class[c]] for c in class_names]
    array, counts, kept, more = decode_groups(groups, size, per_class, min_size, workers, progress,
                                              max_pixels)
    flat = [p for g in kept for p in g]
    attributes = {k: np.array([lookup[p][k] for p in flat], dtype=np.int64)
                  for k in ("age", "gender", "race")}
    return assemble(array, counts, kept, class_names, skipped + more, attributes,
                     f"UTKFace {target} ({UTKFACE_LICENCE})")


def _utkface_files(root: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """The files of ``root`` and of its sub-folders that hold UTKFace-named files (one level down);
    other sub-folders are listed in ``skipped``."""
    files: list[Path] = []
    for name in sorted(os.listdir(root)):
        p = root / name
        if is_hidden(name):
            continue
        if not p.is_dir():
            files.append(p)
            continue
        try:
            inner = sorted(n for n in os.listdir(p) if not is_hidden(n))
        except OSError as e:
            skipped.append((str(p), f"unreadable folder: {e.strerror or e}"))
            continue
        if looks_like_utkface(inner[:50]):
            files += [p / n for n in inner if not (p / n).is_dir()]
        else:
            skipped.append((str(p), "sub-folder without UTKFace-named files: not searched"))
    return files


_UTK_PART = re.compile(r"^((crop_)?part\d+|utkface.*)$", re.IGNORECASE)  # UTKFace's own download folders


def utkface_layout(root: str | os.PathLike) -> bool:
    """True when ``root`` holds UTKFace-named files directly, or only in UTKFace's own download
    folders (``part1/``, ``crop_part1/``, ``UTKFace/``). Other folders are classes, even when the
    files inside keep their UTKFace names (as in the question's ``TRAINING/<class>/``)."""
    root = Path(root)
    names = sorted(os.listdir(root))
    if looks_like_utkface(names[:50]):
        return True
    folders = [n for n in names if not is_hidden(n) and (root / n).is_dir()]
    utk = [n for n in folders if _names_look_utkface(root / n)]
    return bool(utk) and all(_UTK_PART.match(n) for n in utk)


def _names_look_utkface(folder: Path) -> bool:
    try:
        return looks_like_utkface(sorted(os.listdir(folder))[:50])
    except OSError:
        return False


def utkface_names_inside(root: str | os.PathLike) -> bool:
    """True when a folder of ``root`` holds UTKFace-named files (their labels are then ignored)."""
    root = Path(root)
    return any(not is_hidden(n) and (root / n).is_dir() and _names_look_utkface(root / n)
               for n in sorted(os.listdir(root)))


def looks_like_utkface(names: list[str]) -> bool:
    """True when most of ``names`` are UTKFace file names."""
    names = [n for n in names if not is_hidden(n)]
    return bool(names) and sum(bool(_UTK_NAME.match(n)) for n in names) > len(names) // 2
