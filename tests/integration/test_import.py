"""orthanc_import against a real Orthanc 1.13.0 with the PostgreSQL index: the real samples plus a non-DICOM
file and a truncated DICOM file; a second run imports nothing; an interrupted journal resumes."""

import json
import shutil

import pytest

from .conftest import ROOT, run_ansible

pytestmark = pytest.mark.integration

SAMPLES = ROOT / 'tests/data/dicom'


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / 'archive'
    shutil.copytree(SAMPLES / 'Comunix', src / 'Comunix')
    shutil.copytree(SAMPLES / 'PatientWith2studies', src / 'PatientWith2studies')
    (src / 'notes.txt').write_text('exported by the old imaging software\n')
    whole = (SAMPLES / 'Issue154-d1.dcm').read_bytes()
    (src / 'truncated.dcm').write_bytes(whole[: len(whole) // 3])
    return src


def _instances(stack):
    response = stack.get('/instances')
    response.raise_for_status()
    return set(response.json())


def test_import_reports_bad_files_and_is_idempotent(stack, folder, tmp_path):
    journal = tmp_path / 'journal.json'
    progress = tmp_path / 'progress.json'
    args = {'path': str(folder), 'journal': str(journal), 'progress_file': str(progress)}
    before = _instances(stack)

    res = run_ansible('orthanc_import', args, stack, check=True)
    assert res['changed'] is True and res['imported'] == 8, res
    assert not journal.exists() and _instances(stack) == before

    res = run_ansible('orthanc_import', args, stack)
    assert res['_rc'] == 0, res['_stdout']
    assert res['changed'] is True
    assert res['total'] == 8
    assert res['imported'] + res['already_stored'] == 6
    assert res['not_dicom'] == ['notes.txt']
    assert [r['file'] for r in res['refused']] == ['truncated.dcm']
    assert 'HTTP 400' in res['refused'][0]['error']
    assert len(_instances(stack) - before) == res['imported']
    assert json.loads(progress.read_text())['done'] == 8

    again = run_ansible('orthanc_import', args, stack)
    assert again['changed'] is False
    assert again['imported'] == 0 and again['journaled'] == 8
    assert again['orthanc_requests'] == {}
    assert again['not_dicom'] == ['notes.txt'] and len(again['refused']) == 1

    check = run_ansible('orthanc_import', args, stack, check=True)
    assert check['changed'] is False


def test_import_resumes_after_interruption(stack, folder, tmp_path):
    journal = tmp_path / 'journal.json'
    args = {'path': str(folder), 'journal': str(journal)}
    run_ansible('orthanc_import', args, stack)
    # An interruption after the first files: the journal only knows two of them.
    data = json.loads(journal.read_text())
    data['files'] = dict(sorted(data['files'].items())[:2])
    journal.write_text(json.dumps(data))
    res = run_ansible('orthanc_import', args, stack)
    assert res['journaled'] == 2
    assert res['imported'] == 0 and res['already_stored'] == 4, res
    assert len(json.loads(journal.read_text())['files']) == 8


def test_import_missing_folder_is_a_clear_error(stack, tmp_path):
    res = run_ansible('orthanc_import', {'path': str(tmp_path / 'nope')}, stack)
    assert res.get('failed') is True
    assert 'is not a directory' in res['msg']
