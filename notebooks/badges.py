"""Write the "Open in Colab" / "launch Binder" badges and the Colab install cell into every notebook.

    python notebooks/badges.py            # after changing [project.urls] Repository in pyproject.toml

The repository's address lives in one place, ``[project.urls] Repository`` in pyproject.toml; this
script derives every link from it, so publishing the project elsewhere is a one-line change plus
one run of this script. Idempotent: a second run changes nothing. Each notebook gets a badge cell
right after its title and, right after its ``parameters`` cell, an install cell that does something
only on Colab (where facekit is not installed); locally, in CI and on Binder it does nothing.
Colab gives every notebook its own runtime, so an exercise needs the cell as much as a chapter. The
cell is collapsed everywhere (it is not part of the story), and one line under the badges says what
the collapsed cells are.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import quote

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BRANCH = "main"
BADGE_TAG, INSTALL_TAG = "badges", "colab-install"


def repository() -> str:
    """``[project.urls] Repository`` from pyproject.toml, as https://github.com/OWNER/NAME."""
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'^\[project\.urls\][^\[]*?^Repository\s*=\s*"([^"]+)"', text, re.M | re.S)
    if not m or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", m.group(1)):
        raise SystemExit('pyproject.toml needs [project.urls] Repository = "https://github.com/OWNER/NAME"')
    return m.group(1)


def badge_markdown(repo: str, rel: str) -> str:
    owner_name = repo.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/{rel}"
    binder = f"https://mybinder.org/v2/gh/{owner_name}/{BRANCH}?labpath={quote(rel, safe='')}"
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![launch Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def hint(nb: nbformat.NotebookNode) -> str:
    """The line under the badges that says what the collapsed cells are."""
    checks = any(c.metadata.get("jupyter", {}).get("source_hidden")
                 and INSTALL_TAG not in c.metadata.get("tags", []) for c in nb.cells)
    others = "; the others are checks that CI re-runs on every change" if checks else ""
    return ("*Cells shown as `•••` are collapsed: click the dots to open one. The first installs facekit"
            f" on Colab only{others}.*")


def install_source(repo: str) -> str:
    return (
        "# Colab only: install facekit from its repository (does nothing anywhere else).\n"
        "# --no-deps: Colab already has TensorFlow, Keras, NumPy, OpenCV and matplotlib.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",\n'
        f'                    "facekit @ git+{repo}"], check=True)'
    )


def _tagged(nb: nbformat.NotebookNode, tag: str) -> int | None:
    return next((i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])), None)


def update(path: Path, repo: str, write: bool = True) -> bool:
    """Put (or refresh) both cells in one notebook; True when the file changed (or, with
    ``write=False``, would change)."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    rel = path.relative_to(ROOT).as_posix()
    i = _tagged(nb, BADGE_TAG)
    if i is None:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell("", metadata={"tags": [BADGE_TAG]}))
        i = 1
    j = _tagged(nb, INSTALL_TAG)
    if j is None:
        k = _tagged(nb, "parameters")
        if k is None:
            raise SystemExit(f"{rel}: no cell tagged 'parameters'")
        nb.cells.insert(k + 1, nbformat.v4.new_code_cell("", metadata={"tags": [INSTALL_TAG]}))
        j = k + 1
    if nb.cells[j].source != install_source(repo):
        nb.cells[j].source = install_source(repo)
        nb.cells[j].outputs, nb.cells[j].execution_count = [], None
    nb.cells[j].metadata.setdefault("jupyter", {})["source_hidden"] = True
    nb.cells[i].source = badge_markdown(repo, rel) + "\n\n" + hint(nb)
    if nbformat.writes(nb) == before:
        return False
    if write:
        nbformat.write(nb, path)
    return True


def notebooks() -> list[Path]:
    return sorted(p for p in HERE.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main() -> int:
    repo = repository()
    changed = [p for p in notebooks() if update(p, repo)]
    for p in changed:
        print("updated", p.relative_to(ROOT))
    print(f"{len(changed)} of {len(notebooks())} notebooks updated for {repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
