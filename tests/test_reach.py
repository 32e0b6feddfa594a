"""Colab and Binder: badges derived from the one repository address; an install cell acting on Colab only."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("badges", ROOT / "notebooks" / "badges.py")
badges = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(badges)
NOTEBOOKS = badges.notebooks()


def _cells(path: Path, tag: str) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if tag in c["metadata"].get("tags", [])]


def test_the_repository_address_lives_in_pyproject_only():
    repo = badges.repository()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo)
    owner_name = repo.removeprefix("https://github.com/")
    for path in NOTEBOOKS:  # every notebook's links come from it (run notebooks/badges.py after a change)
        for cell in _cells(path, badges.BADGE_TAG) + _cells(path, badges.INSTALL_TAG):
            assert owner_name in "".join(cell["source"]), path
    assert not any(badges.update(p, repo, write=False) for p in NOTEBOOKS)  # nothing stale


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_badges_are_well_formed_links_to_this_notebook(path):
    rel = path.relative_to(ROOT).as_posix()
    (cell,) = _cells(path, badges.BADGE_TAG)
    pattern = r"\[!\[([^\]]+)\]\((https://[^)\s]+)\)\]\((https://[^)\s]+)\)"
    links = re.findall(pattern, "".join(cell["source"]))
    assert [name for name, _, _ in links] == ["Open in Colab", "launch Binder"]
    (_, _, colab), (_, _, binder) = links
    c, b = urlparse(colab), urlparse(binder)
    owner_name = badges.repository().removeprefix("https://github.com/")
    assert c.netloc == "colab.research.google.com" and c.path == f"/github/{owner_name}/blob/main/{rel}"
    assert b.netloc == "mybinder.org" and b.path == f"/v2/gh/{owner_name}/main"
    assert unquote(parse_qs(b.query)["labpath"][0]) == rel and (ROOT / rel).exists()
    assert json.loads(path.read_text())["cells"].index(cell) == 1  # right under the title


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_install_cell_follows_parameters_and_acts_only_on_colab(path, monkeypatch):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "parameters" in cells[0]["metadata"]["tags"]
    assert badges.INSTALL_TAG in cells[1]["metadata"]["tags"]
    source = "".join(cells[1]["source"])
    calls: list = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "install-cell", "exec"), {})
    assert calls == []  # here (and in CI, on Binder, on a laptop) it does nothing
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(source, "install-cell", "exec"), {})
    (args, kwargs), = calls
    assert args[0][:4] == [sys.executable, "-m", "pip", "install"] and kwargs == {"check": True}
    assert args[0][-1] == f"facekit @ git+{badges.repository()}"


def test_binder_builds_from_the_root_environment_file():
    env = (ROOT / "environment.yml").read_text()
    assert "- -e ." in env and "jupyterlab" in env  # Binder installs facekit itself and JupyterLab
