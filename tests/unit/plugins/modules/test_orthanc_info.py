import pytest
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_info

from ..orthanc_fake import FakeOrthanc, install, run_module


@pytest.fixture
def fake(monkeypatch):
    f = FakeOrthanc()
    install(monkeypatch, f)
    return f


@pytest.mark.parametrize('check_mode', [False, True])
def test_info_reads_everything(fake, capsys, check_mode):
    fake.add_modality('pano', AET='PANO01', Host='h', Port=104)
    _failed, res = run_module(orthanc_info, {'_ansible_check_mode': check_mode}, capsys)
    assert res['changed'] is False
    assert res['version'] == '1.12.7'
    assert res['api_version'] == 27
    assert res['database_backend'] == 'PostgreSQL'
    assert res['plugins'] == ['postgresql-index']
    assert 'pano' in res['modalities']
    assert res['peers'] == {}
    assert res['statistics'] == {'CountPatients': 0}
    assert res['orthanc_requests'] == {'GET': 5}
    assert fake.writes == []


def test_info_gather_nothing_and_sqlite(fake, capsys):
    fake.system['DatabaseBackendPlugin'] = None
    _failed, res = run_module(orthanc_info, {'gather': []}, capsys)
    assert res['database_backend'] == 'SQLite'
    assert res['orthanc_requests'] == {'GET': 1}
    assert 'modalities' not in res


def test_info_fails_cleanly_when_down(fake, capsys):
    fake.fail_next = [(503, b'')] * 4
    failed, res = run_module(orthanc_info, {}, capsys)
    assert failed
    assert 'HTTP 503' in res['msg']
    assert res['orthanc_requests'] == {'GET': 4}


@pytest.mark.parametrize(
    ('plugin', 'name'),
    [(None, 'SQLite'), ('/usr/lib/libOrthancMySQLIndex.so', 'MySQL'), ('/x/libOther.so', '/x/libOther.so')],
)
def test_backend_name(plugin, name):
    assert orthanc_info.backend_name(plugin) == name
