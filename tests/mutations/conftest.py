# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test bed of the mutation table's tests (tests/mutations/table.yml, run by tests/mutations/run.py).

The tests read the roles from ``MUTATIONS_ROLES`` (a roles folder: the runner's throw-away copy, weakened or
not; the checkout's ``roles/`` when unset). Everything they check comes from that folder:

- ``rendered``: the files the roles write (render.yml: Ansible's own templating of the roles' defaults,
  variables and templates), once per session;
- ``orthanc``: a real Orthanc (``clinicpacs/orthanc:1.13.0``) started as the role's Compose file starts it
  (the binary the role's image step finds, with ``/etc/orthanc/``) with the rendered ``orthanc.json`` (SQLite
  index: the PostgreSQL plugin is loaded but has no settings);
- ``nginx``: a real nginx (``clinicpacs/nginx:1.26``) serving the rendered site with a throw-away ECDSA
  certificate, unprivileged and read-only as in the Compose file;
- one Docker network per session with a subnet of its own, so that the tests know every address.

Containers are named ``mut-<pid>-*`` and removed at the end of the session, also on failure. Probes go only
to those containers (the host reaches them on the session's bridge). ``MUTATIONS_CACHE`` names a folder the
runner shares between its pytest runs (the image facts and the throw-away certificate are made once).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOCKER = os.environ.get('DOCKER', '/usr/bin/docker')
ORTHANC_IMAGE = 'clinicpacs/orthanc:1.13.0'
OLD_ORTHANC_IMAGE = 'clinicpacs/orthanc:1.12.7'
NGINX_IMAGE = 'clinicpacs/nginx:1.26'
POSTGRES_IMAGE = 'clinicpacs/postgres:17'
BOX_IMAGE = 'clinicpacs/box:trixie-docker'
ORTHANC_UID = 4242
NGINX_UID = 33  # www-data: Debian's nginx package (the demo inventory's pacs_nginx_uid)
PREFIX = f'mut-{os.getpid()}'
# Secrets of the test bed: distinctive strings a test can search for in every rendered file.
SECRETS = {
    'pacs_postgres_password': 'pg-Secret-7f3a9c',
    'pacs_api_password': 'api-Secret-51be02',
    'pacs_admin_password': 'admin-Secret-c8d4e6',
}
API = ('ansible', SECRETS['pacs_api_password'])
# Addresses on the session network (a /24 of 10.215.0.0/16): .1 is the bridge (the host, the "stranger"
# in the DICOM and firewall tests), .10 a registered device, .20 the firewall box.
DEVICE_HOST = 10
FIREWALL_HOST = 20


def roles_dir() -> Path:
    return Path(os.environ.get('MUTATIONS_ROLES') or ROOT / 'roles').resolve()


def docker(*args: str, check: bool = True, timeout: int = 120, stdin: str | None = None):
    res = subprocess.run([DOCKER, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f'docker {" ".join(args[:4])} failed ({res.returncode}): {res.stderr.strip()}')
    return res


class Containers:
    """Names of the session's containers and networks; all removed by ``cleanup``."""

    def __init__(self):
        self.containers: list[str] = []
        self.networks: list[str] = []

    def run(self, suffix: str, *args: str) -> str:
        name = f'{PREFIX}-{suffix}'
        self.containers.append(name)
        docker('run', '-d', '--name', name, *args)
        return name

    def cleanup(self):
        if self.containers:
            docker('rm', '-f', '-v', *reversed(self.containers), check=False)
        for net in reversed(self.networks):
            docker('network', 'rm', net, check=False)
        self.containers, self.networks = [], []


@pytest.fixture(scope='session')
def containers():
    if shutil.which(DOCKER) is None or docker('info', check=False, timeout=30).returncode != 0:
        pytest.fail('Docker is not available (start dockerd; /usr/bin/docker is used)')
    bed = Containers()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def _stop(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in previous:
        signal.signal(sig, _stop)
    try:
        yield bed
    finally:
        bed.cleanup()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Network:
    def __init__(self, name: str, prefix: str):
        self.name = name
        self.prefix = prefix  # "10.215.N."

    def ip(self, host: int) -> str:
        return f'{self.prefix}{host}'

    @property
    def gateway(self) -> str:
        return self.ip(1)


@pytest.fixture(scope='session')
def network(containers) -> Network:
    """A bridge network with a free 10.215.N.0/24 (parallel runs of the runner each take another one)."""
    name = f'{PREFIX}-net'
    start = os.getpid() % 250
    for step in range(250):
        third = (start + step) % 250 + 1
        res = docker(
            'network', 'create', '--subnet', f'10.215.{third}.0/24', '--gateway', f'10.215.{third}.1', name,
            check=False,
        )  # fmt: skip
        if res.returncode == 0:
            containers.networks.append(name)
            return Network(name, f'10.215.{third}.')
    raise AssertionError(f'no free 10.215.x.0/24 for the test network: {res.stderr.strip()}')


# ------------------------------------------------------------------------------------------------------------
# The role's files
# ------------------------------------------------------------------------------------------------------------


def _cache_dir(tmp_path_factory) -> Path:
    cache = os.environ.get('MUTATIONS_CACHE')
    path = Path(cache) if cache else tmp_path_factory.getbasetemp() / 'cache'
    path.mkdir(parents=True, exist_ok=True)
    return path


def _filter_module():
    spec = importlib.util.spec_from_file_location('orthanc_image_filter', ROOT / 'plugins/filter/orthanc_image.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_image(image: str, roles: Path, plugins: list[str]) -> dict:
    """What the role's image step (tasks/version.yml) reads from an image: the role's script, its filter."""
    script = (roles / 'pacs/files/orthanc-image-facts.sh').read_text()
    user = f'{ORTHANC_UID}:{ORTHANC_UID}'
    res = docker(
        'run', '--rm', '--interactive', '--network', 'none', '--user', user, '--entrypoint', 'sh', image,
        '-s', '--', *plugins, stdin=script,
    )  # fmt: skip
    return _filter_module().orthanc_image_facts(res.stdout)


@pytest.fixture(scope='session')
def image_facts(tmp_path_factory) -> dict:
    """The Orthanc image's binary and plugin paths, read once per runner (cached by image and script)."""
    import yaml

    roles = roles_dir()
    plugins = yaml.safe_load((roles / 'pacs/defaults/main.yml').read_text())['pacs_orthanc_plugins']
    image_id = docker('image', 'inspect', '--format', '{{.Id}}', ORTHANC_IMAGE).stdout.strip()
    key = hashlib.sha256(
        '\0'.join([image_id, (roles / 'pacs/files/orthanc-image-facts.sh').read_text(), *plugins]).encode()
    ).hexdigest()[:16]
    cached = _cache_dir(tmp_path_factory) / f'image-facts-{key}.json'
    if cached.exists():
        return json.loads(cached.read_text())
    facts = read_image(ORTHANC_IMAGE, roles, plugins)
    assert facts['binary'] and not facts['missing'], f'{ORTHANC_IMAGE}: {facts}'
    cached.write_text(json.dumps(facts))
    return facts


def ansible_env() -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f'{Path(sys.executable).parent}:/usr/bin:{env.get("PATH", "")}',
        ANSIBLE_COLLECTIONS_PATH=env.get('ANSIBLE_COLLECTIONS_PATH') or str(ROOT / '.collections'),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        ANSIBLE_RETRY_FILES_ENABLED='false',
        # files.yml and gate.yml include the roles by name from this folder.
        ANSIBLE_ROLES_PATH=str(roles_dir()),
    )
    return env


def playbook(path: Path, extra: dict, tmp: Path, json_output: bool = False, timeout: int = 300):
    """Run one of this folder's playbooks on localhost with ``extra`` as extra variables."""
    varfile = tmp / f'{path.stem}-vars.json'
    varfile.write_text(json.dumps(extra))
    env = ansible_env()
    if json_output:
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.json'
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(path)]
    cmd += ['-e', f'@{varfile}', '-e', f'ansible_python_interpreter={sys.executable}']
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def inventory_vars(network: Network, image_facts: dict) -> dict:
    """The inventory of the test bed: images, uids, secrets, one registered device, its networks."""
    device = network.ip(DEVICE_HOST)
    return {
        'mut_roles': str(roles_dir()),
        'pacs_orthanc_image': ORTHANC_IMAGE,
        'pacs_nginx_image': NGINX_IMAGE,
        'pacs_postgres_image': POSTGRES_IMAGE,
        'pacs_nginx_uid': NGINX_UID,
        'pacs_server_name': 'pacs.mutations.test',
        # allow_find: the C-FIND tests query as this device (least privilege would refuse it otherwise).
        'pacs_devices': [{'name': 'pano', 'aet': 'PANO', 'host': device, 'port': 104, 'allow_find': True}],
        # The clinic network of the firewall tests is the registered device alone; the host is outside it.
        'firewall_https_sources': [f'{device}/32'],
        'firewall_ssh_sources': [f'{device}/32'],
        # Set by the role's image step (tasks/version.yml) on a box.
        '_pacs_orthanc_image_facts': image_facts,
        **SECRETS,
    }


@pytest.fixture(scope='session')
def rendered(tmp_path_factory, network, image_facts) -> dict:
    """The files the roles write, by file name (render.yml), and ``users`` (the role's user list)."""
    tmp = tmp_path_factory.mktemp('render')
    res = playbook(HERE / 'render.yml', inventory_vars(network, image_facts), tmp, json_output=True)
    assert res.returncode == 0, f'rendering the roles failed:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}'
    doc = json.loads(res.stdout)
    return doc['plays'][0]['tasks'][-1]['hosts']['localhost']['msg']


# ------------------------------------------------------------------------------------------------------------
# Real services
# ------------------------------------------------------------------------------------------------------------


def _own(path: Path, uid: int, mode: int):
    os.chown(path, uid, uid)
    path.chmod(mode)


def wait_http(url: str, what: str, container: str, auth=None, any_status=False, timeout: int = 60) -> None:
    """Until ``url`` answers below 500 (with ``any_status``: answers at all)."""
    deadline, last = time.monotonic() + timeout, ''
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, auth=auth, timeout=3, allow_redirects=False)
            if any_status or response.status_code < 500:
                return
            last = f'HTTP {response.status_code}'
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.3)
    logs = docker('logs', '--tail', '40', container, check=False)
    raise AssertionError(f'{what} did not answer within {timeout} s ({last}):\n{logs.stdout}{logs.stderr}')


class Orthanc:
    def __init__(self, ip: str, container: str):
        self.ip = ip
        self.container = container
        self.url = f'http://{ip}:8042'

    def request(self, method: str, path: str, auth=API, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, auth=auth, timeout=30, **kwargs)


@pytest.fixture(scope='session')
def orthanc(tmp_path_factory, containers, network, rendered, image_facts) -> Orthanc:
    """Orthanc with the rendered orthanc.json and the role's users, started like the Compose service."""
    config = tmp_path_factory.mktemp('orthanc-config')
    (config / 'orthanc.json').write_text(rendered['orthanc.json'])
    users = {u['name']: u['password'] for u in rendered['users'] if u.get('state', 'present') == 'present'}
    (config / 'users.json').write_text(json.dumps({'RegisteredUsers': users}, indent=2) + '\n')
    for name in ('orthanc.json', 'users.json'):
        _own(config / name, ORTHANC_UID, 0o600)
    _own(config, ORTHANC_UID, 0o700)
    ip = network.ip(30)
    user = f'{ORTHANC_UID}:{ORTHANC_UID}'
    name = containers.run(
        'orthanc', '--network', network.name, '--ip', ip, '--network-alias', 'orthanc', '--user', user,
        '--read-only', '--tmpfs', f'/tmp:uid={ORTHANC_UID},gid={ORTHANC_UID},mode=1777',
        '--tmpfs', f'/var/lib/orthanc/db:uid={ORTHANC_UID},gid={ORTHANC_UID},mode=0750',
        '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
        '-v', f'{config}:/etc/orthanc:ro', '--entrypoint', image_facts['binary'], ORTHANC_IMAGE, '/etc/orthanc/',
    )  # fmt: skip
    server = Orthanc(ip, name)
    wait_http(f'{server.url}/system', 'Orthanc', name, auth=API)
    return server


class Nginx:
    def __init__(self, ip: str, container: str):
        self.ip = ip
        self.container = container
        self.https = f'https://{ip}:8443'
        self.http = f'http://{ip}:8080'


def throwaway_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """An ECDSA P-256 key and self-signed certificate (the role's server key type), made once per runner."""
    cache = _cache_dir(tmp_path_factory)
    key, crt = cache / 'server.key', cache / 'server.crt'
    if not crt.exists():
        tmp_key, tmp_crt = cache / f'server.key.{os.getpid()}', cache / f'server.crt.{os.getpid()}'
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
             '-keyout', str(tmp_key), '-out', str(tmp_crt), '-days', '2', '-subj', '/CN=pacs.mutations.test'],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        tmp_key.replace(key)
        tmp_crt.replace(crt)
    return key, crt


# Settings of Debian's nginx.conf (http level) that the official nginx image, the role's default
# (pacs_nginx_image: nginx:1.26), does not have: the test bed drops them, so the role's own site must do it all.
DEBIAN_ONLY = re.compile(r'^\s*(server_tokens|ssl_protocols|ssl_prefer_server_ciphers)\b.*$', re.MULTILINE)


def official_like_nginx_conf(folder: Path) -> Path:
    """The image's nginx.conf without Debian's additions (DEBIAN_ONLY)."""
    text = docker('run', '--rm', '--network', 'none', '--entrypoint', 'cat', NGINX_IMAGE, '/etc/nginx/nginx.conf')
    conf = folder / 'nginx.conf'
    conf.write_text(DEBIAN_ONLY.sub('', text.stdout))
    conf.chmod(0o644)
    return conf


@pytest.fixture(scope='session')
def nginx(tmp_path_factory, containers, network, rendered) -> Nginx:
    """nginx with the rendered site, mounted as the Compose file mounts it, and the main nginx.conf of the
    image without Debian's own hardening (official_like_nginx_conf); its upstream ``orthanc`` resolves to the
    container itself (no Orthanc behind it: the tests look at what nginx alone answers)."""
    site, tls = tmp_path_factory.mktemp('nginx-site'), tmp_path_factory.mktemp('nginx-tls')
    main_conf = official_like_nginx_conf(tmp_path_factory.mktemp('nginx-main'))
    (site / 'orthanc.conf').write_text(rendered['orthanc.conf'])
    key, crt = throwaway_certificate(tmp_path_factory)
    shutil.copy(key, tls / 'server.key')
    shutil.copy(crt, tls / 'server.crt')
    _own(site / 'orthanc.conf', NGINX_UID, 0o600)
    _own(tls / 'server.key', NGINX_UID, 0o600)
    _own(tls / 'server.crt', 0, 0o644)
    _own(site, NGINX_UID, 0o700)
    _own(tls, NGINX_UID, 0o700)
    ip = network.ip(40)
    tmpfs = []
    for path in ('/run', '/tmp', '/var/cache/nginx', '/var/lib/nginx'):
        tmpfs += ['--tmpfs', f'{path}:uid={NGINX_UID},gid={NGINX_UID},mode=0700']
    name = containers.run(
        'nginx', '--network', network.name, '--ip', ip, '--add-host', 'orthanc:127.0.0.1',
        '--user', f'{NGINX_UID}:{NGINX_UID}', '--read-only', *tmpfs, '--cap-drop', 'ALL',
        '--security-opt', 'no-new-privileges:true',
        '-v', f'{site}:/etc/nginx/conf.d:ro', '-v', f'{tls}:/etc/nginx/tls:ro',
        '-v', f'{main_conf}:/etc/nginx/nginx.conf:ro', NGINX_IMAGE,
    )  # fmt: skip
    server = Nginx(ip, name)
    server.site, server.tls = site, tls
    wait_http(server.http + '/', 'nginx', name, any_status=True)
    return server
