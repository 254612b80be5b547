#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_peers
short_description: Declare a clinic's whole list of Orthanc peers in one task
version_added: 0.1.0
description:
  - Makes Orthanc's peers (C(OrthancPeers), other Orthanc servers reached over HTTP) match a list in one task;
    with O(exclusive=true) peers that are not listed are removed (drift correction).
  - Reads all peers with one request (C(GET /peers?expand)) and writes only the peers that differ, so a
    converged list of any length costs exactly one C(GET) and no write.
  - Every item is validated, and names are checked for duplicates, before anything is written.
  - Orthanc replaces the whole peer on C(PUT), so every write sends the complete desired configuration.
  - B(Passwords cannot be compared.) Orthanc never returns a peer's password (nor the client key and its
    password). With O(peers[].update_password=on_create) (default) the password is sent when the peer is
    created and whenever another field of that peer changes; with O(peers[].update_password=always) it is sent
    on every run, and the task then always reports a change.
  - HTTP headers and user properties of a peer are not managed; a write removes them.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: Reads Orthanc and reports what would change; never writes.
  diff_mode:
    support: full
    description: Shows the configuration before and after of every peer that changes, keyed by name; passwords
      are shown masked, never in clear.
  idempotent:
    support: partial
    description: Idempotent unless passwords are sent on every run.
    details:
      - A converged list sends one C(GET) and nothing else when every item uses
        O(peers[].update_password=on_create). An item with O(peers[].update_password=always) and a
        O(peers[].password) is written on every run and reported as changed, because Orthanc cannot return
        the password for comparison.
options:
  peers:
    description:
      - The peers. Names must be unique in the list.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Symbolic name of the peer (letters, digits, V(-) and V(_), at most 64 characters).
        type: str
        required: true
      state:
        description: V(present) creates or updates the peer, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      url:
        description:
          - Base URL of the peer's REST API, V(http://) or V(https://). Required for a present peer.
          - Orthanc stores it with a trailing slash; both spellings compare equal.
          - The whole URL is checked before anything is written - a host, an optional port from 1 to 65535, no
            white space or control character anywhere, no query or fragment, and no C(user:password@) part (give
            O(peers[].username) and O(peers[].password) instead).
        type: str
      username:
        description:
          - User name Orthanc sends to the peer (HTTP basic authentication); no V(:) and no control character.
          - With a user name, an empty O(peers[].password) is refused (it would be dropped and the peer stored
            without one).
        type: str
      password:
        description:
          - Password Orthanc sends to the peer. Never logged and never shown in a diff.
          - Not readable back from Orthanc, see O(peers[].update_password).
          - Required to change a peer that has a O(peers[].username), since the write replaces the whole peer.
        type: str
      update_password:
        description:
          - V(on_create) sends O(peers[].password) when the peer is created or when another field changes.
          - V(always) sends it on every run (and so always reports a change).
        type: str
        choices: [always, on_create]
        default: on_create
      certificate_file:
        description: Client certificate (PEM, path on the Orthanc host) for mutual TLS towards the peer.
        type: str
      certificate_key_file:
        description: Private key of O(peers[].certificate_file) (path on the Orthanc host). Not readable back
          from Orthanc.
        type: str
      certificate_key_password:
        description: Password of O(peers[].certificate_key_file); Orthanc requires it with a client certificate.
        type: str
      pkcs11:
        description: Use the PKCS#11 module configured in Orthanc for the client certificate.
        type: bool
        default: false
      timeout:
        description: HTTP timeout in seconds for this peer, from V(0) to V(3600); unset or V(0) means Orthanc's
          C(HttpTimeout).
        type: int
  exclusive:
    description:
      - Remove every peer known to Orthanc that is not in O(peers).
      - With no present peer in O(peers) (an empty list, or only V(absent) items) this removes every peer, and the
        module refuses unless O(confirm_remove_all=true).
    type: bool
    default: false
  confirm_remove_all:
    description:
      - Confirm that O(exclusive=true) with no present peer in O(peers) is meant to remove every peer known to
        Orthanc. Without it such a run fails before any request, so that a peer list left empty by mistake (an
        undefined or misspelt inventory variable) cannot remove a clinic's peers.
      - Has no effect when O(exclusive=false) or when O(peers) lists a present peer.
    type: bool
    default: false
    version_added: 0.1.0
notes:
  - Verification of the peers' server certificates is global in Orthanc (C(HttpsVerifyPeers),
    C(HttpsCACertificates)), not a per-peer setting.
seealso:
  - module: clinicpacs.orthanc.orthanc_peer
  - module: clinicpacs.orthanc.orthanc_modalities
'''

EXAMPLES = r'''
- name: Exactly the peers of the clinic, nothing else
  clinicpacs.orthanc.orthanc_peers:
    api_url: https://pacs.clinic.example
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
    ca_path: /etc/ssl/clinic-ca.pem
    exclusive: true
    peers:
      - name: central
        url: https://archive.group.example/orthanc/
        username: clinic42
        password: "{{ vault_central_password }}"
        timeout: 60
      - name: teleradiology
        url: https://tr.example/orthanc/
        username: clinic42
        password: "{{ vault_tr_password }}"
      - name: old-archive
        state: absent
  no_log: true
'''

RETURN = r'''
peers:
  description: Public configuration of every listed present peer after the run, keyed by name (passwords never
    included).
  returned: always
  type: dict
  sample:
    central: {Url: "https://archive.group.example/orthanc/", Username: clinic42, Pkcs11: false, HttpHeaders: [],
              Timeout: 60}
created:
  description: Names of the peers created.
  returned: always
  type: list
  elements: str
  sample: [teleradiology]
updated:
  description: Names of the peers written, with the Orthanc keys that differ (or, for passwords, are sent).
  returned: always
  type: dict
  sample: {central: [Timeout]}
deleted:
  description: Names of the peers removed by this run.
  returned: always
  type: list
  elements: str
  sample: [old-archive]
already_absent:
  description:
    - Names of the peers this run was to remove but that were gone when it sent the C(DELETE) (Orthanc answered
      404 because another run or client removed them after this run read the list). Absent is the goal, so this is not
      a failure, and not a change made by this run (not in RV(deleted), RV(diff) nor C(changed)).
  returned: always
  type: list
  elements: str
  sample: []
diff:
  description: Configuration before and after of every peer that changes, keyed by name, passwords masked.
  returned: always
  type: dict
  sample:
    before: {central: {Timeout: 30}}
    after: {central: {Timeout: 60}}
done:
  description:
    - Writes already made when the run failed (the failure then reports C(changed=true)); each with
      C(action) (V(create), V(update) or V(delete)), C(name) and the Orthanc keys written (C(fields)).
  returned: when the run fails after it has written to Orthanc
  type: list
  elements: dict
  sample: [{action: create, name: central, fields: [Url]}]
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {GET: 1}
'''

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_peer import (  # noqa: E402
    converge,
    peer_options,
    public,
    validate,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import (  # noqa: E402
    OrthancModule,
    remove_all_refusal,
)


def main():
    spec = {
        'peers': {'type': 'list', 'elements': 'dict', 'required': True, 'options': peer_options()},
        'exclusive': {'type': 'bool', 'default': False},
        'confirm_remove_all': {'type': 'bool', 'default': False},
    }
    om = OrthancModule(spec)
    p = om.params
    refusal = remove_all_refusal(p, 'peers', 'peer')
    if refusal:
        om.fail(refusal)
    errors = []
    items = {}
    seen = {}
    for entry in p['peers']:
        om.hide_url_password(entry.get('url'))
    for index, entry in enumerate(p['peers']):
        name = entry.get('name')
        if name in seen:
            errors.append(f"peers[{index}].name '{name}' is already used by peers[{seen[name]}]: names must be unique")
            continue
        seen[name] = index
        item_errors = validate(entry, prefix=f'peers[{index}].')
        errors.extend(item_errors)
        if not item_errors:
            items[name] = entry
    if errors:
        om.fail('; '.join(errors))
    plan, desired = converge(om, items, exclusive=p['exclusive'])
    om.exit(
        plan.changed,
        diff=plan.diff,
        peers={n: public(cfg) for n, cfg in desired.items() if cfg is not None},
        created=[c.name for c in plan.changes if c.action == 'create'],
        updated={c.name: c.fields for c in plan.changes if c.action == 'update'},
        deleted=[c.name for c in plan.changes if c.action == 'delete'],
        already_absent=[c.name for c in plan.already],
    )


if __name__ == '__main__':
    main()
