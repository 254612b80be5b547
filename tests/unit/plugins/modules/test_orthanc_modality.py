import json

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_modality

from ..orthanc_fake import FakeOrthanc, install, run_module

BASE = {'api_url': 'http://127.0.0.1:8042', 'api_username': 'ansible', 'api_password': 'pw'}
PANO = dict(BASE, name='pano', aet='PANO01', host='192.0.2.20', port=104)


@pytest.fixture
def fake(monkeypatch):
    f = FakeOrthanc()
    install(monkeypatch, f)
    return f


def test_create(fake, capsys):
    failed, res = run_module(orthanc_modality, PANO, capsys)
    assert not failed
    assert res['changed'] is True
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 1}
    assert fake.calls[1][0:2] == ('PUT', '/modalities/pano')
    assert len(fake.calls[1][2]) == 17
    assert fake.modalities['pano']['AET'] == 'PANO01'
    assert res['diff']['before'] == {}
    assert res['diff']['after']['pano']['Port'] == 104
    assert len(res['changed_fields']) == 17


def test_unchanged_reads_once_writes_nothing(fake, capsys):
    fake.add_modality('pano', AET='PANO01', Host='192.0.2.20', Port=104)
    failed, res = run_module(orthanc_modality, PANO, capsys)
    assert not failed
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}
    assert fake.writes == []
    assert res['diff'] == {'before': {}, 'after': {}}


def test_change_one_field_diff_has_only_that_field(fake, capsys):
    fake.add_modality('pano', AET='PANO01', Host='192.0.2.20', Port=104)
    _failed, res = run_module(orthanc_modality, dict(PANO, port=4242), capsys)
    assert res['changed'] is True
    assert res['changed_fields'] == ['Port']
    before, after = res['diff']['before']['pano'], res['diff']['after']['pano']
    assert [k for k in after if before.get(k) != after[k]] == ['Port']
    assert fake.modalities['pano']['Port'] == 4242


def test_omitted_option_restores_default(fake, capsys):
    """PUT replaces everything: a flag changed outside Ansible is reset to the declared default."""
    fake.add_modality('pano', AET='PANO01', Host='192.0.2.20', Port=104, AllowStore=False)
    _failed, res = run_module(orthanc_modality, PANO, capsys)
    assert res['changed_fields'] == ['AllowStore']


def test_check_mode_makes_no_write(fake, capsys):
    _failed, res = run_module(orthanc_modality, dict(PANO, _ansible_check_mode=True), capsys)
    assert res['changed'] is True
    assert fake.writes == []
    assert fake.modalities == {}
    assert res['orthanc_requests'] == {'GET': 1}


def test_check_mode_change_no_write(fake, capsys):
    fake.add_modality('pano', AET='PANO01', Host='192.0.2.20', Port=104)
    _failed, res = run_module(orthanc_modality, dict(PANO, port=11112, _ansible_check_mode=True), capsys)
    assert res['changed'] is True
    assert fake.writes == []
    assert fake.modalities['pano']['Port'] == 104


def test_delete_and_delete_again(fake, capsys):
    fake.add_modality('pano', AET='PANO01', Host='192.0.2.20', Port=104)
    _failed, res = run_module(orthanc_modality, dict(BASE, name='pano', state='absent'), capsys)
    assert res['changed'] is True
    assert res['orthanc_requests'] == {'GET': 1, 'DELETE': 1}
    assert res['diff']['before']['pano']['AET'] == 'PANO01'
    _failed, res = run_module(orthanc_modality, dict(BASE, name='pano', state='absent'), capsys)
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'aet': 'A' * 17}, "aet 'AAAAAAAAAAAAAAAAA' is 17 characters long"),
        ({'aet': 'PANO\\01'}, 'backslash'),
        ({'port': 0}, 'port 0 is out of range: Orthanc accepts a TCP port 1-65534'),
        ({'port': 70000}, 'port 70000 is out of range: Orthanc accepts a TCP port 1-65534'),
        ({'port': 65535}, 'port 65535 is out of range: Orthanc accepts a TCP port 1-65534'),
        ({'host': ''}, 'host is empty'),
        ({'name': 'pano 1'}, "name 'pano 1' is invalid"),
        ({'manufacturer': 'Siemens'}, 'manufacturer must be one of'),
        ({'local_aet': 'X\\Y'}, 'local_aet'),
    ],
)
def test_validation_fails_before_any_request(fake, capsys, change, fragment):
    failed, res = run_module(orthanc_modality, dict(PANO, **change), capsys)
    assert failed
    assert fragment in res['msg']
    assert fake.calls == []


def test_missing_host_is_required(fake, capsys):
    args = dict(PANO)
    del args['host']
    failed, res = run_module(orthanc_modality, args, capsys)
    assert failed
    assert 'host' in res['msg']


def test_echo_ok_after_change(fake, capsys):
    _failed, res = run_module(orthanc_modality, dict(PANO, echo=True), capsys)
    assert res['echo'] == 'ok'
    assert fake.calls[-1][0:2] == ('POST', '/modalities/pano/echo')


def test_echo_failure_fails_with_clear_message(fake, capsys):
    fake.echo_ok = False
    failed, res = run_module(orthanc_modality, dict(PANO, echo=True), capsys)
    assert failed
    assert res['changed'] is True
    assert "C-ECHO from Orthanc to device 'pano' (AET 'PANO01' at 192.0.2.20:104) failed" in res['msg']
    assert 'configuration was saved' in res['msg']


def test_echo_failure_can_only_warn(fake, capsys):
    fake.echo_ok = False
    failed, res = run_module(orthanc_modality, dict(PANO, echo=True, echo_failure='warn'), capsys)
    assert not failed
    assert res['echo'] == 'failed'
    assert 'C-ECHO' in str(res['warnings'])


@pytest.mark.parametrize('check_mode', [True, False])
def test_echo_skipped_without_change_or_in_check_mode(fake, capsys, check_mode):
    if not check_mode:
        fake.add_modality('pano', AET='PANO01', Host='192.0.2.20', Port=104)
    _failed, res = run_module(orthanc_modality, dict(PANO, echo=True, _ansible_check_mode=check_mode), capsys)
    assert res['echo'] == 'skipped'
    assert not any(c[1].endswith('/echo') for c in fake.calls)


@pytest.mark.parametrize(
    ('answer', 'fragment'),
    [
        ((401, b''), "HTTP 401 Unauthorized to GET /modalities?expand with user 'ansible'"),
        (
            (500, {'HttpError': 'Internal Server Error', 'Message': 'Database error'}),
            'HTTP 500 Internal Server Error: Database error',
        ),
    ],
)
def test_orthanc_errors_are_one_line_failures(fake, capsys, answer, fragment):
    fake.fail_next = [answer]
    failed, res = run_module(orthanc_modality, PANO, capsys)
    assert failed
    assert fragment in res['msg']
    assert '\n' not in res['msg']
    assert 'exception' not in res


def test_failed_put_reports_cause(fake, capsys):
    fake.fail_next = [(200, {}), (400, {'HttpError': 'Bad Request', 'Message': 'Bad file format'})]
    failed, res = run_module(orthanc_modality, PANO, capsys)
    assert failed
    assert res['msg'].startswith('create of pano failed after 0 earlier change(s): Orthanc PUT /modalities/pano')


# -- issue 15: hostile inputs --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ('answer', 'got'),
    [
        ((200, b'<html><body>It works!</body></html>'), 'text that is not JSON'),
        ((200, b'"just a string"'), 'a JSON string'),
        ((200, {'pano': 'not an object'}), "a JSON object whose entry 'pano' is a JSON string"),
    ],
    ids=['html', 'json-string', 'entry-not-object'],
)
def test_answer_that_is_not_orthanc_is_a_one_line_failure(fake, capsys, answer, got):
    fake.fail_next = [answer]
    failed, res = run_module(orthanc_modality, PANO, capsys)
    assert failed
    assert got in res['msg']
    assert res['msg'].endswith('this is not an Orthanc REST API (check api_url)')
    assert '\n' not in res['msg'] and 'exception' not in res
    assert fake.writes == []


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'api_timeout': -1}, 'api_timeout -1 is out of range: give 1 to 3600 seconds'),
        ({'api_timeout': 0}, 'api_timeout 0 is out of range'),
        ({'api_retries': -1}, 'api_retries -1 is out of range: give 0 to 20 repetitions'),
        ({'api_url': 'ftp://127.0.0.1:8042'}, 'it must start with http:// or https://'),
    ],
)
def test_connection_options_are_checked_before_any_request(fake, capsys, change, fragment):
    failed, res = run_module(orthanc_modality, dict(PANO, **change), capsys)
    assert failed
    assert fragment in res['msg']
    assert 'exception' not in res
    assert fake.calls == []


def test_credentials_in_api_url_are_never_printed(fake, capsys):
    failed, res = run_module(orthanc_modality, dict(PANO, api_url='http://admin:Pw-in-url-42@127.0.0.1:8042'), capsys)
    assert failed
    assert "api_url 'http://***@127.0.0.1:8042' contains a user name or password" in res['msg']
    assert 'Pw-in-url-42' not in json.dumps(res)
    assert fake.calls == []


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'port': True}, 'port True is a boolean (YAML yes/no/true/false): Orthanc accepts an integer 1-65534'),
        ({'timeout': 10**12}, 'timeout 1000000000000 is out of range: give 0 (Orthanc default) to 3600 seconds'),
        ({'timeout': True}, 'timeout True is a boolean'),
        ({'host': 'http://192.0.2.20:104'}, "host 'http://192.0.2.20:104' looks like a URL"),
        ({'host': 'a' * 300}, 'is 300 characters long: a DNS name has at most 253 characters'),
        ({'host': 'pano_1.clinic'}, "the label 'pano_1' must have 1 to 63 letters, digits or '-'"),
        ({'host': '-pano'}, "the label '-pano'"),
        ({'host': 'a' * 64 + '.example'}, 'must have 1 to 63'),
        ({'host': 'pano\x00'}, 'control character'),
        ({'host': '999.1.1.1'}, "host '999.1.1.1' is not a valid IPv4 address"),
        ({'host': '192.0.2.20.5'}, 'is not a valid IPv4 address'),
        ({'host': '192.0.2.20:104'}, "the label '20:104'"),
    ],
)
def test_values_orthanc_would_refuse_or_should_not_store(fake, capsys, change, fragment):
    failed, res = run_module(orthanc_modality, dict(PANO, **change), capsys)
    assert failed
    assert fragment in res['msg']
    assert fake.calls == []


@pytest.mark.parametrize('host', ['192.0.2.20', 'pano.clinic.example', 'PANO-01', '2001:db8::1', 'pano.example.'])
def test_host_names_and_addresses_are_accepted(fake, capsys, host):
    failed, res = run_module(orthanc_modality, dict(PANO, host=host, timeout=3600), capsys)
    assert not failed, res['msg']
    assert fake.modalities['pano']['Host'] == host
