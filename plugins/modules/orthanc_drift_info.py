#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: orthanc_drift_info
short_description: Read everything a clinic's drift check compares, and its health facts, in one call
version_added: 0.2.0
description:
- The gather of the fast drift check (C(clinicpacs.orthanc.drift)). In one run on the clinic box it reads
  Orthanc's version, devices, peers and the newest received instances (one C(GET) or C(POST /tools/find)
  per object kind), the users file, the configuration files, the stack's containers and the Orthanc image
  (Docker API on its UNIX socket), the data mount's disk use, the certificates' expiry and the newest
  backup; it compares them with what the inventory declares and returns the drift items, field by field.
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
    suboptions:
      name:
        description: Symbolic name of the device (letters, digits, V(-) and V(_), at most 64 characters).
        type: str
        required: true
      state:
        description: V(present) creates or updates the device, V(absent) removes it.
        type: str
        choices:
        - present
        - absent
        default: present
      aet:
        description: AE title of the device, 1 to 16 printable ASCII characters without backslash.
        type: str
      host:
        description:
        - IP address or DNS name of the device.
        - A DNS name has at most 253 characters and labels of 1 to 63 letters, digits or V(-) (RFC 1123);
          a URL is refused.
        type: str
      port:
        description: DICOM port of the device, an integer from 1 to 65534, the range Orthanc accepts (a
          boolean such as V(yes) is refused).
        type: int
        default: 104
      manufacturer:
        description: Orthanc's manufacturer profile for the device.
        type: str
        choices:
        - Generic
        - GenericNoWildcardInDates
        - GenericNoUniversalWildcard
        - Vitrea
        - GE
        default: Generic
      allow_echo:
        description: Accept C-ECHO requests from the device.
        type: bool
        default: true
      allow_find:
        description: Accept C-FIND requests from the device.
        type: bool
        default: true
      allow_find_worklist:
        description: Accept modality worklist C-FIND requests from the device.
        type: bool
        default: true
      allow_get:
        description: Accept C-GET requests from the device.
        type: bool
        default: true
      allow_move:
        description: Accept C-MOVE requests from the device.
        type: bool
        default: true
      allow_store:
        description: Accept C-STORE requests from the device.
        type: bool
        default: true
      allow_n_action:
        description: Accept N-ACTION requests (storage commitment) from the device.
        type: bool
        default: true
      allow_event_report:
        description: Accept N-EVENT-REPORT requests (storage commitment) from the device.
        type: bool
        default: true
      allow_transcoding:
        description: Allow Orthanc to transcode images sent to the device.
        type: bool
        default: true
      use_dicom_tls:
        description: Use DICOM TLS when Orthanc connects to the device.
        type: bool
        default: false
      local_aet:
        description: AE title Orthanc uses when it calls the device; empty means Orthanc's C(DicomAet).
        type: str
        default: ''
      timeout:
        description: DICOM network timeout in seconds, from V(0) to V(3600); V(0) means Orthanc's C(DicomScuTimeout).
        type: int
        default: 0
      retrieve_method:
        description:
        - How Orthanc retrieves studies from the device, V(C-MOVE), V(C-GET) or V(SystemDefault) (Orthanc's
          C(DicomDefaultRetrieveMethod)). Needs Orthanc 1.12.6 or later.
        type: str
        choices:
        - SystemDefault
        - C-MOVE
        - C-GET
        default: SystemDefault
  devices_exclusive:
    description: Devices in Orthanc that are not declared are drift.
    type: bool
    default: true
  peers:
    description: The peers the inventory declares (options of M(clinicpacs.orthanc.orthanc_peers)); every
      peer in Orthanc that is not declared is drift. Passwords cannot be read back and are not compared.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Symbolic name of the peer (letters, digits, V(-) and V(_), at most 64 characters).
        type: str
        required: true
      state:
        description: V(present) creates or updates the peer, V(absent) removes it.
        type: str
        choices:
        - present
        - absent
        default: present
      url:
        description:
        - Base URL of the peer's REST API, V(http://) or V(https://). Required for a present peer.
        - Orthanc stores it with a trailing slash; both spellings compare equal.
        - The whole URL is checked before anything is written - a host, an optional port from 1 to 65535,
          no white space or control character anywhere, no query or fragment, and no C(user:password@)
          part (give O(peers[].username) and O(peers[].password) instead).
        type: str
      username:
        description:
        - User name Orthanc sends to the peer (HTTP basic authentication); no V(:) and no control character.
        - With a user name, an empty O(peers[].password) is refused (it would be dropped and the peer
          stored without one).
        type: str
      password:
        description:
        - Password Orthanc sends to the peer. Never logged and never shown in a diff.
        - Not readable back from Orthanc, see O(peers[].update_password).
        - Required to change a peer that has a O(peers[].username), since the write replaces the whole
          peer.
        type: str
      update_password:
        description:
        - V(on_create) sends O(peers[].password) when the peer is created or when another field changes.
        - V(always) sends it on every run (and so always reports a change).
        type: str
        choices:
        - always
        - on_create
        default: on_create
      certificate_file:
        description: Client certificate (PEM, path on the Orthanc host) for mutual TLS towards the peer.
        type: str
      certificate_key_file:
        description: Private key of O(peers[].certificate_file) (path on the Orthanc host). Not readable
          back from Orthanc.
        type: str
      certificate_key_password:
        description: Password of O(peers[].certificate_key_file); Orthanc requires it with a client certificate.
        type: str
      pkcs11:
        description: Use the PKCS#11 module configured in Orthanc for the client certificate.
        type: bool
        default: false
      timeout:
        description: HTTP timeout in seconds for this peer, from V(0) to V(3600); unset or V(0) means
          Orthanc's C(HttpTimeout).
        type: int
  users_file:
    description: Orthanc's users file (C(RegisteredUsers)). Not read when unset.
    type: path
  users:
    description: The users the inventory declares, C({name, password, state}). Passwords are compared,
      never shown.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description: Password; compared with the file, never shown.
        type: str
      state:
        description: 'V(absent): the user must not exist.'
        type: str
        default: present
        choices:
        - present
        - absent
  users_exclusive:
    description: Users of the file that are not declared are drift.
    type: bool
    default: true
  files:
    description:
    - Configuration files and the content, owner and mode the inventory gives them.
    - The action plugin renders O(files[].template) or O(files[].var) into O(files[].content) on the control
      node.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name shown in the report (C(config:<name>)).
        type: str
        required: true
      path:
        description: Path on the box.
        type: path
        required: true
      content:
        description: Expected content (set by the action plugin).
        type: str
      template:
        description: Template of the role (its C(templates) folder) that gives the content.
        type: str
      var:
        description: Variable whose value gives the content.
        type: str
      format:
        description: V(json) writes O(files[].var) as C(to_nice_json(indent=2)) plus a newline, V(raw)
          as it is.
        type: str
        default: raw
        choices:
        - raw
        - json
      uid:
        description: Expected owner (numeric).
        type: int
      gid:
        description: Expected group (numeric).
        type: int
      mode:
        description: Expected mode, an octal string such as V(0600).
        type: str
      secret:
        description: The file holds secrets; it is named without content, never diffed.
        type: bool
        default: false
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
    - Script run in a throw-away container of O(orthanc_image) (no network, user O(image_facts_user))
      whose output is returned as C(image_facts_output); the pacs role's C(orthanc-image-facts.sh).
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
    default: 4242:4242
  data_dir:
    description: The data mount whose disk use is read.
    type: path
  certificates:
    description: PEM certificate files (glob patterns allowed) whose expiry is read; missing files are
      skipped.
    type: list
    elements: path
    default: []
  backup_dir:
    description: Directory of the complete backups (C(YYYYmmddTHHMMSSZ) folders); the newest one's name
      is returned.
    type: path
  last_received_window:
    description:
    - How many of the most recently received instances are read (one C(POST /tools/find), newest first)
      to find each device's last study. A device not among them keeps the time of the action plugin's
      history.
    - Without Orthanc's extended find (the PostgreSQL index plugin before version 7 does not offer it)
      the changes since the last report are read instead, at most this many, 100 per request, and the
      new instances' metadata in one C(POST /tools/bulk-content).
    - V(0) skips the read.
    type: int
    default: 2000
  changes_since:
    description:
    - Orthanc change number of the last report; without Orthanc's extended find (PostgreSQL index plugin
      before 7), only instances received after it are read (at most O(last_received_window)).
    type: int
    default: 0
  docker_socket:
    description: Docker Engine API socket.
    type: path
    default: /var/run/docker.sock
  thresholds:
    description:
    - Warning and critical thresholds of the health items (action plugin); keys C(disk_used_warning_percent),
      C(disk_used_critical_percent), C(disk_days_left_warning), C(disk_days_left_critical),
      C(device_silent_warning_days), C(device_silent_critical_days), C(certificate_days_warning),
      C(certificate_days_critical), C(backup_age_warning_hours), C(backup_age_critical_hours),
      C(container_restarts_warning), C(container_restarts_critical).
    - A missing key takes its default (the C(pacs_health_*) defaults of the pacs role); V(null) switches
      a level off.
    type: dict
    default: {}
  minimum_version:
    description: Version gate; a running Orthanc below it is critical (health item C(health:orthanc_version)).
    type: str
    default: 0.0.0
  allow_below_minimum:
    description: An Orthanc below O(minimum_version) is only a warning.
    type: bool
    default: false
  state_dir:
    description: Control-node folder of the health history and the image facts per image ID (action plugin);
      not written in check mode.
    type: path
    default: ~/.clinicpacs/state
  history_keep:
    description: Reports kept in the history per clinic.
    type: int
    default: 60
  image_facts_plugins:
    description: Plugin file names the image facts script looks up (O(image_facts_args) of the module).
    type: list
    elements: str
    default: []
  image_facts_script_file:
    description: File of the role (its C(files) folder) holding the image facts script (O(image_facts_script)).
    type: str
  enforce:
    description: Recorded in the report facts (C(clinicpacs_report.enforced)); the gather never writes.
    type: bool
    default: false
seealso:
- module: clinicpacs.orthanc.orthanc_info
- module: clinicpacs.orthanc.orthanc_modalities
notes:
- The action plugin returns C(clinicpacs_drift_items), C(clinicpacs_health_items) (C({name, severity,
  value, detail})), C(health_status) and the facts C(clinicpacs_drifted), C(clinicpacs_health_status)
  and C(clinicpacs_report) that C(clinicpacs.orthanc.drift) and the C(drift_report) callback use.
"""

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
    - "C(disk) C({path, total, used, free}) in bytes; C(last_received) C({device: 20261202T031500}) for devices
      seen in the window; C(devices) (names in Orthanc); C(certificates) C([{path, not_after}]); C(backup)
      C({dir, newest}); C(orthanc_version); C(containers) C({service: {restart_count, restarting, status}})."
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
