# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the mutation table (tests/mutations/table.yml): every security property must be killed by its test.

1. Every test the table names runs once on an unmodified copy of ``roles/``: all must pass.
2. For each entry: a fresh copy of ``roles/``, the entry's weakening applied to it (each edit must match
   exactly where the table says, else the table is stale), and only the entry's tests run against the copy
   (``MUTATIONS_ROLES``). The mutation is killed when a test fails in its body; it survives when the tests
   pass, and it is an error when a test errors in its set-up (killed for a reason other than the property).

The checkout is never edited. One line per entry with its result and seconds; exit 0 only when the baseline
passes and every mutation is killed.

    python tests/mutations/run.py [--only ID ...] [--jobs N] [--table FILE] [--list] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TABLE = HERE / 'table.yml'
ENTRY_KEYS = {'id', 'property', 'setting', 'weakening', 'test'}
EDIT_KEYS = {'file', 'find', 'regex', 'replace', 'after'}
TEST_FILES = ('test_compose.py', 'test_files.py', 'test_firewall.py', 'test_nginx.py', 'test_orthanc.py',
              'test_version_gate.py')  # fmt: skip


class TableError(Exception):
    """The table is malformed, or a weakening no longer applies to the role (the table went stale)."""


def load_table(path: Path = TABLE) -> list[dict]:
    entries = yaml.safe_load(path.read_text())
    if not isinstance(entries, list) or not entries:
        raise TableError(f'{path}: expected a list of entries')
    seen = set()
    for number, entry in enumerate(entries, 1):
        where = f'{path.name} entry {number} ({entry.get("id", "no id") if isinstance(entry, dict) else entry!r})'
        if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
            raise TableError(f'{where}: keys must be exactly {sorted(ENTRY_KEYS)}')
        if entry['id'] in seen or not re.fullmatch(r'[a-z0-9][a-z0-9-]*', str(entry['id'])):
            raise TableError(f'{where}: id must be unique, lower-case letters, digits and -')
        seen.add(entry['id'])
        if not isinstance(entry['setting'], dict) or set(entry['setting']) != {'file', 'what'}:
            raise TableError(f'{where}: setting needs exactly file and what')
        if isinstance(entry['test'], str):
            entry['test'] = [entry['test']]
        for test in entry['test']:
            if not re.fullmatch(rf'({"|".join(map(re.escape, TEST_FILES))})::test_\w+(\[[\w.-]+\])?', test):
                raise TableError(f'{where}: test {test!r} is not <test file of tests/mutations>::<test function>')
        if not isinstance(entry['weakening'], list) or not entry['weakening']:
            raise TableError(f'{where}: weakening must be a list of edits')
        for edit in entry['weakening']:
            if not isinstance(edit, dict) or not set(edit) <= EDIT_KEYS or 'replace' not in edit:
                raise TableError(f'{where}: an edit has file, find or regex, replace and optionally after')
            if ('find' in edit) == ('regex' in edit):
                raise TableError(f'{where}: an edit has either find or regex')
            if not str(edit['file']).startswith('roles/') or '..' in str(edit['file']):
                raise TableError(f'{where}: edits change files under roles/ only')
    return entries


def apply_edit(roles_parent: Path, edit: dict) -> None:
    """Apply one edit to the copy; the target must occur exactly once (after the anchor, if one is given)."""
    path = roles_parent / edit['file']
    if not path.is_file():
        raise TableError(f'{edit["file"]}: no such file in the role')
    text = path.read_text()
    start = 0
    if 'after' in edit:
        anchors = text.count(edit['after'])
        if anchors != 1:
            raise TableError(f'{edit["file"]}: anchor {edit["after"]!r} found {anchors} times, expected once')
        start = text.index(edit['after']) + len(edit['after'])
    head, tail = text[:start], text[start:]
    if 'find' in edit:
        where = tail.find(edit['find'])
        if where < 0 or ('after' not in edit and tail.count(edit['find']) != 1):
            found = tail.count(edit['find'])
            raise TableError(f'{edit["file"]}: {edit["find"]!r} found {found} times, expected once')
        new = tail[:where] + edit['replace'] + tail[where + len(edit['find']) :]
    else:
        pattern = re.compile(edit['regex'], re.MULTILINE)
        matches = list(pattern.finditer(tail))
        if not matches or ('after' not in edit and len(matches) != 1):
            raise TableError(f'{edit["file"]}: /{edit["regex"]}/ matched {len(matches)} times, expected once')
        new = pattern.sub(lambda _m: edit['replace'], tail, count=1)
    if new == tail:
        raise TableError(f'{edit["file"]}: the edit changes nothing')
    path.write_text(head + new)


def copy_roles(dest: Path) -> Path:
    shutil.copytree(ROOT / 'roles', dest / 'roles', symlinks=True)
    return dest


def pytest_run(tests: list[str], roles_parent: Path, cache: Path, junit: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(MUTATIONS_ROLES=str(roles_parent / 'roles'), MUTATIONS_CACHE=str(cache), PYTHONDONTWRITEBYTECODE='1')
    cmd = [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rfE', f'--junitxml={junit}']
    cmd += [f'tests/mutations/{t}' for t in tests]
    try:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:  # reported as an error by the caller (no report, exit 124)
        return subprocess.CompletedProcess(cmd, 124, str(exc.stdout or ''), f'pytest timed out after {exc.timeout} s')


def outcomes(junit: Path) -> tuple[list[str], list[str], int]:
    """(failure messages, error messages, number of test cases) from pytest's JUnit XML."""
    failures, errors, cases = [], [], 0
    if not junit.exists():
        return failures, ['pytest wrote no report'], 0
    for case in ET.parse(junit).getroot().iter('testcase'):  # noqa: S314 (pytest's own report, written here)
        cases += 1
        for tag, bucket in (('failure', failures), ('error', errors)):
            for node in case.findall(tag):
                message = (node.get('message') or node.text or '').strip().splitlines()
                bucket.append(f'{case.get("name")}: {message[0] if message else tag}')
    return failures, errors, cases


def run_entry(entry: dict, work: Path, cache: Path) -> tuple[str, str]:
    """(result, detail): KILLED, SURVIVED, STALE or ERROR."""
    folder = work / entry['id']
    copy_roles(folder)
    try:
        for edit in entry['weakening']:
            apply_edit(folder, edit)
    except TableError as exc:
        return 'STALE', f'the weakening does not apply: {exc}'
    junit = folder / 'junit.xml'
    res = pytest_run(entry['test'], folder, cache, junit)
    failures, errors, cases = outcomes(junit)
    if errors or res.returncode not in (0, 1) or cases == 0:
        tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
        return 'ERROR', '; '.join(errors) or f'pytest exit {res.returncode}: {" | ".join(tail)}'
    if failures:
        return 'KILLED', failures[0]
    return 'SURVIVED', f'mutation survived: {entry["property"]}'


BEGIN = '<!-- mutation-table:begin -->'
END = '<!-- mutation-table:end -->'


def markdown(entries: list[dict]) -> str:
    """The table as Markdown for docs/security.md (between BEGIN and END; a unit test keeps them equal)."""
    lines = [BEGIN, '', '| Property | Setting | Weakened to | Test |', '| --- | --- | --- | --- |']
    for e in entries:
        edits = (
            '; '.join(
                f"`{(edit.get('find') or edit['regex']).strip()}` → `{edit['replace'].strip() or '(removed)'}`"
                for edit in e['weakening']
            )
            .replace('|', '\\|')
            .replace('\n', ' ')
        )
        setting = f"[`{e['setting']['file']}`](../{e['setting']['file']}): {e['setting']['what']}".replace('|', '\\|')
        tests = ', '.join(f'`{t}`' for t in e['test'])
        lines.append(f"| {e['property']} | {setting} | {edits} | {tests} |")
    return '\n'.join([*lines, '', END])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--only', nargs='+', metavar='ID', help='run these entries only')
    parser.add_argument('--jobs', type=int, default=int(os.environ.get('MUTATIONS_JOBS', '3')))
    parser.add_argument('--table', type=Path, default=TABLE, help='another table (an experiment)')
    parser.add_argument('--list', action='store_true', help='print the table and stop')
    parser.add_argument('--markdown', action='store_true', help="print docs/security.md's table and stop")
    parser.add_argument('--keep', action='store_true', help='keep the copies (printed) for a look afterwards')
    args = parser.parse_args(argv)
    try:
        entries = load_table(args.table)
    except TableError as exc:
        print(f'mutations: {exc}', file=sys.stderr)
        return 2
    if args.only:
        unknown = set(args.only) - {e['id'] for e in entries}
        if unknown:
            print(f'mutations: no entries {sorted(unknown)}', file=sys.stderr)
            return 2
        entries = [e for e in entries if e['id'] in args.only]
    if args.markdown:
        print(markdown(entries))
        return 0
    if args.list:
        for e in entries:
            print(f'{e["id"]:<28} {e["property"]}  [{e["setting"]["file"]}; {", ".join(e["test"])}]')
        return 0

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix='mut-'))
    cache = work / 'cache'
    cache.mkdir()
    width = max(len(e['id']) for e in entries)
    try:
        # The baseline: every named test on one unmodified copy, one pytest per test file side by side.
        base = copy_roles(work / 'baseline')
        by_file: dict[str, list[str]] = {}
        for test in sorted({t for e in entries for t in e['test']}):
            by_file.setdefault(test.split('::')[0], []).append(test)

        seconds: dict[str, float] = {}

        def baseline(item):
            file, tests = item
            junit, t0 = work / 'baseline' / f'{file}.xml', time.monotonic()
            res = pytest_run(tests, base, cache, junit)
            seconds[file] = time.monotonic() - t0
            return file, res, outcomes(junit)

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            runs = list(pool.map(baseline, by_file.items()))
        took = time.monotonic() - started
        broken = [(file, res) for file, res, (failures, errors, _n) in runs if res.returncode or failures or errors]
        for file, res in broken:
            print(f'--- {file}\n{res.stdout[-6000:]}{res.stderr[-2000:]}')
        if broken:
            print(f'BASELINE FAILED in {took:.1f} s: the tests must pass on the unmodified roles first')
            return 1
        cases = sum(n for _f, _r, (_fl, _er, n) in runs)
        print(f'{"baseline":<{width}}  passed   {took:5.1f} s  {cases} tests on the unmodified roles', flush=True)

        def one(entry):
            t0 = time.monotonic()
            result, detail = run_entry(entry, work, cache)
            line = f'{entry["id"]:<{width}}  {result:<8} {time.monotonic() - t0:5.1f} s  {detail}'
            print(line[:400], flush=True)
            return result

        # Longest first (by the baseline's time of the entry's test files), so that no slow entry starts last.
        order = sorted(entries, key=lambda e: -max(seconds[t.split('::')[0]] for t in e['test']))
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(one, order))
        killed = results.count('KILLED')
        total = time.monotonic() - started
        print(f'{killed}/{len(entries)} mutations killed in {total:.1f} s (jobs: {args.jobs})')
        return 0 if killed == len(entries) else 1
    finally:
        if args.keep:
            print(f'copies kept in {work}')
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
