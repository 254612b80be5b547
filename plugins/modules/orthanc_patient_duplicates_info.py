#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_patient_duplicates_info
short_description: Find patients registered twice in Orthanc under different PatientIDs
version_added: 0.1.0
description:
  - Reads every study of an Orthanc server with paged, expanded reads (C(GET /studies?expand), one request per
    O(page_size) studies, never one per patient or instance) and groups the PatientIDs that are probably the same
    person (name typos, swapped name order, accents, missing or mistyped birth dates, OtherPatientIDs).
  - Names, birth dates and sexes are read per study, because Orthanc shows a patient with the tags of its latest
    study only; a PatientID whose studies carry clearly different people is reported in RV(collisions) and never
    grouped as a duplicate.
  - Only reads, so it is safe in check mode. Nothing is merged; review the groups, then use
    M(clinicpacs.orthanc.orthanc_patient_merge).
  - Only main DICOM tags are requested, so Orthanc answers from its database index without opening DICOM files.
    C(IssuerOfPatientID) and C(StationName) are used when the index has them (Orthanc's C(ExtraMainDicomTags));
    they are never read from the files.
  - Agreement is weighed by how common it is in this clinic (Fellegi-Sunter u-probabilities from the clinic's own
    records, m-probabilities estimated with EM when that is stable, priors otherwise; from 200 records); a rare
    full name with one missing birth date is grouped, a common one goes to RV(ambiguous) for a person to decide.
    Free-text names without C(^) are tried in every family/given split. Each pair in RV(groups) says which
    fields agreed and how rare the name is (C(reasons), C(evidence)).
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
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: Never changes anything.
options:
  threshold:
    description:
      - Lowest score (0 to 1) at which two PatientIDs count as the same person.
      - A name alone, without any birth date, never reaches the default.
    type: float
    default: 0.8
  fields:
    description:
      - Which data the matching uses. C(name) is required.
    type: list
    elements: str
    choices: [name, birth_date, sex, other_ids, study_uid, institution, study_date]
    default: [name, birth_date, sex, other_ids, study_uid, institution, study_date]
  matching:
    description:
      - Further options of the matching core (for example C(weights), C(max_block_size), C(window),
        C(placeholder_dates)); see C(plugins/module_utils/patient_matching.py). Unknown keys fail.
      - Every value is checked before Orthanc is read; a wrong one fails with one line naming the option, the value
        and the rule. C(weights) is a dictionary of numbers from 0 to 1; factors, minimums, caps and
        C(ambiguity_margin) are numbers from 0 to 1; C(frequency_min_records) (records needed before
        frequencies are used, default 200), C(distinct_name_count) (records from which two look-alike names are
        both taken as real names, default 3) and C(common_name_namesakes) are numbers; C(max_block_size) (2 or
        more), C(window) and
        C(max_names_per_record) (1 or more) and C(max_typo_year_gap) (0 or more) are integers;
        C(placeholder_dates) is a list of C(YYYYMMDD) strings.
    type: dict
    default: {}
  page_size:
    description:
      - Studies read per request.
    type: int
    default: 1000
  read_api:
    description:
      - How the studies are paged. V(studies) uses C(GET /studies?expand&since=&limit=), V(find) uses
        C(POST /tools/find) with C(Level=Study), C(Expand), C(Since) and C(Limit) (and C(ResponseContent) on
        Orthanc 1.12.5 or later). Both read each study's own copy of the patient tags from the index.
      - With Orthanc 1.12.7 and the PostgreSQL index, V(studies) answered a page of 1000 studies about three
        times faster.
    type: str
    choices: [studies, find]
    default: studies
  include_patients:
    description:
      - Also return RV(patients), the observed details of every PatientID that is in a group, ambiguous or a
        collision (names, birth dates, sexes, study count, Orthanc identifier).
    type: bool
    default: true
seealso:
  - module: clinicpacs.orthanc.orthanc_patient_merge
notes:
  - Two different people with the same name, birth date and sex cannot be told apart by demographics; a person
    must review every group before merging it.
'''

EXAMPLES = r'''
- name: Look for duplicate patients
  clinicpacs.orthanc.orthanc_patient_duplicates_info:
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
  register: dupes

- name: Show the groups
  ansible.builtin.debug:
    msg: "{{ item.patient_ids | join(' = ') }} (score {{ item.score }})"
  loop: "{{ dupes.groups }}"

- name: Stricter matching on names and birth dates only
  clinicpacs.orthanc.orthanc_patient_duplicates_info:
    threshold: 0.9
    fields: [name, birth_date]
    page_size: 500
'''

RETURN = r'''
groups:
  description:
    - Groups of PatientIDs that are probably one person, strongest first; C(score) is the weakest link of the
      group, C(pairs) every compared pair at or above the threshold with its reasons and C(evidence) (the name
      score, the birth-date score or why it is missing, the shared sex and study date, and with frequencies the
      expected number of namesakes in this clinic and the probability that the name agreement is one person).
  returned: always
  type: list
  elements: dict
  sample:
    - patient_ids: [5Yp0E, FromGDCM]
      score: 1.0
      reasons: [same name, same birth date]
      pairs:
        - patient_ids: [5Yp0E, FromGDCM]
          score: 1.0
          reasons: [same name, same birth date]
          evidence: {name: 1.0, birth_date: 1.0}
      suggested_target: 5Yp0E
ambiguous:
  description:
    - PatientIDs that match records of different people about equally well, or whose match rests on a name that
      is common in this clinic (for example a missing birth date); not grouped, for a person to decide.
  returned: always
  type: list
  elements: dict
  sample: [{patient_id: P17, candidates: [P3, P9], reason: matches records of different people about equally well}]
collisions:
  description:
    - PatientIDs whose studies carry clearly different people (one PatientID, different names or birth dates).
      Never to be merged; they need the opposite repair.
  returned: always
  type: list
  elements: dict
  sample: [{patient_id: COMMON, kind: id_collision, names: [FOO, HELLO, WORLD], birth_dates: [], reasons: []}]
shared_study_uids:
  description: StudyInstanceUIDs stored under more than one PatientID.
  returned: always
  type: list
  elements: dict
  sample: [{study_instance_uid: 1.2.3, patient_ids: [A, B]}]
patients:
  description:
    - What was observed for each PatientID that appears in a group, in ambiguous or in collisions.
    - C(worklist_studies) counts its studies that came through the modality worklist (they carry an
      AccessionNumber); a group whose studies have none was typed by hand at the device.
  returned: when O(include_patients=true)
  type: dict
  sample:
    FromGDCM:
      orthanc_id: 8039d221-63570985-1fa2b171-2bb77e4f-4467b83b
      names: [BRAINIX]
      birth_dates: ['19490301']
      sexes: ['0000']
      other_patient_ids: []
      studies: 3
      worklist_studies: 0
      last_study_date: '20061201'
stats:
  description:
    - Counts and times of the run (patients, studies, pages read, seconds spent reading and matching, the
      slowest page, candidate pairs, blocks), whether value frequencies were used (C(frequencies)), the EM
      estimate (C(em), with m and u per field, the share of matches, C(stable) and C(used)) and the pairs held
      back because their name is common here (C(pairs_held_back_by_frequency)).
  returned: always
  type: dict
  sample: {patients: 26, studies: 31, pages: 2, records: 26, candidate_pairs: 12, pairs_above_threshold: 1}
threshold:
  description: The threshold used.
  returned: always
  type: float
  sample: 0.8
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {GET: 3}
'''

import time  # noqa: E402

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_patients import (  # noqa: E402
    orthanc_id,
    read_study_observations,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import OrthancModule  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.patient_matching import (  # noqa: E402
    DEFAULT_CONFIG,
    find_duplicates,
    records_from_observations,
)

FIELDS = list(DEFAULT_CONFIG['fields'])


def summarize(observations):
    """PatientID -> observed details (names, birth dates, sexes, other IDs, study count, last study date)."""
    out = {}
    for obs in observations:
        pid = obs['PatientID']
        entry = out.setdefault(
            pid,
            {
                'orthanc_id': orthanc_id(pid),
                'names': [],
                'birth_dates': [],
                'sexes': [],
                'other_patient_ids': [],
                'institutions': [],
                'studies': 0,
                'worklist_studies': 0,
                'last_study_date': '',
            },
        )
        entry['studies'] += 1
        # Came through the modality worklist: the device copied the worklist's AccessionNumber (which is also the
        # ScheduledProcedureStepID of the collection's entries; that tag is not a study main tag in Orthanc).
        if obs.get('AccessionNumber'):
            entry['worklist_studies'] += 1
        for key, value in (
            ('names', obs['PatientName']),
            ('birth_dates', obs['PatientBirthDate']),
            ('sexes', obs['PatientSex']),
            ('institutions', obs['InstitutionName']),
        ):
            if value and value not in entry[key]:
                entry[key].append(value)
        for other in obs['OtherPatientIDs']:
            if other not in entry['other_patient_ids']:
                entry['other_patient_ids'].append(other)
        if obs['StudyDate'] > entry['last_study_date']:
            entry['last_study_date'] = obs['StudyDate']
    return out


def suggested_target(patient_ids, patients):
    """The PatientID to keep: the one with the most studies, then the most recent study, then the smallest ID."""
    ordered = sorted(patient_ids)
    ordered.sort(key=lambda p: patients[p]['last_study_date'], reverse=True)
    ordered.sort(key=lambda p: patients[p]['studies'], reverse=True)
    return ordered[0]


def main():
    om = OrthancModule(
        {
            'threshold': {'type': 'float', 'default': 0.8},
            'fields': {'type': 'list', 'elements': 'str', 'default': FIELDS, 'choices': FIELDS},
            'matching': {'type': 'dict', 'default': {}},
            'page_size': {'type': 'int', 'default': 1000},
            'include_patients': {'type': 'bool', 'default': True},
            'read_api': {'type': 'str', 'default': 'studies', 'choices': ['studies', 'find']},
        }
    )
    p = om.params
    if p['page_size'] < 1:
        om.fail(f"page_size {p['page_size']} must be at least 1")
    config = dict(p['matching'] or {})
    for key in ('threshold', 'fields'):
        if key in config:
            om.fail(
                f'invalid matching options: {key} {config[key]!r} is an option of its own, not of matching '
                f'(there it would be ignored): give {key}: at the top level'
            )
    config['threshold'] = p['threshold']
    config['fields'] = p['fields']
    try:
        find_duplicates([], config)  # validates the options before anything is read
    except ValueError as exc:
        om.fail(f'invalid matching options: {exc}')
    started = time.monotonic()
    system = om.call(om.client.get, '/system', expect=dict)
    pages = []
    observations, _by_patient = om.call(
        read_study_observations, om.client, p['page_size'], system.get('Version'), pages, p['read_api']
    )
    read_seconds = time.monotonic() - started
    records = records_from_observations(observations, placeholders=config.get('placeholder_dates'))
    result = find_duplicates(records, config)
    patients = summarize(observations)
    for group in result['groups']:
        group['suggested_target'] = suggested_target(group['patient_ids'], patients)
    stats = dict(result['stats'])
    stats.update(
        {
            'patients': len(patients),
            'studies': len(observations),
            'pages': len(pages),
            'read_seconds': round(read_seconds, 3),
            'slowest_page_seconds': max(pages) if pages else 0,
            'match_seconds': round(time.monotonic() - started - read_seconds, 3),
        }
    )
    out = {
        'groups': result['groups'],
        'ambiguous': result['ambiguous'],
        'collisions': result['collisions'],
        'shared_study_uids': result['shared_study_uids'],
        'stats': stats,
        'threshold': result['threshold'],
    }
    if p['include_patients']:
        wanted = set()
        for group in result['groups']:
            wanted.update(group['patient_ids'])
        for item in result['ambiguous']:
            wanted.add(item['patient_id'])
            wanted.update(item['candidates'])
        for item in result['collisions']:
            wanted.add(item['patient_id'])
        for item in result['shared_study_uids']:
            wanted.update(item['patient_ids'])
        out['patients'] = {pid: patients[pid] for pid in sorted(wanted) if pid in patients}
    om.exit(False, **out)


if __name__ == '__main__':
    main()
