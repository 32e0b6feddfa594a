"""Run the chapters in place and keep their outputs (what we commit), on one profile.

    python notebooks/execute.py                      # all chapters, classroom profile
    python notebooks/execute.py 02_reproduce.ipynb --profile ci --no-write
    python notebooks/execute.py exercises/ex02_question_network.ipynb --timings cells.jsonl

Outputs are saved exactly as the kernel produced them: no filtering (facekit keeps TensorFlow's
start-up notices off stderr itself, so a fresh run prints none). The notebook's kernelspec is the one
JupyterLab writes (nothing "unsaved" on open), and no execution timestamps are kept.
Prints the wall time of every notebook and records it, per profile, in
benchmarks/results/notebooks.json: the one source of the run times the README, notebooks/README.md
and each chapter's title cell quote (`python -m benchmarks.sync_docs` writes them there).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
RECORD = HERE.parent / "benchmarks" / "results" / "notebooks.json"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# appended for the run only, never saved: the kernel's peak resident memory (Binder allows 2 GB)
_PEAK = "import resource, sys; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == 'darwin' else 1024))"


def ipc_path() -> str:
    """An absolute path for the kernel's local sockets: a relative one would be resolved in the
    notebook's folder by the kernel and in ours by the client."""
    import tempfile
    import uuid

    return os.path.join(tempfile.gettempdir(), f"facekit-kernel-{uuid.uuid4().hex[:12]}")


def cell_seconds(nb: nbformat.NotebookNode) -> list[tuple[int, float, str]]:
    """(code cell number, seconds, first source line) for every executed code cell, from the
    timestamps nbclient records; the timestamps are then removed (they would churn the diffs)."""
    from datetime import datetime

    rows, k = [], 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        k += 1
        ex = cell.metadata.pop("execution", None) or {}
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if start and end:
            secs = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                    - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            rows.append((k, secs, cell.source.splitlines()[0] if cell.source else ""))
    return rows


def run(path: Path, profile: str, write: bool, timeout: int = 1800,
        timings: list | None = None) -> tuple[float, int]:
    """Execute one notebook; (wall seconds, the kernel's peak resident memory in bytes)."""
    nb = nbformat.read(path, as_version=4)
    os.environ["FACEKIT_PROFILE"] = profile
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK))
    t = time.perf_counter()
    km = KernelManager(kernel_name="python3", transport="ipc", ip=ipc_path())  # no TCP warning
    NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    if km.has_kernel:
        km.shutdown_kernel()
    seconds = time.perf_counter() - t
    peak = nb.cells.pop()
    rows = cell_seconds(nb)
    if timings is not None:
        timings.extend((path.name, *row) for row in rows)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    if write:
        nbformat.write(nb, path)
    return seconds, int(peak.outputs[0].text)


def record(path: Path, profile: str, seconds: float, peak: int) -> None:
    """Store one notebook's wall time and its kernel's peak memory (MiB, under "peak_rss_mib") per
    profile in benchmarks/results/notebooks.json."""
    import json
    import platform

    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()) \
        if Path("/proc/cpuinfo").exists() else None
    data["machine"] = f"{cpu.group(1).strip() if cpu else platform.machine()}, {os.cpu_count()} cores, no GPU"
    data.setdefault(profile, {})[str(path.relative_to(HERE))] = round(seconds, 1)
    data.setdefault("peak_rss_mib", {}).setdefault(profile, {})[str(path.relative_to(HERE))] = round(peak / 2**20)
    RECORD.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("notebooks", nargs="*", help="default: every NN_*.ipynb in notebooks/")
    p.add_argument("--profile", default="classroom")
    p.add_argument("--no-write", action="store_true", help="run only; leave the files as they are")
    p.add_argument("--timings", help="append every cell's seconds to this JSON-lines file")
    p.add_argument("--no-record", action="store_true", help=f"do not update {RECORD.name}")
    args = p.parse_args(argv)
    paths = [HERE / n for n in args.notebooks] or sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for path in paths:
        timings: list = []
        seconds, peak = run(path, args.profile, not args.no_write, timings=timings)
        if args.timings:
            import json

            with open(args.timings, "a") as f:
                for name, k, secs, first in timings:
                    f.write(json.dumps({"notebook": name, "profile": args.profile, "cell": k,
                                        "seconds": round(secs, 2), "first_line": first}) + "\n")
        total += seconds
        print(f"{path.name:28s} {seconds:7.1f} s  peak {peak / 2**20:6.0f} MiB  ({args.profile})", flush=True)
        if not args.no_record:
            record(path, args.profile, seconds, peak)
    print(f"{'all':28s} {total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
