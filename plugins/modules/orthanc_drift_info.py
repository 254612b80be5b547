#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_drift_info
short_description: Read everything a clinic's drift check compares, and its health facts, in one call
version_added: 0.2.0
description:
  - The gather of the fast drift check (C(clinicpacs.orthanc.drift)). In one run on the clinic box it reads
    Orthanc's version, devices, peers and the newest received instances (one C(GET) or C(POST /tools/find) per
    object kind), the users file, the configuration files, the stack's containers and the Orthanc image (Docker
    API on its UNIX socket), the data mount's disk use, the certificates' expiry and the newest backup; it
    compares them with what the inventory declares and returns the drift items, field by field.
  - Only reads. It never writes to the box, the files or Orthanc, so it runs the same in check mode.
  - Secrets are never returned. Field changes of secret-looking keys are masked; a configuration file marked
    O(files[].secret) is named without its content; every other diff masks the value of secret-looking keys.
  - Normally run through its action plugin of the same name, which renders the expected files on the control
    node, keeps the image facts and a small health history there, and applies the health thresholds.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: The drift items carry their own field changes and unified diffs.
  idempotent:
    support: full
    description: Never changes anything.
options:
  devices:
    description: The DICOM devices the inventory declares (options of M(clinicpacs.orthanc.orthanc_modalities)).
    type: list
    elements: dict
    default: []
  devices_exclusive:
    description: Devices in Orthanc that are not declared are drift.
    type: bool
    default: true
  peers:
    description: The peers the inventory declares (options of M(clinicpacs.orthanc.orthanc_peers)); every peer in
      Orthanc that is not declared is drift. Passwords cannot be read back and are not compared.
    type: list
    elements: dict
    default: []
  users_file:
    description: Orthanc's users file (C(RegisteredUsers)). Not read when unset.
    type: path
  users:
    description: The users the inventory declares, C({name, password, state}). Passwords are compared, never shown.
    type: list
    elements: dict
    default: []
  users_exclusive:
    description: Users of the file that are not declared are drift.
    type: bool
    default: true
  files:
    description:
      - Configuration files and the content, owner and mode the inventory gives them.
      - Keys C(name) (shown), C(path), C(content), C(uid), C(gid), C(mode) (octal string such as V(0600)) and
        C(secret) (the file holds secrets: named without content).
    type: list
    elements: dict
    default: []
  containers:
    description: The stack's containers, C({service, name, image}).
    type: list
    elements: dict
    default: []
  orthanc_image:
    description: Image reference whose Docker image ID is returned (C(orthanc_image_id)).
    type: str
  image_facts_script:
    description:
      - Script run in a throw-away container of O(orthanc_image) (no network, user O(image_facts_user)) whose
        output is returned as C(image_facts_output); the pacs role's C(orthanc-image-facts.sh).
      - Only when the action plugin has no image facts for the image ID yet.
    type: str
  image_facts_args:
    description: Arguments of O(image_facts_script) (the plugin file names).
    type: list
    elements: str
    default: []
  image_facts_user:
    description: User the image facts container runs as.
    type: str
    default: '4242:4242'
  data_dir:
    description: The data mount whose disk use is read.
    type: path
  certificates:
    description: PEM certificate files (glob patterns allowed) whose expiry is read; missing files are skipped.
    type: list
    elements: path
    default: []
  backup_dir:
    description: Directory of the complete backups (C(YYYYmmddTHHMMSSZ) folders); the newest one's name is returned.
    type: path
  last_received_window:
    description:
      - How many of the most recently received instances are read (one C(POST /tools/find), newest first) to find
        each device's last study. A device not among them keeps the time of the action plugin's history.
      - Without Orthanc's extended find (the PostgreSQL index plugin before version 7 does not offer it) the changes
        since the last report are read instead, at most this many, 100 per request, and the new instances'
        metadata in one C(POST /tools/bulk-content).
      - V(0) skips the read.
    type: int
    default: 2000
  changes_since:
    description:
      - Orthanc change number of the last report; without Orthanc's extended find (PostgreSQL index plugin before
        7), only instances received after it are read (at most O(last_received_window)).
    type: int
    default: 0
  docker_socket:
    description: Docker Engine API socket.
    type: path
    default: /var/run/docker.sock
seealso:
  - module: clinicpacs.orthanc.orthanc_info
  - module: clinicpacs.orthanc.orthanc_modalities
'''

EXAMPLES = r'''
- name: Everything drift compares, in one call (normally through the playbook clinicpacs.orthanc.drift)
  clinicpacs.orthanc.orthanc_drift_info:
    api_username: ansible
    api_password: "{{ pacs_api_password }}"
    devices: [{name: CBCT1, aet: CBCT1, host: 10.214.0.21, port: 104}]
    containers: [{service: orthanc, name: clinic-orthanc, image: "clinicpacs/orthanc:1.13.0"}]
    data_dir: /srv/clinicpacs
  register: gathered
'''

RETURN = r'''
items:
  description: Drift items, C({name, detail, changes, diff}); C(changes) lists C({field, before, after}) (secrets
    masked), C(diff) is a unified diff (secrets masked) or null.
  returned: always
  type: list
  elements: dict
  sample: [{name: "device:CBCT1", detail: "Host: 10.214.0.99 → 10.214.0.20", changes: [], diff: null}]
health:
  description:
    - Raw health facts; the action plugin turns them into items with thresholds.
    - C(disk) C({path, total, used, free}) in bytes; C(last_received) C({device: 20261202T031500}) for devices seen
      in the window; C(devices) (names in Orthanc); C(certificates) C([{path, not_after}]); C(backup)
      C({dir, newest}); C(orthanc_version); C(containers) C({service: {restart_count, restarting, status}}).
  returned: always
  type: dict
orthanc_image_id:
  description: Docker image ID of O(orthanc_image) on the box, or null.
  returned: always
  type: str
image_facts_output:
  description: Output of O(image_facts_script), when given.
  returned: when O(image_facts_script) is given and the image is on the box
  type: str
orthanc_requests:
  description: HTTP requests sent to Orthanc, by method (one per object kind).
  returned: always
  type: dict
  sample: {GET: 3, POST: 1}
rest_reads:
  description: The Orthanc reads made, by object kind (C(system), C(devices), C(peers), C(last_received)).
  returned: always
  type: dict
docker_requests:
  description: Requests sent to the Docker Engine API.
  returned: always
  type: int
last_change:
  description: Orthanc's last change number (null with the extended find), for O(changes_since) of the next run.
  returned: always
  type: int
peer_count:
  description: Peers in Orthanc.
  returned: always
  type: int
user_count:
  description: Users in the users file.
  returned: always
  type: int
'''

import datetime  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
from http.client import HTTPConnection  # noqa: E402
from urllib.parse import quote  # noqa: E402

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancError  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_drift import (  # noqa: E402
    compare_containers,
    compare_file,
    compare_objects,
    compare_users,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_modality import (  # noqa: E402
    modality_options,
    read_modalities,
    to_orthanc,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_peer import (  # noqa: E402
    SECRETS,
    desired_peer,
    peer_options,
    read_peers,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import OrthancModule  # noqa: E402

BACKUP_NAME_LENGTH = len('20261202T031500Z')
CHANGES_PAGE = 100


class UnixHTTPConnection(HTTPConnection):
    def __init__(self, path, timeout=30):
        HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Docker(object):
    """The Docker Engine API on its UNIX socket: one connection, ``requests`` counted."""

    def __init__(self, path):
        self.path = path
        self.requests = 0
        self.conn = None

    def get(self, url):
        """Decoded JSON, or None on 404."""
        if self.conn is None:
            self.conn = UnixHTTPConnection(self.path)
        self.requests += 1
        self.conn.request('GET', url)
        answer = self.conn.getresponse()
        body = answer.read()
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise OSError(f'Docker API GET {url}: HTTP {answer.status} {body[:200]!r}')
        return json.loads(body)


def desired_devices(devices):
    return {d['name']: (to_orthanc(d) if d.get('state', 'present') == 'present' else None) for d in devices}


def desired_peers(peers):
    return {p['name']: (desired_peer(p) if p.get('state', 'present') == 'present' else None) for p in peers}


def read_file(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {'exists': False}
    try:
        with open(path, encoding='utf-8') as handle:
            content = handle.read()
    except (OSError, UnicodeDecodeError):
        content = None
    return {
        'exists': True,
        'content': content,
        'uid': st.st_uid,
        'gid': st.st_gid,
        'mode': '%04o' % (st.st_mode & 0o7777),
    }


def read_users(path):
    try:
        with open(path, encoding='utf-8') as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return {}
    users = doc.get('RegisteredUsers') if isinstance(doc, dict) else None
    return users if isinstance(users, dict) else {}


def certificate_expiry(path):
    """notAfter of a PEM certificate (UTC ISO 8601), with the standard library's decoder (openssl as fallback)."""
    try:
        decoded = ssl._ssl._test_decode_cert(path)  # pylint: disable=protected-access
        seconds = ssl.cert_time_to_seconds(decoded['notAfter'])
    except (AttributeError, KeyError, ValueError, ssl.SSLError):
        out = subprocess.run(  # noqa: S603
            ['openssl', 'x509', '-noout', '-enddate', '-in', path],  # noqa: S607 (the box's openssl on PATH)
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        seconds = ssl.cert_time_to_seconds(out.strip().split('=', 1)[1])
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')  # noqa: UP017 (Python 3.10 on the box)


def read_certificates(patterns):
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                out.append({'path': path, 'not_after': certificate_expiry(path)})
            except (OSError, ValueError, IndexError, subprocess.CalledProcessError) as exc:
                out.append({'path': path, 'error': f'{path}: cannot read the certificate ({exc})'})
    return out


def newest_backup(path):
    if not path:
        return {'dir': None, 'newest': None}
    try:
        names = os.listdir(path)
    except OSError:
        names = []
    done = sorted(
        n
        for n in names
        if len(n) == BACKUP_NAME_LENGTH
        and n[8] == 'T'
        and n.endswith('Z')
        and n[:8].isdigit()
        and os.path.isdir(os.path.join(path, n))
    )
    return {'dir': path, 'newest': done[-1] if done else None}


def disk_use(path):
    if not path:
        return {}
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return {'path': path, 'error': f'{path}: {exc.strerror}'}
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return {'path': path, 'total': total, 'used': total - st.f_bfree * st.f_frsize, 'free': free}


def newest_by_aet(entries, newest=None):
    """``{RemoteAET: newest ReceptionDate}`` from instances with their metadata."""
    newest = dict(newest or {})
    for entry in entries:
        meta = entry.get('Metadata') or {}
        aet, when = meta.get('RemoteAET'), meta.get('ReceptionDate')
        if aet and when and when > newest.get(aet, ''):
            newest[aet] = when
    return newest


def last_received(client, window, extended, since):
    """Newest reception time per calling AE title among the ``window`` newest instances; and the last change.

    With Orthanc's extended find (SQLite index, PostgreSQL plugin 7+): one ``POST /tools/find`` ordered by
    ReceptionDate. Otherwise the changes log: ``GET /changes?last``, the changes since the last report's change
    (``since``; at most ``window`` changes) with ``GET /changes`` (100 per request), and the new instances'
    metadata in one ``POST /tools/bulk-content``."""
    if extended:
        found = client.post(
            '/tools/find',
            {
                'Level': 'Instance',
                'Query': {},
                'ResponseContent': ['Metadata'],
                'OrderBy': [{'Type': 'Metadata', 'Key': 'ReceptionDate', 'Direction': 'DESC'}],
                'Limit': window,
            },
            expect=list,
        )
        return newest_by_aet(found), None
    last = client.get('/changes?last', expect=dict).get('Last') or 0
    seq = max(int(since or 0), last - window)
    ids = []
    while seq < last:  # Orthanc returns at most 100 changes per request
        page = client.get(f'/changes?since={seq}&limit={CHANGES_PAGE}', expect=dict)
        changes = page.get('Changes') or []
        ids += [c['ID'] for c in changes if c.get('ChangeType') == 'NewInstance' and c.get('ID')]
        if not changes or page.get('Done'):
            break
        seq = page.get('Last') or last
    ids = ids[-window:]
    if not ids:
        return {}, last
    found = client.post('/tools/bulk-content', {'Resources': ids, 'Level': 'Instance', 'Metadata': True}, expect=list)
    return newest_by_aet(found), last


def main():
    device_spec = modality_options()
    device_spec['state'] = {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']}
    om = OrthancModule(
        {
            'devices': {'type': 'list', 'elements': 'dict', 'default': [], 'options': device_spec},
            'devices_exclusive': {'type': 'bool', 'default': True},
            'peers': {'type': 'list', 'elements': 'dict', 'default': [], 'options': peer_options()},
            'users_file': {'type': 'path'},
            'users': {
                'type': 'list',
                'elements': 'dict',
                'default': [],
                'options': {
                    'name': {'type': 'str', 'required': True},
                    'password': {'type': 'str', 'no_log': True},
                    'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
                },
            },
            'users_exclusive': {'type': 'bool', 'default': True},
            'files': {
                'type': 'list',
                'elements': 'dict',
                'default': [],
                'options': {
                    'name': {'type': 'str', 'required': True},
                    'path': {'type': 'path', 'required': True},
                    'content': {'type': 'str', 'no_log': True},
                    'template': {'type': 'str'},
                    'var': {'type': 'str'},
                    'format': {'type': 'str', 'default': 'raw', 'choices': ['raw', 'json']},
                    'uid': {'type': 'int'},
                    'gid': {'type': 'int'},
                    'mode': {'type': 'str'},
                    'secret': {'type': 'bool', 'default': False},
                },
            },
            'thresholds': {'type': 'dict', 'default': {}},
            'minimum_version': {'type': 'str', 'default': '0.0.0'},
            'allow_below_minimum': {'type': 'bool', 'default': False},
            'state_dir': {'type': 'path', 'default': '~/.clinicpacs/state'},
            'history_keep': {'type': 'int', 'default': 60},
            'image_facts_plugins': {'type': 'list', 'elements': 'str', 'default': []},
            'image_facts_script_file': {'type': 'str'},
            'enforce': {'type': 'bool', 'default': False},
            'containers': {'type': 'list', 'elements': 'dict', 'default': []},
            'orthanc_image': {'type': 'str'},
            'image_facts_script': {'type': 'str'},
            'image_facts_args': {'type': 'list', 'elements': 'str', 'default': []},
            'image_facts_user': {'type': 'str', 'default': '4242:4242'},
            'data_dir': {'type': 'path'},
            'certificates': {'type': 'list', 'elements': 'path', 'default': []},
            'backup_dir': {'type': 'path'},
            'last_received_window': {'type': 'int', 'default': 2000},
            'docker_socket': {'type': 'path', 'default': '/var/run/docker.sock'},
            'changes_since': {'type': 'int', 'default': 0},
        }
    )
    p = om.params
    client = om.client
    reads = {}
    items = []

    system = om.call(client.get, '/system', expect=dict)
    reads['system'] = 1
    current_devices = om.call(read_modalities, client)
    reads['devices'] = 1
    items += compare_objects('device', current_devices, desired_devices(p['devices']), p['devices_exclusive'])
    current_peers = om.call(read_peers, client)
    reads['peers'] = 1
    items += compare_objects('peer', current_peers, desired_peers(p['peers']), True, SECRETS, SECRETS)
    received, last_change = {}, None
    if p['last_received_window'] > 0:
        extended = bool((system.get('Capabilities') or {}).get('HasExtendedFind'))
        before = dict(client.requests)
        try:
            received, last_change = last_received(client, p['last_received_window'], extended, p['changes_since'])
        except OrthancError as exc:
            om.warn(f'last received studies not read: {exc.msg}')
        reads['last_received'] = sum(client.requests.values()) - sum(before.values())
    by_aet = {cfg.get('AET'): name for name, cfg in current_devices.items()}
    received = {by_aet[aet]: when for aet, when in received.items() if aet in by_aet}

    current_users = read_users(p['users_file']) if p['users_file'] else {}
    if p['users_file']:
        items += compare_users(current_users, p['users'], p['users_exclusive'])

    for spec in p['files']:
        found = compare_file(spec, read_file(spec['path']))
        if found:
            items.append(found)

    docker = Docker(p['docker_socket'])
    containers = {}
    health_containers = {}
    image_id = None
    facts_output = None
    try:
        for spec in p['containers']:
            info = docker.get('/containers/{}/json'.format(quote(spec['name'], safe='')))
            containers[spec['service']] = info
            if info:
                state = info.get('State') or {}
                health_containers[spec['service']] = {
                    'restart_count': info.get('RestartCount', 0),
                    'restarting': bool(state.get('Restarting')),
                    'status': state.get('Status'),
                }
        if p['orthanc_image']:
            image = docker.get('/images/{}/json'.format(quote(p['orthanc_image'], safe='')))
            image_id = image.get('Id') if image else None
    except OSError as exc:
        om.fail(f'cannot read the containers through {p["docker_socket"]}: {exc}')
    items += compare_containers(p['containers'], containers)

    if p['image_facts_script'] and image_id:
        run = subprocess.run(  # noqa: S603
            # S607: docker from PATH, as the pacs role's image step (tasks/version.yml)
            ['docker', 'run', '--rm', '--interactive', '--network', 'none', '--user', p['image_facts_user'],  # noqa: S607
             '--entrypoint', 'sh', p['orthanc_image'], '-s', '--', *p['image_facts_args']],
            input=p['image_facts_script'], capture_output=True, text=True, check=False,
        )  # fmt: skip
        if run.returncode != 0:
            om.fail(f'image {p["orthanc_image"]}: the image facts script failed: {run.stderr.strip()[:300]}')
        facts_output = run.stdout

    health = {
        'orthanc_version': system.get('Version'),
        'devices': sorted(current_devices),
        'last_received': received,
        'disk': disk_use(p['data_dir']),
        'certificates': read_certificates(p['certificates']),
        'backup': newest_backup(p['backup_dir']),
        'containers': health_containers,
    }
    result = {
        'items': items,
        'health': health,
        'orthanc_image_id': image_id,
        'rest_reads': reads,
        'docker_requests': docker.requests,
        'peer_count': len(current_peers),
        'last_change': last_change,
        'user_count': len(current_users),
    }
    if facts_output is not None:
        result['image_facts_output'] = facts_output
    om.exit(False, **result)


if __name__ == '__main__':
    main()
