#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_modalities
short_description: Declare a clinic's whole list of DICOM devices in Orthanc
version_added: 0.1.0
description:
  - Makes Orthanc's DICOM modalities match a list in one task; with O(exclusive=true) devices that are not
    listed are removed (drift correction).
  - Reads all devices with one request (C(GET /modalities?expand)) and writes only the devices that differ,
    so a converged list of any length costs exactly one C(GET) and no write.
  - Every item is validated, and names are checked for duplicates, before anything is written.
  - Each device is compared with its complete configuration (defaults made explicit) because Orthanc
    replaces the whole entry on C(PUT).
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: Reads Orthanc and reports what would change; never writes and never runs a C-ECHO.
  diff_mode:
    support: full
    description: Shows the configuration before and after of every device that changes, keyed by name.
  idempotent:
    support: full
    description: A converged run sends one C(GET) and nothing else.
options:
  modalities:
    description:
      - The devices. Names must be unique in the list.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Symbolic name of the device (letters, digits, V(-) and V(_), at most 64 characters).
        type: str
        required: true
      state:
        description: V(present) creates or updates the device, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      aet:
        description: AE title of the device, 1 to 16 printable ASCII characters without backslash.
        type: str
      host:
        description:
          - IP address or DNS name of the device.
          - A DNS name has at most 253 characters and labels of 1 to 63 letters, digits or V(-) (RFC 1123); a URL
            is refused.
        type: str
      port:
        description: DICOM port of the device, an integer from 1 to 65534, the range Orthanc accepts (a boolean
          such as V(yes) is refused).
        type: int
        default: 104
      manufacturer:
        description: Orthanc's manufacturer profile for the device.
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
        description: AE title Orthanc uses when it calls the device; empty means Orthanc's C(DicomAet).
        type: str
        default: ''
      timeout:
        description: DICOM network timeout in seconds, from V(0) to V(3600); V(0) means Orthanc's
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
  exclusive:
    description:
      - Remove every device known to Orthanc that is not in O(modalities).
      - With no present device in O(modalities) (an empty list, or only V(absent) items) this removes every
        device, and the module refuses unless O(confirm_remove_all=true).
    type: bool
    default: false
  confirm_remove_all:
    description:
      - Confirm that O(exclusive=true) with no present device in O(modalities) is meant to remove every device
        known to Orthanc. Without it such a run fails before any request, so that a device list left empty by
        mistake (an undefined or misspelt inventory variable) cannot wipe a clinic's devices.
      - Has no effect when O(exclusive=false) or when O(modalities) lists a present device.
    type: bool
    default: false
    version_added: 0.1.0
  echo:
    description:
      - After the writes, run a C-ECHO from Orthanc to every device that was created or changed.
    type: bool
    default: false
  echo_failure:
    description:
      - What to do when a device does not answer the C-ECHO; V(fail) fails the task, V(warn) only warns.
    type: str
    choices: [fail, warn]
    default: fail
seealso:
  - module: clinicpacs.orthanc.orthanc_modality
'''

EXAMPLES = r'''
- name: Exactly the devices of the clinic, nothing else
  clinicpacs.orthanc.orthanc_modalities:
    api_url: https://pacs.clinic.example
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
    ca_path: /etc/ssl/clinic-ca.pem
    exclusive: true
    modalities:
      - name: pano
        aet: PANO01
        host: 192.0.2.20
      - name: cbct
        aet: CBCT
        host: 192.0.2.21
        port: 11112
        allow_move: false
      - name: viewer-room1
        aet: VIEWER1
        host: 192.0.2.31
        port: 4006

- name: A clinic that has no DICOM device any more (removes every device, on purpose)
  clinicpacs.orthanc.orthanc_modalities:
    api_url: https://pacs.clinic.example
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
    ca_path: /etc/ssl/clinic-ca.pem
    exclusive: true
    confirm_remove_all: true
    modalities: []
'''

RETURN = r'''
modalities:
  description: Configuration of every listed present device after the run, keyed by name.
  returned: always
  type: dict
  sample:
    pano: {AET: PANO01, Host: 192.0.2.20, Port: 104, Manufacturer: Generic, LocalAet: '', Timeout: 0,
           UseDicomTls: false, RetrieveMethod: SystemDefault, AllowEcho: true, AllowFind: true,
           AllowFindWorklist: true, AllowGet: true, AllowMove: true, AllowStore: true, AllowNAction: true,
           AllowEventReport: true, AllowTranscoding: true}
created:
  description: Names of the devices created.
  returned: always
  type: list
  elements: str
  sample: [cbct]
updated:
  description: Names of the devices changed, with the Orthanc keys that changed.
  returned: always
  type: dict
  sample: {pano: [Port]}
deleted:
  description: Names of the devices removed by this run.
  returned: always
  type: list
  elements: str
  sample: [old-sensor]
already_absent:
  description:
    - Names of the devices this run was to remove but that were gone when it sent the C(DELETE) (Orthanc
      answered 404 because another run or client removed them after this run read the list). Absent is the goal, so
      this is not a failure, and not a change made by this run (not in RV(deleted), RV(diff) nor C(changed)).
  returned: always
  type: list
  elements: str
  sample: []
echo:
  description: C-ECHO outcome per created or changed device, V(ok) or V(failed).
  returned: when O(echo=true)
  type: dict
  sample: {cbct: ok}
diff:
  description: Configuration before and after of every device that changes, keyed by name.
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
  sample: [{action: create, name: pano, fields: [AET]}]
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {GET: 1}
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
    remove_all_refusal,
)


def main():
    item = modality_options()
    item['state'] = {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']}
    spec = {
        'modalities': {'type': 'list', 'elements': 'dict', 'required': True, 'options': item},
        'exclusive': {'type': 'bool', 'default': False},
        'confirm_remove_all': {'type': 'bool', 'default': False},
        'echo': {'type': 'bool', 'default': False},
        'echo_failure': {'type': 'str', 'default': 'fail', 'choices': ['fail', 'warn']},
    }
    om = OrthancModule(spec)
    p = om.params
    refusal = remove_all_refusal(p, 'modalities', 'device')
    if refusal:
        om.fail(refusal)
    errors = []
    seen = {}
    desired = {}
    for index, entry in enumerate(p['modalities']):
        prefix = f'modalities[{index}].'
        name = entry.get('name')
        if name in seen:
            errors.append(
                f"modalities[{index}].name '{name}' is already used by modalities[{seen[name]}]: names must be unique"
            )
            continue
        seen[name] = index
        item_errors = validate_modality(entry, prefix=prefix)
        if entry['state'] == 'present':
            for field in ('aet', 'host'):
                if entry.get(field) is None and not any(e.startswith(prefix + field) for e in item_errors):
                    item_errors.append(f'{prefix}{field} is required for a present device')
        errors.extend(item_errors)
        if not item_errors:
            desired[name] = to_orthanc(entry) if entry['state'] == 'present' else None
    if errors:
        om.fail('; '.join(errors))
    current = om.call(read_modalities, om.client)
    plan = plan_changes(current, desired, exclusive=p['exclusive'])
    om.apply(plan, lambda change: write_change(om.client, change))
    result = {
        'modalities': {n: cfg for n, cfg in desired.items() if cfg is not None},
        'created': [c.name for c in plan.changes if c.action == 'create'],
        'updated': {c.name: c.fields for c in plan.changes if c.action == 'update'},
        'deleted': [c.name for c in plan.changes if c.action == 'delete'],
        'already_absent': [c.name for c in plan.already],
    }
    if p['echo']:
        result['echo'] = {}
        if not om.check_mode:
            failures = []
            for change in plan.changes:
                if change.action == 'delete':
                    continue
                failure = echo(om.client, change.name, change.after)
                result['echo'][change.name] = 'failed' if failure else 'ok'
                if failure:
                    failures.append(failure)
            if failures and p['echo_failure'] == 'fail':
                om.fail('; '.join(failures) + '; the configuration was saved', changed=True, diff=plan.diff, **result)
            for failure in failures:
                om.warn(failure)
    om.exit(plan.changed, diff=plan.diff, **result)


if __name__ == '__main__':
    main()
