"""Results files that keep hand-written notes: the table above a marker is rebuilt, the notes below
it stay."""

from __future__ import annotations

from pathlib import Path

NOTES = "<!-- what the runs say: written by hand from the table and the jsonl; kept on rebuild -->"


def write_with_notes(md: Path, title: str, table: str) -> None:
    """Write ``title`` and ``table`` to ``md``, keeping whatever follows the `NOTES` marker there."""
    old = md.read_text() if md.exists() else ""
    notes = old.split(NOTES, 1)[1] if NOTES in old else "\n"
    md.write_text(f"{title}\n\n{table}\n\n{NOTES}{notes}")
