"""Every figure under docs/img, rendered from committed inputs (no training), and the manifest
docs/img/figures.json that says which inputs each one was rendered from.

    python docs/style_figures.py              # write docs/img/*.png and docs/img/figures.json
    python docs/style_figures.py --out DIR    # the same into DIR; docs/img is left alone
    python docs/style_figures.py --check      # exit 1 (and say which) when a figure is out of date

The figures:

- ``ablation-{default,projector}.png``: `facekit.plots.plot_ablation` of
  ``facekit/results/ablation.jsonl`` (``python -m benchmarks.ablation``);
- ``generalize-{default,projector}.png``: `facekit.plots.plot_comparison` of
  ``facekit/results/generalize.jsonl`` (``python -m benchmarks.generalize``);
- ``synthetic-grid.png`` (the README's picture): `facekit.plots.show_grid` of
  `facekit.synthetic.make_faces` with the parameters in `FIGURES` (seed 0, 96 px, difficulty 0.5).

For each figure the manifest records the sha256 of every results file it reads and of its
parameters (style, dpi, title, ...), and the sha256 of the PNG written with them.
``tests/test_docs_figures.py`` recomputes the inputs' hashes: when a results file or a parameter
changes and this command was not run again, the test fails and names the figure. This module's
top level needs only the standard library (the test imports it); facekit is imported to render.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
MANIFEST = "figures.json"
COMMAND = "python docs/style_figures.py"

ABLATION = "facekit/results/ablation.jsonl"
GENERALIZE = "facekit/results/generalize.jsonl"
GRID_TITLE = "facekit synthetic faces: 8 classes = 4 hair styles x glasses (seed 0, 96 px)"

# file name -> what it is drawn from: "plot" (the kind), "files" (results read, relative to the
# repository root) and "params" (everything else that decides the picture).
FIGURES: dict[str, dict[str, Any]] = {
    **{f"ablation-{style}.png": {
        "plot": "ablation", "files": [ABLATION], "params": {"style": style, "dpi": 80}}
       for style in ("default", "projector")},
    **{f"generalize-{style}.png": {
        "plot": "comparison", "files": [GENERALIZE],
        "params": {"style": style, "dpi": 80, "title": "train vs validation accuracy per recipe"}}
       for style in ("default", "projector")},
    "synthetic-grid.png": {
        "plot": "grid", "files": [],
        "params": {"style": "default", "dpi": 110, "n_per_class": 3, "size": 96, "seed": 0,
                   "difficulty": 0.5, "per_class": 3, "title": GRID_TITLE}},
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def params_sha256(params: dict[str, Any]) -> str:
    """The hash of a figure's parameters, as canonical JSON (sorted keys, no spaces)."""
    return sha256_bytes(json.dumps(params, sort_keys=True, separators=(",", ":")).encode())


def input_hashes(name: str, root: Path = ROOT) -> dict[str, str]:
    """What figure `name` is drawn from now: sha256 of each results file it reads, and of its
    parameters (under the key "params")."""
    spec = FIGURES[name]
    out = {f: sha256_bytes((root / f).read_bytes()) for f in spec["files"]}
    out["params"] = params_sha256(spec["params"])
    return out


def read_manifest(folder: Path = IMG) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())


def stale(folder: Path = IMG, root: Path = ROOT) -> list[str]:
    """Every problem that running this command would fix, one sentence each (empty: up to date):
    a figure whose inputs changed since it was rendered, a figure or manifest entry missing, a
    PNG that is not the one the manifest was written with, a PNG no figure accounts for."""
    path = folder / MANIFEST
    if not path.exists():
        return [f"{path.name} is missing"]
    figures = read_manifest(folder).get("figures", {})
    problems = []
    for name in FIGURES:
        entry = figures.get(name)
        if entry is None:
            problems.append(f"{name}: not in {MANIFEST}")
            continue
        now = input_hashes(name, root)
        for key in sorted(set(now) | set(entry.get("inputs", {}))):
            if entry.get("inputs", {}).get(key) != now.get(key):
                problems.append(f"{name}: {key} changed since the figure was rendered")
        png = folder / name
        if not png.exists():
            problems.append(f"{name}: the file is missing")
        elif sha256_bytes(png.read_bytes()) != entry.get("sha256"):
            problems.append(f"{name}: the PNG is not the one {MANIFEST} was written with")
    for name in sorted(set(figures) - set(FIGURES)):
        problems.append(f"{name}: in {MANIFEST} but no longer a figure")
    for png in sorted(folder.glob("*.png")):
        if png.name not in FIGURES:
            problems.append(f"{png.name}: a PNG under {folder.name}/ that this command does not make")
    return problems


def _render(name: str, files: dict[str, Path], out: Path) -> None:
    from facekit import plots

    spec = FIGURES[name]
    params = spec["params"]
    plots.use_style(params["style"])
    try:
        if spec["plot"] == "ablation":
            from facekit.ablation import Ablation

            fig = plots.plot_ablation(Ablation.from_jsonl(files[ABLATION]))
        elif spec["plot"] == "comparison":
            from facekit.generalize import Comparison

            fig = plots.plot_comparison(Comparison.from_jsonl(files[GENERALIZE]), params["title"])
        elif spec["plot"] == "grid":
            from facekit.synthetic import make_faces

            ds = make_faces(n_per_class=params["n_per_class"], size=params["size"],
                            seed=params["seed"], difficulty=params["difficulty"])
            fig = plots.show_grid(ds, per_class=params["per_class"], title=params["title"])
        else:
            raise ValueError(f"{name}: unknown plot {spec['plot']!r}")
        plots.save(fig, out / name, dpi=params["dpi"])
    finally:
        plots.use_style("default")


def build(out: Path = IMG, names: list[str] | None = None) -> dict[str, Any]:
    """Render the figures (all, or `names`) into `out` and write its figures.json; return it.
    Each results file is read once into a snapshot, hashed and drawn from that snapshot, so the
    hash is of exactly the bytes drawn even while a benchmark is still appending to the file."""
    import matplotlib

    out.mkdir(parents=True, exist_ok=True)
    names = list(FIGURES) if names is None else names
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"no figure named {', '.join(unknown)}; there are {', '.join(FIGURES)}")
    path = out / MANIFEST
    old = json.loads(path.read_text()).get("figures", {}) if path.exists() else {}
    figures = {n: e for n, e in old.items() if n in FIGURES}
    with tempfile.TemporaryDirectory() as tmp:
        snapshot: dict[str, Path] = {}
        hashes: dict[str, str] = {}
        for f in sorted({f for n in names for f in FIGURES[n]["files"]}):
            data = (ROOT / f).read_bytes()
            snapshot[f] = Path(tmp) / f.replace("/", "__")
            snapshot[f].write_bytes(data)
            hashes[f] = sha256_bytes(data)
        for name in names:
            spec = FIGURES[name]
            _render(name, snapshot, out)
            figures[name] = {
                "inputs": {**{f: hashes[f] for f in spec["files"]},
                           "params": params_sha256(spec["params"])},
                "params": spec["params"],
                "sha256": sha256_bytes((out / name).read_bytes()),
                "matplotlib": matplotlib.__version__,
            }
    manifest = {"command": COMMAND,
                "note": "inputs: sha256 of each results file the figure reads and of its params "
                        "(canonical JSON); sha256: of the PNG written with them. "
                        "tests/test_docs_figures.py checks both.",
                "figures": {n: figures[n] for n in FIGURES if n in figures}}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=IMG, help="folder to write into (default docs/img)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=list(FIGURES),
                   help="render only these figures (the manifest keeps the others' entries)")
    p.add_argument("--check", action="store_true", help="report what is out of date; change nothing")
    args = p.parse_args(argv)
    if args.check:
        problems = stale(args.out)
        for line in problems:
            print(line)
        if problems:
            print(f"run: {COMMAND}")
        return 1 if problems else 0
    build(args.out, args.only)
    written = args.only or list(FIGURES)
    print("wrote", ", ".join(written), "and", MANIFEST, "in", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
