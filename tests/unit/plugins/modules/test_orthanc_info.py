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


# -- issue 15, item 1 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ('answers', 'gather', 'fragment'),
    [
        ([(200, b'<html>Welcome</html>')], [], "answered GET /system with text that is not JSON ('<html>Welcome"),
        ([(200, b'"hello"')], [], 'answered GET /system with a JSON string instead of a JSON object'),
        ([(200, {'Version': '1.12.7'}), (200, {'pano': 'x'})], ['modalities'], "whose entry 'pano' is a JSON string"),
        ([(200, {'Version': '1.12.7'}), (200, {'central': 3})], ['peers'], "whose entry 'central' is a JSON number"),
        ([(200, {'Version': '1.12.7'}), (200, {'a': 1})], ['plugins'], 'a JSON object instead of a JSON array'),
    ],
    ids=['html', 'json-string', 'modality-entry', 'peer-entry', 'plugins-object'],
)
def test_answer_that_is_not_orthanc_is_a_one_line_failure(fake, capsys, answers, gather, fragment):
    fake.fail_next = list(answers)
    failed, res = run_module(orthanc_info, {'gather': gather}, capsys)
    assert failed
    assert fragment in res['msg']
    assert res['msg'].endswith('this is not an Orthanc REST API (check api_url)')
    assert '\n' not in res['msg'] and 'exception' not in res
