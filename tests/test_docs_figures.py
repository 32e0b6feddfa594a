"""The figures under docs/img are what `python docs/style_figures.py` renders from the committed inputs.

docs/img/figures.json, written by that command, records for each figure the sha256 of the results
files it reads and of its parameters, and the sha256 of the PNG written with them. A results file
that changed (a benchmark rerun) while its figure was not rendered again fails here, naming the
figure; so does a PNG the manifest does not list. Nothing is rendered: only hashes are compared.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_figures_module():
    spec = importlib.util.spec_from_file_location("docs_style_figures", ROOT / "docs" / "style_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = _load_figures_module()
IMG = figures.IMG
FIX = f"run: {figures.COMMAND}"


def _manifest() -> dict:
    path = IMG / figures.MANIFEST
    assert path.exists(), f"docs/img/{figures.MANIFEST} is missing; {FIX}"
    return figures.read_manifest(IMG)["figures"]


def test_every_png_under_docs_img_is_made_by_the_command_and_listed():
    pngs = sorted(p.name for p in IMG.glob("*.png"))
    assert pngs, "no figures under docs/img"
    unmade = [n for n in pngs if n not in figures.FIGURES]
    assert not unmade, f"docs/img has PNGs that {figures.COMMAND} does not make: {unmade}"
    unlisted = [n for n in pngs if n not in _manifest()]
    assert not unlisted, f"not in docs/img/{figures.MANIFEST}: {unlisted}; {FIX}"
    gone = sorted(set(_manifest()) - set(pngs))
    assert not gone, f"docs/img/{figures.MANIFEST} lists figures that are not there: {gone}; {FIX}"


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_figure_was_rendered_from_the_committed_inputs(name):
    entry = _manifest().get(name)
    assert entry is not None, f"{name} is not in docs/img/{figures.MANIFEST}; {FIX}"
    now = figures.input_hashes(name)
    changed = sorted(k for k in set(now) | set(entry["inputs"]) if entry["inputs"].get(k) != now.get(k))
    assert not changed, f"{name}: {', '.join(changed)} changed since the figure was rendered; {FIX}"
    assert entry["params"] == figures.FIGURES[name]["params"]
    png = IMG / name
    assert png.exists(), f"{name} is missing; {FIX}"
    assert figures.sha256_bytes(png.read_bytes()) == entry["sha256"], (
        f"{name} is not the PNG docs/img/{figures.MANIFEST} was written with; {FIX}")


def _fake_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A results file and a docs/img folder as the command leaves them: figures.json up to date."""
    root, folder = tmp_path / "repo", tmp_path / "repo" / "img"
    folder.mkdir(parents=True)
    entries = {}
    for name, spec in figures.FIGURES.items():
        for f in spec["files"]:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_text('{"run": 1}\n')
        (folder / name).write_bytes(name.encode())
        entries[name] = {"inputs": figures.input_hashes(name, root), "params": spec["params"],
                         "sha256": figures.sha256_bytes(name.encode())}
    (folder / figures.MANIFEST).write_text(json.dumps({"figures": entries}))
    return root, folder


def test_staleness_check_names_the_figures_of_a_changed_results_file(tmp_path):
    root, folder = _fake_repo(tmp_path)
    assert figures.stale(folder, root) == []
    with open(root / figures.GENERALIZE, "a") as fh:  # a benchmark appends a run
        fh.write('{"run": 2}\n')
    assert figures.stale(folder, root) == [
        f"{n}: {figures.GENERALIZE} changed since the figure was rendered"
        for n in figures.FIGURES if figures.GENERALIZE in figures.FIGURES[n]["files"]]


def test_staleness_check_catches_parameters_stray_pngs_and_hand_edits(tmp_path, monkeypatch):
    root, folder = _fake_repo(tmp_path)
    (folder / "extra.png").write_bytes(b"x")
    (folder / "synthetic-grid.png").write_bytes(b"edited by hand")
    params = dict(figures.FIGURES["synthetic-grid.png"]["params"], seed=1)
    monkeypatch.setitem(figures.FIGURES, "synthetic-grid.png",
                        dict(figures.FIGURES["synthetic-grid.png"], params=params))
    assert figures.stale(folder, root) == [
        "synthetic-grid.png: params changed since the figure was rendered",
        f"synthetic-grid.png: the PNG is not the one {figures.MANIFEST} was written with",
        "extra.png: a PNG under img/ that this command does not make"]
