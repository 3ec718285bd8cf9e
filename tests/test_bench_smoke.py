"""The benchmarks at 1,000 assets, so their code cannot rot. No thresholds: times are not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import tray_idle
from bench.run import run, scale_for


@pytest.mark.timeout(600)  # about 30 s alone; a loaded 2-core machine has taken over 120 s
def test_benchmarks_run_end_to_end_at_1000_assets(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    results = run(scale_for(1000), out, workdir=tmp_path / "work")
    sections = {row.section for row in results.rows}
    expected_sections = {"server alone", "disk alone", "throughput", "small files", "no-op", "changed", "memory",
                         "growth"}
    if not tray_idle.missing_tools():
        expected_sections.add("cpu")  # the idle tray app, on a private Xvfb
    assert sections == expected_sections
    measures = " ".join(row.measure for row in results.rows)
    for expected in ("(3.x)", "(2.x", "archives", "one by one", "no-op cycles", "bare listing"):
        assert expected in measures
    for row in results.rows:
        assert row.ours, row
        if row.ratio is not None:
            assert row.ratio > 0 and row.baseline, row
    # Request counts are facts, not timings: an unchanged album downloads nothing and unchanged
    # albums cost one album-list request (two on 2.x) and none per album.
    counted = [row for row in results.rows if row.target in ("0 downloads", "1 / 0 / 0", "2 / 0 / 0")]
    assert len(counted) == 3 and all(row.met for row in counted), counted
    text = out.read_text()
    assert text.startswith("# Benchmarks") and "| Section | Measure |" in text
    for row in results.rows:
        assert f"| {row.section} | {row.measure} | {row.ours} |" in text
    assert not list((tmp_path / "work").glob("*/dest"))  # scratch folders are cleaned as it goes
