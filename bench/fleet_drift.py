# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark 2: a no-op drift check of 1, 5, 20 and 50 lightweight clinics and a 200-clinic stand-in fleet,
the fast playbooks/drift.yml side by side with the drift check it replaced (bench/playbooks/drift_before.yml).

    .venv/bin/python bench/fleet_drift.py            # 1, 5, 20, 50 clinics and 200 stand-ins (*.json)
    .venv/bin/python bench/fleet_drift.py --quick    # 1 and 5 clinics, one run each (*_quick.json)

Each clinic is a PostgreSQL + Orthanc pair of containers with the ``pacs`` role's settings (authentication
on, PostgreSQL index, DicomModalitiesInDatabase) plus an idle nginx container (drift.yml checks that the
clinic's three containers exist, run and use the pinned images). The clinics are hosts of a generated
inventory (``ansible_connection: local``); their variables point the role at their own directory
(``pacs_base_dir``: orthanc.json, users.json), containers (``pacs_project_name``) and loopback REST port
(``pacs_rest_port``), so ``playbooks/drift.yml`` itself runs against them unchanged.
bench/playbooks/fleet_converge.yml first writes each clinic's files (every file drift.yml compares: Orthanc's,
nginx's site, the Compose file, the PostgreSQL files) and declares its devices and peers;
then drift.yml must report changed=0 and exit 0. Timed: the whole ``ansible-playbook`` run, median of
``--runs`` (the former playbook: ``--before-runs``), forks 20, strategy linear, for every fleet size.
The 200-clinic fleet is simulated: 200 inventory hosts, each a stand-in that shares the containers, files and
REST port of one of the real clinics (host N uses clinic N mod the largest size), with its own health history;
Ansible's work per clinic (a module run, the files rendered, the Orthanc and Docker reads) is the same, only the
containers are shared. The former playbook is not run at 200 (about 4.5 s per clinic: 15 minutes).
Everything is removed afterwards, also on failure or SIGTERM.
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
BEFORE_PLAYBOOK = os.path.join(common.ROOT, 'bench', 'playbooks', 'drift_before.yml')
PLAYBOOKS = {'drift.yml': DRIFT_PLAYBOOK, 'drift_before.yml': BEFORE_PLAYBOOK}
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
        'value': 'linear',
        'why': 'the default; the fast drift check runs one task per clinic, so a strategy that lets clinics run '
        'ahead has nothing to overlap',
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
    """The inventory variables of one benchmark clinic: the role's own variables (the critical disk level off)."""
    return {
        'ansible_connection': 'local',
        'ansible_python_interpreter': sys.executable,
        'ansible_become': False,
        'pacs_base_dir': base_dir,
        'pacs_data_dir': base_dir,
        'backup_dir': os.path.join(base_dir, 'backups'),
        'pacs_health_state_dir': os.path.join(os.path.dirname(base_dir), 'state'),
        # The clinics' data lie on this machine's disk, which a CI run fills with images and test data: its fill
        # is not the benchmark's subject and must not fail the run, so the critical disk level is off.
        'pacs_health_disk_used_critical_percent': None,
        # The benchmark starts each clinic's PostgreSQL and Orthanc itself, on one network (Orthanc reaches
        # PostgreSQL as `postgres`), without the Compose project's socket volume: the index over TCP.
        'pacs_postgres_unix_socket': False,
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


def write_inventory(path, clinics, stand_ins=0):
    """The clinics, plus ``stand_ins`` hosts standin-NNN that share the clinics' containers and files."""
    hosts = {c['host']: c['vars'] for c in clinics}
    for index in range(1, stand_ins + 1):
        clinic = clinics[(index - 1) % len(clinics)]
        # The clinic's own database server identifier (by default derived from the inventory host name).
        hosts[f'standin-{index:03d}'] = dict(clinic['vars'], pacs_orthanc_database_server_identifier=clinic['host'])
    doc = {'all': {'children': {'clinics': {'hosts': hosts}}}}
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


def start_clinic(res, clinic, net):
    """PostgreSQL, Orthanc and an idle nginx under the container names the role derives; waits for Orthanc.

    All clinics share one Docker network (50 networks exhaust Docker's default address pools): Orthanc finds
    its own PostgreSQL under the name ``postgres`` through an /etc/hosts entry."""
    var = clinic['vars']
    tag = clinic['tag']
    postgres = res.run(
        f'{tag}-postgres',
        common.POSTGRES_IMAGE,
        [
            '--network', net,
            '-e', 'POSTGRES_USER=orthanc', '-e', f'POSTGRES_PASSWORD={var["pacs_postgres_password"]}',
            '-e', 'POSTGRES_DB=orthanc',
        ],
    )  # fmt: skip
    address = subprocess.run(
        ['/usr/bin/docker', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', postgres],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    process, command = common.orthanc_process()
    orthanc = res.run(
        f'{tag}-orthanc',
        common.ORTHANC_IMAGE,
        [
            '--network', net, '--add-host', f'postgres:{address}',
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
        # A fresh complete backup, so that the clinic's health is not critical (no backup) in a no-op run.
        os.makedirs(os.path.join(base_dir, 'backups', time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())))
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
    for name in PLAYBOOKS:
        mine = [r for r in rows if r['playbook'] == name]
        xs = [r['clinics'] for r in mine]
        left.plot(xs, [r['wall_seconds_median'] for r in mine], marker='o', label=name)
        right.plot(xs, [r['seconds_per_clinic'] for r in mine], marker='o', label=name)
    right.axhline(1.0, linestyle='--', color='grey', label='goal: 1 s per clinic at 20 clinics')
    left.axhline(240, linestyle=':', color='grey', label='goal: 200 clinics within 240 s')
    for ax in (left, right):
        ax.set_xscale('log')
        ax.set_xlabel('clinics (forks 20; 200 = stand-in fleet)')
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    left.set_ylabel('wall seconds of the no-op check (median)')
    left.set_title('No-op drift check of the fleet')
    right.set_ylabel('seconds per clinic')
    right.set_title('time per clinic')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    common.log(f'wrote {os.path.relpath(path, common.ROOT)}')
    return os.path.relpath(path, common.ROOT)


def other_containers(prefix):
    out = subprocess.run(['/usr/bin/docker', 'ps', '-q'], capture_output=True, text=True, check=False).stdout.split()
    mine = subprocess.run(
        ['/usr/bin/docker', 'ps', '-q', '--filter', f'name={prefix}'], capture_output=True, text=True, check=False
    ).stdout.split()
    return len(out) - len(mine)


def measure(name, inventory, hosts, runs, forks, res):
    samples = []
    size = len(hosts)
    for attempt in range(runs):
        result = playbook(PLAYBOOKS[name], inventory, hosts, forks=forks)
        result['load_average_1min_after'] = round(os.getloadavg()[0], 2)
        result['other_containers'] = other_containers(res.prefix)
        check_ok(f'{name}, {size} clinics', result, size)
        if result['changed']:
            raise RuntimeError(f'{name} reported changed={result["changed"]}: not a no-op\n{result["_output"]}')
        samples.append(result)
        common.log(
            f'{name} {size:3d} clinics run {attempt + 1}/{runs}: {result["wall_seconds"]} s '
            f'(load {result["load_average_1min_before"]} before, {result["load_average_1min_after"]} after; '
            f'{result["other_containers"]} containers of others running)'
        )
    wall = common.median([s['wall_seconds'] for s in samples])
    return {
        'playbook': name,
        'clinics': size,
        'stand_in': any(h.startswith('standin-') for h in hosts),
        'wall_seconds_median': round(wall, 2),
        'seconds_per_clinic': round(wall / size, 3),
        'tasks_per_host': samples[0]['tasks_per_host'],
        'changed': sum(s['changed'] for s in samples),
        'exit_codes': [s['rc'] for s in samples],
        'wall_seconds_runs': [s['wall_seconds'] for s in samples],
        'load_average_1min_before_runs': [s['load_average_1min_before'] for s in samples],
        'load_average_1min_after_runs': [s['load_average_1min_after'] for s in samples],
        'other_containers_runs': [s['other_containers'] for s in samples],
    }


def rest_reads(inventory, host, forks):
    """The REST and Docker requests of one clinic's gather (from the module's own counters)."""
    env = ansible_env(forks=forks)
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, DRIFT_PLAYBOOK,
            '--limit', host]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    report = json.loads(proc.stdout[proc.stdout.index('{') :])
    for task in report['plays'][0]['tasks']:
        res = task['hosts'].get(host, {})
        if res.get('action') == 'clinicpacs.orthanc.orthanc_drift_info':
            return {k: res.get(k) for k in ('rest_reads', 'orthanc_requests', 'docker_requests', 'module_runs')}
    return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='1 and 5 clinics, one run each, no stand-in fleet')
    parser.add_argument('--sizes', help='comma-separated fleet sizes (default 1,5,20,50; quick 1,5)')
    parser.add_argument('--stand-ins', type=int, help='size of the simulated fleet (default 200; quick 0)')
    parser.add_argument('--runs', type=int, help='timed runs of drift.yml per size (median; default 3, quick 1)')
    parser.add_argument('--before-runs', type=int, help='timed runs of the former playbook (default 1)')
    parser.add_argument('--before-sizes', help='sizes at which the former playbook is timed (default all; quick 1)')
    parser.add_argument('--forks', type=int, default=20)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in (args.sizes or ('1,5' if args.quick else '1,5,20')).split(',')})
    stand_ins = args.stand_ins if args.stand_ins is not None else (0 if args.quick else 200)
    runs = args.runs or (1 if args.quick else 3)
    before_runs = args.before_runs or 1
    before_default = '1' if args.quick else ','.join(map(str, sizes))
    before_sizes = {int(s) for s in (args.before_sizes or before_default).split(',')}
    count = max(sizes)
    load_start = [round(x, 2) for x in os.getloadavg()]

    with tempfile.TemporaryDirectory(prefix='bench-fleet-') as workdir, common.Resources('bench-fleet') as res:
        os.chmod(workdir, 0o755)  # noqa: S103 (Orthanc, uid 4242, reads its configuration below it)
        clinics = make_clinics(res, workdir, count)
        inventory = os.path.join(workdir, 'hosts.yml')
        write_inventory(inventory, clinics, stand_ins)

        common.log(f'{count} clinics: writing orthanc.json, postgresql.json, users.json (fleet_converge.yml)')
        real = [c['host'] for c in clinics]
        files = playbook(CONVERGE_PLAYBOOK, inventory, real, tags='files', forks=args.forks)
        check_ok('fleet_converge.yml --tags files', files, count)

        common.log(f'starting {3 * count} containers in parallel')
        start = time.monotonic()
        net = res.network('net')
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(count, 10)) as pool:
            systems = list(pool.map(lambda c: start_clinic(res, c, net), clinics))
        startup = round(time.monotonic() - start, 1)
        common.log(f'every Orthanc answers after {startup} s')

        api = playbook(CONVERGE_PLAYBOOK, inventory, real, tags='api', forks=args.forks)
        check_ok('fleet_converge.yml --tags api', api, count)
        # Untimed runs over the whole fleet: must be no-ops; they warm the caches and the fast check's image facts.
        everyone = real + [f'standin-{i:03d}' for i in range(1, stand_ins + 1)]
        # (The former playbook is not warmed up: it would take minutes; its timed runs are checked as no-ops too.)
        warmup = playbook(DRIFT_PLAYBOOK, inventory, everyone, forks=args.forks)
        check_ok('drift.yml warm-up', warmup, len(everyone))
        if warmup['changed']:
            raise RuntimeError(f'drift.yml after converging reported changed={warmup["changed"]}:\n{warmup["_output"]}')
        common.log(f'warm-up drift.yml of {len(everyone)} clinics: no-op in {warmup["wall_seconds"]} s')
        reads = rest_reads(inventory, real[0], args.forks)

        rows = []
        for size in sizes:
            rows.append(measure('drift.yml', inventory, real[:size], runs, args.forks, res))
            if size in before_sizes:
                rows.append(measure('drift_before.yml', inventory, real[:size], before_runs, args.forks, res))
        for size in sorted({s for s in (50, stand_ins) if s > count and s <= stand_ins}):
            hosts = [f'standin-{i:03d}' for i in range(1, size + 1)]
            rows.append(measure('drift.yml', inventory, hosts, runs, args.forks, res))
        orthanc_version = systems[0].get('Version')

    png = None if args.quick else plot(rows, os.path.join(common.RESULTS, f'{NAME}.png'))
    new = {r['clinics']: r for r in rows if r['playbook'] == 'drift.yml'}
    old = {r['clinics']: r for r in rows if r['playbook'] == 'drift_before.yml'}
    at20 = new.get(20)
    common.write_result(
        NAME,
        args.quick,
        {
            'machine': common.machine(),
            'versions': common.versions(orthanc_version, {'nginx_image': NGINX_IMAGE}),
            'parameters': {
                'clinic_counts': sizes,
                'stand_in_fleet': stand_ins,
                'forks': args.forks,
                'timed_runs': {'drift.yml': runs, 'drift_before.yml': before_runs},
                'former_playbook_sizes': sorted(before_sizes),
                'containers_per_clinic': 'PostgreSQL + Orthanc (role settings) + idle nginx (default config)',
                'per_clinic': {'devices': 3, 'users': 4, 'peers': 1},
                'users_note': '2 staff users + the automation account + the administrator',
                'playbooks': {
                    'drift.yml': 'playbooks/drift.yml: the fast check (one orthanc_drift_info run per clinic)',
                    'drift_before.yml': 'bench/playbooks/drift_before.yml: the drift check before it (19 tasks)',
                },
                'stand_ins': 'host standin-N shares the containers, files and REST port of clinic N mod the largest '
                'size; its health history is its own',
                'converge_playbook': 'bench/playbooks/fleet_converge.yml',
                'inventory': 'generated: group clinics, host clinic-NN, ansible_connection local; role variables '
                'pacs_base_dir, pacs_data_dir, backup_dir, pacs_project_name, pacs_rest_port, the image pins, '
                'passwords, devices, users, peers',
                'timed': 'wall time of the whole ansible-playbook process, --limit to the first N clinics',
            },
            'ansible_settings': SETTINGS,
            'anchor': ANCHOR,
            'figures': {
                'runs': rows,
                'container_startup_seconds': startup,
                'requests_per_clinic': reads,
                'seconds_per_clinic_at_20': at20['seconds_per_clinic'] if at20 else None,
                'goal_1s_per_clinic_at_20_met': bool(at20 and at20['seconds_per_clinic'] <= 1.0),
                'stand_in_fleet_seconds': new[stand_ins]['wall_seconds_median'] if stand_ins in new else None,
                'goal_200_within_240s_met': bool(stand_ins in new and new[stand_ins]['wall_seconds_median'] <= 240),
                'speedup_by_size': {
                    size: round(old[size]['wall_seconds_median'] / new[size]['wall_seconds_median'], 1)
                    for size in sorted(set(old) & set(new))
                },
                'plot': png,
            },
            'load_average_start': load_start,
            'load_average_end': [round(x, 2) for x in os.getloadavg()],
        },
    )
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except RuntimeError as exc:  # a set-up step failed or the drift check was not a no-op: nothing measured
        common.log(f'FAILED, nothing measured, no result file written: {exc}')
        sys.exit(1)
