"""The chapters are committed in a shape students and nbval can use (nbval itself runs them)."""

from __future__ import annotations

import ast
import builtins
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_chapters_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_data", "02_reproduce", "03_diagnose", "04_remedies",
                                           "05_fix", "06_generalize"]


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


def test_exercises_numbered_by_chapter_each_with_a_solution():
    # exercise 3 goes with chapters 3 and 4 (its second part is chapter 4's subject): no exercise 4
    assert [p.stem[:4] for p in EXERCISES] == ["ex01", "ex02", "ex03", "ex05", "ex06"]
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


# --- sections an instructor can run alone ------------------------------------------------------------
SETUP_CALLS = re.compile(r"load_profile_data\(|load_regime\(|= load\(|profile = setup\(")


def _names(src: str) -> tuple[set[str], list[str]]:
    """(names a cell defines, names it reads), from its syntax tree."""
    tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
    stored: set[str] = set()
    loaded: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (loaded.append(n.id) if isinstance(n.ctx, ast.Load) else stored.add(n.id))
        elif isinstance(n, ast.FunctionDef | ast.ClassDef):
            stored.add(n.name)
        elif isinstance(n, ast.arg):
            stored.add(n.arg)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            stored.add(n.name)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            stored |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return stored, loaded


def undefined_by_section(path: Path) -> list[tuple[str, int, str]]:
    """Names a numbered section reads that neither the setup cells (before section 1, data loading,
    cells tagged ``setup``) nor the section itself define: what breaks when an instructor skips a
    section. (A section that needs an earlier run re-creates it, e.g. ``fit(..., reuse=True)``.)"""
    setup = set(dir(builtins)) | {"get_ipython", "display"}
    by_section: dict[str, set[str]] = {}
    section, out = None, []
    for i, c in enumerate(json.loads(path.read_text())["cells"]):
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            m = re.search(r"^## (\d+)\.", src, re.M)
            if m:
                section = m.group(1)
                by_section[section] = set()
            continue
        stored, loaded = _names(src)
        if section is None or SETUP_CALLS.search(src) or "setup" in c["metadata"].get("tags", []):
            setup |= stored
            continue
        known = setup | by_section[section] | stored
        out += [(section, i, n) for n in loaded if n not in known]
        by_section[section] |= stored
    return sorted(set(out))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_section_runs_after_the_setup_cells_alone(path):
    assert undefined_by_section(path) == []


def test_the_section_check_catches_a_dependency(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["profile = setup(None, 0)"]},
                    {"cell_type": "markdown", "metadata": {}, "source": ["## 1. A"]},
                    {"cell_type": "code", "metadata": {}, "source": ["runs = [1]"]},
                    {"cell_type": "markdown", "metadata": {}, "source": ["## 2. B"]},
                    {"cell_type": "code", "metadata": {}, "source": ["print(runs, profile)"]}]}
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert undefined_by_section(tmp_path / "x.ipynb") == [("2", 4, "runs")]
    # saying so is not enough
    nb["cells"][3]["source"] = ["## 2. B\n*Reads section 1's runs: run section 1 first.*"]
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert undefined_by_section(tmp_path / "x.ipynb") == [("2", 4, "runs")]


# --- checks out of the reading path ------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_checked_claims_read_as_sentences_not_booleans(path):
    for c in json.loads(path.read_text())["cells"]:
        if c["cell_type"] != "code":
            continue
        text = "".join(_text(o) for o in c["outputs"])
        bare = re.search(r"(:|=)\s*(True|False)\s*(\||$)|^(True|False)$", text, re.M)
        assert not bare, f"a True/False print-out: {text[:120]!r}"


MODELS = {"02_reproduce": "question_net = Sequential(", "05_fix": "answer_net = Sequential(",
          "06_generalize": "improved_net = Sequential("}


@pytest.mark.parametrize("stem", MODELS)
def test_the_networks_are_written_in_the_chapter_and_checked_against_the_builder(stem):
    cells = json.loads((NOTEBOOKS[0].parent / f"{stem}.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    typed = [i for i, src in enumerate(code) if MODELS[stem] in src]
    assert len(typed) == 1
    check = [c for c in cells if c["cell_type"] == "code" and "same_architecture(" in "".join(c["source"])]
    assert check and "nbval-check-output" in check[0]["metadata"]["tags"]
    assert "same" in "".join(_text(o) for o in check[0]["outputs"])  # committed: it matched
