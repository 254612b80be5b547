# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall role's ruleset (roles/firewall/templates/firewall.nft.j2) loaded by nft into the network
namespaces of throw-away containers (``--cap-add NET_ADMIN``, nothing of the host's ruleset is touched).

Both ways traffic reaches a clinic box are tried:
- "input": the box's own sockets (the way published ports go with Docker's userland proxy on): a box with
  the ruleset and listeners on every port the tests knock at;
- "forward": Docker's published ports with the userland proxy off (the docker_engine role's default): a box
  with the ruleset that DNATs the published ports to a service container behind it, as Docker's own nat
  rules do (plus a masquerade, so that the answers come back through the box on a flat test network).

Two clients: a container at the registered device's address (inside the clinic network of the test
inventory) and the host (the bridge address, outside every list). A connection is "open", "refused" (a
reset: nothing listens) or "dropped" (no answer).
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import BOX_IMAGE, DEVICE_HOST, FIREWALL_HOST, PREFIX, docker

PORTS = [22, 80, 443, 4242, 8042]
LISTEN = f"""
import socket, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port))
    s.listen(16)
    while True:
        s.accept()[0].close()
for port in {PORTS}:
    threading.Thread(target=serve, args=(port,), daemon=True).start()
print('LISTENING', flush=True)
threading.Event().wait()
"""
KNOCK = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def knock(target):
    ip, port = target.rsplit(':', 1)
    try:
        socket.create_connection((ip, int(port)), timeout=2).close()
        return 'open'
    except ConnectionRefusedError:
        return 'refused'
    except OSError:
        return 'dropped'
with ThreadPoolExecutor(len(sys.argv) - 1) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(knock, sys.argv[1:])))))
"""
# Docker's nat rules for published ports, in the forward box: DNAT to the service, and a masquerade.
NAT = """
table ip mutnat {{
    chain pre {{
        type nat hook prerouting priority dstnat;
        tcp dport {{ {ports} }} dnat to {service}
    }}
    chain post {{
        type nat hook postrouting priority srcnat;
        ip daddr {service} masquerade
    }}
}}
"""
FORWARDED = [80, 443, 4242]


def knock(target: str) -> str:
    ip, port = target.rsplit(':', 1)
    try:
        socket.create_connection((ip, int(port)), timeout=2).close()
        return 'open'
    except ConnectionRefusedError:
        return 'refused'
    except OSError:
        return 'dropped'


def wait_ready(name: str, marker: str) -> None:
    deadline = time.monotonic() + 30
    while marker not in (logs := docker('logs', name, check=False)).stdout:
        state = docker('inspect', '--format', '{{.State.Running}}', name).stdout.strip()
        assert state == 'true' and time.monotonic() < deadline, f'{name} failed:\n{logs.stdout}{logs.stderr}'
        time.sleep(0.2)


@pytest.fixture(scope='module')
def knocks(rendered, containers, network, tmp_path_factory) -> dict:
    """{path: {client: {port: result}}} for the paths input and forward, the clients device and stranger."""
    folder = tmp_path_factory.mktemp('firewall')
    rules = folder / 'firewall.nft'
    rules.write_text(rendered['firewall.nft'])
    box, forward_box, service = network.ip(FIREWALL_HOST), network.ip(FIREWALL_HOST + 1), network.ip(FIREWALL_HOST + 2)
    (folder / 'nat.nft').write_text(NAT.format(ports=', '.join(map(str, FORWARDED)), service=service))
    load = 'nft -c -f /rules.nft && nft -f /rules.nft && echo LOADED'
    listen = 'exec python3 -c "$LISTEN"'
    common = ['--network', network.name, '-e', f'LISTEN={LISTEN}', '-v', f'{rules}:/rules.nft:ro']
    started = [
        containers.run('firewall', '--ip', box, '--cap-add', 'NET_ADMIN', *common,
                       '--entrypoint', 'sh', BOX_IMAGE, '-c', f'{load} && {listen}'),
        containers.run('service', '--ip', service, *common, '--entrypoint', 'sh', BOX_IMAGE, '-c', listen),
        containers.run('forward', '--ip', forward_box, '--cap-add', 'NET_ADMIN', '--sysctl', 'net.ipv4.ip_forward=1',
                       *common, '-v', f'{folder / "nat.nft"}:/nat.nft:ro', '--entrypoint', 'sh', BOX_IMAGE,
                       '-c', f'{load} && nft -f /nat.nft && echo LISTENING && exec sleep infinity'),
    ]  # fmt: skip
    for name in started:
        wait_ready(name, 'LISTENING')
    targets = [f'{box}:{port}' for port in PORTS] + [f'{forward_box}:{port}' for port in FORWARDED]
    device = docker(
        'run', '--rm', '--name', f'{PREFIX}-device', '--network', network.name, '--ip', network.ip(DEVICE_HOST),
        '--entrypoint', 'python3', BOX_IMAGE, '-c', KNOCK, *targets,
    )  # fmt: skip
    with ThreadPoolExecutor(len(targets)) as pool:
        stranger = dict(zip(targets, pool.map(knock, targets), strict=True))
    seen = {'device': json.loads(device.stdout), 'stranger': stranger}
    return {
        path: {
            client: {t.rsplit(':', 1)[1]: r for t, r in seen[client].items() if t.startswith(ip + ':')}
            for client in seen
        }
        for path, ip in (('input', box), ('forward', forward_box))
    }


@pytest.mark.parametrize('path', ['input', 'forward'])
def test_dicom_only_from_registered_devices(knocks, path):
    seen = knocks[path]
    assert seen['device']['4242'] == 'open', f'{path}: the registered device cannot reach DICOM: {seen}'
    assert seen['stranger']['4242'] == 'dropped', f'{path}: an unregistered address reaches DICOM: {seen}'


@pytest.mark.parametrize('path', ['input', 'forward'])
def test_https_only_from_clinic_networks(knocks, path):
    seen = knocks[path]
    assert seen['device']['443'] == 'open', f'{path}: the clinic network cannot reach HTTPS: {seen}'
    assert seen['stranger']['443'] == 'dropped', f'{path}: an address outside the clinic networks reaches HTTPS: {seen}'
    assert seen['stranger']['80'] == 'dropped', f'{path}: an address outside the clinic networks reaches HTTP: {seen}'


def test_unlisted_ports_dropped(knocks):
    # Orthanc's own REST port is published on the box's loopback only; on the network nothing answers it.
    seen = knocks['input']
    assert seen['device']['8042'] == 'dropped', f'a port no rule opens is reachable: {seen}'
    assert seen['stranger']['8042'] == 'dropped', f'a port no rule opens is reachable: {seen}'
