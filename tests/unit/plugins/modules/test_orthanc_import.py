"""orthanc_import with a small fake of ``POST /instances`` at the client boundary (no network)."""

import json

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_import

from ..orthanc_fake import install, run_module

DICOM = b'\0' * 128 + b'DICM' + b'payload'


class FakeStore:
    """Stores bodies by content; answers 400 to bodies containing ``BAD``, 500 when ``down``."""

    def __init__(self):
        self.stored = {}
        self.calls = 0
        self.down = False

    def __call__(self, client, method, url, data, headers):
        assert (method, url.rsplit('/', 1)[-1]) == ('POST', 'instances')
        self.calls += 1
        if self.down:
            return 500, json.dumps({'Message': 'Internal error'}).encode()
        if b'BAD' in data:
            return 400, json.dumps({'HttpError': 'Bad Request', 'Message': 'Bad file format'}).encode()
        key = str(hash(data))
        status = 'AlreadyStored' if key in self.stored else 'Success'
        self.stored[key] = data
        return 200, json.dumps({'ID': key, 'Status': status}).encode()


@pytest.fixture
def fake(monkeypatch):
    f = FakeStore()
    install(monkeypatch, f)
    return f


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / 'archive'
    (src / 'sub').mkdir(parents=True)
    (src / 'a.dcm').write_bytes(DICOM + b'a')
    (src / 'sub' / 'b.dcm').write_bytes(DICOM + b'b')
    (src / 'notes.txt').write_text('not an image')
    (src / 'broken.dcm').write_bytes(DICOM + b'BAD')
    return src


def _args(folder, tmp_path, **extra):
    return {'path': str(folder), 'journal': str(tmp_path / 'j.json'), **extra}


def test_import_then_nothing(fake, folder, tmp_path, capsys):
    failed, res = run_module(orthanc_import, _args(folder, tmp_path), capsys)
    assert not failed, res
    assert res['changed'] is True
    assert (res['total'], res['imported'], res['already_stored'], res['journaled']) == (4, 2, 0, 0)
    assert res['not_dicom'] == ['notes.txt']
    assert res['refused'] == [
        {'file': 'broken.dcm', 'error': 'Orthanc POST /instances: HTTP 400 Bad Request: Bad file format'}
    ]
    assert fake.calls == 3
    failed, res = run_module(orthanc_import, _args(folder, tmp_path), capsys)
    assert res['changed'] is False and res['journaled'] == 4 and res['imported'] == 0
    assert res['not_dicom'] == ['notes.txt'] and len(res['refused']) == 1
    assert fake.calls == 3


def test_check_mode_counts_and_writes_nothing(fake, folder, tmp_path, capsys):
    failed, res = run_module(orthanc_import, _args(folder, tmp_path, _ansible_check_mode=True), capsys)
    assert not failed and res['changed'] is True and res['imported'] == 4
    assert fake.calls == 0
    assert not (tmp_path / 'j.json').exists()


def test_changed_file_is_uploaded_again(fake, folder, tmp_path, capsys):
    run_module(orthanc_import, _args(folder, tmp_path), capsys)
    (folder / 'a.dcm').write_bytes(DICOM + b'a2')
    _failed, res = run_module(orthanc_import, _args(folder, tmp_path), capsys)
    assert res['imported'] == 1 and res['journaled'] == 3


def test_failure_stops_saves_journal_and_resumes(fake, folder, tmp_path, capsys):
    fake.down = True
    failed, res = run_module(orthanc_import, _args(folder, tmp_path, api_retries=0), capsys)
    assert failed
    assert 'stopped at a.dcm' in res['msg'] and 'run again to resume' in res['msg']
    assert json.loads((tmp_path / 'j.json').read_text())['files'] == {}
    fake.down = False
    failed, res = run_module(orthanc_import, _args(folder, tmp_path), capsys)
    assert not failed and res['imported'] == 2


def test_uploaded_but_not_journaled_is_already_stored(fake, folder, tmp_path, capsys):
    run_module(orthanc_import, _args(folder, tmp_path), capsys)
    (tmp_path / 'j.json').unlink()
    _failed, res = run_module(orthanc_import, _args(folder, tmp_path), capsys)
    assert res['imported'] == 0 and res['already_stored'] == 2
    assert res['changed'] is False


def test_retry_refused(fake, folder, tmp_path, capsys):
    run_module(orthanc_import, _args(folder, tmp_path), capsys)
    calls = fake.calls
    _failed, res = run_module(orthanc_import, _args(folder, tmp_path, retry_refused=True), capsys)
    assert fake.calls == calls + 1  # broken.dcm again; notes.txt is checked locally, never uploaded
    assert len(res['refused']) == 1


def test_journal_of_another_folder_is_refused(fake, folder, tmp_path, capsys):
    (tmp_path / 'j.json').write_text(json.dumps({'version': 1, 'source': '/elsewhere', 'files': {}}))
    failed, res = run_module(orthanc_import, _args(folder, tmp_path), capsys)
    assert failed and "belongs to folder '/elsewhere'" in res['msg']


def test_not_a_directory(fake, tmp_path, capsys):
    failed, res = run_module(orthanc_import, {'path': str(tmp_path / 'missing')}, capsys)
    assert failed and 'is not a directory' in res['msg']


def test_default_journal_name():
    path = orthanc_import.default_journal('/mnt/old archive/')
    assert path.startswith('/var/lib/clinicpacs/import/mnt-old-archive-') and path.endswith('.json')
    assert path != orthanc_import.default_journal('/mnt/old_archive')
