# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark 1: our modules against the hand-written ansible.builtin.uri playbook, on a converged clinic.

One clinic: 50 DICOM devices, 10 users (+ the automation account and the administrator) and 2 peers.
PostgreSQL + Orthanc run as containers with the ``pacs`` role's Orthanc settings. Between Ansible and
Orthanc sits a small counting HTTP proxy (this process, 127.0.0.1) that counts every request by method
and path, the same way for both playbooks. Steps:

1. setup: ``bench/playbooks/modules.yml`` once, which creates everything (users file + one restart);
2. three converged runs of ``modules.yml``: wall time, requests, writes, changed tasks, and the modules'
   own ``orthanc_requests`` counters;
3. one warm-up run of ``bench/playbooks/uri.yml`` (its users template may reformat the users file), then
   three converged runs of it;
4. the price of a user change, the same for both ways: rewrite the file, restart Orthanc, wait for it.

Writes bench/results/modules_vs_uri.json (``--quick``: 10 devices, one timed run,
modules_vs_uri_quick.json).
"""

import argparse
import collections
import datetime
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_common as common

PLAYBOOKS = os.path.join(common.ROOT, 'bench', 'playbooks')
NAMED = re.compile(r'^/(modalities|peers)/[^/?]+')
WRITE_METHODS = ('PUT', 'POST', 'DELETE')


class CountingProxy:
    """HTTP proxy on 127.0.0.1 that forwards to one upstream and counts requests by method and path.

    Paths of single devices and peers are folded (``/modalities/{name}/configuration``); query strings
    are kept (``/modalities?expand``).
    """

    def __init__(self, upstream):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else None
                key = f'{self.command} {NAMED.sub(lambda m: f"/{m.group(1)}/{{name}}", self.path)}'
                with proxy.lock:
                    proxy.counts[key] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ('host', 'connection')}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                    except OSError:  # Orthanc restarting: answer like a gateway would
                        self.send_error(502)
                        return
                    self.send_response(resp.status)
                    for name, value in resp.getheaders():
                        if name.lower() not in ('connection', 'transfer-encoding', 'content-length'):
                            self.send_header(name, value)
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False

    def take(self):
        """Return the counts since the last call and reset them."""
        with self.lock:
            counts = dict(self.counts)
            self.counts.clear()
        return counts


def summarise(counts):
    by_method = collections.Counter()
    for key, count in counts.items():
        by_method[key.split(' ', 1)[0]] += count
    return {
        'requests': sum(counts.values()),
        'writes': sum(by_method[m] for m in WRITE_METHODS),
        'by_method': dict(sorted(by_method.items())),
        'by_path': dict(sorted(counts.items())),
    }


def clinic(devices, users, peers, api_user, api_password):
    """Deterministic clinic: device, user and peer declarations for the playbooks."""
    device_list = [
        {'name': f'dev{i:03d}', 'aet': f'DEV{i:03d}', 'host': f'198.51.100.{10 + i}', 'port': 104 + (i % 3)}
        for i in range(1, devices + 1)
    ]
    user_list = [{'name': api_user, 'password': api_password}]
    user_list += [{'name': 'admin', 'password': os.urandom(9).hex()}]
    user_list += [{'name': f'staff{i:02d}', 'password': os.urandom(9).hex()} for i in range(1, users + 1)]
    peer_list = [
        {
            'name': f'peer{i}',
            'url': f'https://archive{i}.example.org/orthanc/',
            'username': f'clinic{i}',
            'password': os.urandom(9).hex(),
        }
        for i in range(1, peers + 1)
    ]
    return device_list, user_list, peer_list


def ansible_env():
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(common.ROOT, '.collections'),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        ANSIBLE_RETRY_FILES_ENABLED='false',
        PATH=f'{os.path.dirname(sys.executable)}:/usr/bin:{env.get("PATH", "")}',
    )
    return env


def run_playbook(name, vars_file, proxy):
    """One ansible-playbook run: wall time, proxy counts, changed tasks and the modules' own counters."""
    playbook = os.path.join(PLAYBOOKS, name)
    bin_dir = os.path.dirname(sys.executable)  # the venv that runs the benchmark (a worktree has none of its own)
    argv = [os.path.join(bin_dir, 'ansible-playbook'), '-i', 'localhost,', playbook, '-e', f'@{vars_file}']
    proxy.take()
    load = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(), check=False)
    wall = time.monotonic() - start
    counts = proxy.take()
    if proc.returncode != 0:
        raise RuntimeError(f'{name} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}')
    report = json.loads(proc.stdout[proc.stdout.index('{') :])
    stats = report['stats']['localhost']
    own = collections.Counter()
    tasks = 0
    module_runs = 0
    task_seconds = {}
    for play in report['plays']:
        for task in play['tasks']:
            tasks += 1
            duration = task['task'].get('duration') or {}
            if duration.get('start') and duration.get('end'):
                seconds = (_ts(duration['end']) - _ts(duration['start'])).total_seconds()
                task_seconds[task['task']['name']] = round(seconds, 2)
            result = task['hosts'].get('localhost', {})
            items = result.get('results') if isinstance(result.get('results'), list) else [result]
            for item in items:
                if item.get('skipped'):
                    continue
                module_runs += 1
                for method, count in (item.get('orthanc_requests') or {}).items():
                    own[method] += count
    figures = summarise(counts)
    figures.update(
        wall_seconds=round(wall, 3),
        changed=stats.get('changed', 0),
        tasks=tasks,
        module_runs=module_runs,
        module_counter=dict(sorted(own.items())) if own else None,
        task_seconds=task_seconds,
        load_average_1min_before=round(load, 2),
    )
    return figures


def _ts(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def timed_runs(name, vars_file, proxy, repeat):
    runs = []
    for i in range(repeat):
        figures = run_playbook(name, vars_file, proxy)
        common.log(
            f'{name} run {i + 1}: {figures["wall_seconds"]} s, {figures["requests"]} requests, '
            f'{figures["writes"]} writes, {figures["changed"]} changed'
        )
        runs.append(figures)
    first = runs[0]
    return {
        'wall_seconds_median': round(common.median([r['wall_seconds'] for r in runs]), 3),
        'wall_seconds_runs': [r['wall_seconds'] for r in runs],
        'requests': first['requests'],
        'writes': first['writes'],
        'requests_same_every_run': all(r['by_path'] == first['by_path'] for r in runs),
        'changed': max(r['changed'] for r in runs),
        'tasks': first['tasks'],
        'module_runs': first['module_runs'],
        'by_method': first['by_method'],
        'by_path': first['by_path'],
        'module_counter': first['module_counter'],
        'task_seconds': first['task_seconds'],
        'load_average_1min_before_runs': [r['load_average_1min_before'] for r in runs],
    }


def restart_cost(stack, user, password):
    """Seconds from ``docker restart`` until Orthanc answers again: the price of any user change."""
    start = time.monotonic()
    common.docker('restart', stack['orthanc'])
    common.wait_orthanc(stack['url'], user, password, container=stack['orthanc'])
    return round(time.monotonic() - start, 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='10 devices, one timed run per playbook')
    parser.add_argument('--devices', type=int)
    parser.add_argument('--users', type=int, default=10)
    parser.add_argument('--peers', type=int, default=2)
    parser.add_argument('--repeat', type=int)
    args = parser.parse_args()
    devices = args.devices or (10 if args.quick else 50)
    repeat = args.repeat or (1 if args.quick else 3)

    api_user, api_password = 'ansible', os.urandom(12).hex()
    device_list, user_list, peer_list = clinic(devices, args.users, args.peers, api_user, api_password)
    tmp = tempfile.mkdtemp(prefix='bench-modules-')
    config_dir = os.path.join(tmp, 'orthanc')
    try:
        with common.Resources('bench-m1') as res:
            common.log('starting PostgreSQL + Orthanc (role settings)')
            stack = common.start_pacs_stack(res, 'm', config_dir, api_user=(api_user, api_password))
            with CountingProxy(stack['url']) as proxy:
                vars_file = os.path.join(tmp, 'vars.json')
                with open(vars_file, 'w', encoding='utf-8') as handle:
                    json.dump(
                        {
                            'bench_api_url': proxy.url,
                            'bench_api_username': api_user,
                            'bench_api_password': api_password,
                            'bench_users_file': os.path.join(config_dir, 'users.json'),
                            'bench_orthanc_container': stack['orthanc'],
                            'bench_devices': device_list,
                            'bench_users': user_list,
                            'bench_peers': peer_list,
                            # Throwaway passwords; the JSON callback output is parsed here, never stored.
                            'bench_no_log': False,
                        },
                        handle,
                    )
                os.chmod(vars_file, 0o600)

                common.log(f'setup: modules.yml creates {devices} devices, {len(user_list)} users, {args.peers} peers')
                setup = run_playbook('modules.yml', vars_file, proxy)
                common.log(
                    f'setup: {setup["wall_seconds"]} s, {setup["requests"]} requests, {setup["changed"]} changed'
                )
                modules = timed_runs('modules.yml', vars_file, proxy, repeat)
                common.log('uri.yml warm-up run')
                warmup = run_playbook('uri.yml', vars_file, proxy)
                uri = timed_runs('uri.yml', vars_file, proxy, repeat)
                restart = restart_cost(stack, api_user, api_password)
                _status, doc = common.http_json('GET', f'{stack["url"]}/modalities', api_user, api_password)
                registered = len(doc or [])
            orthanc_version = stack['system'].get('Version')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # GETs of the modules run per object kind (users: a local file, no request).
    reads = {
        kind: sum(c for key, c in modules['by_path'].items() if key.startswith(f'GET /{kind}'))
        for kind in ('modalities', 'peers')
    }
    ratio = round(uri['requests'] / modules['requests'], 1) if modules['requests'] else None
    speedup = round(uri['wall_seconds_median'] / modules['wall_seconds_median'], 1)
    data = {
        'machine': common.machine(),
        'versions': common.versions(orthanc=orthanc_version),
        'parameters': {
            'devices': devices,
            'users': len(user_list),
            'users_note': f'{args.users} staff + the automation account + the administrator',
            'peers': args.peers,
            'timed_runs': repeat,
            'orthanc_settings': 'roles/pacs/vars/main.yml (_pacs_orthanc_config_base, PostgreSQL index)',
            'counting': 'HTTP proxy on 127.0.0.1 between ansible-playbook and Orthanc, by method and path',
            'playbooks': ['bench/playbooks/modules.yml', 'bench/playbooks/uri.yml'],
            'ansible': 'ansible-playbook -i localhost, (connection local), stdout callback ansible.builtin.json',
        },
        'figures': {
            'setup': {k: setup[k] for k in ('wall_seconds', 'requests', 'writes', 'changed', 'by_method')},
            'modules': modules,
            'uri_warmup': {k: warmup[k] for k in ('wall_seconds', 'requests', 'writes', 'changed', 'by_method')},
            'uri': uri,
            'request_ratio_uri_to_modules': ratio,
            'wall_time_ratio_uri_to_modules': speedup,
            'devices_registered_at_end': registered,
            'users': {
                'rest_requests_either_way': 0,
                'how': 'users exist only in configuration: modules.yml uses orthanc_user (compares the file), '
                'uri.yml a template of the same file; both restart Orthanc only when the file changes',
                'restart_seconds': restart,
            },
        },
        'targets': {
            'reads_by_kind': reads,
            'one_read_per_object_kind': all(count <= 1 for count in reads.values()),
            'no_write_when_converged': modules['writes'] == 0,
            'at_least_10x_fewer_requests': bool(ratio and ratio >= 10),
        },
    }
    common.write_result('modules_vs_uri', args.quick, data)
    print(json.dumps(data['figures']['modules']['by_path']), json.dumps(data['targets']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
