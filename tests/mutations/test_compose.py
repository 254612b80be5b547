# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Compose file (roles/pacs/templates/docker-compose.yml.j2), rendered and parsed, and each service's
options applied to a real container of its image: the process's uid, capability bounding set,
no_new_privs flag, root filesystem and pids limit are read from inside (/proc/self/status, cgroup v1), and
``docker inspect`` shows its environment. No Docker Compose is needed: the options a service sets are
translated to ``docker run`` flags; an option the translation does not know fails the test.
"""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import PREFIX, SECRETS, docker

# What the probe prints, one key=value a line.
PROBE = r"""
echo "uid=$(id -u)"
grep -E '^(CapBnd|CapEff|NoNewPrivs):' /proc/self/status | sed -e 's/:[[:space:]]*/=/'
awk '$5 == "/" { split($6, o, ","); print "rootfs=" o[1] }' /proc/self/mountinfo
echo "pids_max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null)"
"""
# Service options the translation takes (the rest does not change the process's privileges: restart, logging,
# healthcheck, depends_on, networks, ports and volumes are checked from the parsed file).
RUN_FLAGS = {
    'user': lambda v: ['--user', str(v)],
    'read_only': lambda v: ['--read-only'] if v else [],
    'tmpfs': lambda v: [f for path in ([v] if isinstance(v, str) else v) for f in ('--tmpfs', path)],
    'cap_drop': lambda v: [f for cap in v for f in ('--cap-drop', cap)],
    'cap_add': lambda v: [f for cap in v for f in ('--cap-add', cap)],
    'security_opt': lambda v: [f for opt in v for f in ('--security-opt', opt)],
    'mem_limit': lambda v: ['--memory', str(v)],
    'pids_limit': lambda v: ['--pids-limit', str(v)],
    'privileged': lambda v: ['--privileged'] if v else [],
    'environment': lambda v: [
        f
        for item in (v.items() if isinstance(v, dict) else (e.split('=', 1) for e in v))
        for f in ('-e', '='.join(map(str, item)))
    ],
}
IGNORED = {'image', 'container_name', 'restart', 'logging', 'healthcheck', 'depends_on', 'networks', 'ports',
           'volumes', 'entrypoint', 'command'}  # fmt: skip
SERVICES = ['postgres', 'orthanc', 'nginx']


@pytest.fixture(scope='module')
def compose(rendered) -> dict:
    return yaml.safe_load(rendered['docker-compose.yml'])


@pytest.fixture(scope='module')
def probes(compose, containers) -> dict:
    """For each service: what its process sees inside a container with the service's options, and Env."""
    results = {}
    for service in SERVICES:
        options = compose['services'][service]
        unknown = set(options) - set(RUN_FLAGS) - IGNORED
        assert not unknown, f'{service}: options the test cannot apply: {sorted(unknown)}'
        flags = [f for key, value in options.items() if key in RUN_FLAGS for f in RUN_FLAGS[key](value)]
        name = f'{PREFIX}-probe-{service}'
        containers.containers.append(name)
        docker(
            'create', '--name', name, '--network', 'none', *flags, '--entrypoint', 'sh', options['image'], '-c', PROBE
        )
        out = docker('start', '--attach', name, check=False)
        values = dict(line.split('=', 1) for line in out.stdout.splitlines() if '=' in line)
        assert 'uid' in values, f'{service}: the probe did not run: {out.stderr}'
        values['env'] = json.loads(docker('inspect', '--format', '{{json .Config.Env}}', name).stdout)
        results[service] = values
    return results


@pytest.mark.parametrize('service', SERVICES)
def test_runs_as_an_unprivileged_user(compose, probes, service):
    assert probes[service]['uid'] != '0', f'{service} runs as root'
    # Also when an image's own user changes: the Compose file names the user.
    assert 'user' in compose['services'][service], f'{service} has no user: it runs as its image user'


def test_read_only_root_filesystem(probes):
    # The mount options of "/" (a write test would prove nothing: an unprivileged user cannot write to / anyway).
    writable = [s for s in SERVICES if probes[s]['rootfs'] != 'ro']
    assert not writable, f'root filesystem writable in {writable}'


def test_all_capabilities_dropped(probes):
    # CapBnd bounds what any process of the container can ever gain (even through a setuid binary).
    kept = {s: probes[s]['CapBnd'] for s in SERVICES if int(probes[s]['CapBnd'], 16) != 0}
    assert not kept, f'capability bounding sets not empty: {kept}'


def test_no_new_privileges(probes):
    missing = [s for s in SERVICES if probes[s]['NoNewPrivs'] != '1']
    assert not missing, f'no_new_privs not set in {missing}'


def test_process_limits(compose, probes):
    for service in SERVICES:
        assert probes[service]['pids_max'].isdigit(), f'{service}: no pids limit ({probes[service]["pids_max"]})'
        assert str(compose['services'][service].get('mem_limit', '')), f'{service}: no memory limit'


def test_no_secret_in_environment_or_compose_file(rendered, probes):
    for service in SERVICES:
        env = '\n'.join(probes[service]['env'])
        leaked = [name for name, secret in SECRETS.items() if secret in env]
        assert not leaked, f'{service}: docker inspect shows {leaked} in the environment'
        assert not [e for e in probes[service]['env'] if e.split('=', 1)[0].endswith('_PASSWORD')], service
    text = rendered['docker-compose.yml']
    in_file = [name for name, secret in SECRETS.items() if secret in text]
    assert not in_file, f'secrets written into docker-compose.yml: {in_file}'


def test_orthanc_rest_port_published_on_loopback_only(compose):
    for service in SERVICES:
        for port in compose['services'][service].get('ports', []):
            host, _sep, rest = str(port).rpartition(':')
            if rest == '8042':
                assert host.rsplit(':', 1)[0] == '127.0.0.1', f'{service} publishes 8042 on {port}'


def test_no_docker_socket_mounted(compose):
    for service in SERVICES:
        for volume in compose['services'][service].get('volumes', []):
            assert 'docker.sock' not in str(volume), f'{service} mounts the Docker socket: {volume}'


def test_database_network_has_no_way_out(compose):
    assert compose['networks']['backend'].get('internal') is True, 'the backend network is not internal'
    assert compose['services']['postgres']['networks'] == ['backend'], 'PostgreSQL is on another network'
