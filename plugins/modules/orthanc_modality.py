#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_modality
short_description: Manage one DICOM device (modality) known to Orthanc
version_added: 0.1.0
description:
  - Creates, updates or removes one entry of Orthanc's DICOM modalities through the REST API
    (C(PUT /modalities/{name}), C(DELETE /modalities/{name})).
  - Orthanc replaces the whole entry on every C(PUT), so the module always compares and writes the complete
    configuration, with every option at its documented default when not given.
  - Reads the list of devices once (C(GET /modalities?expand)) and writes only when something differs.
  - Validates all values before anything is written.
  - To declare a whole device list (and remove unlisted devices) use M(clinicpacs.orthanc.orthanc_modalities).
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: Reads Orthanc and reports what would change; never writes and never runs the C-ECHO.
  diff_mode:
    support: full
    description: Shows the complete configuration before and after.
  idempotent:
    support: full
    description: A second run with the same options reads once and writes nothing.
options:
  name:
    description:
      - Symbolic name of the device in Orthanc (letters, digits, V(-) and V(_), at most 64 characters).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the device, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  aet:
    description:
      - DICOM Application Entity title of the device, 1 to 16 printable ASCII characters without backslash.
      - Required when O(state=present).
    type: str
  host:
    description:
      - IP address or DNS name of the device. Required when O(state=present).
      - A DNS name has at most 253 characters and labels of 1 to 63 letters, digits or V(-) (RFC 1123); a URL
        is refused.
    type: str
  port:
    description:
      - DICOM port of the device, an integer from 1 to 65534, the range Orthanc accepts (a boolean such as
        V(yes) is refused).
    type: int
    default: 104
  manufacturer:
    description:
      - Orthanc's manufacturer profile for the device, which adapts C-FIND queries.
    type: str
    choices: [Generic, GenericNoWildcardInDates, GenericNoUniversalWildcard, Vitrea, GE]
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
    description:
      - AE title Orthanc uses when it calls this device. Empty means Orthanc's own C(DicomAet).
    type: str
    default: ''
  timeout:
    description:
      - DICOM network timeout in seconds for this device, from V(0) to V(3600); V(0) means Orthanc's
        C(DicomScuTimeout).
    type: int
    default: 0
  retrieve_method:
    description:
      - How Orthanc retrieves studies from the device, V(C-MOVE), V(C-GET) or V(SystemDefault)
        (Orthanc's C(DicomDefaultRetrieveMethod)). Needs Orthanc 1.12.6 or later.
    type: str
    choices: [SystemDefault, C-MOVE, C-GET]
    default: SystemDefault
  echo:
    description:
      - After a change, ask Orthanc to run a C-ECHO to the device (C(POST /modalities/{name}/echo)).
      - The configuration is saved before the C-ECHO; see O(echo_failure) for what a failure does.
    type: bool
    default: false
  echo_failure:
    description:
      - What to do when the device does not answer the C-ECHO; V(fail) fails the task, V(warn) only warns.
    type: str
    choices: [fail, warn]
    default: fail
seealso:
  - module: clinicpacs.orthanc.orthanc_modalities
  - module: clinicpacs.orthanc.orthanc_info
'''

EXAMPLES = r'''
- name: Register the panoramic X-ray unit
  clinicpacs.orthanc.orthanc_modality:
    api_url: http://127.0.0.1:8042
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
    name: pano
    aet: PANO01
    host: 192.0.2.20
    port: 104
    allow_move: false
    echo: true
    echo_failure: warn

- name: Remove a retired sensor workstation
  clinicpacs.orthanc.orthanc_modality:
    name: sensor-room2
    state: absent
'''

RETURN = r'''
modality:
  description: Configuration of the device in Orthanc after the run (empty when absent).
  returned: always
  type: dict
  sample:
    AET: PANO01
    Host: 192.0.2.20
    Port: 104
    Manufacturer: Generic
    LocalAet: ''
    Timeout: 0
    UseDicomTls: false
    RetrieveMethod: SystemDefault
    AllowEcho: true
    AllowFind: true
    AllowFindWorklist: true
    AllowGet: true
    AllowMove: false
    AllowStore: true
    AllowNAction: true
    AllowEventReport: true
    AllowTranscoding: true
changed_fields:
  description: Orthanc keys that differ from the current configuration (all keys on creation).
  returned: always
  type: list
  elements: str
  sample: [AllowMove]
echo:
  description: Outcome of the C-ECHO, V(ok), V(failed) or V(skipped).
  returned: when O(echo=true)
  type: str
  sample: ok
diff:
  description: Configuration before and after, keyed by device name.
  returned: always
  type: dict
  sample:
    before: {pano: {Port: 104}}
    after: {pano: {Port: 4242}}
done:
  description:
    - Writes already made when the run failed (the failure then reports C(changed=true)); each with
      C(action) (V(create), V(update) or V(delete)), C(name) and the Orthanc keys written (C(fields)).
  returned: when the run fails after it has written to Orthanc
  type: list
  elements: dict
  sample: [{action: create, name: pano, fields: [Port]}]
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {GET: 1, PUT: 1}
'''

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_modality import (  # noqa: E402
    echo,
    modality_options,
    read_modalities,
    to_orthanc,
    validate_modality,
    write_change,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import (  # noqa: E402
    OrthancModule,
    plan_changes,
)


def main():
    spec = modality_options()
    spec.update(
        state={'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
        echo={'type': 'bool', 'default': False},
        echo_failure={'type': 'str', 'default': 'fail', 'choices': ['fail', 'warn']},
    )
    om = OrthancModule(spec, required_if=[('state', 'present', ('aet', 'host'))])
    p = om.params
    errors = validate_modality(p)
    if errors:
        om.fail('; '.join(errors))
    name = p['name']
    desired = {name: to_orthanc(p) if p['state'] == 'present' else None}
    current = om.call(read_modalities, om.client)
    plan = plan_changes(current, desired)
    om.apply(plan, lambda change: write_change(om.client, change))
    result = {'modality': desired[name] or {}, 'changed_fields': plan.changes[0].fields if plan.changes else []}
    if p['echo'] and p['state'] == 'present':
        if not plan.changed or om.check_mode:
            result['echo'] = 'skipped'
        else:
            failure = echo(om.client, name, desired[name])
            result['echo'] = 'failed' if failure else 'ok'
            if failure and p['echo_failure'] == 'fail':
                om.fail(
                    failure + '; the configuration was saved',
                    changed=True,
                    diff=plan.diff,
                    modality=desired[name],
                    echo='failed',
                )
            elif failure:
                om.warn(failure)
    om.exit(plan.changed, diff=plan.diff, **result)


if __name__ == '__main__':
    main()
