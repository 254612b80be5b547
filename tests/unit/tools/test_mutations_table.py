# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mutation table (tests/mutations/table.yml) without Docker: it loads, every weakening still applies to
the roles as they are (a stale entry fails here first, long before `make mutations`), every test it names
exists, the edit rules hold, and docs/security.md shows the table as tests/mutations/run.py renders it."""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MUTATIONS = ROOT / "tests" / "mutations"
DOC = ROOT / "docs" / "security.md"


def _run():
    spec = importlib.util.spec_from_file_location("mutations_run", MUTATIONS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_weakening_applies_to_the_roles(tmp_path):
    run = _run()
    entries = run.load_table()
    for entry in entries:
        copy = tmp_path / entry["id"]
        shutil.copytree(ROOT / "roles", copy / "roles")
        for edit in entry["weakening"]:
            before = (copy / edit["file"]).read_text()
            run.apply_edit(copy, edit)
            assert (copy / edit["file"]).read_text() != before
    # The checkout is untouched: the edits went to the copies.
    assert "AuthenticationEnabled: true" in (ROOT / "roles/pacs/vars/main.yml").read_text()


def test_every_named_test_exists():
    run = _run()
    for entry in run.load_table():
        for test in entry["test"]:
            file, name = test.split("::")
            name = name.split("[")[0]
            tree = ast.parse((MUTATIONS / file).read_text())
            functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
            assert name in functions, f"{entry['id']}: {test} does not exist"


def test_edit_rules(tmp_path):
    run = _run()
    (tmp_path / "roles").mkdir()
    target = tmp_path / "roles" / "f.j2"
    target.write_text("a: 1\nb:\n  x: on\nc:\n  x: on\n")
    with pytest.raises(run.TableError, match="found 2 times"):
        run.apply_edit(tmp_path, {"file": "roles/f.j2", "find": "x: on", "replace": "x: off"})
    with pytest.raises(run.TableError, match="found 0 times"):
        run.apply_edit(tmp_path, {"file": "roles/f.j2", "find": "gone", "replace": ""})
    with pytest.raises(run.TableError, match="matched 0 times"):
        run.apply_edit(tmp_path, {"file": "roles/f.j2", "regex": "^z:", "replace": ""})
    with pytest.raises(run.TableError, match="changes nothing"):
        run.apply_edit(tmp_path, {"file": "roles/f.j2", "find": "a: 1", "replace": "a: 1"})
    run.apply_edit(tmp_path, {"file": "roles/f.j2", "after": "c:\n", "find": "x: on", "replace": "x: off"})
    assert target.read_text() == "a: 1\nb:\n  x: on\nc:\n  x: off\n"


def test_table_schema_is_enforced(tmp_path):
    run = _run()
    table = tmp_path / "table.yml"
    table.write_text("- id: a\n  property: p\n  setting: {file: roles/x, what: w}\n  test: test_nginx.py::test_x\n")
    with pytest.raises(run.TableError, match="keys must be exactly"):
        run.load_table(table)
    table.write_text(
        "- id: a\n  property: p\n  setting: {file: roles/x, what: w}\n  test: test_nginx.py::test_x\n"
        "  weakening: [{file: ../etc/passwd, find: a, replace: b}]\n"
    )
    with pytest.raises(run.TableError, match="under roles/ only"):
        run.load_table(table)


def test_security_doc_shows_the_table():
    run = _run()
    doc = DOC.read_text()
    start, end = doc.index(run.BEGIN), doc.index(run.END) + len(run.END)
    assert doc[start:end] == run.markdown(run.load_table()), (
        "docs/security.md's mutation table differs from tests/mutations/table.yml: "
        "python tests/mutations/run.py --markdown"
    )
