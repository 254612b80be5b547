"""The step-time table in docs/test-bed.md is exactly what tools/test_times.py renders from the committed
results file (bench/results/make_test_times.tsv): no figure in it is typed by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "bench/results/make_test_times.tsv"
DOC = ROOT / "docs/test-bed.md"


def _module():
    spec = importlib.util.spec_from_file_location("test_times", ROOT / "tools/test_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_table_is_rendered_from_the_results_file():
    times = _module()
    doc = DOC.read_text()
    start, end = doc.index(times.BEGIN), doc.index(times.END) + len(times.END)
    assert doc[start:end] == times.render(RESULTS.read_text()), (
        "docs/test-bed.md's table differs from bench/results/make_test_times.tsv: "
        "python3 tools/test_times.py bench/results/make_test_times.tsv"
    )


def test_render_reads_comments_rows_and_failures():
    times = _module()
    table = times.render("# measured: today\nlint\t75\t0\nmolecule:fleet\t421\t2\n")
    assert "measured: today." in table
    assert "| lint | 1:15 | passed |" in table
    assert "| molecule:fleet | 7:01 | failed (2) |" in table


def test_readme_demo_timing_is_the_results_file():
    times = _module()
    _meta, rows = times.parse((ROOT / "bench/results/make_demo_times.tsv").read_text())
    line = next(x for x in (ROOT / "README.md").read_text().split("\n\n") if "<!-- demo-timing -->" in x)
    for _name, seconds, _status in rows:
        assert times.minutes(seconds) in line, f"README's demo timing does not say {times.minutes(seconds)}"
