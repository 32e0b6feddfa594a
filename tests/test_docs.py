"""Numbers quoted in the docs come from committed results, not from a hand."""

from __future__ import annotations

from benchmarks import sync_docs


def test_quoted_run_times_match_the_recorded_ones():
    data = sync_docs.load()
    stale = [str(p.relative_to(sync_docs.ROOT)) for p, text in sync_docs.targets(data).items()
             if p.read_text() != text]
    assert not stale, f"out of date (run python -m benchmarks.sync_docs): {stale}"


def test_run_time_line_reads_the_record():
    data = {"machine": "m", "ci": {"01_data.ipynb": 12.4}, "classroom": {"01_data.ipynb": 125.0}}
    assert sync_docs.run_time_line(data, "01_data.ipynb") == (
        "**Run time:** 12 s on `ci`, 2.1 min on `classroom` (measured on m, kernel start included).")
    assert sync_docs.human(None) == "not measured"
