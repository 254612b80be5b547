"""orthanc_patient_merge and playbooks/merge_patients.yml on a real Orthanc holding every sample."""

import json
import zipfile

import pytest
import yaml

from .conftest import run_ansible
from .patients_util import clear, load_samples, patients_by_id, run_playbook, statistics, task_results

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def samples(stack):
    count = load_samples(stack)
    yield count
    clear(stack)


def snapshot(stack):
    """Everything a merge could change: patients with their studies and tags, and the counts."""
    return {
        'statistics': {k: v for k, v in statistics(stack).items() if k.startswith('Count')},
        'patients': {
            pid: (sorted(p['Studies']), p['MainDicomTags']) for pid, p in sorted(patients_by_id(stack).items())
        },
    }


def test_check_mode_changes_nothing(stack, samples, tmp_path):
    before = snapshot(stack)
    res = run_ansible(
        'orthanc_patient_merge',
        {'target_patient_id': '5Yp0E', 'patient_ids': ['5Yp0E', 'FromGDCM'], 'backup_dir': str(tmp_path)},
        stack,
        check=True,
        diff=True,
    )
    assert res['_rc'] == 0, res
    assert res['changed'] is True
    plan = res['plan']
    assert plan['source_patient_ids'] == ['FromGDCM']
    moved = [m for m in plan['moves'] if m['from_patient_id'] == 'FromGDCM']
    assert len(moved) == 3 and sum(m['instances'] for m in moved) == 3
    assert plan['demographics']['OtherPatientIDs'] == 'FromGDCM'
    assert plan['demographics']['PatientName'] == 'BRAINIX'
    assert res['conflicts'] == []
    assert set(res['orthanc_requests']) == {'GET'}
    assert snapshot(stack) == before
    assert list(tmp_path.iterdir()) == []


def test_collision_is_refused(stack, samples):
    before = snapshot(stack)
    res = run_ansible('orthanc_patient_merge', {'target_patient_id': 'A', 'patient_ids': ['COMMON'], 'backup': False},
                      stack)  # fmt: skip
    assert res['_rc'] != 0
    assert 'refusing to merge COMMON into A' in res['msg'] and 'PatientID COMMON holds different people' in res['msg']
    assert set(res['orthanc_requests']) == {'GET'}
    assert snapshot(stack) == before


def test_unknown_target_fails(stack, samples):
    res = run_ansible('orthanc_patient_merge', {'target_patient_id': 'NOPE', 'patient_ids': ['FromGDCM']}, stack)
    assert res['_rc'] != 0 and "target_patient_id 'NOPE' has no study in Orthanc" in res['msg']


def test_merge_playbook_then_idempotent(stack, samples, tmp_path):
    before = snapshot(stack)
    review = tmp_path / 'review' / 'localhost'
    review.mkdir(parents=True)
    (review / 'merge-proposals.yml').write_text(
        yaml.safe_dump(
            {
                'merges': [
                    {'target': '5Yp0E', 'patient_ids': ['5Yp0E', 'FromGDCM'], 'approved': True},
                    {'target': 'A', 'patient_ids': ['A', 'COMMON'], 'approved': False},
                ]
            }
        )
    )
    extra = {
        'merge_list_dir': str(tmp_path / 'review'),
        'merge_backup_dir': str(tmp_path / 'backups'),
        'merge_fetch_backups': True,
        'merge_become': False,
        'merge_api_url': stack.url,
        'merge_api_username': stack.auth[0],
        'merge_api_password': stack.auth[1],
    }
    # --check: plans only
    rc, out = run_playbook('merge_patients', stack, extra, check=True)
    assert rc == 0, json.dumps(out)[:3000]
    assert snapshot(stack) == before

    rc, out = run_playbook('merge_patients', stack, extra)
    assert rc == 0, json.dumps(out)[:4000]
    merge = task_results(out, 'Merge, with a backup of every affected study first')['results']
    assert len(merge) == 1 and merge[0]['changed'] is True
    assert merge[0]['instances_after'] == merge[0]['instances_before'] == 25

    after = snapshot(stack)
    assert after['statistics']['CountInstances'] == before['statistics']['CountInstances']
    assert after['statistics']['CountStudies'] == before['statistics']['CountStudies']
    assert after['statistics']['CountPatients'] == before['statistics']['CountPatients'] - 1
    assert 'FromGDCM' not in after['patients']
    studies, tags = after['patients']['5Yp0E']
    assert len(studies) == 4
    assert tags['OtherPatientIDs'] == 'FromGDCM' and tags['PatientName'] == 'BRAINIX'
    # every instance of the target carries the old PatientID, and the UIDs were kept
    target = patients_by_id(stack)['5Yp0E']
    uids = set()
    for study in target['Studies']:
        for instance in stack.get(f'/studies/{study}/instances').json():
            dicom = stack.get(f"/instances/{instance['ID']}/simplified-tags").json()
            assert dicom['PatientID'] == '5Yp0E' and dicom['OtherPatientIDs'] == 'FromGDCM'
            uids.add(dicom['StudyInstanceUID'])
    before_uids = {m['study_instance_uid'] for m in merge[0]['plan']['moves']}
    assert uids == before_uids
    # backups: one archive per affected study, on the "box" and fetched to the control node
    backup = merge[0]['backup']
    assert len(backup['files']) == 4
    for name in backup['files']:
        with zipfile.ZipFile(f"{backup['dir']}/{name}") as archive:
            assert archive.testzip() is None and archive.namelist()
    fetched = list((tmp_path / 'review' / 'localhost' / 'backups').rglob('*.zip'))
    assert len(fetched) == 4

    # a second run changes nothing
    rc, out = run_playbook('merge_patients', stack, extra)
    assert rc == 0, json.dumps(out)[:3000]
    merge = task_results(out, 'Merge, with a backup of every affected study first')['results']
    assert merge[0]['changed'] is False and 'nothing to merge' in merge[0]['msg']
    assert out['stats']['localhost']['changed'] == 0
    assert snapshot(stack) == after
