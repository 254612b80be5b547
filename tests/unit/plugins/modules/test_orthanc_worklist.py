"""orthanc_worklist on a real folder: create, idempotence, check mode, diff, exclusive per day, expiry."""

import os
import stat

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_worklist

from ..orthanc_fake import run_module

TODAY = '20261202'


def entry(acc, day=TODAY, **change):
    base = {
        'accession_number': acc,
        'patient_id': f'P-{acc}',
        'patient_name': 'Dupont^Hélène',
        'station_aet': 'PANO01',
        'modality': 'PX',
        'start_date': day,
    }
    base.update(change)
    return base


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / 'worklists'
    path.mkdir()
    return path


def run(folder, capsys, entries, **args):
    return run_module(orthanc_worklist, {'path': str(folder), 'entries': entries, 'today': TODAY, **args}, capsys)


def test_create_then_unchanged(folder, capsys):
    failed, res = run(folder, capsys, [entry('A1'), entry('A2')])
    assert not failed and res['changed'] and sorted(res['created']) == ['A1', 'A2']
    assert sorted(os.listdir(folder)) == [f'{TODAY}-A1.wl', f'{TODAY}-A2.wl']
    assert stat.S_IMODE(os.stat(folder / f'{TODAY}-A1.wl').st_mode) == 0o640
    mtime = os.stat(folder / f'{TODAY}-A1.wl').st_mtime_ns
    _failed, res = run(folder, capsys, [entry('A1'), entry('A2')])
    assert res['changed'] is False and res['entries'] == 2
    assert os.stat(folder / f'{TODAY}-A1.wl').st_mtime_ns == mtime


def test_check_mode_writes_nothing(folder, capsys):
    _failed, res = run(folder, capsys, [entry('A1')], _ansible_check_mode=True)
    assert res['changed'] and res['created'] == ['A1']
    assert os.listdir(folder) == []


def test_update_shows_the_changed_fields_in_the_diff(folder, capsys):
    run(folder, capsys, [entry('A1')])
    _failed, res = run(folder, capsys, [entry('A1', start_time='10:15')], _ansible_diff=True)
    assert res['updated'] == {'A1': ['start_time']}
    assert res['diff'] == {'before': {'A1': {'start_time': ''}}, 'after': {'A1': {'start_time': '101500'}}}


def test_moved_to_another_day_replaces_the_file(folder, capsys):
    run(folder, capsys, [entry('A1')])
    _failed, res = run(folder, capsys, [entry('A1', day='20261203')])
    assert res['updated'] == {'A1': ['start_date']}
    assert os.listdir(folder) == ['20261203-A1.wl']


def test_exclusive_per_day_and_absent(folder, capsys):
    run(folder, capsys, [entry('A1'), entry('A2'), entry('B1', day='20261203')])
    (folder / 'foreign.wl').write_bytes(b'not ours')
    _failed, res = run(folder, capsys, [entry('A1')], exclusive=True)
    assert res['removed'] == ['A2']  # only today's day is covered; tomorrow's B1 stays
    assert sorted(os.listdir(folder)) == [f'{TODAY}-A1.wl', '20261203-B1.wl', 'foreign.wl']
    _failed, res = run(folder, capsys, [{'accession_number': 'B1', 'state': 'absent'}])
    assert res['removed'] == ['B1']
    _failed, res = run(folder, capsys, [], exclusive=True, days=[TODAY])
    assert res['removed'] == ['A1'] and os.listdir(folder) == ['foreign.wl']


def test_expiry_of_past_entries(folder, capsys):
    run(folder, capsys, [entry('Y1', day='20261201'), entry('A1')], today='20261201')
    _failed, res = run(folder, capsys, [entry('A1')])
    assert res['expired'] == ['Y1'] and os.listdir(folder) == [f'{TODAY}-A1.wl']
    _failed, res = run(folder, capsys, [entry('Y2', day='20261130')], keep_days=1)
    assert res['created'] == [] and res['changed'] is False  # already past: not written at all


def test_bad_entries_write_nothing(folder, capsys):
    failed, res = run(folder, capsys, [entry('A1'), entry('A2', start_date='2026-02-30'), entry('A1')])
    assert failed
    assert "entries[1].start_date (ScheduledProcedureStepStartDate) '2026-02-30' is not a calendar date" in res['msg']
    assert "entries[2].accession_number 'A1' is already used by entries[0]" in res['msg']
    assert os.listdir(folder) == []


def test_duplicates_report_counts_studies_that_came_through_the_worklist():
    from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_patients import observation
    from ansible_collections.clinicpacs.orthanc.plugins.modules.orthanc_patient_duplicates_info import summarize

    studies = [
        {'PatientMainDicomTags': {'PatientID': 'P1'}, 'MainDicomTags': {'AccessionNumber': 'A1', 'StudyDate': '1'}},
        {'PatientMainDicomTags': {'PatientID': 'P1'}, 'MainDicomTags': {'StudyDate': '2'}},
        {'PatientMainDicomTags': {'PatientID': 'P2'}, 'MainDicomTags': {}},
    ]
    patients = summarize([observation(s) for s in studies])
    assert (patients['P1']['worklist_studies'], patients['P1']['studies']) == (1, 2)
    assert patients['P2']['worklist_studies'] == 0
