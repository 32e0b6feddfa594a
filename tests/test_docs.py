"""Numbers quoted in the docs come from committed results, not from a hand."""

from __future__ import annotations

from pathlib import Path

from benchmarks import sync_docs


def test_quoted_run_times_match_the_recorded_ones():
    data = sync_docs.load()
    stale = [str(p.relative_to(sync_docs.ROOT)) for p, text in sync_docs.targets(data).items()
             if p.read_text() != text]
    assert not stale, f"out of date (run python -m benchmarks.sync_docs): {stale}"


def test_run_time_line_reads_the_record():
    data = {"machine": "m", "ci": {"01_data.ipynb": 12.4}, "classroom": {"01_data.ipynb": 125.0}}
    assert sync_docs.run_time_line(data, "01_data.ipynb") == (
        "**Run time:** 12 s on `ci`, 2.1 min on `classroom` (measured on m, kernel start included).")
    assert sync_docs.human(None) == "not measured"


def test_every_taught_in_pointer_names_a_section_that_calls_it():
    """d2l-style pointers in facekit's docstrings ("Taught in chapter 03, section 5.") stay true:
    that chapter's section calls the function or class (renumbering a chapter breaks this)."""
    import ast
    import json
    import re

    root = Path(__file__).resolve().parents[1]
    sections: dict[tuple[str, str], str] = {}
    for nb in sorted((root / "notebooks").glob("0*.ipynb")):
        sec = None
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                sec = (re.findall(r"^## (\d+)\.", src, re.M) or [sec])[-1]
            elif sec is not None:
                key = (nb.name[:2], sec)
                sections[key] = sections.get(key, "") + src + "\n"
    wrong, found = [], 0
    for path in sorted((root / "facekit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and (doc := ast.get_docstring(node)):
                for ch, sec in re.findall(r"Taught in chapter (\d\d), section (\d+)\.", doc):
                    found += 1
                    if not re.search(rf"\b{node.name}\b", sections.get((ch, sec), "")):
                        wrong.append(f"{path.name}:{node.name} -> chapter {ch}, section {sec}")
    assert found >= 40 and not wrong, wrong
