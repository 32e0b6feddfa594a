"""The chapters are committed in a shape students and nbval can use (nbval itself runs them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_chapters_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_data", "02_reproduce", "03_diagnose", "04_fix",
                                           "05_generalize"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_shape(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# Chapter")
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged parameters"
    src = "".join(code[0]["source"])
    assert all(name in src for name in ("PROFILE", "DATA", "SEED"))
    checked = [c for c in code if "nbval-check-output" in c["metadata"].get("tags", [])]
    assert len(checked) >= 3, "each chapter makes at least three checked claims"
    assert all(c["outputs"] for c in checked), "checked cells are committed with their output"
    for c in code:
        assert c["outputs"] == [] or c["execution_count"] is not None  # nbval rejects the rest
        for out in c["outputs"]:
            assert out["output_type"] != "error", "a committed traceback"
            if out.get("name") == "stderr":
                assert "Warning" not in "".join(out["text"]), "a warning in a committed output"
    assert max(len("".join(c["source"]).splitlines()) for c in code) <= 15, "keep cells short"
    assert "## What we found" in "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


EXERCISES = sorted((NOTEBOOKS[0].parent / "exercises").glob("ex*.ipynb"))


def _text(output: dict) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def _checked_text(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(_text(o) for o in c["outputs"])
            for c in nb["cells"] if "nbval-check-output" in c["metadata"].get("tags", [])]


def test_one_exercise_per_chapter_each_with_a_solution():
    assert [p.stem[:4] for p in EXERCISES] == ["ex01", "ex02", "ex03", "ex04", "ex05"]
    assert all((p.parent / "solutions" / p.name).exists() for p in EXERCISES)


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_blank_prints_a_hint_and_its_solution_passes(path):
    solution = path.parent / "solutions" / path.name
    blank, solved = _checked_text(path), _checked_text(solution)
    assert blank and blank[0].startswith("not yet: "), blank
    assert solved and solved[0].startswith("correct: "), solved
    assert "YOUR CODE" in _code(path) and "YOUR CODE" not in _code(solution)


def _code(path: Path) -> str:
    return "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                   if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS + EXERCISES, ids=lambda p: p.name)
def test_no_template_placeholder_ships_in_a_markdown_cell(path):
    """Chapter texts are built from results; an unfilled placeholder («name») once shipped (chapter 03)."""
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            assert "«" not in text and "TODO" not in text, f"{path.name} cell {i}: {text[:60]!r}"
