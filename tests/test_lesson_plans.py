"""The instructor's lesson plans run: exactly their cells, in order, in a fresh kernel (ci profile).

docs/lesson_plans.json lists, per plan and chapter, the sections run live; the sections shown from
the committed outputs are skipped, so a later section that needs a skipped one fails here.
Chapters run whole ("all") are already executed by nbval.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PLANS = json.loads((ROOT / "docs" / "lesson_plans.json").read_text())
sys.path.insert(0, str(ROOT / "notebooks"))
from execute import ipc_path  # noqa: E402 - absolute kernel socket path, as the chapters are run
from projector import code_cells, in_plan, shown_cells  # noqa: E402 - the one reader of sections and plans


def plan_cells(nb: nbformat.NotebookNode, sections: list[str]) -> list[nbformat.NotebookNode]:
    """The code cells a plan runs: setup cells, plus every cell of the listed sections."""
    return [nb.cells[i] for i, section, sub, _, setup in code_cells(nb)
            if setup or in_plan(section, sub, sections)]


def execute_fresh(nb: nbformat.NotebookNode) -> None:
    """Run ``nb``'s cells in order in a fresh kernel started in notebooks/ (outputs land in ``nb``)."""
    km = KernelManager(kernel_name="python3", transport="ipc", ip=ipc_path())
    try:
        where = {"metadata": {"path": str(ROOT / "notebooks")}}
        NotebookClient(nb, km=km, timeout=600, resources=where).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel()


PARTS = sorted({(plan, chapter, tuple(s)) for plan, chapters in PLANS.items() if plan != "about"
                for chapter, s in chapters.items() if s != "all"})


def test_the_plans_name_real_sections():
    for _, chapter, sections in PARTS:
        nb = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for s in sections:
            number, _, title = s.partition("/")
            assert re.search(rf"^## {number}\.", text, re.M), (chapter, s)
            assert not title or f"### {title}" in text, (chapter, s)


@pytest.mark.parametrize("chapter,sections", sorted({(c, s) for _, c, s in PARTS}), ids=lambda v: str(v))
def test_a_plan_s_cells_run_in_order_in_a_fresh_kernel(chapter, sections, tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(c.source) for c in plan_cells(nb, list(sections))]
    assert len(nb.cells) >= 5
    execute_fresh(nb)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_a_section_that_reads_an_earlier_run_runs_alone(tmp_path):
    """Chapter 05's section 4 reads section 3's run: alone after the setup cells, it trains it."""
    nb = nbformat.read(ROOT / "notebooks" / "05_fix.ipynb", as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(c.source) for c in plan_cells(nb, ["4"])]
    trains = [c for c in nb.cells if "history = fit(model, train, val" in c.source]
    assert trains and all("reuse=True" in c.source for c in trains)
    execute_fresh(nb)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.outputs)
    assert not [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert "reused" not in text and "validation loss was lowest at epoch" in text


def test_every_shown_figure_has_a_projector_png():
    """notebooks/projector.py's PNGs cover every figure-drawing cell of the sections the 50-minute
    plan shows instead of running, and the index names only files that exist."""
    index = json.loads((ROOT / "notebooks" / "projector" / "index.json").read_text())
    for chapter_file in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        chapter = chapter_file.stem
        live = PLANS["50-minute"].get(chapter, [])
        nb = nbformat.read(chapter_file, as_version=4)
        drawing = [i for i, _, setup in ([] if live == "all" else shown_cells(nb, live))
                   if not setup and "plots." in nb.cells[i].source
                   and any("image/png" in o.get("data", {}) for o in nb.cells[i].outputs)]
        files = [p for p, _, _ in index.get(chapter, [])]
        assert all((ROOT / "notebooks" / "projector" / p).is_file() for p in files), chapter
        covered = {int(re.search(r"-c(\d+)", p).group(1)) for p in files}
        assert set(drawing) <= covered, (chapter, sorted(set(drawing) - covered))
