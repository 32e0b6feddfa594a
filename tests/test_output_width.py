"""Every line a chapter prints fits the notebook: at most 100 characters (`facekit.text.WIDTH`),
wrapped on word boundaries, continuation lines indented under their item (GitHub issue 30).

Part 1 reads the committed outputs of every notebook; part 2 checks, without training, that what
facekit prints is built to fit."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from facekit.text import ROOM, WIDTH, wrap

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TABLE_RULE = re.compile(r"^\|\s*:?-{3,}")  # the |---| line under a Markdown table's header


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def words(text: str) -> str:
    return " ".join(text.split())


# =====================================================================================================
# Part 1 - the COMMITTED OUTPUTS of the notebooks. These read what is saved in the .ipynb files, so
# they fail until the notebooks are re-executed with the wrapping facekit (notebooks/execute.py).
# =====================================================================================================

def committed_texts(path: Path) -> list[tuple[int, str, str]]:
    """(cell index, "stream" or "text/plain", text without ANSI codes) for every output of ``path``."""
    out = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                kind, text = "stream", o.get("text", "")
            elif "text/plain" in o.get("data", {}):
                kind, text = "text/plain", o["data"]["text/plain"]
            else:
                continue
            out.append((i, kind, ANSI.sub("", "".join(text) if isinstance(text, list) else text)))
    return out


def markdown_tables(text: str) -> list[str]:
    """The header lines of Markdown tables in ``text`` (a line starting with '|' over a '|---' line)."""
    lines = text.splitlines()
    return [a for a, b in zip(lines, lines[1:])
            if a.lstrip().startswith("|") and TABLE_RULE.match(b.lstrip())]


ALL_NOTEBOOKS = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
NB_IDS = [str(p.relative_to(NOTEBOOKS)) for p in ALL_NOTEBOOKS]


@pytest.mark.committed_outputs
@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=NB_IDS)
def test_committed_output_lines_fit_the_notebook(path):
    long = [f"cell {i} ({kind}), {len(line)} chars: {line[:70]}..."
            for i, kind, text in committed_texts(path) for line in text.splitlines() if len(line) > WIDTH]
    assert not long, f"{len(long)} output line(s) over {WIDTH} characters:\n" + "\n".join(long)


@pytest.mark.committed_outputs
@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=NB_IDS)
def test_committed_stream_output_holds_no_markdown_table(path):
    """A Markdown table printed to a notebook shows as raw pipes: print aligned columns instead."""
    tables = [f"cell {i}: {head[:80]}" for i, kind, text in committed_texts(path) if kind == "stream"
              for head in markdown_tables(text)]
    assert not tables, "Markdown table(s) in printed output:\n" + "\n".join(tables)


def test_the_committed_output_checks_catch_a_long_line_and_a_table(tmp_path):
    long = "\x1b[1m" + "word " * 30 + "\x1b[0m"
    cells = [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["| a | b |\n", "|---|---|\n", "| 1 | 2 |\n"]},
        {"output_type": "execute_result", "data": {"text/plain": [long]}}]}]
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    texts = committed_texts(path)
    assert [len(t) for _, _, t in texts if _ == "text/plain"] == [150]  # ANSI codes do not count
    assert markdown_tables(texts[0][2]) == ["| a | b |"]
    assert markdown_tables("| a table row, alone |\nno rule under it") == []


# =====================================================================================================
# Part 2 - what facekit prints, built from known values (no training)
# =====================================================================================================

LONG = ("[!!] gradients: gradient norm 0.00015 at conv1 vs 0.11 at output; relative update lr*|g|/|w| "
        "6.5e-08 .. 2.8e-05; conv2, conv3, conv4 get 1000x less than the top layer: they barely learn")


def test_wrap_keeps_every_word_and_fits():
    out = wrap(LONG)
    assert widest(out) <= WIDTH and out.count("\n") == 1
    assert words(out) == words(LONG)  # broken at spaces only: no word cut, none lost
    assert out.splitlines()[1].startswith(" " * 5) and out.splitlines()[1][5] != " "  # under the name


def test_wrap_indents_continuations_under_the_item():
    check = wrap("  " + LONG).splitlines()
    assert check[0].startswith("  [!!] gradients") and all(line.startswith(" " * 7) for line in check[1:])
    numbered = wrap("    12. " + "word " * 40).splitlines()
    assert len(numbered) > 1 and all(line.startswith(" " * 8) and line[8] != " " for line in numbered[1:])
    plain = wrap("ChanceAlarm: " + "word " * 40).splitlines()  # no marker: a hanging indent of four
    assert all(line.startswith("    w") for line in plain[1:])
    nested = wrap("  fixes tried: " + "word " * 40).splitlines()  # deeper than the items under it
    assert all(line.startswith("      w") for line in nested[1:])
    claim = wrap("✓ " + "word " * 40).splitlines()
    assert all(line.startswith("  w") for line in claim[1:])
    assert all(line.startswith("---w") for line in wrap("word " * 40, indent="---").splitlines()[1:])
    assert all(line.startswith("    w") for line in wrap("word " * 40, indent=4).splitlines()[1:])


def test_wrap_keeps_newlines_and_short_lines_as_they_are():
    table = "name      seeds   dead\nAdam 1e-3    10    22%"
    assert wrap(table) == table  # aligned columns: short lines untouched, spaces kept
    text = "first\n\n" + "word " * 30 + "\nlast"
    out = wrap(text, 40)
    assert out.startswith("first\n\n") and out.endswith("\nlast") and widest(out) <= 40
    assert wrap("") == "" and wrap("short", 10) == "short"


def test_wrap_leaves_room_for_a_label_and_never_cuts_a_path_or_a_call():
    out = wrap("word " * 40, room=ROOM)
    first, *rest = out.splitlines()
    assert len(first) <= WIDTH - ROOM and all(len(line) <= WIDTH for line in rest)
    path = "/tmp/" + "x" * 120
    assert path in wrap(f"no such file {path} here").splitlines()[1]  # alone on its line, whole
    code = "run facekit.diagnose.doctor(model, data, trials=True) now"
    for width in range(30, 60):
        assert "doctor(model, data, trials=True)" in wrap("word " * 8 + code, width)


def _check(ok: bool, name: str, verdict: str, **values):
    from facekit.diagnose import Check

    return Check(name, ok, verdict, values)


def fake_report(trials: bool = True):
    """A doctor `Report` of chapter 04's length, built from known check results (no model)."""
    from facekit.diagnose import Report
    from facekit.diagnose.trials import Trial

    checks = [
        _check(True, "loss vs ln C", "loss 2.0798 vs ln 8 = 2.0794 (label entropy 2.0349): uniform outputs - "
               "right for an untrained network, stuck for a trained one"),
        _check(False, "output sensitivity", "logits vary across images by 3.4e-05 (std; healthy > 0.01) - "
               "nearly input-independent: every image gets the same prediction"),
        _check(False, "gradients", LONG.split(": ", 1)[1]),
        _check(True, "held-out accuracy", "inference-mode accuracy 0.12 on 64 images of the data not used to "
               "recalibrate (pass val= for images it never trained on) (chance 0.12), 1 class predicted: "
               "at chance, as an untrained model is (0 steps)"),
    ]
    tried = [Trial("baseline", "the model unchanged, fresh weights", [2.08] * 100, 0.12, "", 2.080, 0.12, 64),
             Trial("batch_norm", "BatchNormalization between each convolution and its activation",
                   [2.7] * 50 + [0.99] * 50, 0.8, "", 1.047, 0.58, 64),
             Trial("fewer_layers", "only the first convolution of each run of convolutions", [], math.nan,
                   "the model is not a plain chain of layers (branches or several inputs), so it was not "
                   "rebuilt")] if trials else []
    suggestions = [
        "BatchNormalization between each convolution and its activation: measured held-out loss 1.047, "
        "accuracy 0.58 after 100 steps (unchanged: 2.080, 0.12)",
        "tiny gradients in the early layers: the small weights that shrink the signal on the way in shrink "
        "its gradient on the way back, so the fixes for the signal fix both",
        "data: look at exactly what enters the network (facekit.plots.show_batch) and check the labels "
        "match the images"]
    return Report("question_net", checks, ["conv4", "conv5", "conv6", "conv7", "conv8", "conv9", "conv10"],
                  suggestions, tried)


@pytest.mark.parametrize("trials", [True, False], ids=["with-trials", "rules-only"])
def test_a_doctor_report_fits_and_keeps_its_columns(trials):
    report = fake_report(trials)
    text = str(report)
    assert widest(text) <= WIDTH, text
    for c in report.checks:  # every verdict is there, word for word
        assert words(c.line) in words(text)
    for i, s in enumerate(report.suggestions, 1):
        assert words(f"{i}. {s}") in words(text)
    lines = text.splitlines()
    assert lines[0] == "facekit doctor - question_net: 2 check(s) failed"
    # an item starts 2 (checks, headings) or 4 (trials, numbered fixes) spaces in; its continuation
    # lines go on deeper, under its text: a check's under its name, right of the [ok]/[!!] column
    under, continued = 0, 0
    for line in lines[1:]:
        lead = len(line) - len(line.lstrip(" "))
        if lead in (2, 4):
            mark = re.match(r"\[(ok|!!)\] |\d\. ", line[lead:])
            under = lead + (len(mark.group()) if mark else 4)
        else:
            assert lead == under, f"continuation at {lead}, expected {under}: {line!r}"
            continued += 1
    assert continued >= 5  # the long checks and suggestions did wrap
    assert sum(line.startswith(("  [ok] ", "  [!!] ")) for line in lines) == len(report.checks)
    numbered = [line for line in lines if re.match(r"    \d\. ", line)]
    assert [line[4] for line in numbered] == [str(i) for i in range(1, len(report.suggestions) + 1)]
    assert "  fixes tried on fresh copies" in text if trials else "fixes tried" not in text
    assert report.text(WIDTH - 3) != text and widest(report.text(WIDTH - 3)) <= WIDTH - 3  # story indents it


def test_a_check_printed_after_a_label_fits():
    check = _check(False, "overfit one batch", "loss on one batch of 16: 2.075 -> 0.703 after 60 steps "
                   "(target < 0.21): it does not memorise 16 images - suspect the network before the data")
    text = str(check)
    assert text.startswith("[!!] overfit one batch: ") and words(text) == words(check.line)
    assert widest("question net: " + text) <= WIDTH and widest("   " + text) <= WIDTH
    assert "\n" not in check.line and check.line.startswith("[!!] overfit one batch: loss on one batch of 16")


def test_mode_gap_and_recalibration_fit():
    from facekit.diagnose import ModeGap, Recalibration

    gap = ModeGap(40, {"accuracy": 0.8, "loss": 0.583, "classes": 8.0},
                  {"accuracy": 0.125, "loss": 2.902, "classes": 1.0})
    assert widest("after recalibration: " + str(gap)) <= WIDTH
    assert "inference mode accuracy 0.12, loss 2.902, 1 class predicted" in words(str(gap))
    assert widest(str(Recalibration(10, 56000, 1750))) <= WIDTH


def test_chance_alarm_messages_fit(capsys):
    import keras

    from facekit.diagnose import ChanceAlarm

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="softmax")])
    stuck, guessing = ChanceAlarm(patience=2), ChanceAlarm(patience=2)
    for alarm in (stuck, guessing):
        alarm.set_model(model)
    for e in range(3):
        stuck.on_epoch_end(e, {"loss": math.log(8)})
        guessing.on_epoch_end(e, {"loss": 1.0, "val_accuracy": 0.125})
    assert stuck.fired and guessing.guessing
    out = capsys.readouterr().out
    assert out.count("ChanceAlarm:") == 2 and widest(out) <= WIDTH, out
    assert "facekit.diagnose.doctor(model, data, trials=True)" in out  # a call stays on one line


def test_profiles_datasets_claims_and_feedback_fit(capsys):
    from facekit.claims import claim
    from facekit.data import Dataset
    from facekit.exercises import Feedback
    from facekit.profiles import PROFILES

    for prof in PROFILES.values():
        assert widest(prof.describe()) <= WIDTH and "\n" not in prof.describe(None)
        assert words(prof.describe()) == words(prof.describe(None))
    names = ("bald", "bald+glasses", "long", "long+glasses", "mohawk", "mohawk+glasses", "short",
             "short+glasses")
    ds = Dataset(np.zeros((16, 4, 4, 3), np.uint8), np.arange(16) % 8, names,
                 attributes={"glasses": np.zeros(16), "hair": np.zeros(16)},
                 description="synthetic faces (seed=0, difficulty=0.5)")
    assert widest(repr(ds)) <= WIDTH and "short+glasses=2" in repr(ds)
    assert all(line.startswith(" " * len("Dataset(")) for line in repr(ds).splitlines()[1:])
    claim("the same classes as the question's script; only the order may differ, and this sentence "
          "is long enough to need a second line", False)
    said = capsys.readouterr().out
    assert widest(said) <= WIDTH and said.startswith("✗ not in this run: the same classes")
    for fb in (Feedback(True, "with batch_norm=True the network is no longer stuck: its loss leaves ln 8 on "
                              "a seed where the question's network stays there (whether it then learns - "
                              "held-out accuracy in inference mode - is chapter 4's section 4)"),
               Feedback(False, "found 0 kinds of Random... layer (none): a face can also be seen turned, "
                               "shifted, closer or in other light; use at least two kinds")):
        shown = repr(fb)
        assert widest(shown) <= WIDTH and shown.startswith(("correct: ", "not yet: "))
        assert words(shown).endswith(words(fb.message))


def test_the_mechanism_table_fits():
    from facekit import results

    runs = results.mechanism_runs("classroom")
    table = {"Adam 1e-3, Glorot": results.first_epoch(runs, 1e-3),
             "Adam 1e-4, Glorot": results.first_epoch(runs, 1e-4),
             "Adam 1e-3, He": results.first_epoch(runs, 1e-3, "he_normal")}
    text = results.first_epoch_table(table)
    assert widest(text) <= WIDTH and len(text.splitlines()) == 2 + len(table)
    assert "init -> 1 epoch" in text and "|dW|/|W|" in text and not markdown_tables(text)
    assert re.search(r"Adam 1e-3, Glorot\s+\d+\s+\d+% -> \d+%", text)


def test_the_errors_a_chapter_prints_fit(tmp_path):
    from facekit.data import load_pickle
    from facekit.models import question_model

    with pytest.raises(ValueError) as e:
        question_model((64, 64, 3), filters=4)
    assert widest(f"ValueError: {e.value}") <= WIDTH
    with pytest.raises(PermissionError) as p:
        load_pickle(tmp_path)
    shown = "PermissionError: " + str(p.value).split(": ", 1)[1]  # as chapter 01 prints it
    assert widest(shown) <= WIDTH and "pass trust=True only for X.pickle/y.pickle" in words(shown)


def test_a_report_without_its_checks_prints_the_trials_once():
    """``text(checks=False)``: a second report on the same model prints only what is new."""
    report = fake_report(True)
    short = report.text(checks=False)
    assert widest(short) <= WIDTH
    assert "(the checks as printed before)" in short.splitlines()[0]
    assert not any(words(c.line) in words(short) for c in report.checks)
    assert "fixes tried on fresh copies" in short and "try, in this order" in short
