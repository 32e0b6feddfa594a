"""A clean first run: a student's fresh kernel, the story and the tests print nothing on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facekit import _quiet

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _student_env() -> dict[str, str]:
    """The environment of a student's shell: none of the variables facekit or its tests set."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("FACEKIT_", "TF_CPP", "MPLBACKEND", "PYTEST"))}


def test_chapter_01_and_an_exercise_print_nothing_on_stderr_in_a_fresh_kernel(tmp_path):
    code = textwrap.dedent(f"""
        import json, shutil, sys, tempfile
        import nbformat
        from jupyter_client.manager import KernelManager
        from nbclient import NotebookClient
        for name in ("01_data.ipynb", "exercises/ex02_question_network.ipynb"):
            src = {str(NOTEBOOKS)!r} + "/" + name
            nb = nbformat.read(src, as_version=4)
            sockets = tempfile.mktemp(prefix="facekit-kernel-")
            km = KernelManager(kernel_name="python3", transport="ipc", ip=sockets)
            where = {{"metadata": {{"path": {str(tmp_path)!r}}}}}
            NotebookClient(nb, km=km, timeout=600, resources=where).execute()
            km.shutdown_kernel()
            err = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("name") == "stderr"]
            print(json.dumps({{"notebook": name, "stderr": err}}))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                         env=_student_env(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == "", run.stderr[-3000:]
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [r["notebook"] for r in rows] == ["01_data.ipynb", "exercises/ex02_question_network.ipynb"]
    assert all(r["stderr"] == [] for r in rows), rows


def test_the_story_prints_nothing_on_stderr(tmp_path):
    # Chapter 06's step at 4 images a class makes every predict call a new batch shape, and TF then
    # warns (rightly) about retracing; 16 a class is the smallest that runs like the real story.
    code = textwrap.dedent(f"""
        from facekit.profiles import get_profile
        from facekit.story import run_story
        prof = get_profile("ci", per_class=10, epochs=1, answer_epochs=2, seeds=(0,),
                           regime={{"size": 32, "per_class": 16, "held": 8, "answer_epochs": 2, "epochs": 3}})
        run_story(prof, out={str(tmp_path)!r})
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env=_student_env(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "verdict:" in run.stdout
    assert run.stderr == "", run.stderr[-3000:]


def test_tensorflow_s_own_lines_are_dropped_by_level_and_nothing_else():
    info = "I0000 00:00:1795892988.056775   23508 cudart_stub.cc:31] Could not find cuda drivers\n"
    error = "E0000 00:00:1795892976.468062   23450 cuda_platform.cc:52] failed call to cuInit\n"
    for line, kept_at in ((info, (0,)), (error, (0, 1, 2)), (_quiet._PREAMBLE + "\n", (0,)),
                          ("Traceback (most recent call last):\n", (0, 1, 2, 3)),
                          ("UserWarning: something real\n", (0, 1, 2, 3))):
        assert [lvl for lvl in range(4) if _quiet.keep_line(line, lvl)] == list(kept_at), line


def test_importing_tensorflow_after_facekit_is_quiet_and_honours_a_user_level():
    code = "import facekit, tensorflow as tf; tf.constant(1.0) + 1; print('ok')"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env=_student_env())
    assert quiet.stdout.strip() == "ok" and quiet.stderr == ""
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**_student_env(), "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert loud.stdout.strip() == "ok"  # whatever TensorFlow prints at 0 reaches the user untouched


def test_two_opencv_wheels_are_warned_about(monkeypatch):
    two = ["opencv-python", "opencv-python-headless"]
    monkeypatch.setattr(_quiet, "installed_opencv_wheels", lambda: two)
    with pytest.warns(RuntimeWarning, match="2 OpenCV wheels.*pip uninstall opencv-python$"):
        _quiet.warn_if_two_opencv_wheels()
    monkeypatch.setattr(_quiet, "installed_opencv_wheels", lambda: ["opencv-python-headless"])
    _quiet.warn_if_two_opencv_wheels()  # one wheel: silent (pytest turns warnings into failures below)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.rglob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_open_unchanged_in_jupyterlab(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                            "name": "python3"}
    assert not [c for c in nb["cells"] if "execution" in c.get("metadata", {})], "execution timestamps"
