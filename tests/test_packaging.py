"""pyproject.toml and environment.yml list the same packages; README and CI agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_pyproject_and_environment_list_the_same_packages():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("- pip:")[1]
    listed = {_name(line.strip()[2:]) for line in pip_section.splitlines()
              if line.strip().startswith("- ") and not line.strip().startswith("- -e")}
    assert listed == wanted


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in readme and "test-command" in ci
    assert "opencv-python-headless" in readme


def test_python_m_facekit_shows_help():
    out = subprocess.run([sys.executable, "-m", "facekit", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0 and "synth" in out.stdout


def test_python_versions_licence_and_citation_are_declared():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10,<3.14"  # TensorFlow 2.21's wheels: 3.10-3.13
    assert "Python 3.10-3.13" in (ROOT / "README.md").read_text()
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    cff = (ROOT / "CITATION.cff").read_text()
    assert f"version: {project['version']}" in cff and project["urls"]["Repository"] in cff
    assert "pytest" in (ROOT / "CONTRIBUTING.md").read_text()


def test_the_constraints_pin_what_the_numbers_were_measured_with():
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    tf, keras = pins["tensorflow"].rsplit(".", 1)[0], pins["keras"].rsplit(".", 1)[0]
    assert f"TensorFlow {tf} / Keras {keras}" in (ROOT / "README.md").read_text()  # what it quotes
    deps = {_name(r) for r in pytest.importorskip("tomllib").loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert deps <= {k.lower() for k in pins}
