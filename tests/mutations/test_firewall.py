# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall role's ruleset (roles/firewall/templates/firewall.nft.j2) loaded by nft into the network
namespace of a throw-away container (``--cap-add NET_ADMIN``, nothing of the host's ruleset is touched), with
listeners on every port the tests knock at. Two clients: a container at the registered device's address
(inside the clinic network of the test inventory) and the host (the bridge address, outside every list).
A connection is "open", "refused" (a reset: nothing listens) or "dropped" (no answer).
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
def knock(port):
    try:
        socket.create_connection((sys.argv[1], port), timeout=2).close()
        return 'open'
    except ConnectionRefusedError:
        return 'refused'
    except OSError:
        return 'dropped'
ports = [int(p) for p in sys.argv[2:]]
with ThreadPoolExecutor(len(ports)) as pool:
    print(json.dumps(dict(zip(map(str, ports), pool.map(knock, ports)))))
"""


def knock(ip: str, port: int) -> str:
    try:
        socket.create_connection((ip, port), timeout=2).close()
        return 'open'
    except ConnectionRefusedError:
        return 'refused'
    except OSError:
        return 'dropped'


@pytest.fixture(scope='module')
def knocks(rendered, containers, network, tmp_path_factory) -> dict:
    rules = tmp_path_factory.mktemp('firewall') / 'firewall.nft'
    rules.write_text(rendered['firewall.nft'])
    box = network.ip(FIREWALL_HOST)
    script = 'nft -c -f /rules.nft && nft -f /rules.nft && echo LOADED && exec python3 -c "$LISTEN"'
    name = containers.run(
        'firewall', '--network', network.name, '--ip', box, '--cap-add', 'NET_ADMIN', '-e', f'LISTEN={LISTEN}',
        '-v', f'{rules}:/rules.nft:ro', '--entrypoint', 'sh', BOX_IMAGE, '-c', script,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while 'LISTENING' not in (logs := docker('logs', name, check=False)).stdout:
        state = docker('inspect', '--format', '{{.State.Running}}', name).stdout.strip()
        assert state == 'true' and time.monotonic() < deadline, f'the firewall box failed:\n{logs.stdout}{logs.stderr}'
        time.sleep(0.2)
    assert 'LOADED' in logs.stdout
    device = docker(
        'run', '--rm', '--name', f'{PREFIX}-device', '--network', network.name, '--ip', network.ip(DEVICE_HOST),
        '--entrypoint', 'python3', BOX_IMAGE, '-c', KNOCK, box, *map(str, PORTS),
    )  # fmt: skip
    with ThreadPoolExecutor(len(PORTS)) as pool:
        stranger = dict(zip(map(str, PORTS), pool.map(lambda port: knock(box, port), PORTS), strict=True))
    return {'device': json.loads(device.stdout), 'stranger': stranger}


def test_dicom_only_from_registered_devices(knocks):
    assert knocks['device']['4242'] == 'open', f'the registered device cannot reach DICOM: {knocks}'
    assert knocks['stranger']['4242'] == 'dropped', f'an unregistered address reaches DICOM: {knocks}'


def test_https_only_from_clinic_networks(knocks):
    assert knocks['device']['443'] == 'open', f'the clinic network cannot reach HTTPS: {knocks}'
    assert knocks['stranger']['443'] == 'dropped', f'an address outside the clinic networks reaches HTTPS: {knocks}'
    assert knocks['stranger']['80'] == 'dropped', f'an address outside the clinic networks reaches HTTP: {knocks}'


def test_unlisted_ports_dropped(knocks):
    # Orthanc's own REST port is published on the box's loopback only; on the network nothing answers it.
    assert knocks['device']['8042'] == 'dropped', f'a port no rule opens is reachable: {knocks}'
    assert knocks['stranger']['8042'] == 'dropped', f'a port no rule opens is reachable: {knocks}'
