"""Real Orthanc 1.13.0 (Debian forky) + PostgreSQL 17 for the module integration tests.

One session-wide stack: a Docker network, ``clinicpacs/postgres:17`` and ``clinicpacs/orthanc:1.13.0`` with
the PostgreSQL index, authentication, ``DatabaseServerIdentifier`` and ``DicomModalitiesInDatabase``, its
configuration directory bind-mounted from a temporary directory and its REST port published on a random
loopback port. Everything is removed at the end, also on failure. The modules run for real through
``ansible`` ad-hoc commands against localhost.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / '.collections'
DOCKER = os.environ.get('DOCKER', '/usr/bin/docker')
ORTHANC_IMAGE = os.environ.get('ORTHANC_IMAGE', 'clinicpacs/orthanc:1.13.0')
# The Debian-built images are tagged with their Orthanc version.
ORTHANC_VERSION = ORTHANC_IMAGE.rsplit(':', 1)[1]
POSTGRES_IMAGE = 'clinicpacs/postgres:17'
PLUGIN_DIR = '/usr/share/orthanc/plugins'
ANSIBLE = str(Path(sys.executable).parent / 'ansible')
ADMIN = ('ansible', 'it-' + secrets.token_hex(8))
ORTHANC_UID = 4242


def pytest_configure(config):
    config.addinivalue_line('markers', 'integration: runs against real services (Docker, Orthanc, PostgreSQL)')


def docker(*args, check=True, timeout=180):
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Stack:
    """Handles to the running test bed."""

    def __init__(self, tag, config_dir):
        self.tag = tag
        self.config_dir = config_dir
        self.network = f'cpo-it-{tag}'
        self.pg = f'cpo-it-pg-{tag}'
        self.orthanc = f'cpo-it-orthanc-{tag}'
        self.url = None
        self.auth = ADMIN

    @property
    def users_file(self):
        return self.config_dir / 'users.json'

    def get(self, path, auth=None):
        return requests.get(self.url + path, auth=auth or self.auth, timeout=10)

    def modalities(self):
        response = self.get('/modalities?expand')
        response.raise_for_status()
        return response.json()

    def peers(self):
        response = self.get('/peers?expand')
        response.raise_for_status()
        return response.json()

    def wait(self, timeout=90):
        deadline = time.monotonic() + timeout
        last = ''
        while time.monotonic() < deadline:
            try:
                response = self.get('/system')
                if response.status_code == 200:
                    return response.json()
                last = f'HTTP {response.status_code}'
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.5)
        logs = docker('logs', '--tail', '50', self.orthanc, check=False)
        raise AssertionError(f'Orthanc not answering ({last}):\n{logs.stdout}{logs.stderr}')

    def restart_orthanc(self):
        docker('restart', '-t', '10', self.orthanc)
        port = docker('port', self.orthanc, '8042/tcp').stdout.strip().splitlines()[0].rsplit(':', 1)[1]
        self.url = f'http://127.0.0.1:{port}'
        return self.wait()


def _write_config(directory, pg_password, tag):
    directory.chmod(0o755)
    config = {
        'Name': 'clinicpacs-it',
        'DicomAet': 'ORTHANC',
        'StorageDirectory': '/var/lib/orthanc/db',
        'IndexDirectory': '/var/lib/orthanc/db',
        'Plugins': [f'{PLUGIN_DIR}/libOrthancPostgreSQLIndex.so'],
        'RemoteAccessAllowed': True,
        'AuthenticationEnabled': True,
        'DatabaseServerIdentifier': f'it-{tag}',
        'DicomModalitiesInDatabase': True,
        'OrthancPeersInDatabase': True,
        'PostgreSQL': {
            'EnableIndex': True,
            'EnableStorage': False,
            'Host': 'db',
            'Port': 5432,
            'Database': 'orthanc',
            'Username': 'orthanc',
            'Password': pg_password,
            'Lock': False,
        },
    }
    path = directory / 'orthanc.json'
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o644)
    users = directory / 'users.json'
    users.write_text(json.dumps({'RegisteredUsers': {ADMIN[0]: ADMIN[1]}}, indent=2))
    users.chmod(0o600)
    os.chown(users, ORTHANC_UID, ORTHANC_UID)


@pytest.fixture(scope='session')
def stack():
    if shutil.which(DOCKER) is None or docker('info', check=False, timeout=30).returncode != 0:
        pytest.fail('Docker is not available (start dockerd; /usr/bin/docker is used)')
    for image in (ORTHANC_IMAGE, POSTGRES_IMAGE):
        if docker('image', 'inspect', image, check=False).returncode != 0:
            pytest.fail(f'image {image} is missing: run `bash tests/images/build.sh`')
    tag = uuid.uuid4().hex[:8]
    config_dir = Path(tempfile.mkdtemp(prefix='cpo-it-config-'))
    st = Stack(tag, config_dir)
    pg_password = secrets.token_urlsafe(12)
    try:
        docker('network', 'create', st.network)
        docker('run', '-d', '--name', st.pg, '--network', st.network, '--network-alias', 'db',
               '-e', 'POSTGRES_USER=orthanc', '-e', f'POSTGRES_PASSWORD={pg_password}', '-e', 'POSTGRES_DB=orthanc',
               POSTGRES_IMAGE)  # fmt: skip
        deadline = time.monotonic() + 90
        while docker('exec', st.pg, 'pg_isready', '-q', '-h', '127.0.0.1', '-U', 'orthanc',
                     check=False).returncode != 0:  # fmt: skip
            if time.monotonic() > deadline:
                raise AssertionError('PostgreSQL did not become ready')
            time.sleep(0.5)
        _write_config(config_dir, pg_password, tag)
        docker('run', '-d', '--name', st.orthanc, '--network', st.network, '-p', '127.0.0.1::8042',
               '-v', f'{config_dir}:/etc/orthanc', ORTHANC_IMAGE)  # fmt: skip
        port = docker('port', st.orthanc, '8042/tcp').stdout.strip().splitlines()[0].rsplit(':', 1)[1]
        st.url = f'http://127.0.0.1:{port}'
        st.wait()
        yield st
    finally:
        docker('rm', '-f', '-v', st.orthanc, st.pg, check=False)
        docker('network', 'rm', st.network, check=False)
        shutil.rmtree(config_dir, ignore_errors=True)


def _json_document(stdout):
    """The JSON callback's document; with -vvv the display's own lines come before it."""
    try:
        return json.loads(stdout)
    except ValueError:
        for index, line in enumerate(stdout.splitlines(keepends=True)):
            if line.rstrip() == '{':
                try:
                    return json.loads(''.join(stdout.splitlines(keepends=True)[index:]))
                except ValueError:
                    continue
        raise


def run_ansible(module, args, stack=None, check=False, diff=False, env_extra=None, play_extra=None, verbose=False):
    """Run ``clinicpacs.orthanc.<module>`` with ``args`` on localhost; return the task result (a dict).

    With ``stack`` the connection comes from the ``ORTHANC_*`` environment variables (the options' fallbacks);
    ``play_extra`` adds keys to the play (for example ``module_defaults``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith('ORTHANC_')}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        PATH='/usr/bin:' + env.get('PATH', ''),
    )
    if stack is not None:
        env.update(ORTHANC_URL=stack.url, ORTHANC_USERNAME=stack.auth[0], ORTHANC_PASSWORD=stack.auth[1])
    env.update(env_extra or {})
    play = [
        {'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'name': module, f'clinicpacs.orthanc.{module}': args}]}
    ]
    play[0].update(play_extra or {})
    with tempfile.NamedTemporaryFile('w', suffix='.yml', prefix='cpo-it-play-', delete=False) as handle:
        json.dump(play, handle)
    cmd = [ANSIBLE + '-playbook', '-i', 'localhost,', '-c', 'local', '-e',
           f'ansible_python_interpreter={sys.executable}', handle.name]  # fmt: skip
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbose:
        cmd.append('-vvv')
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    finally:
        os.unlink(handle.name)
    try:
        out = _json_document(proc.stdout)
        result = out['plays'][0]['tasks'][0]['hosts']['localhost']
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(f'unexpected ansible output ({exc}):\n{proc.stdout}\n{proc.stderr}') from None
    result['_rc'] = proc.returncode
    result['_stdout'] = proc.stdout
    result['_stderr'] = proc.stderr
    return result
