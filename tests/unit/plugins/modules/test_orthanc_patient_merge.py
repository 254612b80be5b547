import os
import stat

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_patients import modify_body, orthanc_id
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_patient_merge as merge

from ..orthanc_fake import run_module
from .patients_fake import PatientsFake, install_patients

ARGS = {'target_patient_id': '5Yp0E', 'patient_ids': ['5Yp0E', 'FromGDCM']}


@pytest.fixture
def fake(monkeypatch):
    f = PatientsFake()
    install_patients(monkeypatch, f)
    f.add_study('5Yp0E', '1.1', 'BRAINIX', '19490301', '0000', date='20061201', sops=22)
    for n in range(3):
        f.add_study('FromGDCM', f'1.2.{n}', 'BRAINIX', '19490301', '0000', date='20061201')
    f.add_study('OTHER', '9.9', 'Doe^Jane', '19700101', 'F', sops=5)
    return f


def snapshot(fake):
    return {sid: (dict(s['tags']), sorted(s['sops'])) for sid, s in fake.studies.items()}


def test_check_mode_plans_and_writes_nothing(fake, capsys, tmp_path):
    before = snapshot(fake)
    failed, res = run_module(merge, dict(ARGS, backup_dir=str(tmp_path), _ansible_check_mode=True), capsys)
    assert not failed, res
    assert res['changed'] is True
    plan = res['plan']
    assert plan['source_patient_ids'] == ['FromGDCM']
    assert plan['demographics'] == {
        'PatientID': '5Yp0E',
        'PatientName': 'BRAINIX',
        'PatientBirthDate': '19490301',
        'PatientSex': '0000',
        'OtherPatientIDs': 'FromGDCM',
    }
    assert plan['restage_target'] is True
    assert [(m['phase'], m['from_patient_id']) for m in plan['moves']] == [
        (1, '5Yp0E'),
        (2, 'FromGDCM'),
        (2, 'FromGDCM'),
        (2, 'FromGDCM'),
        (2, '5Yp0E'),
    ]
    assert res['instances_before'] == 25
    assert res['diff'] == {'before': {'5Yp0E': 1, 'FromGDCM': 3}, 'after': {'5Yp0E': 4}}
    assert fake.writes == [] and snapshot(fake) == before
    assert os.listdir(tmp_path) == []
    assert set(res['orthanc_requests']) == {'GET'}


def test_merge_moves_backs_up_verifies_and_is_idempotent(fake, capsys, tmp_path):
    failed, res = run_module(merge, dict(ARGS, backup_dir=str(tmp_path)), capsys)
    assert not failed, res
    assert res['changed'] is True
    assert res['instances_before'] == res['instances_after'] == 25
    assert fake.by_pid('FromGDCM') == {} and fake.by_pid(merge.temporary_patient_id('5Yp0E')) == {}
    target = fake.by_pid('5Yp0E')
    assert sorted(s['uid'] for s in target.values()) == ['1.1', '1.2.0', '1.2.1', '1.2.2']
    assert all(s['tags']['OtherPatientIDs'] == 'FromGDCM' for s in target.values())
    assert fake.total() == 30  # 25 + the unrelated patient's 5
    # the backup came before the first write, one archive per affected study, private
    first_write = next(i for i, c in enumerate(fake.calls) if c[0] in ('POST', 'DELETE') and c[1] != '/tools/find')
    archives = [i for i, c in enumerate(fake.calls) if c[1].endswith('/archive')]
    assert len(archives) == 4 and max(archives) < first_write
    run_dir = res['backup']['dir']
    assert sorted(os.listdir(run_dir)) == sorted([*res['backup']['files'], 'manifest.json'])
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(os.path.join(run_dir, f)).st_mode) == 0o600 for f in os.listdir(run_dir))
    # every original is deleted only after its copy was checked
    for move in res['moved']:
        copy_check = fake.calls.index(('GET', f"/studies/{move['to_study']}/statistics", None))
        delete = fake.calls.index(('DELETE', f"/studies/{move['from_study']}", None))
        assert copy_check < delete

    calls = len(fake.calls)
    failed, res = run_module(merge, dict(ARGS, backup_dir=str(tmp_path)), capsys)
    assert not failed and res['changed'] is False and 'nothing to merge' in res['msg']
    assert fake.writes == [c for c in fake.writes if fake.calls.index(c) < calls]


def test_target_already_listing_sources_is_not_restaged(fake, capsys):
    fake.studies[orthanc_id('5Yp0E', '1.1')]['tags']['OtherPatientIDs'] = 'FromGDCM'
    failed, res = run_module(merge, dict(ARGS, backup=False), capsys)
    assert not failed, res
    assert res['plan']['restage_target'] is False
    assert [m['phase'] for m in res['moved']] == [2, 2, 2]
    assert len(fake.by_pid('5Yp0E')) == 4


def test_conflicting_birth_dates_refused_unless_forced(fake, capsys, tmp_path):
    fake.add_study('X1', '2.1', 'BRAINIX', '19500101', '0000')
    before = snapshot(fake)
    args = {'target_patient_id': '5Yp0E', 'patient_ids': ['X1'], 'backup_dir': str(tmp_path)}
    failed, res = run_module(merge, args, capsys)
    assert failed and 'refusing to merge X1 into 5Yp0E' in res['msg'] and 'birth dates differ' in res['msg']
    assert 'force=true' in res['msg']
    assert snapshot(fake) == before and fake.writes == []
    failed, res = run_module(merge, dict(args, force=True), capsys)
    assert not failed, res
    assert all(s['tags']['PatientBirthDate'] == '19490301' for s in fake.by_pid('5Yp0E').values())


def test_different_people_and_collisions_refused(fake, capsys):
    fake.add_study('C', '3.1', 'HELLO')
    fake.add_study('C', '3.2', 'WORLD')
    failed, res = run_module(merge, {'target_patient_id': 'OTHER', 'patient_ids': ['C'], 'backup': False}, capsys)
    assert failed
    assert 'PatientID C holds different people' in res['msg']
    assert 'does not match the target OTHER' in res['msg']
    assert fake.writes == []


def test_copy_missing_instances_keeps_the_original(fake, capsys):
    fake.lose_instances = 1
    failed, res = run_module(merge, dict(ARGS, backup=False), capsys)
    assert failed
    assert 'holds 21 instance(s), expected 22: the original was kept' in res['msg']
    assert 'Run again to finish' in res['msg']
    assert orthanc_id('5Yp0E', '1.1') in fake.studies  # original still there
    assert not any(c[0] == 'DELETE' for c in fake.calls)


def test_resumes_from_the_temporary_patient(fake, capsys):
    tmp = merge.temporary_patient_id('5Yp0E')
    # an earlier run moved the target's study to the temporary PatientID and stopped
    study = fake.studies.pop(orthanc_id('5Yp0E', '1.1'))
    study['tags'].update(PatientID=tmp, OtherPatientIDs='FromGDCM')
    fake.studies[orthanc_id(tmp, '1.1')] = study
    failed, res = run_module(merge, dict(ARGS, backup=False), capsys)
    assert not failed, res
    assert fake.by_pid(tmp) == {} and len(fake.by_pid('5Yp0E')) == 4
    assert res['instances_after'] == 25


def test_shared_study_uid_joins_the_existing_study(fake, capsys):
    fake.add_study('DUP', '1.1', 'BRAINIX', '19490301', '0000', sops=['1.1.0', '1.1.1', 'extra'])
    fake.studies[orthanc_id('5Yp0E', '1.1')]['tags']['OtherPatientIDs'] = 'DUP'
    failed, res = run_module(merge, {'target_patient_id': '5Yp0E', 'patient_ids': ['DUP'], 'backup': False}, capsys)
    assert not failed, res
    assert res['moved'][0]['joined_existing_study'] is True
    assert res['instances_before'] == 25 and res['instances_after'] == 23


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        ({'target_patient_id': 'NOPE', 'patient_ids': ['FromGDCM']}, "target_patient_id 'NOPE' has no study"),
        ({'target_patient_id': '5Yp0E', 'patient_ids': ['5Yp0E']}, 'names no PatientID other than the target'),
        ({'target_patient_id': ' ', 'patient_ids': ['A']}, 'target_patient_id must not be empty'),
        ({'target_patient_id': 'x' * 65, 'patient_ids': ['A']}, 'longer than 64 characters'),
        (dict(ARGS, patient_birth_date='1949-03-01'), "patient_birth_date '1949-03-01' must be a DICOM date"),
        (ARGS, 'backup_dir is required when backup=true'),
    ],
)
def test_bad_input(fake, capsys, args, message):
    failed, res = run_module(merge, args, capsys)
    assert failed and message in res['msg'], res
    assert fake.writes == []


def test_overrides_and_no_other_ids(fake, capsys):
    args = dict(ARGS, backup=False, other_patient_ids=False, patient_name='Brainix^Anna', patient_sex='F')
    failed, res = run_module(merge, args, capsys)
    assert not failed, res
    tags = [s['tags'] for s in fake.by_pid('5Yp0E').values()]
    assert len(tags) == 4
    assert all(
        t['PatientName'] == 'Brainix^Anna' and t['PatientSex'] == 'F' and t['OtherPatientIDs'] == '' for t in tags
    )


def test_modify_body_removes_empty_tags():
    body = modify_body(
        {'PatientID': 'A', 'PatientName': 'N', 'PatientBirthDate': '', 'PatientSex': '', 'OtherPatientIDs': 'B'},
        keep_uids=True,
    )
    assert body['Replace'] == {'PatientID': 'A', 'PatientName': 'N', 'OtherPatientIDs': 'B'}
    assert body['Remove'] == ['PatientBirthDate', 'PatientSex']
    assert body['Keep'] == ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID']
    assert 'Keep' not in modify_body({'PatientID': 'A'}, keep_uids=False)
