#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_peer
short_description: Manage one Orthanc peer (another Orthanc reached over HTTP)
version_added: 0.1.0
description:
  - Creates, updates or removes one entry of Orthanc's C(OrthancPeers) through the REST API
    (C(PUT /peers/{name}), C(DELETE /peers/{name})).
  - Reads all peers once (C(GET /peers?expand)) and writes only when something differs. Orthanc replaces the
    whole peer on C(PUT), so every write sends the complete desired configuration.
  - B(Passwords cannot be compared.) Orthanc never returns a peer's password (nor the client key and its
    password), so the module cannot know whether it differs. With O(update_password=on_create) (default) the
    password is sent when the peer is created and whenever another field changes; with
    O(update_password=always) it is sent on every run, and the task then always reports a change.
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
    description: Shows the configuration before and after; passwords are shown masked, never in clear.
  idempotent:
    support: partial
    description: Idempotent unless passwords are sent on every run.
    details:
      - Idempotent with O(update_password=on_create). With O(update_password=always) and a O(password), every
        run writes the password and reports a change because Orthanc cannot return it for comparison.
options:
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
      - Base URL of the peer's REST API, V(http://) or V(https://). Required when O(state=present).
      - Orthanc stores it with a trailing slash; both spellings compare equal.
      - The whole URL is checked before anything is written - a host, an optional port from 1 to 65535, no white
        space or control character anywhere, no query or fragment, and no C(user:password@) part (give
        O(username) and O(password) instead).
    type: str
  username:
    description:
      - User name Orthanc sends to the peer (HTTP basic authentication); no V(:) and no control character.
      - With a user name, an empty O(password) is refused (it would be dropped and the peer stored without one).
    type: str
  password:
    description:
      - Password Orthanc sends to the peer. Never logged and never shown in a diff.
      - Not readable back from Orthanc, see O(update_password).
    type: str
  update_password:
    description:
      - V(on_create) sends O(password) when the peer is created or when another field changes.
      - V(always) sends it on every run (and so always reports a change).
    type: str
    choices: [always, on_create]
    default: on_create
  certificate_file:
    description: Client certificate (PEM, path on the Orthanc host) for mutual TLS towards the peer.
    type: str
  certificate_key_file:
    description: Private key of O(certificate_file) (path on the Orthanc host). Not readable back from Orthanc.
    type: str
  certificate_key_password:
    description: Password of O(certificate_key_file); Orthanc requires it with a client certificate.
    type: str
  pkcs11:
    description: Use the PKCS#11 module configured in Orthanc for the client certificate.
    type: bool
    default: false
  timeout:
    description: HTTP timeout in seconds for this peer, from V(0) to V(3600); unset or V(0) means Orthanc's
      C(HttpTimeout).
    type: int
notes:
  - Verification of the peer's server certificate is global in Orthanc (C(HttpsVerifyPeers),
    C(HttpsCACertificates)), not a per-peer setting.
seealso:
  - module: clinicpacs.orthanc.orthanc_info
'''

EXAMPLES = r'''
- name: Send studies to the group's central archive
  clinicpacs.orthanc.orthanc_peer:
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
    name: central
    url: https://archive.group.example/orthanc/
    username: clinic42
    password: "{{ vault_central_password }}"
    timeout: 60

- name: Remove the old peer
  clinicpacs.orthanc.orthanc_peer:
    name: old-archive
    state: absent
'''

RETURN = r'''
peer:
  description: Public configuration of the peer after the run (passwords never included); empty when absent.
  returned: always
  type: dict
  sample: {Url: "https://archive.group.example/orthanc/", Username: clinic42, Pkcs11: false, HttpHeaders: [],
           Timeout: 60}
changed_fields:
  description: Orthanc keys that are written because they differ (or, for passwords, because they are sent).
  returned: always
  type: list
  elements: str
  sample: [Timeout]
diff:
  description: Configuration before and after, keyed by peer name, passwords masked.
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
  sample: {GET: 1, PUT: 1}
'''

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_peer import (  # noqa: E402
    converge,
    peer_options,
    public,
    validate,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import OrthancModule  # noqa: E402


def main():
    om = OrthancModule(peer_options(), required_if=[('state', 'present', ('url',))])
    p = om.params
    om.hide_url_password(p['url'])
    errors = validate(p)
    if errors:
        om.fail('; '.join(errors))
    plan, desired = converge(om, {p['name']: p})
    change = plan.changes[0] if plan.changes else None
    om.exit(
        plan.changed, diff=plan.diff, peer=public(desired[p['name']]), changed_fields=change.fields if change else []
    )


if __name__ == '__main__':
    main()
