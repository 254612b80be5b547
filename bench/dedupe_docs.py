# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the duplicate-matching figures of docs/duplicates.md from the result files.

The figures are never typed by hand: this script reads bench/results/dedupe_quality.json and dedupe_scale.json
and rewrites the block between ``<!-- dedupe-figures -->`` and ``<!-- /dedupe-figures -->`` in docs/duplicates.md.
The duplicate-matching rows of docs/performance.md's table come from tools/bench_figures.py.

    .venv/bin/python bench/dedupe_docs.py           # rewrite the docs
    .venv/bin/python bench/dedupe_docs.py --check   # exit 1 when the docs differ from the results
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'bench', 'results')
DUPLICATES = os.path.join(ROOT, 'docs', 'duplicates.md')
BLOCK = re.compile(r'(<!-- dedupe-figures -->\n).*?(<!-- /dedupe-figures -->)', re.S)
ROLES = {
    'synth_patients': 'tuning set (`tests/tools/synth_patients.py`)',
    'synth_patients_iberian': 'second generator, tuned on since issue 18 (`tests/tools/synth_patients_iberian.py`)',
}


def load(name):
    with open(os.path.join(RESULTS, name), encoding='utf-8') as handle:
        return json.load(handle)


def scale_sizes(doc):
    return (doc.get('figures') or {}).get('sizes') or doc.get('runs') or []


def scale_text(sizes):
    parts = []
    for s in sizes:
        cpu = ''
        if 'match_cpu_seconds' in s:
            cpu = f' ({s["match_cpu_seconds"]:.1f} s CPU, load average {s.get("load_average_1min_after", 0):.0f})'
        parts.append(f'{s["records"]:,} records {s["match_seconds"]:.1f} s{cpu}')
    return ', '.join(parts)


def quality_block(quality, scale):
    lines = [
        '| generator | records | precision | recall | recall with the ambiguous lists | ambiguous records |',
        '| --- | ---: | ---: | ---: | ---: | ---: |',
    ]
    for run in quality['runs']:
        lines.append(
            f'| {ROLES.get(run.get("generator", "synth_patients"), run.get("generator"))} | {run["records"]:,} | '
            f'{run["precision"]:.3f} | {run["recall"]:.3f} | {run.get("recall_with_ambiguous", run["recall"]):.3f} | '
            f'{run["ambiguous_records"]:,} |'
        )
    sizes = scale_text(scale_sizes(scale))
    lines.append('')
    lines.append(
        f'Precision and recall are of the pairs in definite groups ({quality["date"][:10]}, '
        '`bench/results/dedupe_quality.json`); matching time: '
        f'{sizes} (`bench/results/dedupe_scale.json`).'
    )
    return '\n'.join(lines) + '\n'


def render():
    quality, scale = load('dedupe_quality.json'), load('dedupe_scale.json')
    with open(DUPLICATES, encoding='utf-8') as handle:
        dup = handle.read()
    if not BLOCK.search(dup):
        raise SystemExit(f'{DUPLICATES}: no <!-- dedupe-figures --> block')
    dup = BLOCK.sub(lambda m: m.group(1) + quality_block(quality, scale) + m.group(2), dup)
    return {DUPLICATES: dup}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='only compare; exit 1 when a doc is out of date')
    args = parser.parse_args(argv)
    stale = []
    for path, text in render().items():
        with open(path, encoding='utf-8') as handle:
            current = handle.read()
        if current == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if not args.check:
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(text)
    if args.check and stale:
        print('out of date with bench/results: ' + ', '.join(stale) + ' (run bench/dedupe_docs.py)')
        return 1
    print(('rewrote ' + ', '.join(stale)) if stale else 'docs match the results')
    return 0


if __name__ == '__main__':
    sys.exit(main())
