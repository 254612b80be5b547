"""The benchmark figures in docs/performance.md and bench/README.md are exactly what tools/bench_figures.py
renders from the committed bench/results/*.json: no figure in them is typed by hand."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _module():
    spec = importlib.util.spec_from_file_location("bench_figures", ROOT / "tools/bench_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("doc", sorted(_module().BLOCKS))
def test_docs_figures_are_rendered_from_the_results(doc):
    figures = _module()
    old, new = figures.rendered_docs()[doc]
    assert old == new, f"{doc}: figures differ from bench/results/*.json: python3 tools/bench_figures.py --write"


def test_a_changed_result_makes_the_docs_stale(tmp_path):
    """Change one figure in a copy of the results: the committed docs no longer match (the test can fail)."""
    figures = _module()
    results = tmp_path / "results"
    shutil.copytree(ROOT / "bench" / "results", results)
    doc = json.loads((results / "modules_vs_uri.json").read_text())
    doc["figures"]["uri"]["requests"] += 1
    (results / "modules_vs_uri.json").write_text(json.dumps(doc))
    old, new = figures.rendered_docs(results=results)["docs/performance.md"]
    assert old != new
    assert f"vs {doc['figures']['uri']['requests']} REST requests" in new


def test_missing_markers_are_named(tmp_path):
    figures = _module()
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "docs" / "performance.md").write_text("# no markers\n")
    (tmp_path / "bench" / "README.md").write_text("# no markers\n")
    with pytest.raises(SystemExit, match=re.escape("docs/performance.md: markers <!-- bench:table:begin -->")):
        figures.rendered_docs(root=tmp_path)
