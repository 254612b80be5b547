# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: orthanc_patient_duplicates_info end to end on an Orthanc holding 10,000 patients.

1. ``tests/tools/synth_patients.py`` makes a synthetic clinic (seeded, with ground truth) and writes one tiny
   DICOM file per PatientID (8x8 pixels, one study each), cached in .cache/dedupe_orthanc/ (git-ignored);
2. PostgreSQL + Orthanc (``BENCH_ORTHANC_IMAGE``, default 1.13.0) start as containers with the ``pacs`` role's
   settings (PostgreSQL index);
3. the files are sent over REST (``POST /instances``, several threads);
4. the module runs through ``ansible-playbook`` (a real Ansible task on localhost), several times per page
   size with ``read_api: studies`` and once with ``read_api: find``: wall time of the whole task, the
   module's own read and matching times, the slowest page, HTTP requests by method;
5. the groups found are scored against the ground truth (pairwise precision and recall).

Writes bench/results/dedupe_orthanc.json (``--quick``: 1,000 patients, dedupe_orthanc_quick.json).
Everything it starts is removed at the end, also on failure.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_common as common
import _dedupe_common

_dedupe_common.setup_paths()
import synth_patients  # noqa: E402

ROOT = common.ROOT
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
API_USER = ('bench', 'bench-' + os.urandom(6).hex())


def upload(url, paths, threads):
    """POST every file to /instances with ``threads`` workers; return (seconds, failures)."""
    import base64

    token = base64.b64encode(f'{API_USER[0]}:{API_USER[1]}'.encode()).decode()

    def send(path):
        with open(path, 'rb') as handle:
            req = urllib.request.Request(f'{url}/instances', data=handle.read(), method='POST')  # noqa: S310
        req.add_header('Authorization', f'Basic {token}')
        req.add_header('Content-Type', 'application/dicom')
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (loopback)
            return resp.status

    started = time.monotonic()
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for status in pool.map(send, paths):
            if status != 200:
                failures += 1
    return time.monotonic() - started, failures


def run_module(url, page_size, read_api):
    """Run the module as one Ansible task; return (wall seconds, task result)."""
    play = [
        {
            'hosts': 'localhost',
            'gather_facts': False,
            'tasks': [
                {
                    'name': 'dedupe',
                    'clinicpacs.orthanc.orthanc_patient_duplicates_info': {
                        'page_size': page_size,
                        'include_patients': True,
                        'api_timeout': 600,
                        'read_api': read_api,
                    },
                }
            ],
        }
    ]
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        ORTHANC_URL=url,
        ORTHANC_USERNAME=API_USER[0],
        ORTHANC_PASSWORD=API_USER[1],
    )
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as handle:
        json.dump(play, handle)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [ANSIBLE_PLAYBOOK, '-i', 'localhost,', '-c', 'local', '-e', f'ansible_python_interpreter={sys.executable}',
             handle.name],
            capture_output=True, text=True, env=env, timeout=1800, check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
    finally:
        os.unlink(handle.name)
    out = json.loads(proc.stdout)
    result = out['plays'][0]['tasks'][0]['hosts']['localhost']
    if proc.returncode != 0:
        raise RuntimeError(f'module failed: {result.get("msg")}')
    return wall, result


def quality(groups, truth):
    found = set()
    for group in groups:
        ids = sorted(group['patient_ids'])
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                found.add((ids[i], ids[j]))
    true = synth_patients.true_pairs(truth)
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    return {'true_pairs': len(true), 'found_pairs': len(found), 'precision': round(precision, 4),
            'recall': round(recall, 4)}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='1,000 patients, one run per page size')
    parser.add_argument('--patients', type=int, help='number of PatientIDs (default 10000, quick 1000)')
    parser.add_argument('--page-sizes', default='1000', help='comma-separated page sizes to time (GET /studies)')
    parser.add_argument('--find-runs', type=int, default=1, help='runs with read_api=find (first page size)')
    parser.add_argument('--runs', type=int, help='timed runs per page size (default 3, quick 1)')
    parser.add_argument('--threads', type=int, default=6, help='upload threads')
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args(argv)
    n = args.patients or (1000 if args.quick else 10000)
    runs = args.runs or (1 if args.quick else 3)
    page_sizes = [int(p) for p in args.page_sizes.split(',') if p]

    common.log(f'generating {n} synthetic patients (seed {args.seed})')
    data = synth_patients.generate(n, args.seed)
    # partial birth dates (YYYY, YYYYMM) are part of the test data; pydicom warns about each one
    warnings.filterwarnings('ignore', message='Invalid value for VR DA', category=UserWarning)
    records = data['records']
    with tempfile.TemporaryDirectory(prefix='bench-dedupe-') as tmp, common.Resources('bench-dedupe') as res:
        started = time.monotonic()
        cache = os.path.join(ROOT, '.cache', 'dedupe_orthanc', f'{n}-{args.seed}')
        paths = sorted(os.path.join(cache, f) for f in os.listdir(cache)) if os.path.isdir(cache) else []
        if len(paths) != len(records):
            paths = synth_patients.write_dicom(records, cache + '.part', args.seed)
            shutil.rmtree(cache, ignore_errors=True)
            os.rename(cache + '.part', cache)
            paths = sorted(os.path.join(cache, f) for f in os.listdir(cache))
        write_seconds = time.monotonic() - started
        common.log(f'wrote {len(paths)} DICOM files in {write_seconds:.1f} s; starting PostgreSQL + Orthanc')
        stack = common.start_pacs_stack(res, 'pacs', os.path.join(tmp, 'config'), api_user=API_USER)
        common.log(f'Orthanc {stack["system"].get("Version")} at {stack["url"]}; uploading')
        upload_seconds, failures = upload(stack['url'], paths, args.threads)
        _status, stats = common.http_json('GET', f"{stack['url']}/statistics", *API_USER)
        common.log(f'uploaded in {upload_seconds:.1f} s ({len(paths) / upload_seconds:.0f}/s), {failures} failures; '
                   f"{stats['CountPatients']} patients, {stats['CountStudies']} studies")  # fmt: skip
        timings = []
        last = None
        plans = [('studies', size, runs) for size in page_sizes] + [('find', page_sizes[0], args.find_runs)]
        for read_api, page_size, count in plans:
            for run in range(count):
                wall, result = run_module(stack['url'], page_size, read_api)
                last = result
                entry = {
                    'read_api': read_api,
                    'page_size': page_size,
                    'run': run + 1,
                    'wall_seconds': round(wall, 2),
                    'read_seconds': result['stats']['read_seconds'],
                    'match_seconds': result['stats']['match_seconds'],
                    'slowest_page_seconds': result['stats']['slowest_page_seconds'],
                    'load_average_1min': round(os.getloadavg()[0], 1),
                    'orthanc_requests': result['orthanc_requests'],
                    'groups': len(result['groups']),
                }
                timings.append(entry)
                common.log(f'{read_api} page_size {page_size} run {run + 1}: {entry}')
        summary = {}
        for read_api, page_size, _count in plans:
            mine = [t for t in timings if t['page_size'] == page_size and t['read_api'] == read_api]
            if mine:
                summary[f'{read_api}/{page_size}'] = {
                    'median_wall_seconds': common.median([t['wall_seconds'] for t in mine]),
                    'median_read_seconds': common.median([t['read_seconds'] for t in mine]),
                    'median_match_seconds': common.median([t['match_seconds'] for t in mine]),
                }
        doc = {
            'machine': common.machine(),
            'versions': common.versions(stack['system'].get('Version')),
            'parameters': {'patients': n, 'seed': args.seed, 'page_sizes': page_sizes, 'runs': runs,
                           'upload_threads': args.threads, 'database': 'PostgreSQL index (pacs role settings)'},
            'setup': {'dicom_write_seconds': round(write_seconds, 1), 'upload_seconds': round(upload_seconds, 1),
                      'upload_failures': failures, 'orthanc_statistics': stats},
            'runs': timings,
            'summary': summary,
            'result': {
                'groups': len(last['groups']),
                'ambiguous': len(last['ambiguous']),
                'collisions': len(last['collisions']),
                'stats': last['stats'],
                'quality_vs_ground_truth': quality(last['groups'], data['truth']),
            },
        }  # fmt: skip
        common.write_result('dedupe_orthanc', args.quick, doc)
    return 0


if __name__ == '__main__':
    sys.exit(main())
