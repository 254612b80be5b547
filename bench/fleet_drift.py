# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark 2: a no-op drift check (playbooks/drift.yml) of 1, 5, 10 and 20 lightweight clinics.

    .venv/bin/python bench/fleet_drift.py            # 1, 5, 10, 20 clinics; linear and free strategy
    .venv/bin/python bench/fleet_drift.py --quick    # 1 and 5 clinics, linear only (*_quick.json)

Each clinic is a PostgreSQL + Orthanc pair of containers with the ``pacs`` role's settings (authentication
on, PostgreSQL index, DicomModalitiesInDatabase) plus an idle nginx container (drift.yml checks that the
clinic's three containers exist, run and use the pinned images). The clinics are hosts of a generated
inventory (``ansible_connection: local``); their variables point the role at their own directory
(``pacs_base_dir``: orthanc.json, users.json), containers (``pacs_project_name``) and loopback REST port
(``pacs_rest_port``), so ``playbooks/drift.yml`` itself runs against them unchanged.
bench/playbooks/fleet_converge.yml first writes each clinic's files (every file drift.yml compares: Orthanc's,
nginx's site, the Compose file, the PostgreSQL files) and declares its devices and peers;
then drift.yml must report changed=0 and exit 0. Timed: the whole ``ansible-playbook`` run, median of 3,
forks 20, for every fleet size. Everything is removed afterwards, also on failure or SIGTERM.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

import _bench_common as common

NAME = 'fleet_drift'
NGINX_IMAGE = os.environ.get('BENCH_NGINX_IMAGE', 'clinicpacs/nginx:1.26')
DRIFT_PLAYBOOK = os.path.join(common.ROOT, 'playbooks', 'drift.yml')
CONVERGE_PLAYBOOK = os.path.join(common.ROOT, 'bench', 'playbooks', 'fleet_converge.yml')
ANCHOR = {
    'seconds_per_host': 0.09,
    'hosts': 100,
    'tasks': 4,
    'what': 'published Ansible no-op measurement: about 0.09 s per host for 100 already-converged hosts, 4 tasks',
}
SETTINGS = {
    'pipelining': {
        'value': True,
        'why': 'ANSIBLE_PIPELINING=True: one process per task instead of copy-then-run; what an MSP should set '
        'for SSH clinics (it needs no requiretty for sudo). With connection local it changes little, it is set '
        'so the figures match the recommended configuration.',
    },
    'gather_facts': {
        'value': False,
        'why': 'playbooks/drift.yml sets gather_facts: false: the drift check uses no host facts, and fact '
        'gathering would be the most expensive task of a no-op run.',
    },
    'strategy': {
        'value': 'linear (every size) and free (largest fleet)',
        'why': 'linear (the default) waits for every clinic at each task; free lets each clinic run ahead, which '
        'helps when clinics answer at different speeds. free is timed at the largest fleet only (where it can '
        'matter) to keep the benchmark under half an hour on 2 cores; --free-sizes times it at other sizes.',
    },
    'forks': {'value': 20, 'why': 'one fork per clinic at the largest fleet size, as the issue asks'},
    'connection': {
        'value': 'local',
        'why': 'the clinics are containers on this machine; drift.yml runs its modules on the clinic box, '
        'which here is the benchmark host itself. An SSH fleet adds one connection setup per clinic.',
    },
    'become': {
        'value': False,
        'why': 'drift.yml sets become: true; the inventory sets ansible_become: false because the benchmark '
        'already runs as root and the host has no sudo. Over SSH, become adds a little per task.',
    },
    'stdout_callback': {
        'value': 'ansible.builtin.json',
        'why': 'the benchmark reads changed/failed per clinic from it; the drift_report callback is not enabled',
    },
}


def secret():
    return base64.b32encode(os.urandom(15)).decode().lower()


def clinic_vars(index, prefix, base_dir, port):
    """The inventory variables of one benchmark clinic: the role's own variables, nothing bench-specific."""
    return {
        'ansible_connection': 'local',
        'ansible_python_interpreter': sys.executable,
        'ansible_become': False,
        'pacs_base_dir': base_dir,
        'pacs_project_name': f'{prefix}-c{index:02d}',
        'pacs_rest_port': port,
        'pacs_orthanc_image': common.ORTHANC_IMAGE,
        'pacs_postgres_image': common.POSTGRES_IMAGE,
        'pacs_nginx_image': NGINX_IMAGE,
        'pacs_orthanc_name': f'Bench clinic {index:02d}',
        'pacs_postgres_password': secret(),
        'pacs_api_password': secret(),
        'pacs_admin_password': secret(),
        'pacs_users': [
            {'name': 'reception', 'password': secret()},
            {'name': 'dr-bench', 'password': secret()},
        ],
        'pacs_devices': [
            {'name': 'CBCT1', 'aet': 'CBCT1', 'host': '127.0.0.1', 'port': 10401},
            {'name': 'PANO1', 'aet': 'PANO1', 'host': '127.0.0.1', 'port': 10402, 'allow_move': False},
            {'name': 'SENSOR1', 'aet': 'SENSOR1', 'host': '127.0.0.1', 'port': 10403},
        ],
        # Stored by Orthanc only; nothing connects to it during the benchmark.
        'pacs_peers': [{'name': 'backup', 'url': 'http://127.0.0.1:9/', 'username': 'sync', 'password': secret()}],
    }


def write_inventory(path, clinics):
    doc = {'all': {'children': {'clinics': {'hosts': {c['host']: c['vars'] for c in clinics}}}}}
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(doc, handle, indent=1)  # JSON is YAML: ansible-inventory reads it with the yaml plugin
    os.chmod(path, 0o600)


def ansible_env(strategy='linear', forks=20):
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    env.update(
        PATH=f'{bin_dir}:/usr/bin:{env.get("PATH", "")}',
        ANSIBLE_COLLECTIONS_PATH=env.get('ANSIBLE_COLLECTIONS_PATH', os.path.join(common.ROOT, '.collections')),
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_PIPELINING='True',
        ANSIBLE_STRATEGY=strategy,
        ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
        ANSIBLE_RETRY_FILES_ENABLED='False',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_DEPRECATION_WARNINGS='False',
    )
    env.pop('ANSIBLE_CALLBACKS_ENABLED', None)  # the drift_report callback is not part of the timing
    return env


def playbook(playbook_path, inventory, hosts=None, tags=None, strategy='linear', forks=20):
    """One ansible-playbook run: wall seconds, exit code and the per-host stats of the json callback."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, playbook_path]
    if hosts:
        argv += ['--limit', ','.join(hosts)]
    if tags:
        argv += ['--tags', tags]
    load = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(strategy, forks), check=False)
    wall = time.monotonic() - start
    try:
        report = json.loads(proc.stdout[proc.stdout.index('{') :])
    except ValueError:
        report = {}
    stats = report.get('stats') or {}
    return {
        'rc': proc.returncode,
        'wall_seconds': round(wall, 2),
        'load_average_1min_before': round(load, 2),
        'hosts': len(stats),
        'changed': sum(s.get('changed', 0) for s in stats.values()),
        'failed': sum(s.get('failures', 0) + s.get('unreachable', 0) for s in stats.values()),
        'tasks_per_host': max((s.get('ok', 0) + s.get('skipped', 0) for s in stats.values()), default=0),
        '_stats': stats,
        '_output': proc.stdout[-6000:] + proc.stderr[-3000:],
    }


def check_ok(label, result, expect_hosts):
    if result['rc'] != 0 or result['failed'] or result['hosts'] != expect_hosts:
        raise RuntimeError(
            f'{label}: exit {result["rc"]}, {result["failed"]} failed/unreachable, {result["hosts"]} of '
            f'{expect_hosts} clinics in the recap.\n{result["_output"]}'
        )


def start_clinic(res, clinic):
    """PostgreSQL, Orthanc and an idle nginx under the container names the role derives; waits for Orthanc."""
    var = clinic['vars']
    tag = clinic['tag']
    net = res.network(f'{tag}-net')
    res.run(
        f'{tag}-postgres',
        common.POSTGRES_IMAGE,
        [
            '--network', net, '--network-alias', 'postgres',
            '-e', 'POSTGRES_USER=orthanc', '-e', f'POSTGRES_PASSWORD={var["pacs_postgres_password"]}',
            '-e', 'POSTGRES_DB=orthanc',
        ],
    )  # fmt: skip
    process, command = common.orthanc_process()
    orthanc = res.run(
        f'{tag}-orthanc',
        common.ORTHANC_IMAGE,
        [
            '--network', net,
            '-v', f'{var["pacs_base_dir"]}/orthanc:/etc/orthanc:ro',
            '-p', f'127.0.0.1:{var["pacs_rest_port"]}:8042',
            *process,
        ],
        command,
    )  # fmt: skip
    res.run(f'{tag}-nginx', NGINX_IMAGE, ['--network', net])
    url = f'http://127.0.0.1:{var["pacs_rest_port"]}'
    return common.wait_orthanc(url, 'ansible', var['pacs_api_password'], timeout=600, container=orthanc)


def make_clinics(res, workdir, count):
    clinics = []
    for index in range(1, count + 1):
        base_dir = os.path.join(workdir, f'clinic-{index:02d}')
        os.makedirs(os.path.join(base_dir, 'orthanc'))
        os.chmod(os.path.join(base_dir, 'orthanc'), 0o755)  # noqa: S103 (uid 4242 in the container enters it)
        clinics.append(
            {
                'host': f'clinic-{index:02d}',
                'tag': f'c{index:02d}',
                'vars': clinic_vars(index, res.prefix, base_dir, common.free_port()),
            }
        )
    return clinics


def plot(rows, path):
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        common.log('matplotlib not installed: no plot')
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for strategy in sorted({r['strategy'] for r in rows}):
        mine = [r for r in rows if r['strategy'] == strategy]
        xs = [r['clinics'] for r in mine]
        left.plot(xs, [r['wall_seconds_median'] for r in mine], marker='o', label=f'strategy {strategy}')
        right.plot(xs, [r['seconds_per_clinic'] for r in mine], marker='o', label=f'strategy {strategy}')
    tasks = max((r['tasks_per_host'] for r in rows), default=0)
    right.axhline(
        ANCHOR['seconds_per_host'] * tasks / ANCHOR['tasks'], linestyle='--', color='grey',
        label=f'anchor 0.09 s/host for 4 tasks, scaled to {tasks} tasks',
    )  # fmt: skip
    left.set_xlabel('clinics (forks 20)')
    left.set_ylabel('ansible-playbook drift.yml, wall seconds (median of 3)')
    left.set_title('No-op drift check of the fleet')
    right.set_xlabel('clinics (forks 20)')
    right.set_ylabel('seconds per clinic')
    right.set_title('time per clinic')
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    common.log(f'wrote {os.path.relpath(path, common.ROOT)}')
    return os.path.relpath(path, common.ROOT)


def measure(inventory, clinics, sizes, strategies, runs, forks):
    """``strategies``: {strategy: fleet sizes to time with it}."""
    rows = []
    for strategy, strategy_sizes in strategies.items():
        for size in (s for s in sizes if s in strategy_sizes):
            hosts = [c['host'] for c in clinics[:size]]
            samples = []
            for attempt in range(runs):
                result = playbook(DRIFT_PLAYBOOK, inventory, hosts, strategy=strategy, forks=forks)
                check_ok(f'drift.yml, {size} clinics, {strategy}', result, size)
                if result['changed']:
                    raise RuntimeError(f'drift.yml reported changed={result["changed"]}: not a no-op')
                samples.append(result)
                common.log(
                    f'{strategy} {size:2d} clinics run {attempt + 1}/{runs}: {result["wall_seconds"]} s '
                    f'(load {result["load_average_1min_before"]})'
                )
            wall = common.median([s['wall_seconds'] for s in samples])
            tasks = samples[0]['tasks_per_host']
            rows.append(
                {
                    'clinics': size,
                    'strategy': strategy,
                    'wall_seconds_median': round(wall, 2),
                    'seconds_per_clinic': round(wall / size, 3),
                    'tasks_per_host': tasks,
                    'seconds_per_host_task': round(wall / size / tasks, 4) if tasks else None,
                    'changed': sum(s['changed'] for s in samples),
                    'exit_codes': [s['rc'] for s in samples],
                    'wall_seconds_runs': [s['wall_seconds'] for s in samples],
                    'load_average_1min_before_runs': [s['load_average_1min_before'] for s in samples],
                }
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='1 and 5 clinics, linear strategy only')
    parser.add_argument('--sizes', help='comma-separated fleet sizes (default 1,5,10,20; quick 1,5)')
    parser.add_argument('--strategies', help='comma-separated (default linear,free; quick linear)')
    parser.add_argument(
        '--free-sizes', help='fleet sizes timed with strategy free too (default: the largest only, to save time)'
    )
    parser.add_argument('--runs', type=int, default=3, help='timed runs per size and strategy (median)')
    parser.add_argument('--forks', type=int, default=20)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in (args.sizes or ('1,5' if args.quick else '1,5,10,20')).split(',')})
    strategies = (args.strategies or ('linear' if args.quick else 'linear,free')).split(',')
    count = max(sizes)
    free_sizes = {int(s) for s in (args.free_sizes or str(count)).split(',')}
    strategies = {name: (free_sizes if name == 'free' else set(sizes)) for name in strategies}

    with tempfile.TemporaryDirectory(prefix='bench-fleet-') as workdir, common.Resources('bench-fleet') as res:
        os.chmod(workdir, 0o755)  # noqa: S103 (Orthanc, uid 4242, reads its configuration below it)
        clinics = make_clinics(res, workdir, count)
        inventory = os.path.join(workdir, 'hosts.yml')
        write_inventory(inventory, clinics)

        common.log(f'{count} clinics: writing orthanc.json, postgresql.json, users.json (fleet_converge.yml)')
        files = playbook(CONVERGE_PLAYBOOK, inventory, tags='files', forks=args.forks)
        check_ok('fleet_converge.yml --tags files', files, count)

        common.log(f'starting {3 * count} containers in parallel')
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            systems = list(pool.map(lambda c: start_clinic(res, c), clinics))
        startup = round(time.monotonic() - start, 1)
        common.log(f'every Orthanc answers after {startup} s')

        api = playbook(CONVERGE_PLAYBOOK, inventory, tags='api', forks=args.forks)
        check_ok('fleet_converge.yml --tags api', api, count)
        # One untimed run over the whole fleet: must be a no-op, and warms the caches.
        warmup = playbook(DRIFT_PLAYBOOK, inventory, forks=args.forks)
        check_ok('drift.yml warm-up', warmup, count)
        if warmup['changed']:
            raise RuntimeError(f'drift.yml after converging reported changed={warmup["changed"]}:\n{warmup["_output"]}')
        common.log(f'warm-up drift run of {count} clinics: no-op in {warmup["wall_seconds"]} s')

        rows = measure(inventory, clinics, sizes, strategies, args.runs, args.forks)
        orthanc_version = systems[0].get('Version')

    png = None if args.quick else plot(rows, os.path.join(common.RESULTS, f'{NAME}.png'))
    largest = {r['strategy']: r for r in rows if r['clinics'] == count}
    tasks = max(r['tasks_per_host'] for r in rows)
    linear = largest.get('linear') or next(iter(largest.values()))
    anchor_scaled = ANCHOR['seconds_per_host'] * tasks / ANCHOR['tasks']
    common.write_result(
        NAME,
        args.quick,
        {
            'machine': common.machine(),
            'versions': common.versions(orthanc_version, {'nginx_image': NGINX_IMAGE}),
            'parameters': {
                'clinic_counts': sizes,
                'strategies': {name: sorted(timed) for name, timed in strategies.items()},
                'forks': args.forks,
                'timed_runs': args.runs,
                'containers_per_clinic': 'PostgreSQL + Orthanc (role settings) + idle nginx (default config)',
                'per_clinic': {'devices': 3, 'users': 4, 'peers': 1},
                'users_note': '2 staff users + the automation account + the administrator',
                'playbook': 'playbooks/drift.yml, unchanged (targeted through inventory variables)',
                'converge_playbook': 'bench/playbooks/fleet_converge.yml',
                'inventory': 'generated: group clinics, host clinic-NN, ansible_connection local; role variables '
                'pacs_base_dir, pacs_project_name, pacs_rest_port, the image pins, passwords, devices, users, peers',
                'timed': 'wall time of the whole ansible-playbook process, --limit to the first N clinics',
            },
            'ansible_settings': SETTINGS,
            'anchor': ANCHOR,
            'figures': {
                'runs': rows,
                'container_startup_seconds': startup,
                'warmup_seconds': warmup['wall_seconds'],
                'tasks_per_clinic': tasks,
                'largest_fleet': count,
                'largest_fleet_seconds_per_clinic': linear['seconds_per_clinic'],
                'anchor_seconds_per_host_scaled_to_our_tasks': round(anchor_scaled, 3),
                'ratio_to_anchor': round(linear['seconds_per_clinic'] / ANCHOR['seconds_per_host'], 2),
                'ratio_to_scaled_anchor': round(linear['seconds_per_clinic'] / anchor_scaled, 2),
                'plot': png,
            },
            'load_average_1min_end': round(os.getloadavg()[0], 2),
        },
    )
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except RuntimeError as exc:  # a set-up step failed or the drift check was not a no-op: nothing measured
        common.log(f'FAILED, nothing measured, no result file written: {exc}')
        sys.exit(1)
