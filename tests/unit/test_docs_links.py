# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every relative link of the collection's Markdown resolves, and README.md stays short.

Checked: README.md, every docs/*.md and every tracked *.md under roles/, bench/, inventories/ and tests/.
A link is an inline Markdown link or image, ``[text](target)``, or a reference definition,
``[label]: target``; code blocks and code spans are not read. http(s) and mailto links are skipped. A
relative target must name an existing file or directory, relative to the Markdown file that links to it;
an ``#anchor`` (alone, or after a ``.md`` file) must be the GitHub slug of a heading of that file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
README_LIMIT = 8000
SCANNED_DIRS = ('roles/', 'bench/', 'inventories/', 'tests/')
SKIPPED_DIRS = ('.venv/', '.collections/', '.build/', 'changelogs/')

FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
CODE_SPAN = re.compile(r'(`+)(?:(?!\1).)+?\1')
# [text](target) and ![alt](target); text may hold one level of brackets; target optionally in <...>,
# optionally followed by a "title".
INLINE_LINK = re.compile(
    r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(?:<(?P<angle>[^>]*)>|(?P<bare>[^)\s]*))(?:\s+["\'(][^)]*)?\s*\)'
)
REFERENCE_DEFINITION = re.compile(r'^ {0,3}\[[^\]]+\]:\s*(?:<(?P<angle>[^>]*)>|(?P<bare>\S+))')
ATX_HEADING = re.compile(r'^ {0,3}#{1,6}(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$')
SETEXT_UNDERLINE = re.compile(r'^ {0,3}(?:=+|-+)[ \t]*$')
HTML_ANCHOR = re.compile(r'<a\s+[^>]*(?:name|id)\s*=\s*["\']([^"\']+)["\']', re.IGNORECASE)
EXTERNAL = re.compile(r'^(?:[a-z][a-z0-9+.-]*:|//)', re.IGNORECASE)


def markdown_files() -> list[Path]:
    """README.md, docs/*.md (tracked or not yet) and the tracked *.md of the scanned directories."""
    files = {ROOT / 'README.md', *(ROOT / 'docs').glob('*.md')}
    try:
        listed = subprocess.run(
            ['git', 'ls-files', '-z', '--', '*.md'], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split('\0')
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (a built collection): every file
        listed = [p.relative_to(ROOT).as_posix() for d in SCANNED_DIRS for p in (ROOT / d).rglob('*.md')]
    for name in listed:
        if name.startswith(SCANNED_DIRS) and not name.startswith(SKIPPED_DIRS) and (ROOT / name).is_file():
            files.add(ROOT / name)
    return sorted(files)


def prose_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, line, line with code spans blanked out) of every line outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            continue
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        lines.append((number, line, CODE_SPAN.sub(lambda m: ' ' * len(m.group(0)), line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link markup and punctuation dropped, lowercase, spaces to hyphens."""
    text = re.sub(r'!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)', r'\1', heading)  # [text](url) -> text
    text = re.sub(r'<[^>]+>', '', text)  # inline HTML tags
    text = re.sub(r'[^\w\- ]', '', text.strip().lower())
    return text.replace(' ', '-')


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub creates in a Markdown file (a repeated heading gets -1, -2, ...)."""
    found, seen = set(), {}
    previous = ''
    for _number, line, prose in prose_lines(path.read_text(encoding='utf-8')):
        heading = None
        atx = ATX_HEADING.match(line)
        if atx:
            heading = atx.group('text') or ''
        elif SETEXT_UNDERLINE.match(line) and previous.strip() and not previous.lstrip().startswith(('-', '*', '|')):
            heading = previous.strip()
        if heading is not None:
            base = slug(heading)
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f'{base}-{count}')
        found.update(HTML_ANCHOR.findall(prose))
        previous = line
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link, image and reference definition of a Markdown file."""
    result = []
    for number, _raw, line in prose_lines(path.read_text(encoding='utf-8')):
        for match in INLINE_LINK.finditer(line):
            result.append((number, match.group('angle') if match.group('angle') is not None else match.group('bare')))
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            result.append((number, definition.group('angle') or definition.group('bare')))
    return result


def broken_links(path: Path) -> list[str]:
    """One message per link of ``path`` that does not resolve."""
    problems = []
    where = path.relative_to(ROOT)
    for number, target in links(path):
        if not target:
            problems.append(f'{where}:{number}: empty link target')
            continue
        if EXTERNAL.match(target):
            continue  # http(s), mailto and other schemes are not checked here
        file_part, _hash, anchor = target.partition('#')
        file_part = unquote(file_part.split('?', 1)[0])
        linked = (path.parent / file_part).resolve() if file_part else path
        if file_part and not linked.exists():
            problems.append(f'{where}:{number}: {target}: no such file or directory')
            continue
        if anchor:
            if linked.is_dir() or linked.suffix.lower() != '.md':
                problems.append(f'{where}:{number}: {target}: an anchor into something that is not Markdown')
            elif unquote(anchor).lower() not in anchors(linked):
                problems.append(f'{where}:{number}: {target}: no heading with the anchor #{anchor} there')
    return problems


def test_markdown_files_are_found():
    files = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert 'README.md' in files
    assert any(name.startswith('docs/') for name in files)
    assert any(name.startswith('roles/') for name in files)


def test_every_relative_link_resolves():
    problems = [problem for path in markdown_files() for problem in broken_links(path)]
    assert not problems, f'{len(problems)} broken link(s) in the Markdown files:\n' + '\n'.join(problems)


def test_readme_is_short():
    size = len((ROOT / 'README.md').read_text(encoding='utf-8'))
    assert size < README_LIMIT, (
        f'README.md has {size} characters (limit {README_LIMIT}): move detail into docs/ and link to it'
    )


def test_slug_follows_github():
    assert slug('Data safety: import, backup, restore, upgrade') == 'data-safety-import-backup-restore-upgrade'
    assert slug('Running them (`make bench`)') == 'running-them-make-bench'
    assert slug('With or without a registry and Galaxy') == 'with-or-without-a-registry-and-galaxy'
    assert slug('AWX / Ansible Automation Platform') == 'awx--ansible-automation-platform'
    assert slug('The [test bed](docs/test-bed.md)') == 'the-test-bed'
    assert slug('drift_schedule') == 'drift_schedule'


def test_broken_links_are_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], 'ROOT', tmp_path)
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'other.md').write_text('# Other page\n\n## Second part\n', encoding='utf-8')
    page = tmp_path / 'page.md'
    page.write_text(
        '# Page\n\n'
        '[ok](sub/other.md) [ok](sub/other.md#second-part) [ok](#page) [ok](sub/) [web](https://example.org/x)\n'
        '[gone](missing.md) [bad anchor](sub/other.md#third-part) [bad own anchor](#nowhere)\n'
        '`[in code](ignored.md)`\n\n'
        '```\n[in a block](ignored.md)\n```\n\n'
        '[ref]: nothing-here.md\n',
        encoding='utf-8',
    )
    problems = broken_links(page)
    assert [p.split(': ', 1)[1] for p in problems] == [
        'missing.md: no such file or directory',
        'sub/other.md#third-part: no heading with the anchor #third-part there',
        '#nowhere: no heading with the anchor #nowhere there',
        'nothing-here.md: no such file or directory',
    ]
