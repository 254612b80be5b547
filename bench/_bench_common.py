# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared helpers of the Docker benchmarks (modules_vs_uri, ingest).

Machine and version facts, result files, containers that are always removed (also on failure or
Ctrl-C), Orthanc's configuration as the ``pacs`` role writes it, and small HTTP helpers.
"""

import base64
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_RESULTS: another folder for the results (make test's smoke run of every benchmark writes under .cache).
RESULTS = os.environ.get('BENCH_RESULTS') or os.path.join(ROOT, 'bench', 'results')
DOCKER = os.environ.get('DOCKER', '/usr/bin/docker')
# The Orthanc the role deploys by default is 1.13.0 or newer (pacs_orthanc_minimum_version): measure that one.
ORTHANC_IMAGE = os.environ.get('BENCH_ORTHANC_IMAGE', 'clinicpacs/orthanc:1.13.0')
POSTGRES_IMAGE = os.environ.get('BENCH_POSTGRES_IMAGE', 'clinicpacs/postgres:17')
ORTHANC_UID = 4242


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def _read(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except OSError:
        return ''


def machine():
    """CPU count and model, memory, kernel: enough to compare two result files."""
    model = ''
    for line in _read('/proc/cpuinfo').splitlines():
        if line.startswith('model name'):
            model = line.split(':', 1)[1].strip()
            break
    mem_kib = 0
    for line in _read('/proc/meminfo').splitlines():
        if line.startswith('MemTotal:'):
            mem_kib = int(line.split()[1])
    return {
        'cpu_count': os.cpu_count(),
        'cpu_model': model or platform.processor(),
        'memory_gib': round(mem_kib / 1024 / 1024, 1),
        'kernel': platform.release(),
        'platform': platform.platform(),
    }


def _cmd_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(orthanc=None, extra=None):
    """Versions of everything that took part; ``orthanc`` comes from ``GET /system``."""
    result = {
        'python': platform.python_version(),
        'ansible_core': _package_version('ansible-core'),
        'docker': _cmd_output([DOCKER, 'version', '--format', '{{.Server.Version}}']),
        'orthanc': orthanc,
        'orthanc_image': ORTHANC_IMAGE,
        'postgres_image': POSTGRES_IMAGE,
    }
    result.update(extra or {})
    return result


def result_path(name, quick):
    return os.path.join(RESULTS, f'{name}_quick.json' if quick else f'{name}.json')


def write_result(name, quick, data):
    """Write bench/results/<name>.json (or <name>_quick.json) and return its path."""
    os.makedirs(RESULTS, exist_ok=True)
    doc = {
        'benchmark': name,
        'date': datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'quick': quick,
    }
    doc.update(data)
    path = result_path(name, quick)
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(doc, handle, indent=1, sort_keys=False)
        handle.write('\n')
    log(f'wrote {os.path.relpath(path, ROOT)}')
    return path


def docker(*args, check=True, capture=True):
    proc = subprocess.run([DOCKER, *args], capture_output=capture, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f'docker {" ".join(args[:3])} failed ({proc.returncode}): {(proc.stderr or "").strip()}')
    return (proc.stdout or '').strip()


class Resources:
    """Containers, networks and volumes created by one benchmark; all removed by ``cleanup``.

    Used as a context manager. SIGTERM and SIGHUP are turned into SystemExit so the ``finally``
    of the context manager also runs when the benchmark is stopped.
    """

    def __init__(self, prefix):
        self.prefix = f'{prefix}-{os.getpid()}'
        self.containers = []
        self.networks = []
        self.volumes = []

    def name(self, suffix):
        return f'{self.prefix}-{suffix}'

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_exit)
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def network(self, suffix, subnet=None):
        name = self.name(suffix)
        docker(
            'network', 'create', '--label', 'org.clinicpacs.bench=1', *(['--subnet', subnet] if subnet else []), name
        )
        self.networks.append(name)
        return name

    def volume(self, suffix):
        name = self.name(suffix)
        docker('volume', 'create', '--label', 'org.clinicpacs.bench=1', name)
        self.volumes.append(name)
        return name

    def run(self, suffix, image, args=(), command=()):
        name = self.name(suffix)
        self.containers.append(name)
        docker('run', '-d', '--name', name, '--label', 'org.clinicpacs.bench=1', *args, image, *command)
        return name

    def remove_container(self, name):
        docker('rm', '-f', '-v', name, check=False)
        if name in self.containers:
            self.containers.remove(name)

    def cleanup(self):
        for name in reversed(self.containers):
            docker('rm', '-f', '-v', name, check=False)
        for name in reversed(self.networks):
            docker('network', 'rm', name, check=False)
        for name in reversed(self.volumes):
            docker('volume', 'rm', '-f', name, check=False)
        self.containers, self.networks, self.volumes = [], [], []


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


def free_subnet():
    """A /24 in 10.213.0.0/16 that no Docker network uses (for containers with fixed addresses)."""
    ids = docker('network', 'ls', '-q').split()
    used = docker('network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', *ids)
    for third in range(1, 255):
        subnet = f'10.213.{third}.0/24'
        if subnet not in used.split():
            return subnet
    raise RuntimeError('no free 10.213.x.0/24 subnet for the benchmark network')


def published_port(container, port):
    """Host port Docker published for ``port``/tcp of ``container`` (bound to 127.0.0.1)."""
    out = docker('port', container, f'{port}/tcp')
    return int(out.splitlines()[0].rsplit(':', 1)[1])


def free_port():
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def http_json(method, url, username=None, password=None, body=None, timeout=30):
    """One request; returns (status, decoded JSON or None). Only used against loopback."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback URLs built here)
    if username is not None:
        token = base64.b64encode(f'{username}:{password}'.encode()).decode()
        req.add_header('Authorization', f'Basic {token}')
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        return exc.code, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def wait_orthanc(url, username, password, timeout=120, container=None):
    """Wait until ``GET /system`` answers 200; return its JSON."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, doc = http_json('GET', f'{url}/system', username, password, timeout=5)
            if status == 200:
                return doc
            last = f'HTTP {status}'
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.5)
    logs = docker('logs', '--tail', '30', container, check=False) if container else ''
    raise RuntimeError(f'Orthanc at {url} did not answer within {timeout} s ({last}). {logs}')


def wait_postgres(container, user, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [DOCKER, 'exec', container, 'pg_isready', '-h', '127.0.0.1', '-U', user],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f'PostgreSQL in {container} not ready within {timeout} s')


_IMAGE_FACTS = {}


def image_facts(image=None):
    """What the role's image step reads from an Orthanc image: binary, version and plugin paths.

    Runs roles/pacs/files/orthanc-image-facts.sh in a throw-away container exactly as
    roles/pacs/tasks/version.yml does and parses it with the role's filter, so that the benchmarks start
    Orthanc the way the role does (the binary with /etc/orthanc/, plugins by their path in the image).
    """
    image = image or ORTHANC_IMAGE
    if image in _IMAGE_FACTS:
        return _IMAGE_FACTS[image]
    import importlib.util

    import yaml

    with open(os.path.join(ROOT, 'roles', 'pacs', 'defaults', 'main.yml'), encoding='utf-8') as handle:
        plugins = yaml.safe_load(handle)['pacs_orthanc_plugins']
    with open(os.path.join(ROOT, 'roles', 'pacs', 'files', 'orthanc-image-facts.sh'), encoding='utf-8') as handle:
        script = handle.read()
    argv = [DOCKER, 'run', '--rm', '--interactive', '--network', 'none', '--user', f'{ORTHANC_UID}:{ORTHANC_UID}']
    argv += ['--entrypoint', 'sh', image, '-s', '--', *plugins]
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'reading the Orthanc image {image} failed ({proc.returncode}): {proc.stderr.strip()}')
    spec = importlib.util.spec_from_file_location(
        'orthanc_image_filter', os.path.join(ROOT, 'plugins', 'filter', 'orthanc_image.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    facts = module.orthanc_image_facts(proc.stdout)
    if not facts['binary'] or facts['missing']:
        raise RuntimeError(f'Orthanc image {image}: no Orthanc binary or plugin missing: {facts}')
    _IMAGE_FACTS[image] = facts
    return facts


def orthanc_process(image=None):
    """``(docker run options, command)`` that start Orthanc as the role's Compose file does."""
    return ['--entrypoint', image_facts(image)['binary']], ['/etc/orthanc/']


def role_default(name):
    """A plain default of roles/pacs (defaults/main.yml)."""
    import yaml

    with open(os.path.join(ROOT, 'roles', 'pacs', 'defaults', 'main.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)[name]


def role_orthanc_config(postgres_host, postgres_password, identifier='bench'):
    """Orthanc's two configuration files exactly as ``roles/pacs`` renders them.

    Reads ``_pacs_orthanc_config_base`` and ``_pacs_orthanc_postgresql_config`` from
    roles/pacs/vars/main.yml and renders their Jinja expressions with the role defaults, so the
    benchmark follows the role when its settings change. Returns (main config, postgresql config).
    """
    import yaml
    from jinja2.nativetypes import NativeEnvironment

    with open(os.path.join(ROOT, 'roles', 'pacs', 'defaults', 'main.yml'), encoding='utf-8') as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROOT, 'roles', 'pacs', 'vars', 'main.yml'), encoding='utf-8') as handle:
        role_vars = yaml.safe_load(handle)
    from ansible.module_utils.common.text.formatters import human_to_bytes

    env = NativeEnvironment()
    env.filters['bool'] = lambda value: str(value).lower() in ('1', 'true', 'yes', 'on')
    env.filters['human_to_bytes'] = human_to_bytes
    env.filters['combine'] = lambda *dicts: {k: v for d in dicts for k, v in d.items()}
    context = dict(defaults)
    context.update(role_vars)
    context.update(
        # The facts the role gathers and sizes PostgreSQL from: this machine's.
        ansible_facts=box_facts(),
        inventory_hostname=identifier,
        pacs_orthanc_name=identifier,
        pacs_orthanc_database_server_identifier=identifier,
        pacs_postgres_password=postgres_password,
        # Set by the role's image step (vars/main.yml reads them from _pacs_orthanc_image_facts).
        _pacs_orthanc_plugin_paths=image_facts()['plugins'],
    )

    # Defaults that refer to other defaults (pacs_postgres_memory_mb, ...): resolve them in a few passes.
    for _pass in range(3):
        for key, value in list(context.items()):
            if isinstance(value, str) and '{{' in value:
                try:
                    context[key] = env.from_string(value).render(**context)
                except Exception:  # noqa: BLE001, S112 (refers to one not resolved yet, or to a role fact)
                    continue

    def render(value):
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [render(item) for item in value]
        if isinstance(value, str) and '{{' in value:
            return render(env.from_string(value).render(**context))
        return value

    main = render(role_vars['_pacs_orthanc_config_base']) | render(role_vars['_pacs_orthanc_config_tuning'])
    pg = render(role_vars['_pacs_orthanc_postgresql_config'])
    pg['PostgreSQL']['Host'] = postgres_host
    server = render(defaults['pacs_postgres_settings']) | render(defaults['pacs_postgres_extra_settings'])
    limits = {'postgres': defaults['pacs_postgres_mem_limit'], 'orthanc': defaults['pacs_orthanc_mem_limit']}
    return main, pg, {'settings': {k: str(v) for k, v in server.items()}, 'mem_limits': limits}


def box_facts():
    """``ansible_facts['memtotal_mb']`` and ``['processor_vcpus']`` of this machine."""
    mem_kib = next(
        (int(line.split()[1]) for line in _read('/proc/meminfo').splitlines() if line.startswith('MemTotal:')), 0
    )
    return {'memtotal_mb': mem_kib // 1024, 'processor_vcpus': os.cpu_count() or 1}


def merge_settings(base, overrides):
    """``base`` with ``overrides`` applied; an override of None removes the key."""
    merged = dict(base)
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _cgroup_cpu_files(container_id):
    return [
        f'/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage',  # cgroup v1 (cgroupfs driver)
        f'/sys/fs/cgroup/cpu,cpuacct/docker/{container_id}/cpuacct.usage',
        f'/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat',  # cgroup v2, systemd driver
        f'/sys/fs/cgroup/docker/{container_id}/cpu.stat',  # cgroup v2, cgroupfs driver
    ]


_CONTAINER_IDS = {}


def container_cpu_seconds(name):
    """CPU seconds a container has used so far (its cgroup), or None when the cgroup cannot be read."""
    if name not in _CONTAINER_IDS:
        _CONTAINER_IDS[name] = docker('inspect', '--format', '{{.Id}}', name)
    for path in _cgroup_cpu_files(_CONTAINER_IDS[name]):
        text = _read(path)
        if not text:
            continue
        if path.endswith('cpuacct.usage'):
            return int(text.strip()) / 1e9
        for line in text.splitlines():
            if line.startswith('usage_usec '):
                return int(line.split()[1]) / 1e6
    return None


def host_cpu_seconds():
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in _read('/proc/stat').splitlines()[0].split()[1:]]
    ticks = os.sysconf('SC_CLK_TCK')
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def write_orthanc_config_dir(path, files):
    """Write ``{file name: dict}`` into ``path`` so that uid 4242 can read it (dir 0755, files 0600)."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)  # noqa: S103 (the Orthanc container user must enter it)
    for name, doc in files.items():
        target = os.path.join(path, name)
        with open(target, 'w', encoding='utf-8') as handle:
            json.dump(doc, handle, indent=2, sort_keys=True)
            handle.write('\n')
        os.chmod(target, 0o600)
        os.chown(target, ORTHANC_UID, ORTHANC_UID)


def start_pacs_stack(
    res,
    suffix,
    config_dir,
    extra_files=None,
    publish_dicom=False,
    api_user=('bench', 'bench'),
    postgresql=None,
    orthanc=None,
    postgres_server=None,
    socket=None,
):
    """PostgreSQL + Orthanc with the role's settings on a network of their own.

    ``postgresql`` overrides settings of the role's ``PostgreSQL`` section, ``orthanc`` of its main
    configuration and ``postgres_server`` of the PostgreSQL server settings (tuning experiments; a value of
    None removes the role's setting); ``socket``: the index plugin reaches PostgreSQL over its Unix socket (a
    volume both containers mount) instead of TCP, None: as the role's default (``pacs_postgres_unix_socket``).
    PostgreSQL is started with the role's ``postgres -c`` settings and both
    containers with the role's memory limits. Returns a dict with container names, the REST URL (127.0.0.1,
    published port), the DICOM port and the settings used.
    """
    secret = base64.b32encode(os.urandom(10)).decode().lower()
    net = res.network(f'{suffix}-net')
    pg_vol = res.volume(f'{suffix}-pgdata')
    db_vol = res.volume(f'{suffix}-storage')
    main, pgconf, server = role_orthanc_config('postgres', secret)
    main = merge_settings(main, orthanc)
    pgconf['PostgreSQL'] = merge_settings(pgconf['PostgreSQL'], postgresql)
    server_settings = merge_settings(server['settings'], postgres_server)
    socket_mount = []
    if socket is None:
        socket = role_default('pacs_postgres_unix_socket')
    if socket:
        socket_vol = res.volume(f'{suffix}-pgsocket')
        socket_mount = ['-v', f'{socket_vol}:/var/run/postgresql']
        pgconf['PostgreSQL']['Host'] = '/var/run/postgresql'
    pg = res.run(
        f'{suffix}-pg',
        POSTGRES_IMAGE,
        [
            '--network', net, '--network-alias', 'postgres', '--memory', server['mem_limits']['postgres'],
            '-e', 'POSTGRES_USER=orthanc', '-e', f'POSTGRES_PASSWORD={secret}', '-e', 'POSTGRES_DB=orthanc',
            '-v', f'{pg_vol}:/var/lib/postgresql/data', *socket_mount,
        ],
        ['postgres'] + [arg for name, value in sorted(server_settings.items()) for arg in ('-c', f'{name}={value}')],
    )  # fmt: skip
    files = {'orthanc.json': main, 'postgresql.json': pgconf}
    files.update(extra_files or {})
    if not any('RegisteredUsers' in doc for doc in files.values()):
        files['users.json'] = {'RegisteredUsers': {api_user[0]: api_user[1]}}
    write_orthanc_config_dir(config_dir, files)
    wait_postgres(pg, 'orthanc')
    # Fixed host ports: a port Docker picks itself may change when the container is restarted.
    ports = ['-p', f'127.0.0.1:{free_port()}:8042']
    if publish_dicom:
        ports += ['-p', f'127.0.0.1:{free_port()}:4242']
    process, command = orthanc_process()
    orthanc = res.run(
        f'{suffix}-orthanc',
        ORTHANC_IMAGE,
        [
            '--network', net, '-v', f'{config_dir}:/etc/orthanc:ro', '-v', f'{db_vol}:/var/lib/orthanc/db',
            '--memory', server['mem_limits']['orthanc'], *ports, *process, *socket_mount,
        ],
        command,
    )  # fmt: skip
    url = f'http://127.0.0.1:{published_port(orthanc, 8042)}'
    system = wait_orthanc(url, api_user[0], api_user[1], container=orthanc)
    return {
        'postgres': pg,
        'orthanc': orthanc,
        'network': net,
        'url': url,
        'dicom_port': published_port(orthanc, 4242) if publish_dicom else None,
        'system': system,
        'config': main,
        'index_plugin_config': {k: v for k, v in pgconf['PostgreSQL'].items() if k not in ('Password', 'Host')},
        'postgres_server_settings': server_settings,
        'socket': socket,
    }


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
