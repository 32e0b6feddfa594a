"""How every facekit figure looks: "default" (compact, for a laptop screen) or "projector"
(readable from the back of a room). Chosen with `use_style` or the ``FACEKIT_STYLE`` environment
variable; `facekit.plots` draws with it."""

from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt

__all__ = ["use_style", "current_style", "STYLES", "REF", "scaled_font", "scaled_line", "subplots", "figure",
           "INLINE_DPI", "NOTEBOOK_PX", "NOTEBOOK_INCHES", "MIN_FONT"]

# What a student sees: JupyterLab shows a figure saved at the inline backend's 100 dpi (tight
# bounding box), scaled down to the notebook's width - about 1150 px in a 1600 px window. A default-
# style figure at most NOTEBOOK_INCHES wide is shown at its own size, so its smallest text, MIN_FONT
# points, reads as MIN_FONT points (tests/test_plots.py renders the figures and checks both).
INLINE_DPI = 100
NOTEBOOK_PX = 1150
NOTEBOOK_INCHES = 11.2  # under NOTEBOOK_PX / INLINE_DPI: room for what a tight bounding box adds
MIN_FONT = 8

# Greyscale-safe: distinct line styles and markers, not only colours.
STYLES: list[dict[str, Any]] = [
    dict(color="#1f4e9c", ls="-", marker="o"), dict(color="#c0392b", ls="--", marker="s"),
    dict(color="#2e8b57", ls=":", marker="^"), dict(color="#7f4f9f", ls="-.", marker="D"),
    dict(color="#b8860b", ls=(0, (5, 1)), marker="v")]
REF: dict[str, Any] = dict(color="0.35", lw=1.2, ls=(0, (2, 2)))

# Styles: "default" is compact for a laptop screen; "projector" is readable from the back of a
# room (larger type, thicker lines and markers, black text, no transparency in the grid).
_RC: dict[str, dict[str, Any]] = {
    "default": {"font.size": 10, "axes.titlesize": "large", "axes.labelsize": "medium",
                "legend.fontsize": "medium", "xtick.labelsize": "medium", "ytick.labelsize": "medium",
                "figure.titlesize": "large", "lines.linewidth": 1.5, "lines.markersize": 6,
                "axes.linewidth": 0.8, "grid.linewidth": 0.8, "font.weight": "normal",
                "axes.titleweight": "normal", "axes.labelweight": "normal"},
    "projector": {"font.size": 16, "axes.titlesize": 18, "axes.labelsize": 16, "legend.fontsize": 13,
                  "xtick.labelsize": 14, "ytick.labelsize": 14, "figure.titlesize": 20,
                  "lines.linewidth": 3.2, "lines.markersize": 10, "axes.linewidth": 1.8,
                  "grid.linewidth": 1.4, "font.weight": "bold", "axes.titleweight": "bold",
                  "axes.labelweight": "bold"},
}
_SCALE = {"default": (1.0, 1.0, 1.0), "projector": (1.6, 2.0, 1.35)}  # fonts, lines, figure size
_current: dict[str, Any] = {"name": "default", "font": 1.0, "line": 1.0, "size": 1.0}


def use_style(name: str = "default") -> None:
    """Switch every facekit figure to ``name``: 'default' (compact, for a laptop) or 'projector'
    (large bold type, thick lines, bigger figures: readable from the back of a classroom).
    The ``FACEKIT_STYLE`` environment variable picks the style at import; until then facekit leaves
    matplotlib's settings alone."""
    key = (name or "default").strip().lower()
    if key not in _RC:
        raise ValueError(f"unknown style {name!r}; choose from {sorted(_RC)}")
    plt.style.use(_RC[key])
    font, line, size = _SCALE[key]
    _current.update(name=key, font=font, line=line, size=size)
    REF["lw"] = 1.2 * line
    plt.rcParams["figure.figsize"] = [6.4 * size, 4.8 * size]


def current_style() -> str:
    """The name of the style in use."""
    return _current["name"]


def scaled_font(points: float) -> float:
    """A font size in points, scaled for the current style."""
    return points * _current["font"]


def scaled_line(width: float) -> float:
    """A line width, scaled for the current style."""
    return width * _current["line"]


def figure(figsize: tuple[float, float], **kwargs: Any) -> plt.Figure:
    """plt.figure with the figure size scaled for the current style."""
    k = _current["size"]
    return plt.figure(figsize=(figsize[0] * k, figsize[1] * k), **kwargs)


def subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> Any:
    """plt.subplots with the figure size scaled for the current style."""
    k = _current["size"]
    return plt.subplots(*args, figsize=(figsize[0] * k, figsize[1] * k), **kwargs)


if os.environ.get("FACEKIT_STYLE"):
    use_style(os.environ["FACEKIT_STYLE"])
