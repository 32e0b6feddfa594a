"""A clean first run: TensorFlow's C++ start-up notices stay off stderr; nothing else does.

TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` once, when its runtime loads; facekit sets it to 3 (only
fatal C++ messages) unless you set it yourself. Some lines ("Could not find cuda drivers",
"All log messages before absl::InitializeLog()") are printed while TensorFlow is being imported,
before it reads that level (tensorflow/tensorflow#100442). For those, the import of ``tensorflow``
runs with file descriptor 2 captured; afterwards every captured line is written back to stderr
unless it is a C++ log line below the level in force. Python warnings are never touched.

``TF_CPP_MIN_LOG_LEVEL=0`` shows everything TensorFlow prints, as without facekit.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from types import ModuleType

__all__ = ["DEFAULT_LEVEL", "level", "keep_line",
           "filtered_stderr", "install", "uninstall", "OPENCV_WHEELS",
           "installed_opencv_wheels", "warn_if_two_opencv_wheels"]


DEFAULT_LEVEL = "3"
# glog/absl line: severity letter, date, time, thread id, file:line]
_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_CONTINUATION = "To enable the following instructions:"  # second line of an I-level CPU notice


def level() -> int:
    """The C++ log level in force (``TF_CPP_MIN_LOG_LEVEL``, 0 when unset or unreadable)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def keep_line(line: str, min_level: int) -> bool:
    """Whether a line TensorFlow wrote to stderr during its import should reach the user."""
    if min_level <= 0:
        return True
    if line.startswith(_PREAMBLE) or line.startswith(_CONTINUATION):
        return False
    m = _LOG_LINE.match(line)
    return m is None or _SEVERITY[m.group(1)] >= min_level


@contextlib.contextmanager
def filtered_stderr(min_level: int) -> Iterator[None]:
    """Capture file descriptor 2 for the block; write back the lines `keep_line` keeps."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):  # no usable fd 2 (pythonw, closed stderr)
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            kept = "".join(ln for ln in text.splitlines(True) if keep_line(ln, min_level))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of ``tensorflow`` in `filtered_stderr`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        uninstall()
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def quiet_exec_module(module: ModuleType) -> None:
            with filtered_stderr(level()):
                exec_module(module)

        loader.exec_module = quiet_exec_module  # type: ignore[method-assign]
        return spec


_FINDER = _QuietImport()


def install() -> None:
    """Set the default log level and quiet TensorFlow's import, unless it was imported already."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)


OPENCV_WHEELS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                 "opencv-contrib-python-headless")


def installed_opencv_wheels() -> list[str]:
    """The OpenCV wheels installed in this environment (they all provide the one ``cv2``)."""
    from importlib import metadata

    found = []
    for name in OPENCV_WHEELS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            metadata.distribution(name)
            found.append(name)
    return found


def warn_if_two_opencv_wheels() -> None:
    """Two OpenCV wheels overwrite each other's ``cv2``: which one imports depends on install order."""
    wheels = installed_opencv_wheels()
    if len(wheels) > 1:
        warnings.warn(f"{len(wheels)} OpenCV wheels are installed side by side ({', '.join(wheels)}); "
                      f"they share one cv2 folder and can break each other. Keep one: "
                      f"pip uninstall {' '.join(w for w in wheels if w != 'opencv-python-headless')}",
                      RuntimeWarning, stacklevel=3)
