# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time and memory of the duplicate-patient matcher on 10k, 100k and 1M synthetic patients.

Each size runs in its own Python process (so peak memory is that size's own): generate the records,
build PatientRecords, then time ``find_duplicates``. Peak memory is the process's maximum resident set
size (resource.getrusage), reported before and after matching. Writes bench/results/dedupe_scale.json
and bench/results/dedupe_scale.png (matplotlib, if installed).

Run: .venv/bin/python bench/dedupe_scale.py [--quick] [--sizes 10000,100000,1000000]
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

from _dedupe_common import RESULTS, machine, setup_paths


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(n_records, seed):
    """Run one size in this process and return its figures."""
    setup_paths()
    import synth_patients
    from ansible_collections.clinicpacs.orthanc.plugins.module_utils import patient_matching

    base = _rss_mib()
    start = time.perf_counter()
    data = synth_patients.generate(n_records, seed=seed)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    records = patient_matching.records_from_observations(data['records'])
    del data
    prepared = time.perf_counter() - start
    before = _rss_mib()
    start = time.perf_counter()
    cpu_start = time.process_time()
    result = patient_matching.find_duplicates(records)
    matched = time.perf_counter() - start
    matched_cpu = time.process_time() - cpu_start
    after = _rss_mib()
    return {
        'records': n_records,
        'seed': seed,
        'generate_seconds': round(generated, 2),
        'prepare_seconds': round(prepared, 2),
        'match_seconds': round(matched, 2),
        # CPU time of this process: what the matching costs, whatever else the machine runs at the time
        'match_cpu_seconds': round(matched_cpu, 2),
        'load_average_1min_after': round(os.getloadavg()[0], 1),
        'microseconds_per_record': round(matched / n_records * 1e6, 1),
        'peak_rss_mib_before_matching': round(before, 1),
        'peak_rss_mib': round(after, 1),
        'matching_extra_rss_mib': round(after - before, 1),
        'interpreter_rss_mib': round(base, 1),
        'candidate_pairs': result['stats']['candidate_pairs'],
        'candidate_pairs_per_record': round(result['stats']['candidate_pairs'] / n_records, 3),
        'pairs_above_threshold': result['stats']['pairs_above_threshold'],
        'blocks': result['stats']['blocks'],
        'capped_blocks': result['stats']['capped_blocks'],
        'groups': len(result['groups']),
        'ambiguous': len(result['ambiguous']),
    }


def plot(runs, path):
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no plot written')
        return False
    sizes = [r['records'] for r in runs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.loglog(sizes, [r['match_seconds'] for r in runs], 'o-', label='matching time')
    first = runs[0]
    ax1.loglog(
        sizes,
        [first['match_seconds'] * s / first['records'] for s in sizes],
        '--',
        color='grey',
        label='linear from the smallest',
    )
    ax1.set_xlabel('patients (records)')
    ax1.set_ylabel('seconds')
    ax1.set_title('find_duplicates time')
    ax1.legend()
    ax1.grid(True, which='both', alpha=0.3)
    ax2.loglog(sizes, [r['peak_rss_mib'] for r in runs], 's-', label='peak RSS (process)')
    ax2.loglog(sizes, [max(r['matching_extra_rss_mib'], 0.1) for r in runs], '^-', label='added by matching')
    ax2.set_xlabel('patients (records)')
    ax2.set_ylabel('MiB')
    ax2.set_title('memory')
    ax2.legend()
    ax2.grid(True, which='both', alpha=0.3)
    fig.suptitle(f'clinicpacs.orthanc patient_matching, {os.cpu_count()} CPU, Python {sys.version.split()[0]}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='10k only (for CI)')
    parser.add_argument('--sizes', default='10000,100000,1000000')
    parser.add_argument('--seed', type=int, default=21)
    parser.add_argument('--one', type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    parser.add_argument(
        '--output',
        help='result file (default: bench/results/dedupe_scale.json, or dedupe_scale_quick.json with --quick)',
    )
    args = parser.parse_args(argv)
    if not args.output:
        args.output = os.path.join(RESULTS, 'dedupe_scale_quick.json' if args.quick else 'dedupe_scale.json')
    if args.one:
        print(json.dumps(measure(args.one, args.seed)))
        return 0
    sizes = [10000] if args.quick else [int(s) for s in args.sizes.split(',')]
    runs = []
    for size in sizes:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), '--one', str(size), '--seed', str(args.seed)],
            check=True,
            capture_output=True,
            text=True,
        )
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"{size:>8} records: {run['match_seconds']:>8.2f} s matching, {run['peak_rss_mib']:>8.1f} MiB peak RSS, "
            f"{run['candidate_pairs']} candidate pairs ({run['candidate_pairs_per_record']}/record)"
        )
    out = {
        'benchmark': 'dedupe_scale',
        'date': datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': machine(),
        'parameters': {
            'sizes': sizes,
            'seed': args.seed,
            'quick': args.quick,
            'generator': 'tests/tools/synth_patients.py defaults',
            'matcher': 'DEFAULT_CONFIG',
        },
        'runs': runs,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, 'w', encoding='utf-8') as handle:
        json.dump(out, handle, indent=1)
        handle.write('\n')
    print(f'wrote {args.output}')
    if not args.quick and plot(runs, os.path.splitext(args.output)[0] + '.png'):
        print('wrote ' + os.path.splitext(args.output)[0] + '.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
