"""Text that fits a notebook: every line facekit prints is at most `WIDTH` characters, wrapped on
word boundaries, each continuation line indented under the item it continues; and the one writer of
the Markdown tables the benchmarks and experiments print (`markdown_table`). Imports nothing of
facekit (every module may use it).

    >>> print(wrap("[!!] gradients: gradient norm 0.00015 at conv1 vs 0.11 at output; ...", 40))
    [!!] gradients: gradient norm 0.00015 at
         conv1 vs 0.11 at output; ...
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence

__all__ = ["WIDTH", "ROOM", "wrap", "markdown_table"]

WIDTH = 100  # the widest line a chapter shows without a horizontal scroll bar
ROOM = 22  # kept free on a first line for a caller's label: print("after recalibration:", gap)

# a call as a student would type it, doctor(model, data, trials=True): never broken inside
_CALL = re.compile(r"[\w.]+\([^()\n]{0,60}\)")
_GLUE = "\x00"  # stands for a space inside a call while the text is wrapped

# an item's marker: a check's "[ok] ", a number "3. ", a bullet "- " or a claim's "✓ "
_MARKER = re.compile(r"(?:\[[^\]\s]{1,4}\]|\d{1,3}[.)]|[-*•✓✗]) ")


def wrap(text: str, width: int = WIDTH, indent: int | str | None = None, room: int = 0) -> str:
    """``text`` with each line longer than ``width`` broken at spaces; newlines already in it kept,
    shorter lines (tables) untouched; never cut inside a word (a path) or a call written as code
    (``doctor(model, data, trials=True)``).

    Parameters
    ----------
    indent : the start of each continuation line: spaces, or their count. Default: under the text
        of its item - the line's own leading spaces and marker (``"[ok] "``, ``"3. "``, ``"- "``,
        ``"✓ "``) - or, for a line without a marker, its leading spaces plus four (deeper than an
        item nested two spaces under it)
    room : characters kept free on the first line for a label the caller prints before the text
        (``print("question net:", check)``); later lines use the full ``width``.
    """
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        lead = room if i == 0 else 0
        if len(line) + lead <= width:
            out.append(line)
            continue
        if indent is None:
            body = line.lstrip(" ")
            marker = _MARKER.match(body)
            hang = " " * (len(line) - len(body) + (len(marker.group()) if marker else 4))
        else:
            hang = " " * indent if isinstance(indent, int) else indent
        glued = _CALL.sub(lambda m: m.group().replace(" ", _GLUE), line)
        pieces = textwrap.wrap(glued, width, initial_indent=" " * lead, subsequent_indent=hang,
                               break_long_words=False, break_on_hyphens=False)
        out += [pieces[0][lead:], *pieces[1:]] if pieces else [""]
    return "\n".join(out).replace(_GLUE, " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table: the ``header`` cells over a ``|---|`` rule, then one line per row, each cell
    written with ``str`` (format the numbers before passing them); no trailing newline.

        >>> print(markdown_table(["seed", "loss"], [[0, "2.0794"]]))
        | seed | loss |
        |---|---|
        | 0 | 2.0794 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
