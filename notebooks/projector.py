"""Projector-style PNGs of the figures an instructor shows instead of running.

    python notebooks/projector.py                 # classroom profile, every chapter with shown sections
    python notebooks/projector.py 03_diagnose     # one chapter
    python notebooks/projector.py 04_remedies --sections 4   # only these shown sections (the rest kept)

The 50-minute plan (docs/lesson_plans.json) runs some sections live; the others are shown. For each
chapter this runs the setup cells and the shown sections' cells in a fresh kernel with
``FACEKIT_STYLE=projector`` and saves every figure they draw as
``notebooks/projector/<chapter>/s<section>-c<cell>.png`` (cell: the cell's index in the notebook),
with an index, ``notebooks/projector/README.md``, naming each figure's section and code.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
OUT = HERE / "projector"
PLAN = "50-minute"
SETUP_CALLS = re.compile(r"load_profile_data\(|load_regime\(|= load\(|profile = setup\(")

sys.path.insert(0, str(HERE))
from execute import ipc_path  # noqa: E402


def code_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str | None, str | None, str, bool]]:
    """(cell index, section number, "### sub-section" title, "N. section title", is it a setup cell)
    for every code cell. Setup cells: before section 1, data loading, or tagged ``setup``."""
    out, section, sub, title = [], None, None, ""
    for i, c in enumerate(nb.cells):
        if c.cell_type == "markdown":
            m = re.search(r"^## (\d+)\.(.*)$", c.source, re.M)
            if m:
                section, sub, title = m.group(1), None, f"{m.group(1)}.{m.group(2)}"
            m = re.search(r"^### (.+)$", c.source, re.M)
            if m:
                sub = m.group(1).strip()
            continue
        setup = section is None or bool(SETUP_CALLS.search(c.source)) or "setup" in c.metadata.get("tags", [])
        out.append((i, section, sub, title, setup))
    return out


def in_plan(section: str | None, sub: str | None, live: list[str]) -> bool:
    """Does a plan's list of live sections ("N", or "N/Sub title" for one sub-section) hold this cell?"""
    wanted = {s.split("/")[0]: (s.split("/", 1)[1] if "/" in s else None) for s in live}
    return section in wanted and wanted[section] in (None, sub)


def shown_cells(nb: nbformat.NotebookNode, live: list[str]) -> list[tuple[int, str, bool]]:
    """(cell index, "section title", is it a setup cell) for the setup cells and every code cell of
    a section the plan does not run live (``live``: "N" or "N/Sub title" entries) that draws a figure."""
    out = [(i, title, setup) for i, section, sub, title, setup in code_cells(nb)
           if setup or not in_plan(section, sub, live)]
    drawing = {t for i, t, s in out if not s and "plots." in nb.cells[i].source}
    return [(i, t, s) for i, t, s in out if s or t in drawing]  # sections without a figure: skipped


def drawn_by(source: str, k: int) -> str:
    """The line of a cell that draws its ``k``-th figure (its k-th line that calls ``plots.``)."""
    lines = [ln.strip() for ln in source.splitlines() if "plots." in ln] or [source.splitlines()[0]]
    return lines[min(k, len(lines) - 1)]


def run(chapter: str, profile: str, sections: list[str] | None = None,
        keep: list[tuple[str, str, str]] = ()) -> list[tuple[str, str, str]]:
    """Run ``chapter``'s shown sections (only ``sections`` when given: the PNGs of the others in
    ``keep`` stay) in projector style; (png path, section, first code line) each."""
    live = json.loads((HERE.parent / "docs" / "lesson_plans.json").read_text())[PLAN].get(chapter, [])
    if live == "all":
        return []
    nb = nbformat.read(HERE / f"{chapter}.ipynb", as_version=4)
    chosen = shown_cells(nb, live)
    if sections:
        chosen = [(i, t, s) for i, t, s in chosen if s or t.split(".")[0] in sections]
    if all(setup for _, _, setup in chosen):  # no shown section draws a figure (any longer)
        for p, t, _ in keep:
            if not sections or t.split(".")[0] in sections:
                (OUT / p).unlink(missing_ok=True)
        return [row for row in keep if sections and row[1].split(".")[0] not in sections]
    run_nb = nbformat.v4.new_notebook()
    run_nb.cells = [nbformat.v4.new_code_cell(nb.cells[i].source) for i, _, _ in chosen]
    os.environ.update(FACEKIT_PROFILE=profile, FACEKIT_STYLE="projector")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=ipc_path())
    try:
        NotebookClient(run_nb, km=km, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel()
    folder = OUT / chapter
    saved = [row for row in keep if row[1].split(".")[0] not in sections] if sections else []
    if sections:
        for p, t, _ in keep:
            if t.split(".")[0] in sections:
                (OUT / p).unlink(missing_ok=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    for (i, title, _setup), cell in zip(chosen, run_nb.cells):
        pngs = [o.data["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        for k, png in enumerate(pngs):
            name = f"s{title.split('.')[0] or '0'}-c{i:02d}" + (f"-{k + 1}" if len(pngs) > 1 else "") + ".png"
            (folder / name).write_bytes(base64.b64decode(png))
            saved.append((f"{chapter}/{name}", title, drawn_by(nb.cells[i].source, k)))
    return saved


def write_index(rows: dict[str, list[tuple[str, str, str]]], profile: str) -> None:
    lines = ["# Projector-style figures", "",
             f"The figures of the sections the {PLAN} plan shows instead of running (`docs/lesson_plans.json`),",
             "drawn with `FACEKIT_STYLE=projector` (large bold type, thick lines) on the "
             f"`{profile}` profile by", "`python notebooks/projector.py`. Chapters the plan runs whole "
             "(01, 05) have none.", ""]
    for chapter, saved in rows.items():
        lines += [f"## {chapter}", "", "| figure | section | drawn by |", "|---|---|---|"]
        lines += [f"| [{Path(p).name}]({p}) | {t.strip()} | `{code.replace('|', '/')}` |" for p, t, code in saved]
        lines.append("")
    (OUT / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("chapters", nargs="*", help="default: every NN_* chapter")
    p.add_argument("--profile", default="classroom")
    p.add_argument("--index-only", action="store_true", help="rewrite README.md/index.json, run nothing")
    p.add_argument("--sections", nargs="+", help="only these shown sections; the other PNGs are kept")
    args = p.parse_args(argv)
    chapters = args.chapters or sorted(q.stem for q in HERE.glob("[0-9][0-9]_*.ipynb"))
    index = OUT / "index.json"
    rows = json.loads(index.read_text()) if index.exists() else {}
    if args.index_only:  # rewrite the index from the PNGs already there
        for chapter, saved in rows.items():
            nb = nbformat.read(HERE / f"{chapter}.ipynb", as_version=4)
            for row in saved:
                m = re.search(r"-c(\d+)(?:-(\d+))?\.png$", row[0])
                row[2] = drawn_by(nb.cells[int(m.group(1))].source, int(m.group(2) or 1) - 1)
        chapters = []
    for chapter in chapters:
        t = time.perf_counter()
        name = chapter.removesuffix(".ipynb")
        saved = run(name, args.profile, args.sections, [tuple(r) for r in rows.get(name, [])])
        if saved:
            rows[name] = saved
        else:  # a chapter without shown figures leaves the index
            rows.pop(name, None)
        print(f"{chapter}: {len(saved)} figures in {time.perf_counter() - t:.0f} s", flush=True)
    OUT.mkdir(exist_ok=True)
    index.write_text(json.dumps(dict(sorted(rows.items())), indent=1) + "\n")
    write_index(dict(sorted(rows.items())), args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
