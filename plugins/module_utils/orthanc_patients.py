# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Orthanc patient and study helpers for the duplicate-patient modules.

* ``read_study_observations(client, page_size)`` reads every study once with paged, expanded
  ``GET /studies`` (or ``POST /tools/find``) calls (``limit``/``since``) and returns one flat observation per
  study (DICOM keywords: PatientID, PatientName, PatientBirthDate, PatientSex, OtherPatientIDs, StudyDate,
  InstitutionName, StudyInstanceUID, and IssuerOfPatientID/StationName when the index holds them), the input
  of ``patient_matching.records_from_observations``.
  Patient-level tags are read from the *study* (Orthanc keeps a copy of the patient module per study), so
  every name a PatientID was registered with is seen, not only the one of its latest study. Only main DICOM
  tags are used, so Orthanc answers from its database index without opening a DICOM file.
* ``orthanc_id(*parts)`` computes Orthanc's resource identifier (SHA-1 of ``PatientID`` or
  ``PatientID|StudyInstanceUID``), which lets the merge find a patient by its exact PatientID (``/tools/find``
  treats ``*`` and ``?`` as wildcards) and know where a modified study will land.
* ``patient_studies(client, patient_id)`` lists the studies of one PatientID with their instance counts.
* ``move_study(...)`` copies one study to another patient module (asynchronous ``/modify`` job), checks the copy
  and only then deletes the original.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import time

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import (
    OrthancError,
)

PATIENT_TAGS = ('PatientID', 'PatientName', 'PatientBirthDate', 'PatientSex', 'OtherPatientIDs')
STUDY_TAGS = ('StudyInstanceUID', 'StudyDate', 'InstitutionName', 'AccessionNumber')
# Not main DICOM tags by default: taken when Orthanc's ExtraMainDicomTags stores them in the index, never read
# from the DICOM files (that would open one file per study).
OPTIONAL_PATIENT_TAGS = ('IssuerOfPatientID',)
OPTIONAL_STUDY_TAGS = ('StationName',)
UID_TAGS = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID']


def version_tuple(text):
    """``'1.12.7'`` -> ``(1, 12, 7)``; unknown text (``mainline``) counts as new."""
    parts = []
    for part in str(text or '').split('.'):
        if not part.isdigit():
            return (99, 0, 0)
        parts.append(int(part))
    return tuple(parts + [0] * (3 - len(parts)))


def orthanc_id(*parts):
    """Orthanc's identifier of a patient (``orthanc_id(pid)``) or a study (``orthanc_id(pid, study_uid)``)."""
    digest = hashlib.sha1('|'.join(parts).encode('utf-8'), usedforsecurity=False).hexdigest()
    return '-'.join(digest[i : i + 8] for i in range(0, 40, 8))


def split_multi(value):
    """A multi-valued DICOM string (``A\\B``) or a list -> list of non-empty stripped values."""
    if value is None:
        return []
    values = value if isinstance(value, (list, tuple)) else str(value).split('\\')
    return [str(v).strip() for v in values if str(v).strip()]


def observation(study):
    """One expanded study of ``/tools/find`` -> a flat dict keyed by DICOM keywords (values may be empty)."""
    patient = study.get('PatientMainDicomTags') or {}
    main = study.get('MainDicomTags') or {}
    obs = {tag: patient.get(tag) or '' for tag in PATIENT_TAGS}
    for tag in STUDY_TAGS:
        obs[tag] = main.get(tag) or ''
    for tags, source in ((OPTIONAL_PATIENT_TAGS, patient), (OPTIONAL_STUDY_TAGS, main)):
        for tag in tags:
            if source.get(tag):
                obs[tag] = source[tag]
    obs['OtherPatientIDs'] = split_multi(obs['OtherPatientIDs'])
    return obs


def find_body(level, since, limit, version, query=None):
    """Body of one paged ``POST /tools/find``; ``ResponseContent`` (Orthanc >= 1.12.5) keeps answers small."""
    body = {'Level': level, 'Expand': True, 'Query': query or {}, 'Since': since, 'Limit': limit}
    if version_tuple(version) >= (1, 12, 5):
        body['ResponseContent'] = ['MainDicomTags', 'Parent']
    return body


def read_study_observations(client, page_size=1000, version=None, page_seconds=None, api='studies'):
    """Read every study of Orthanc, ``page_size`` per request; return ``(observations, studies_by_patient)``.

    ``api`` ``studies`` pages through ``GET /studies?expand&since=&limit=``; ``find`` through ``POST /tools/find``
    (``Level: Study``, ``Expand``, ``Since``/``Limit``). Both return each study with its own copy of the patient
    tags. Measured with Orthanc 1.12.7 and the PostgreSQL index (bench/dedupe_orthanc.py), ``GET /studies`` is
    about three times faster per page, so it is the default. One extra request ends the paging (an empty page),
    so a server-side ``LimitFindResults`` smaller than ``page_size`` cannot cut the list short.
    ``page_seconds``, a list, receives the duration of every request.
    """
    observations = []
    by_patient = {}
    since = 0
    while True:
        started = time.monotonic()
        if api == 'find':
            page = client.post('/tools/find', find_body('Study', since, page_size, version), expect=list)
        else:
            page = client.get(f'/studies?expand&since={since}&limit={page_size}', expect=list)
        if page_seconds is not None:
            page_seconds.append(round(time.monotonic() - started, 3))
        if not page:
            break
        for study in page:
            obs = observation(study)
            observations.append(obs)
            by_patient.setdefault(obs['PatientID'], []).append(study.get('ID'))
        since += len(page)
    return observations, by_patient


def patient_studies(client, patient_id):
    """Studies of one exact PatientID: list of dicts (``id``, ``uid``, ``tags``, ``study_date``, ``instances``).

    Costs one request for the list plus one ``/statistics`` per study; ``[]`` when the PatientID is unknown.
    """
    pid = orthanc_id(patient_id)
    try:
        studies = client.get(f'/patients/{pid}/studies?expand', expect=list)
    except OrthancError as exc:
        if exc.status == 404:  # no patient with this PatientID
            return []
        raise  # another error, or a 200 answer that is not a list: not an Orthanc REST API
    out = []
    for study in studies:
        obs = observation(study)
        if obs['PatientID'] != patient_id:
            continue  # a SHA-1 collision would be news, but never act on a wrong patient
        stats = client.get(f"/studies/{study['ID']}/statistics") or {}
        out.append(
            {
                'id': study['ID'],
                'uid': obs['StudyInstanceUID'],
                'patient_id': patient_id,
                'tags': {tag: obs[tag] for tag in PATIENT_TAGS},
                'study_date': obs['StudyDate'],
                'description': (study.get('MainDicomTags') or {}).get('StudyDescription', ''),
                'instances': int(stats.get('CountInstances', 0)),
                'last_update': study.get('LastUpdate', ''),
            }
        )
    out.sort(key=lambda s: (s['study_date'], s['uid'], s['id']))
    return out


def exists(client, path):
    """True when ``GET path`` answers 200, False on 404 (Orthanc's 404 may carry a JSON error body)."""
    try:
        client.get(path)
    except OrthancError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def sop_uids(client, study_id):
    """SOPInstanceUIDs of one study (one request)."""
    instances = client.get(f'/studies/{study_id}/instances') or []
    return {(i.get('MainDicomTags') or {}).get('SOPInstanceUID') for i in instances}


def wait_job(client, job_id, timeout, poll=0.5):
    """Poll ``/jobs/{id}`` until it succeeds (return its ``Content``) or fails/times out (raise)."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        job = client.get(f'/jobs/{job_id}') or {}
        state = job.get('State')
        if state == 'Success':
            return job.get('Content') or {}
        if state in ('Failure', 'Paused'):
            raise OrthancError(
                f"Orthanc job {job_id} ({job.get('Type')}) ended in state {state}: "
                f"{job.get('ErrorDescription', '')} {job.get('ErrorDetails', '')}".strip()
            )
        if time.monotonic() > deadline:
            raise OrthancError(f'Orthanc job {job_id} did not finish within {timeout} seconds (job_timeout)')
        time.sleep(delay)
        delay = min(poll, delay * 2)


def modify_body(tags, keep_uids):
    """Body of a study ``/modify`` that sets the whole patient module to ``tags`` (empty values are removed)."""
    body = {
        'Replace': {k: v for k, v in tags.items() if v},
        'Force': True,
        'KeepSource': True,
        'Asynchronous': True,
    }
    removed = sorted(k for k, v in tags.items() if not v)
    if removed:
        body['Remove'] = removed
    if keep_uids:
        body['Keep'] = list(UID_TAGS)
    return body


def move_study(client, study, tags, keep_uids=True, job_timeout=600):
    """Copy ``study`` under the patient module ``tags``, check the copy, then delete the original.

    Returns a dict with the new study's identifier and instance counts. Raises ``OrthancError`` (and keeps the
    original) when the copy does not hold every instance.
    """
    expected = study['instances']
    existing = None
    already = 0
    if keep_uids and study['uid']:
        dest_id = orthanc_id(tags['PatientID'], study['uid'])
        if dest_id != study['id'] and exists(client, f'/studies/{dest_id}'):
            existing = dest_id
            # the same StudyInstanceUID is already stored under the destination: instances end up as the union
            dest_sops = sop_uids(client, dest_id)
            expected = len(sop_uids(client, study['id']) | dest_sops)
            already = len(dest_sops)
    answer = client.post(f"/studies/{study['id']}/modify", modify_body(tags, keep_uids)) or {}
    if str(answer.get('Path', '')).startswith('/jobs/'):
        content = wait_job(client, answer.get('ID'), job_timeout)
    else:
        content = answer  # a synchronous answer (an Orthanc that ignored Asynchronous)
    new_id = content.get('ID')
    if not new_id:
        raise OrthancError(f"modification of study {study['id']} returned no study: {content}")
    stats = client.get(f'/studies/{new_id}/statistics') or {}
    copied = int(stats.get('CountInstances', 0))
    if copied != expected:
        raise OrthancError(
            f"copy {new_id} of study {study['id']} (StudyInstanceUID {study['uid']}) holds {copied} instance(s), "
            f'expected {expected}: the original was kept'
        )
    if new_id != study['id']:
        client.delete(f"/studies/{study['id']}")
    return {
        'from_study': study['id'],
        'to_study': new_id,
        'study_instance_uid': study['uid'],
        'instances': study['instances'],
        'instances_after': copied,
        'joined_existing_study': existing is not None,
        'instances_already_there': already,
    }
