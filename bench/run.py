# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the benchmarks (``make bench``) and write bench/results/SUMMARY.md from every result file.

    .venv/bin/python bench/run.py                  # every benchmark, full size
    .venv/bin/python bench/run.py --quick          # small versions (results in *_quick.json)
    .venv/bin/python bench/run.py --only ingest    # one benchmark (repeat --only, or NAME,NAME)
    .venv/bin/python bench/run.py --summary-only   # only rewrite SUMMARY.md from bench/results/*.json

Each benchmark is its own script and process; one that fails does not stop the others, and the exit
status is 1 when any failed. The summary reads every bench/results/*.json (the dedupe ones too) and
skips keys it does not know, so a result file of another shape is listed rather than breaking it.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_RESULTS: another folder for the results (make test's smoke run of every benchmark writes under .cache).
RESULTS = os.environ.get('BENCH_RESULTS') or os.path.join(ROOT, 'bench', 'results')
SUMMARY = os.path.join(RESULTS, 'SUMMARY.md')

# name -> script; the order is the order of a full run (cheap first).
BENCHMARKS = {
    'dedupe_quality': 'bench/dedupe_quality.py',
    'dedupe_scale': 'bench/dedupe_scale.py',
    'dedupe_orthanc': 'bench/dedupe_orthanc.py',
    'modules_vs_uri': 'bench/modules_vs_uri.py',
    'ingest': 'bench/ingest.py',
    'fleet_drift': 'bench/fleet_drift.py',
}


def run(names, quick):
    failed = []
    for name in names:
        script = os.path.join(ROOT, BENCHMARKS[name])
        if not os.path.exists(script):
            print(f'== {name}: {BENCHMARKS[name]} not found, skipped', flush=True)
            continue
        argv = [sys.executable, script] + (['--quick'] if quick else [])
        print(f'== {name}: {" ".join(os.path.relpath(a, ROOT) if a == script else a for a in argv[1:])}', flush=True)
        start = time.monotonic()
        code = subprocess.run(argv, cwd=ROOT, check=False).returncode
        print(f'== {name}: exit {code} after {time.monotonic() - start:.0f} s', flush=True)
        if code != 0:
            failed.append(name)
    return failed


# ---------------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------------


def _get(doc, *keys, default=None):
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return default
        doc = doc[key]
    return doc


def _num(value, digits=1):
    if isinstance(value, bool) or value is None:
        return '—' if value is None else str(value)
    if isinstance(value, int):
        return f'{value:,}'
    if isinstance(value, float):
        return f'{value:,.{digits}f}'
    return str(value)


def _context(doc):
    machine = doc.get('machine') or {}
    versions = doc.get('versions') or {}
    parts = []
    if machine:
        cpu = f'{machine.get("cpu_count", "?")} CPU'
        if machine.get('cpu_model'):
            cpu += f' ({machine["cpu_model"]})'
        if machine.get('memory_gib'):
            cpu += f', {machine["memory_gib"]} GiB'
        parts.append(cpu)
    for key, label in (('orthanc', 'Orthanc'), ('ansible_core', 'ansible-core'), ('python', 'Python'),
                       ('docker', 'Docker'), ('dcmtk', 'dcmtk')):  # fmt: skip
        value = versions.get(key) or (machine.get(key) if key == 'python' else None)
        if value:
            parts.append(f'{label} {value}')
    when = doc.get('date') or doc.get('timestamp') or '?'
    return f'_{when}; {"; ".join(parts)}_' if parts else f'_{when}_'


def summary_modules_vs_uri(doc):
    fig = doc.get('figures') or {}
    par = doc.get('parameters') or {}
    mod, uri = fig.get('modules') or {}, fig.get('uri') or {}
    runs = par.get('timed_runs', '?')
    lines = [
        f'One clinic: {par.get("devices", "?")} devices, {par.get("users", "?")} users, {par.get("peers", "?")} peers; '
        f'converged runs, requests counted by a proxy between Ansible and Orthanc; wall time median of {runs}.',
        '',
        '| playbook | REST requests | writes | changed | wall time (s) |',
        '|---|---:|---:|---:|---:|',
    ]
    for label, res in (('clinicpacs.orthanc modules', mod), ('ansible.builtin.uri per object', uri)):
        lines.append(
            f'| {label} | {_num(res.get("requests"))} | {_num(res.get("writes"))} | {_num(res.get("changed"))} | '
            f'{_num(res.get("wall_seconds_median"), 2)} |'
        )
    lines.append('')
    reads = _get(doc, 'targets', 'reads_by_kind') or {}
    if fig.get('request_ratio_uri_to_modules') is not None:
        lines.append(
            f'- {fig["request_ratio_uri_to_modules"]}x fewer requests, '
            f'{_num(fig.get("wall_time_ratio_uri_to_modules"))}x less wall time with the modules.'
        )
    if mod.get('by_path'):
        lines.append('- Modules\' requests: ' + ', '.join(f'`{k}` x{v}' for k, v in mod['by_path'].items()) + '.')
    if reads:
        lines.append('- Reads per object kind: ' + ', '.join(f'{k} {v}' for k, v in reads.items()) + ', users 0.')
    users = fig.get('users') or {}
    if users.get('restart_seconds') is not None:
        lines.append(
            f'- Users live in a configuration file either way (no REST request); a change costs an Orthanc '
            f'restart of {users["restart_seconds"]} s.'
        )
    loads = (mod.get('load_average_1min_before_runs') or []) + (uri.get('load_average_1min_before_runs') or [])
    if loads:
        lines.append(_load_note(loads, (doc.get('machine') or {}).get('cpu_count')))
    targets = doc.get('targets') or {}
    if targets:
        marks = [
            f'{k.replace("_", " ")}: {"yes" if v else "**no**"}' for k, v in targets.items() if isinstance(v, bool)
        ]
        lines.append('- Targets met? ' + '; '.join(marks) + '.')
    return lines


def _load_note(loads, cpus):
    note = f'- 1-minute load average before the timed steps: {min(loads):.1f} to {max(loads):.1f}'
    if cpus:
        note += f' on {cpus} CPUs'
    if cpus and max(loads) > cpus:
        note += ' (other jobs were running: absolute figures are pessimistic, compare the ratios)'
    return note + '.'


def summary_ingest(doc):
    fig = doc.get('figures') or {}
    par = doc.get('parameters') or {}
    targets = fig.get('targets') or {}
    ratios = fig.get('ratios') or {}
    lines = [
        f'{_num(par.get("instances"))} instances per target ({_num(par.get("megabytes"))} MB) made from '
        f'{par.get("samples", "?")} real samples with fresh UIDs, {par.get("senders", "?")} parallel dcmtk storescu '
        f'from registered addresses, slices of {_num(par.get("slice_instances"))}; path: {par.get("dicom_path", "?")}.',
        '',
        '| target | index | instances/s | x bare | x stock | p50 / p99 latency (ms) | CPU ms per instance | stored |',
        '|---|---|---:|---:|---:|---:|---:|---:|',
    ]
    for label, res in targets.items():
        backend = res.get('database_backend') or ''
        backend = 'PostgreSQL' if 'PostgreSQL' in backend else ('SQLite' if 'SQLite' in backend else 'files')
        ratio = ratios.get(label) or {}
        lines.append(
            f'| {label} | {backend} | {_num(res.get("instances_per_second"))} | {_num(ratio.get("to_bare"), 2)} | '
            f'{_num(ratio.get("to_stock"), 2)} | '
            f'{_num(res.get("latency_ms_p50"))} / {_num(res.get("latency_ms_p99"))} | '
            f'{_num(res.get("cpu_ms_per_instance"), 2)} | {_num(res.get("instances_stored"))} |'
        )
    lines.append('')
    main = fig.get('main', 'ours')
    if fig.get('ratio_ours_to_bare') is not None:
        lines.append(
            f'- {main}/bare: **{fig["ratio_ours_to_bare"]}**, {main}/stock: **{fig.get("ratio_ours_to_stock")}** '
            f'(goal: at least 0.9 and 1.0); last slice / first slice of {main}: {fig.get("last_slice_to_first_slice")}.'
        )
    for label, res in targets.items():
        rates = [s.get('instances_per_second') for s in res.get('slices') or [] if isinstance(s, dict)]
        if rates:
            lines.append(f'- {label}, instances/s per slice as the archive grows: {", ".join(_num(r) for r in rates)}.')
    loads = [
        s.get('load_average_1min_before')
        for res in targets.values()
        for s in res.get('slices') or []
        if isinstance(s, dict) and s.get('load_average_1min_before') is not None
    ]
    if loads:
        lines.append(_load_note(loads, (doc.get('machine') or {}).get('cpu_count')))
    anchor = doc.get('anchor') or {}
    if fig.get('ratio_ours_to_anchor') is not None:
        lines.append(
            f'- Anchor: {anchor.get("source", "Orthanc Book")}: ≈ {anchor.get("postgresql_instances_per_second")} '
            f'instances/s; ours is {fig["ratio_ours_to_anchor"]} of it on this machine.'
        )
    if fig.get('plot'):
        lines.append(f'- Plot: `{fig["plot"]}`.')
    return lines


def summary_fleet_drift(doc):
    fig = doc.get('figures') or {}
    par = doc.get('parameters') or {}
    per = par.get('per_clinic') or {}
    runs = par.get('timed_runs') or {}
    lines = [
        f'No-op drift check of lightweight clinics (PostgreSQL + Orthanc containers with the role\'s settings; '
        f'{per.get("devices", "?")} devices, {per.get("users", "?")} users, {per.get("peers", "?")} peer each), '
        f'forks {par.get("forks", "?")}, connection local, pipelining on, no fact gathering: the one-call '
        f'`playbooks/drift.yml` (median of {runs.get("drift.yml", "?")}) side by side with the former 19-task check '
        f'(`bench/playbooks/drift_before.yml`, {runs.get("drift_before.yml", "?")} run). Rows marked stand-in are '
        f'inventory hosts that share the real clinics\' containers.',
        '',
        '| clinics | playbook | wall time (s) | s per clinic | tasks per clinic | changed | exit codes | load before |',
        '|---:|---|---:|---:|---:|---:|---|---|',
    ]
    for row in fig.get('runs') or []:
        if isinstance(row, dict):
            size = f'{_num(row.get("clinics"))}{" (stand-in)" if row.get("stand_in") else ""}'
            lines.append(
                f'| {size} | {row.get("playbook", "drift.yml")} '
                f'| {_num(row.get("wall_seconds_median"), 1)} | {_num(row.get("seconds_per_clinic"), 2)} '
                f'| {_num(row.get("tasks_per_host"))} | {_num(row.get("changed"))} '
                f'| {", ".join(str(c) for c in row.get("exit_codes") or [])} '
                f'| {", ".join(str(v) for v in row.get("load_average_1min_before_runs") or [])} |'
            )
    lines.append('')
    if fig.get('seconds_per_clinic_at_20') is not None:
        lines.append(
            f'- Goal ≤ 1 s per clinic at 20 clinics: {_num(fig["seconds_per_clinic_at_20"], 2)} s '
            f'({"met" if fig.get("goal_1s_per_clinic_at_20_met") else "not met"} on this machine).'
        )
    if fig.get('stand_in_fleet_seconds') is not None:
        lines.append(
            f'- Goal: {par.get("stand_in_fleet")} clinics within 240 s: {_num(fig["stand_in_fleet_seconds"], 1)} s '
            f'({"met" if fig.get("goal_200_within_240s_met") else "not met"}).'
        )
    if fig.get('speedup_by_size'):
        lines.append(
            '- Former check / one-call check, same run: '
            + ', '.join(f'{k} clinics {v} times' for k, v in fig['speedup_by_size'].items())
            + '.'
        )
    if fig.get('requests_per_clinic'):
        lines.append(f'- Requests of one clinic\'s gather: `{json.dumps(fig["requests_per_clinic"], sort_keys=True)}`.')
    if fig.get('container_startup_seconds') is not None:
        lines.append(
            f'- All clinics\' containers started in parallel and healthy in {fig["container_startup_seconds"]} s.'
        )
    loads = [v for row in fig.get('runs') or [] for v in row.get('load_average_1min_before_runs') or []]
    if loads:
        lines.append(_load_note(loads, (doc.get('machine') or {}).get('cpu_count')))
    if fig.get('plot'):
        lines.append(f'- Plot: `{fig["plot"]}`.')
    return lines


def summary_dedupe_quality(doc):
    runs = doc.get('runs') or _get(doc, 'figures', 'runs') or []
    lines = [
        '| generator | records | precision | recall | F1 | ambiguous records | seconds |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for run in runs:
        if isinstance(run, dict):
            lines.append(
                f'| {run.get("generator", "synth_patients")} | {_num(run.get("records"))} | '
                f'{_num(run.get("precision"), 3)} | {_num(run.get("recall"), 3)} | '
                f'{_num(run.get("f1"), 3)} | {_num(run.get("ambiguous_records"))} | {_num(run.get("seconds"), 2)} |'
            )
    return lines if len(lines) > 2 else summary_generic(doc)


def summary_generic(doc):
    """Any result file: a table of the scalar values of its runs (or figures)."""
    rows = doc.get('runs') or _get(doc, 'figures', 'runs') or _get(doc, 'figures', 'sizes')
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        keys = [k for k in rows[0] if all(isinstance(r.get(k), (int, float, str)) or r.get(k) is None for r in rows)]
        keys = keys[:8]
        lines = ['| ' + ' | '.join(keys) + ' |', '|' + '---:|' * len(keys)]
        lines += ['| ' + ' | '.join(_num(r.get(k), 3) for k in keys) + ' |' for r in rows]
        return lines
    figures = doc.get('figures')
    if isinstance(figures, dict):
        scalars = {k: v for k, v in figures.items() if isinstance(v, (int, float, str))}
        if scalars:
            return [f'- {k}: {_num(v, 3)}' for k, v in scalars.items()]
    return ['(no figures this summary knows how to show; see the JSON file)']


SUMMARISERS = {
    'modules_vs_uri': ('Modules vs the hand-written `uri` playbook', summary_modules_vs_uri),
    'ingest': ('C-STORE ingest: wire limit, stock Orthanc, our stack', summary_ingest),
    'ingest_tuning': ('C-STORE ingest: the tuning ladder', summary_ingest),
    'fleet_drift': ('Fleet drift check (no-op)', summary_fleet_drift),
    'dedupe_quality': ('Duplicate-patient matching: quality', summary_dedupe_quality),
    'dedupe_scale': ('Duplicate-patient matching: scale', summary_generic),
    'dedupe_orthanc': ('Duplicate-patient matching: read from Orthanc', summary_generic),
}


def write_summary():
    docs = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, '*.json'))):
        stem = os.path.basename(path)[:-5]
        base, quick = (stem[: -len('_quick')], True) if stem.endswith('_quick') else (stem, False)
        try:
            with open(path, encoding='utf-8') as handle:
                doc = json.load(handle)
        except (OSError, ValueError) as exc:
            print(f'summary: {os.path.relpath(path, ROOT)} unreadable ({exc}), skipped', file=sys.stderr)
            continue
        if not isinstance(doc, dict):
            continue
        # A full result wins over a quick one.
        if base not in docs or (docs[base][1] and not quick):
            docs[base] = (doc, quick, os.path.relpath(path, ROOT))
    order = [name for name in SUMMARISERS if name in docs] + sorted(n for n in docs if n not in SUMMARISERS)
    out = [
        '# Benchmark results',
        '',
        'Generated by `bench/run.py` from `bench/results/*.json`; do not edit by hand. '
        'How each benchmark works: `bench/README.md`.',
        '',
    ]
    for name in order:
        doc, quick, rel = docs[name]
        title, summarise = SUMMARISERS.get(name, (name, summary_generic))
        out.append(f'## {title}{" (quick run)" if quick else ""}')
        out.append('')
        out.append(f'`{rel}` — {_context(doc)}')
        out.append('')
        try:
            out.extend(summarise(doc))
        except Exception as exc:  # noqa: BLE001 (a result file of another shape must not break the summary)
            out.append(f'(could not summarise: {type(exc).__name__}: {exc})')
        out.append('')
    os.makedirs(RESULTS, exist_ok=True)
    with open(SUMMARY, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(out).rstrip() + '\n')
    print(f'wrote {os.path.relpath(SUMMARY, ROOT)} ({len(order)} benchmarks)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small versions of every benchmark (CI)')
    parser.add_argument(
        '--only', action='append', default=[], metavar='NAME', help=f'run only NAME ({", ".join(BENCHMARKS)})'
    )
    parser.add_argument('--summary-only', action='store_true', help='do not run anything, rewrite SUMMARY.md')
    args = parser.parse_args()
    names = [n for item in args.only for n in item.split(',') if n] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f'unknown benchmark {", ".join(unknown)}; known: {", ".join(BENCHMARKS)}')
    failed = [] if args.summary_only else run(names, args.quick)
    write_summary()
    if failed:
        print(f'failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
