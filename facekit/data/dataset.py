"""`Dataset`: the one data type of the house (uint8 RGB images, int labels, class names,
where each image came from, what was skipped and why). Imports nothing of facekit but
`facekit.text`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from facekit.text import wrap

__all__ = ["Dataset"]


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
        h, w, c = self.images.shape[1:]
        return int(h), int(w), int(c)

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

    def shared_images(self, other: Dataset) -> int:
        """How many distinct images are in both sets, byte for byte (0: nothing of ``other``
        leaked into this set; chapter 01, section 4 and chapter 06, section 1 check their splits)."""
        return len({im.tobytes() for im in self.images} & {im.tobytes() for im in other.images})

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Shuffled, stratified split into (train, val): each class gives ``val_fraction`` of its
        images (rounded, at least one when it has two or more) to val. No image is in both; a class
        the fraction would leave with no training image is refused."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1; found {val_fraction}")
        rng = np.random.default_rng(seed)
        train_idx, val_idx = [], []
        for c in range(self.n_classes):
            members = rng.permutation(np.flatnonzero(self.labels == c))
            n_val = int(round(val_fraction * len(members)))
            if len(members) >= 2:
                n_val = min(max(n_val, 1), len(members) - 1)
            elif n_val >= len(members) > 0:
                raise ValueError(f"val_fraction {val_fraction}: class {self.class_names[c]!r} has only "
                                 f"{len(members)} image, which would leave it none to train on; "
                                 "use a smaller fraction or more images")
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
        text = wrap(f"Dataset({head}{n} images {h}x{w} RGB uint8, {self.n_classes} classes "
                    f"[{counts}]{attrs}{skipped})", indent=len("Dataset("))
        return text.encode("utf-8", "backslashreplace").decode("utf-8")  # names not UTF-8: escaped
