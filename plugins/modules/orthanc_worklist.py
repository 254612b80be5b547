#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_worklist
short_description: Scheduled procedure steps of a clinic's DICOM modality worklist
version_added: 0.1.0
description:
  - Creates, updates and removes modality worklist entries (one scheduled procedure step per appointment) as
    C(.wl) files in the folder that Orthanc's worklist plugin serves (the C(pacs) role's
    C(pacs_worklist_enabled) sets the plugin up; the folder is C(<pacs_data_dir>/orthanc/worklists)).
  - Runs on the clinic box with Python's standard library only; the DICOM files are written by the
    collection's own encoder (explicit VR little endian, SpecificCharacterSet V(ISO_IR 192), so accented names
    reach the device as they are).
  - An entry is identified by its accession number. Its file is C(<start date>-<accession number>.wl); an
    entry moved to another day is a change of that entry.
  - Every entry is validated before any file is written (VR, length, date and time); an error names the entry,
    the field, the value and the rule. Each file is written under a temporary name (not served) and renamed,
    so a device never reads a half-written entry; files are mode V(0640), owned by O(owner)/O(group).
  - Only files named like the module's own are touched; other C(.wl) files in the folder are left alone.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
attributes:
  check_mode:
    support: full
    description: Reads the folder and reports what would change; writes and removes nothing.
  diff_mode:
    support: full
    description: Shows the fields before and after of every entry that changes, keyed by accession number.
  idempotent:
    support: full
    description: Files are compared byte for byte with what the entries encode to; a converged run writes nothing.
options:
  path:
    description: The worklist folder on the box (it must exist).
    type: path
    required: true
  entries:
    description: The entries. Accession numbers must be unique in the list.
    type: list
    elements: dict
    default: []
    suboptions:
      accession_number:
        description: AccessionNumber (SH, 1 to 16 characters); identifies the entry. Also the scheduled procedure
          step ID and the requested procedure ID.
        type: str
        required: true
      state:
        description: V(present) creates or updates the entry, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      patient_id:
        description: PatientID (LO, at most 64 characters), the practice's patient number. Required when present.
        type: str
      patient_name:
        description: PatientName (PN), C(Family^Given^Middle^Prefix^Suffix), at most 64 characters per component
          group. Required when present.
        type: str
      patient_birth_date:
        description: PatientBirthDate, C(YYYYMMDD) or C(YYYY-MM-DD).
        type: str
      patient_sex:
        description: PatientSex, V(M), V(F) or V(O).
        type: str
      station_aet:
        description: ScheduledStationAETitle (AE, 1 to 16 printable ASCII characters), the AE title of the device
          that performs the step. Required when present.
        type: str
      modality:
        description: Modality (CS), for example V(PX) (panoramic), V(DX), V(IO), V(CT). Required when present.
        type: str
      start_date:
        description: ScheduledProcedureStepStartDate, C(YYYYMMDD) or C(YYYY-MM-DD). Required when present.
        type: str
      start_time:
        description: ScheduledProcedureStepStartTime, C(HHMM), C(HHMMSS), C(HH:MM) or C(HH:MM:SS).
        type: str
      procedure_description:
        description: ScheduledProcedureStepDescription and RequestedProcedureDescription (LO, at most 64
          characters).
        type: str
  exclusive:
    description:
      - Per day, the entries listed are the whole worklist of that day; other entries of that day are removed.
      - The days are the start dates of the present entries and O(days).
    type: bool
    default: false
  days:
    description: More days (C(YYYYMMDD) or C(YYYY-MM-DD)) that O(exclusive) covers, for example a day whose
      appointments were all cancelled.
    type: list
    elements: str
    default: []
  expire:
    description: Remove entries whose start date is more than O(keep_days) days before O(today).
    type: bool
    default: true
  keep_days:
    description: Days that past entries are kept (V(0) removes yesterday's entries and older).
    type: int
    default: 0
  today:
    description: The current date, C(YYYYMMDD) or C(YYYY-MM-DD); the box's local date by default.
    type: str
  owner:
    description: Numeric owner of the files (the user Orthanc runs as in its container).
    type: int
    default: 4242
  group:
    description: Numeric group of the files.
    type: int
    default: 4242
seealso:
  - module: clinicpacs.orthanc.orthanc_modalities
notes:
  - Devices query the worklist through Orthanc (C-FIND, Modality Worklist Information Model); Orthanc answers
    only registered devices whose C(allow_find_worklist) is true.
'''

EXAMPLES = r'''
- name: Today's appointments are the worklist of today (entries of past days expire)
  clinicpacs.orthanc.orthanc_worklist:
    path: /srv/clinicpacs/orthanc/worklists
    exclusive: true
    days: ["{{ now(fmt='%Y%m%d') }}"]
    entries:
      - accession_number: A2026120201
        patient_id: "4711"
        patient_name: "Dupont^Hélène"
        patient_birth_date: "1980-02-29"
        patient_sex: F
        station_aet: PANO01
        modality: PX
        start_date: "2026-12-02"
        start_time: "09:30"
        procedure_description: Panoramic X-ray

- name: Cancel one appointment
  clinicpacs.orthanc.orthanc_worklist:
    path: /srv/clinicpacs/orthanc/worklists
    entries:
      - accession_number: A2026120201
        state: absent
'''

RETURN = r'''
created:
  description: Accession numbers of the entries created.
  returned: always
  type: list
  elements: str
  sample: [A2026120201]
updated:
  description: Accession numbers of the entries changed, with the fields that changed.
  returned: always
  type: dict
  sample: {A2026120202: [start_time]}
removed:
  description: Accession numbers of the entries removed (O(entries) with V(absent), or O(exclusive)).
  returned: always
  type: list
  elements: str
  sample: [A2026120203]
expired:
  description: Accession numbers of the past entries removed by O(expire).
  returned: always
  type: list
  elements: str
  sample: [A2026120101]
entries:
  description: Number of entries in the folder after the run (in check mode, after the run it would make).
  returned: always
  type: int
  sample: 20
diff:
  description: Fields before and after of every entry that changes, keyed by accession number.
  returned: always
  type: dict
'''

import contextlib  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_worklist import (  # noqa: E402
    FIELD_NAMES,
    WorklistError,
    decode,
    encode_entry,
    file_name,
    normalize_entry,
    read_folder,
    shift_date,
    sync_dir,
    today_string,
    write_atomic,
)


def _fields(name, data):
    try:
        return decode(data)
    except WorklistError as exc:
        return {'unreadable': f'{name}: {exc}'}


def main():
    entry_spec = {name: {'type': 'str'} for name in FIELD_NAMES}
    entry_spec['accession_number']['required'] = True
    entry_spec['state'] = {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']}
    module = AnsibleModule(
        argument_spec={
            'path': {'type': 'path', 'required': True},
            'entries': {'type': 'list', 'elements': 'dict', 'default': [], 'options': entry_spec},
            'exclusive': {'type': 'bool', 'default': False},
            'days': {'type': 'list', 'elements': 'str', 'default': []},
            'expire': {'type': 'bool', 'default': True},
            'keep_days': {'type': 'int', 'default': 0},
            'today': {'type': 'str'},
            'owner': {'type': 'int', 'default': 4242},
            'group': {'type': 'int', 'default': 4242},
        },
        supports_check_mode=True,
    )
    p = module.params
    path = p['path']
    errors = []
    desired = {}
    absent = set()
    seen = {}
    for index, raw in enumerate(p['entries']):
        prefix = f'entries[{index}].'
        acc = (raw.get('accession_number') or '').strip()
        if acc in seen:
            errors.append(f"{prefix}accession_number '{acc}' is already used by entries[{seen[acc]}]: must be unique")
            continue
        seen[acc] = index
        if raw['state'] == 'absent':
            absent.add(acc)
            continue
        entry, problems = normalize_entry(raw, prefix=prefix)
        errors.extend(problems)
        if not problems:
            desired[acc] = entry
    days = set()
    for index, day in enumerate(p['days']):
        try:
            days.add(today_string(day))
        except ValueError as exc:
            errors.append(f"days[{index}] '{day}' {exc}")
    try:
        today = today_string(p['today'])
    except ValueError as exc:
        errors.append(f"today '{p['today']}' {exc}")
    if p['keep_days'] < 0:
        errors.append(f"keep_days '{p['keep_days']}' must be 0 or more")
    if errors:
        module.fail_json(msg='; '.join(errors))
    if not os.path.isdir(path):
        module.fail_json(msg=f"path '{path}' is not a directory (enable the worklist with pacs_worklist_enabled)")
    days.update(entry['start_date'] for entry in desired.values())
    cutoff = shift_date(today, -p['keep_days']) if p['expire'] else None

    try:
        current = read_folder(path)
    except OSError as exc:
        module.fail_json(msg=f"path '{path}' cannot be read: {exc}")
    writes = []  # (file name, bytes)
    removals = []  # file names
    result = {'created': [], 'updated': {}, 'removed': [], 'expired': []}
    before = {}
    after = {}
    for acc, entry in sorted(desired.items()):
        name = file_name(entry)
        data = encode_entry(entry)
        files = current.get(acc, [])
        if [(f, d) for f, _day, d in files] == [(name, data)]:
            continue
        if cutoff and entry['start_date'] < cutoff:
            continue  # a past appointment: expiry would remove it again at once
        old = _fields(files[0][0], files[0][2]) if files else None
        writes.append((name, data))
        removals.extend(f for f, _day, _d in files if f != name)
        new = {k: entry[k] for k in FIELD_NAMES}
        if old is None:
            result['created'].append(acc)
            after[acc] = new
        else:
            changed = [k for k in FIELD_NAMES if old.get(k) != new[k]] or ['encoding']
            result['updated'][acc] = changed
            before[acc] = {k: old.get(k) for k in changed if k in old}
            after[acc] = {k: new[k] for k in changed if k in new}
    for acc, files in sorted(current.items()):
        if acc in desired and not (cutoff and desired[acc]['start_date'] < cutoff):
            continue
        for name, day, data in files:
            if acc in absent or (p['exclusive'] and day in days):
                bucket = 'removed'
            elif cutoff and day < cutoff:
                bucket = 'expired'
            else:
                continue
            removals.append(name)
            if acc not in result[bucket]:
                result[bucket].append(acc)
            before[acc] = _fields(name, data)
    changed = bool(writes or removals)
    final = set(current) - set(result['removed']) - set(result['expired'])
    final |= {acc for acc in desired if not (cutoff and desired[acc]['start_date'] < cutoff)}
    result['entries'] = len(final)
    result['diff'] = {'before': before, 'after': after}
    if changed and not module.check_mode:
        try:
            for name, data in writes:
                write_atomic(path, name, data, p['owner'], p['group'])
            for name in removals:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(path, name))
            sync_dir(path)
        except OSError as exc:
            module.fail_json(msg=f"writing to '{path}' failed: {exc}", changed=True, **result)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
