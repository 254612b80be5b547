#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_patient_merge
short_description: Merge PatientIDs of one person into one target PatientID in Orthanc
version_added: 0.1.0
description:
  - Moves every study of the PatientIDs in O(patient_ids) under O(target_patient_id), with the target's
    demographics (PatientName, PatientBirthDate, PatientSex) and the old PatientIDs added to OtherPatientIDs.
  - Every study is moved by a study-level modification (C(POST /studies/{id}/modify), asynchronous job) that
    replaces the whole patient module and keeps the source (C(KeepSource)); the copy is checked (it must hold
    every instance) and only then is the original deleted. A failed step stops the run and keeps the original.
  - By default the StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID are kept (O(keep_uids)), because
    devices, reports and referring systems refer to them. Orthanc's identifiers are hashes of the PatientID and
    the UIDs, so the copy and the original are distinct resources for the short time both exist.
  - Orthanc refuses to add a study to an existing patient unless the study's patient module equals the patient's
    main tags, and it cannot rewrite a patient in place without C(OverwriteInstances). When the target's own
    studies must change (a new OtherPatientIDs value, or O(patient_name) and friends), they are first moved to a
    temporary PatientID (C(temporary_patient_id) in RV(plan)) and then back, like the others; the target is absent
    from Orthanc for that moment. A run that failed half-way picks up the studies left under that temporary
    PatientID.
  - Before the first write, every affected study is saved as a ZIP archive (C(GET /studies/{id}/archive)) into
    O(backup_dir) on the host that runs the module, with a C(manifest.json) of the plan.
  - Refuses groups with conflicting demographics (different birth dates or sexes, names the matching core keeps
    apart, or a PatientID that is itself a collision of different people) unless O(force=true).
  - Afterwards the instance count of the target is compared with the sum before the merge; a difference fails.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: Reads only, and returns the plan (studies to move, instance counts, demographics).
  diff_mode:
    support: full
    description: The diff shows the PatientIDs and study counts before and after.
  idempotent:
    support: full
    description: When no study is left under the merged PatientIDs, nothing is written and changed is false.
options:
  target_patient_id:
    description: The PatientID that stays. It must exist in Orthanc.
    type: str
    required: true
  patient_ids:
    description:
      - The PatientIDs to merge into O(target_patient_id). The target may be listed too; it is skipped.
    type: list
    elements: str
    required: true
  force:
    description:
      - Merge even when the demographics conflict. The target's demographics win.
    type: bool
    default: false
  backup:
    description:
      - Save every affected study into O(backup_dir) before the first write.
    type: bool
    default: true
  backup_dir:
    description:
      - Directory on the host that runs the module; a sub-directory per run is created inside
        (C(<UTC time>-merge-<target>), mode 0700, archives 0600). Required when O(backup=true) and something is
        to be moved.
    type: path
  keep_uids:
    description:
      - Keep StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID. With V(false) Orthanc gives the copies new
        UIDs.
    type: bool
    default: true
  other_patient_ids:
    description:
      - Add the merged PatientIDs (and their own OtherPatientIDs) to OtherPatientIDs of every study of the target.
    type: bool
    default: true
  patient_name:
    description: PatientName to write instead of the target's.
    type: str
  patient_birth_date:
    description: PatientBirthDate (C(YYYYMMDD)) to write instead of the target's.
    type: str
  patient_sex:
    description: PatientSex to write instead of the target's.
    type: str
    choices: [M, F, O]
  job_timeout:
    description: Seconds to wait for each Orthanc modification job.
    type: int
    default: 600
seealso:
  - module: clinicpacs.orthanc.orthanc_patient_duplicates_info
notes:
  - Run it when the clinic does not send images for the patients concerned; a study that arrives under an old
    PatientID during or after the merge is picked up by the next run.
'''

EXAMPLES = r'''
- name: Show what a merge would do
  clinicpacs.orthanc.orthanc_patient_merge:
    target_patient_id: 5Yp0E
    patient_ids: [FromGDCM]
  check_mode: true
  register: plan

- name: Merge, with a backup on the PACS box
  clinicpacs.orthanc.orthanc_patient_merge:
    target_patient_id: 5Yp0E
    patient_ids: [FromGDCM]
    backup_dir: /var/backups/clinicpacs/merges
'''

RETURN = r'''
plan:
  description: What the run does (or would do in check mode).
  returned: always
  type: dict
  sample:
    target_patient_id: 5Yp0E
    source_patient_ids: [FromGDCM]
    temporary_patient_id: MERGE-TMP-0c2f2b2a7d3e4c6b
    demographics: {PatientID: 5Yp0E, PatientName: BRAINIX, PatientBirthDate: '19490301', PatientSex: '0000',
                   OtherPatientIDs: FromGDCM}
    restage_target: true
    moves:
      - {phase: 1, study: 27f7126f-4f66fb14-03f4081b-f9341db2-53925988, from_patient_id: 5Yp0E, instances: 22,
         study_instance_uid: 1.2.3, study_date: '20061201', description: IRM}
    instances_before: 25
conflicts:
  description: Conflicting demographics found (the merge was refused unless O(force=true)).
  returned: always
  type: list
  elements: str
  sample: ["birth dates differ: 5Yp0E 19490301, X 19500101"]
moved:
  description: Studies moved, with the identifier of the copy and the instance counts.
  returned: when something was moved
  type: list
  elements: dict
  sample: [{from_study: 1ac3..., to_study: 16a2..., study_instance_uid: 1.2.3, instances: 1, instances_after: 1}]
backup:
  description: Directory and files of the backup.
  returned: when a backup was written
  type: dict
  sample: {dir: /var/backups/clinicpacs/merges/20261128T050000Z-merge-5Yp0E, files: [FromGDCM-1ac3.zip], bytes: 80438}
instances_before:
  description: Instances of the target and merged PatientIDs before the merge.
  returned: always
  type: int
  sample: 25
instances_after:
  description: Instances of the target after the merge.
  returned: when something was moved
  type: int
  sample: 25
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {GET: 12, POST: 4, DELETE: 4}
'''

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancError  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_patients import (  # noqa: E402
    move_study,
    patient_studies,
    split_multi,
)
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import OrthancModule  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.patient_matching import (  # noqa: E402
    compare_records,
    find_collisions,
    parse_birth_date,
    records_from_observations,
)

KNOWN_SEXES = ('M', 'F', 'O')


def temporary_patient_id(target):
    """PatientID the target's studies stay under while they are rewritten (64 characters at most)."""
    return 'MERGE-TMP-' + hashlib.sha1(target.encode('utf-8'), usedforsecurity=False).hexdigest()[:16]


def _first(values):
    for value in values:
        if value:
            return value
    return ''


def final_demographics(target, target_studies, source_studies, params):
    """The patient module every study of the target gets: target's values first, then the sources'."""
    ordered = sorted(target_studies, key=lambda s: s['study_date'], reverse=True) + sorted(
        source_studies, key=lambda s: s['study_date'], reverse=True
    )
    tags = {'PatientID': target}
    for tag, option in (
        ('PatientName', 'patient_name'),
        ('PatientBirthDate', 'patient_birth_date'),
        ('PatientSex', 'patient_sex'),
    ):
        tags[tag] = params[option] or _first(s['tags'][tag] for s in ordered)
    others = []
    for study in ordered:
        for other in split_multi(study['tags']['OtherPatientIDs']):
            if other not in others and other != target:
                others.append(other)
    if params['other_patient_ids']:
        for study in source_studies:
            pid = study['patient_id']
            if pid not in others and pid != target and not pid.startswith('MERGE-TMP-'):
                others.append(pid)
    tags['OtherPatientIDs'] = '\\'.join(others)
    return tags


def find_conflicts(target, by_pid, params):
    """Reasons why the group does not look like one person (empty list: no conflict)."""
    observations = []
    for pid, studies in by_pid.items():
        for study in studies:
            obs = dict(study['tags'])
            obs['PatientID'] = pid
            obs['StudyInstanceUID'] = study['uid']
            observations.append(obs)
    records = {r.patient_id: r for r in records_from_observations(observations)}
    conflicts = []
    for collision in find_collisions(list(records.values())):
        conflicts.append(
            f"PatientID {collision['patient_id']} holds different people ({'; '.join(collision['reasons'])})"
        )
    dates = {}
    sexes = {}
    for pid in sorted(records):
        for value in records[pid].birth_dates:
            parsed = parse_birth_date(value)
            if parsed is not None:
                dates.setdefault(parsed, []).append(f'{pid} {value}')
        for value in records[pid].sexes:
            if value in KNOWN_SEXES:
                sexes.setdefault(value, []).append(f'{pid} {value}')
    if len(dates) > 1 and not params['patient_birth_date']:
        conflicts.append('birth dates differ: ' + ', '.join(sorted(v for vals in dates.values() for v in vals)))
    if len(sexes) > 1 and not params['patient_sex']:
        conflicts.append('sexes differ: ' + ', '.join(sorted(v for vals in sexes.values() for v in vals)))
    if target in records:
        for pid in sorted(records):
            if pid == target:
                continue
            res = compare_records(records[target], records[pid], {'fields': ['name', 'sex']})
            if res['conflict']:
                conflicts.append(
                    f"{pid} ({', '.join(records[pid].names) or 'no name'}) does not match the target {target} "
                    f"({', '.join(records[target].names) or 'no name'}): {'; '.join(res['reasons'])}"
                )
    return conflicts


def _safe(text):
    return re.sub(r'[^A-Za-z0-9._-]', '_', text)[:64] or '_'


def write_backup(om, plan, studies, backup_dir):
    """Save every study as a ZIP archive into a new run directory; return the backup summary."""
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    run_dir = os.path.join(backup_dir, f"{stamp}-merge-{_safe(plan['target_patient_id'])}")
    try:
        os.makedirs(run_dir, mode=0o700)
    except OSError as exc:
        om.fail(f'cannot create the backup directory {run_dir} (backup_dir): {exc}')
    files = []
    total = 0
    for study in studies:
        name = f"{_safe(study['patient_id'])}-{study['id']}.zip"
        path = os.path.join(run_dir, name)
        try:
            size = om.client.download(f"/studies/{study['id']}/archive", path, accept='application/zip')
        except OrthancError as exc:
            om.fail(f"backup of study {study['id']} failed, nothing was changed: {exc.msg}")
        except OSError as exc:
            om.fail(f'cannot write the backup {path}, nothing was changed: {exc}')
        if size == 0:
            om.fail(f"backup of study {study['id']} is empty ({path}), nothing was changed")
        files.append(name)
        total += size
    manifest = os.path.join(run_dir, 'manifest.json')
    fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump({'plan': plan, 'files': files}, handle, indent=2, sort_keys=True)
    return {'dir': run_dir, 'files': files, 'bytes': total}


def main():
    om = OrthancModule(
        {
            'target_patient_id': {'type': 'str', 'required': True},
            'patient_ids': {'type': 'list', 'elements': 'str', 'required': True},
            'force': {'type': 'bool', 'default': False},
            'backup': {'type': 'bool', 'default': True},
            'backup_dir': {'type': 'path'},
            'keep_uids': {'type': 'bool', 'default': True},
            'other_patient_ids': {'type': 'bool', 'default': True},
            'patient_name': {'type': 'str'},
            'patient_birth_date': {'type': 'str'},
            'patient_sex': {'type': 'str', 'choices': list(KNOWN_SEXES)},
            'job_timeout': {'type': 'int', 'default': 600},
        }
    )
    p = om.params
    target = (p['target_patient_id'] or '').strip()
    if not target:
        om.fail('target_patient_id must not be empty')
    if len(target) > 64:
        om.fail(f"target_patient_id '{target}' is longer than 64 characters (DICOM LO)")
    if p['patient_birth_date'] and not re.match(r'^\d{8}$', p['patient_birth_date']):
        om.fail(f"patient_birth_date '{p['patient_birth_date']}' must be a DICOM date YYYYMMDD")
    sources = []
    for pid in p['patient_ids']:
        if pid != target and pid not in sources:
            sources.append(pid)
    if not sources:
        om.fail(f"patient_ids {p['patient_ids']} names no PatientID other than the target '{target}'")
    tmp_id = temporary_patient_id(target)

    by_pid = {}
    for pid in [target, *sources, tmp_id]:
        by_pid[pid] = om.call(patient_studies, om.client, pid)
    target_studies = by_pid[target]
    pending = by_pid[tmp_id] + [s for pid in sources for s in by_pid[pid]]
    instances_before = sum(s['instances'] for studies in by_pid.values() for s in studies)
    result = {'instances_before': instances_before, 'conflicts': []}
    if not target_studies and not by_pid[tmp_id]:
        om.fail(f"target_patient_id '{target}' has no study in Orthanc: nothing to merge into", **result)
    if not pending:
        result['plan'] = {
            'target_patient_id': target,
            'source_patient_ids': sources,
            'temporary_patient_id': tmp_id,
            'moves': [],
            'instances_before': instances_before,
        }
        om.exit(False, msg=f"nothing to merge: no study left under {', '.join(sources)}", **result)

    conflicts = find_conflicts(target, {k: v for k, v in by_pid.items() if v and k != tmp_id}, p)
    result['conflicts'] = conflicts
    tags = final_demographics(target, target_studies + by_pid[tmp_id], pending, p)
    restage = [s for s in target_studies if _norm(s['tags']) != _norm(tags)]
    if restage:
        restage = list(target_studies)  # the target must disappear before it comes back with the new tags
    moves = [dict(_describe(s), phase=1) for s in restage]
    moves += [dict(_describe(s), phase=2) for s in pending]
    moves += [dict(_describe(s), phase=2, restaged=True) for s in restage]
    plan = {
        'target_patient_id': target,
        'source_patient_ids': sources,
        'temporary_patient_id': tmp_id,
        'demographics': tags,
        'restage_target': bool(restage),
        'keep_uids': p['keep_uids'],
        'moves': moves,
        'instances_before': instances_before,
    }
    result['plan'] = plan
    result['diff'] = {
        'before': {pid: len(studies) for pid, studies in by_pid.items() if studies},
        'after': {target: len({s['uid'] for studies in by_pid.values() for s in studies})},
    }
    if conflicts and not p['force']:
        om.fail(
            f"refusing to merge {', '.join(sources)} into {target}: {'; '.join(conflicts)} (set force=true to "
            'merge anyway, the target demographics win)',
            **result,
        )
    if om.check_mode:
        om.exit(True, msg=f'would move {len(pending)} study(ies) into {target}', **result)

    if p['backup']:
        if not p['backup_dir']:
            om.fail('backup_dir is required when backup=true (or set backup=false)', **result)
        result['backup'] = write_backup(om, plan, target_studies + pending, p['backup_dir'])

    moved = []
    result['moved'] = moved
    tmp_tags = dict(tags, PatientID=tmp_id)
    try:
        for study in restage:
            moved.append(dict(move_study(om.client, study, tmp_tags, p['keep_uids'], p['job_timeout']), phase=1))
        staged = patient_studies(om.client, tmp_id) if restage else by_pid[tmp_id]
        for study in staged + [s for pid in sources for s in by_pid[pid]]:
            moved.append(dict(move_study(om.client, study, tags, p['keep_uids'], p['job_timeout']), phase=2))
    except OrthancError as exc:
        om.fail(
            f'merge into {target} stopped after {len(moved)} study move(s), the study being moved was kept: '
            f'{exc.msg}. Run again to finish (studies under {tmp_id} are picked up); backups: '
            f"{result.get('backup', {}).get('dir', 'none')}",
            changed=bool(moved),
            **result,
        )
    after = om.call(patient_studies, om.client, target)
    merged_duplicates = sum(m['instances'] + m['instances_already_there'] - m['instances_after'] for m in moved)
    result['instances_after'] = sum(s['instances'] for s in after)
    expected = instances_before - merged_duplicates
    left = [pid for pid in [*sources, tmp_id] if om.call(patient_studies, om.client, pid)]
    if result['instances_after'] != expected or left:
        om.fail(
            f"verification failed after the merge into {target}: {result['instances_after']} instance(s) under the "
            f'target, expected {expected}; PatientIDs still holding studies: {left or "none"}',
            changed=True,
            **result,
        )
    om.exit(True, msg=f'moved {len(pending)} study(ies) into {target}', **result)


def _norm(tags):
    out = dict(tags)
    out['OtherPatientIDs'] = split_multi(out.get('OtherPatientIDs'))
    return out


def _describe(study):
    return {
        'study': study['id'],
        'from_patient_id': study['patient_id'],
        'study_instance_uid': study['uid'],
        'study_date': study['study_date'],
        'description': study['description'],
        'instances': study['instances'],
    }


if __name__ == '__main__':
    main()
