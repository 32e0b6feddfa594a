"""The chapters' checked claims, as sentences a student reads (nbval compares them).

A claim prints ``✓ <the claim>`` when this run shows it, and ``✗ not in this run: <the claim>``
when it does not — so a notebook reads as prose, and nbval fails on the sentence that changed.
Claims must hold on every profile (``ci`` under nbval, ``classroom`` in the committed outputs):
state the robust fact, never a number that depends on the run's size.
"""

from __future__ import annotations

from facekit.text import wrap

__all__ = ["claim"]


def claim(text: str, holds: bool) -> None:
    """Print one claim with whether this run shows it (returns nothing, so a cell ending in a
    claim shows only the sentence), wrapped to the notebook's width under its mark."""
    print(wrap(f"✓ {text}" if holds else f"✗ not in this run: {text}"))
