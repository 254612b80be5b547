"""A fake Orthanc holding patients and studies, for the duplicate-patient module unit tests.

It answers the routes the modules use (``/tools/find`` with paging, ``/patients/{id}/studies``, study
statistics, asynchronous ``/modify`` jobs, ``DELETE``, ``/archive``) at the client boundary, and enforces
Orthanc's rule that a study may join an existing patient only with the patient's exact main tags.
"""

import io
import json
from urllib.parse import unquote, urlsplit

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancClient
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_patients import PATIENT_TAGS, orthanc_id

from ..orthanc_fake import install

NOT_FOUND = (404, json.dumps({'HttpStatus': 404, 'Message': 'Unknown resource'}).encode())


class PatientsFake:
    def __init__(self, version='1.12.7'):
        self.version = version
        self.studies = {}  # orthanc id -> {'tags', 'uid', 'date', 'sops'}
        self.calls = []
        self.jobs = {}
        self.lose_instances = 0  # the next modification copies this many instances fewer

    # -- data -------------------------------------------------------------------------------------------------
    def add_study(self, pid, uid, name='', birth='', sex='', others='', date='20240101', sops=1, institution=''):
        tags = {
            'PatientID': pid,
            'PatientName': name,
            'PatientBirthDate': birth,
            'PatientSex': sex,
            'OtherPatientIDs': others,
        }
        sop_set = {f'{uid}.{i}' for i in range(sops)} if isinstance(sops, int) else set(sops)
        self.studies[orthanc_id(pid, uid)] = {
            'tags': tags,
            'uid': uid,
            'date': date,
            'sops': sop_set,
            'institution': institution,
        }
        return orthanc_id(pid, uid)

    def by_pid(self, pid):
        return {sid: s for sid, s in self.studies.items() if s['tags']['PatientID'] == pid}

    def total(self):
        return sum(len(s['sops']) for s in self.studies.values())

    @property
    def writes(self):
        return [c for c in self.calls if c[0] != 'GET' and c[1] != '/tools/find']

    def expanded(self, sid):
        s = self.studies[sid]
        return {
            'ID': sid,
            'Type': 'Study',
            'ParentPatient': orthanc_id(s['tags']['PatientID']),
            'PatientMainDicomTags': {k: v for k, v in s['tags'].items() if v},
            'MainDicomTags': {
                'StudyInstanceUID': s['uid'],
                'StudyDate': s['date'],
                'InstitutionName': s['institution'],
                'StudyDescription': 'desc',
            },
            'LastUpdate': '20260101T000000',
        }

    # -- HTTP -------------------------------------------------------------------------------------------------
    def __call__(self, client, method, url, data, headers):
        split = urlsplit(url)
        body = json.loads(data.decode()) if data else None
        self.calls.append((method, split.path + ('?' + split.query if split.path == '/studies' else ''), body))
        parts = [unquote(p) for p in split.path.strip('/').split('/')]
        if parts == ['system']:
            return self._ok({'Version': self.version, 'ApiVersion': 27})
        if parts == ['studies'] and method == 'GET':
            query = dict(q.partition('=')[::2] for q in split.query.split('&'))
            assert 'expand' in query
            since, limit = int(query['since']), int(query['limit'])
            return self._ok([self.expanded(i) for i in sorted(self.studies)[since : since + limit]])
        if parts == ['tools', 'find'] and method == 'POST':
            ids = sorted(self.studies)
            page = ids[body['Since'] : body['Since'] + body['Limit']]
            return self._ok([self.expanded(i) for i in page])
        if parts[0] == 'patients' and len(parts) == 3 and parts[2] == 'studies':
            found = [i for i, s in self.studies.items() if orthanc_id(s['tags']['PatientID']) == parts[1]]
            return self._ok([self.expanded(i) for i in sorted(found)]) if found else NOT_FOUND
        if parts[0] == 'jobs':
            return self._ok(self.jobs[parts[1]])
        if parts[0] == 'studies':
            sid = parts[1]
            if sid not in self.studies:
                return NOT_FOUND
            study = self.studies[sid]
            if len(parts) == 2 and method == 'GET':
                return self._ok(self.expanded(sid))
            if len(parts) == 2 and method == 'DELETE':
                del self.studies[sid]
                return self._ok({'RemainingAncestor': None})
            if parts[2] == 'statistics':
                return self._ok({'CountInstances': len(study['sops'])})
            if parts[2] == 'instances':
                return self._ok([{'MainDicomTags': {'SOPInstanceUID': u}} for u in sorted(study['sops'])])
            if parts[2] == 'modify':
                return self._modify(sid, study, body)
        return NOT_FOUND

    def _modify(self, sid, study, body):
        assert body['Force'] is True and body['KeepSource'] is True and body['Asynchronous'] is True
        tags = dict(study['tags'])
        tags.update(body.get('Replace', {}))
        for key in body.get('Remove', []):
            tags[key] = ''
        pid = tags['PatientID']
        existing = [s for i, s in self.by_pid(pid).items() if i != sid]
        if existing and any(existing[0]['tags'][k] != tags[k] for k in PATIENT_TAGS):
            return 400, json.dumps(
                {
                    'HttpStatus': 400,
                    'Message': 'Bad request',
                    'Details': 'Trying to change patient tags in a study.  The Patient already exists',
                }
            ).encode()
        assert 'StudyInstanceUID' in body.get('Keep', [])
        new_id = orthanc_id(pid, study['uid'])
        sops = set(sorted(study['sops'])[self.lose_instances :])
        self.lose_instances = 0
        if new_id in self.studies:
            self.studies[new_id]['sops'] |= sops
        else:
            self.studies[new_id] = {
                'tags': tags,
                'uid': study['uid'],
                'date': study['date'],
                'sops': sops,
                'institution': study['institution'],
            }
        job = f'job-{len(self.jobs)}'
        self.jobs[job] = {'State': 'Success', 'Type': 'ResourceModification', 'Content': {'ID': new_id}}
        return self._ok({'ID': job, 'Path': f'/jobs/{job}'})

    def archive(self, path):
        sid = path.split('/')[2]
        return b'PK-fake-archive-of-' + sid.encode()

    @staticmethod
    def _ok(value):
        return 200, json.dumps(value).encode()


class _Resp(io.BytesIO):
    pass


def install_patients(monkeypatch, fake):
    """Route the client and the archive download to ``fake``."""
    install(monkeypatch, fake)

    class Opener:
        def open(self, req, timeout=None):
            path = urlsplit(req.full_url).path
            fake.calls.append(('GET', path, None))
            return _Resp(fake.archive(path))

    monkeypatch.setattr(OrthancClient, '_get_opener', lambda self: Opener())
