import json

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils import orthanc_peer as peer_utils
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_peer

from ..orthanc_fake import FakeOrthanc, install, run_module

BASE = {'api_url': 'http://127.0.0.1:8042', 'api_username': 'ansible', 'api_password': 'pw'}
CENTRAL = dict(BASE, name='central', url='https://archive.example/orthanc', username='clinic', password='s3cret')


@pytest.fixture
def fake(monkeypatch):
    f = FakeOrthanc()
    install(monkeypatch, f)
    return f


def test_create_sends_password_but_never_returns_it(fake, capsys):
    _failed, res = run_module(orthanc_peer, CENTRAL, capsys)
    assert res['changed'] is True
    assert fake.calls[1] == (
        'PUT',
        '/peers/central',
        {'Url': 'https://archive.example/orthanc/', 'Username': 'clinic', 'Password': 's3cret', 'Pkcs11': False},
    )
    assert 's3cret' not in repr(res)
    assert res['peer'] == {
        'Url': 'https://archive.example/orthanc/',
        'Username': 'clinic',
        'Pkcs11': False,
        'HttpHeaders': [],
    }


def test_unchanged_with_on_create(fake, capsys):
    run_module(orthanc_peer, CENTRAL, capsys)
    fake.calls.clear()
    _failed, res = run_module(orthanc_peer, CENTRAL, capsys)
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}
    assert fake.writes == []


def test_update_password_always_writes_every_time(fake, capsys):
    run_module(orthanc_peer, CENTRAL, capsys)
    _failed, res = run_module(orthanc_peer, dict(CENTRAL, update_password='always'), capsys)
    assert res['changed'] is True
    assert res['changed_fields'] == ['Password']
    assert res['diff']['after']['central']['Password'] == '******** (changed)'
    assert 's3cret' not in repr(res)


def test_change_timeout_only_that_field(fake, capsys):
    run_module(orthanc_peer, CENTRAL, capsys)
    _failed, res = run_module(orthanc_peer, dict(CENTRAL, timeout=60), capsys)
    assert res['changed_fields'] == ['Timeout']
    before, after = res['diff']['before']['central'], res['diff']['after']['central']
    assert [k for k in set(before) | set(after) if before.get(k) != after.get(k)] == ['Timeout']
    assert fake.calls[-1][2]['Password'] == 's3cret'


def test_update_without_password_refused(fake, capsys):
    run_module(orthanc_peer, CENTRAL, capsys)
    args = dict(CENTRAL, url='https://other.example/')
    del args['password']
    failed, res = run_module(orthanc_peer, args, capsys)
    assert failed
    assert 'password is required to change peer' in res['msg']
    assert fake.peers['central']['Url'] == 'https://archive.example/orthanc/'


def test_check_mode_no_write(fake, capsys):
    _failed, res = run_module(orthanc_peer, dict(CENTRAL, _ansible_check_mode=True), capsys)
    assert res['changed'] is True
    assert fake.writes == []


def test_delete_then_unchanged(fake, capsys):
    run_module(orthanc_peer, CENTRAL, capsys)
    _failed, res = run_module(orthanc_peer, dict(BASE, name='central', state='absent'), capsys)
    assert res['changed'] is True
    assert fake.peers == {}
    _failed, res = run_module(orthanc_peer, dict(BASE, name='central', state='absent'), capsys)
    assert res['changed'] is False


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'url': 'ftp://x'}, "url 'ftp://x' is invalid"),
        ({'name': 'a/b'}, "name 'a/b' is invalid"),
        ({'username': None}, 'password is set but username is empty'),
        ({'certificate_file': '/c.pem'}, 'certificate_key_password is required'),
        ({'timeout': -5}, 'timeout -5 is out of range'),
    ],
)
def test_validation(fake, capsys, change, fragment):
    failed, res = run_module(orthanc_peer, dict(CENTRAL, **change), capsys)
    assert failed
    assert fragment in res['msg']
    assert fake.calls == []


def test_short_array_form_is_understood():
    assert peer_utils.normalize_current(['http://x', 'u', '']) == {
        'Url': 'http://x/',
        'Username': 'u',
        'Pkcs11': False,
        'HttpHeaders': [],
    }
    assert peer_utils.normalize_current({'Url': 'http://x/', 'Timeout': '10'})['Timeout'] == 10


# -- issue 15, item 6: the whole URL and the credentials are checked ----------------------------------------------
@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'url': 'https://archive.example/orth anc'}, "contains the character ' ' at position 28"),
        ({'url': 'https://archive.example/orthanc\n'}, "contains the character '\\n' at position 31"),
        ({'url': 'https://archive.example/orthanc/ '}, "contains the character ' ' at position 32"),
        ({'url': 'https://archive.example:abc/'}, "has the port 'abc': a TCP port is a number 1-65535"),
        ({'url': 'https://archive.example:0/'}, "has the port '0'"),
        ({'url': 'https://archive.example:70000/'}, "has the port '70000'"),
        ({'url': 'https:///orthanc'}, 'followed by a host'),
        ({'url': 'https://arch!ve.example/'}, "has the host 'arch!ve.example'"),
        ({'url': 'https://archive.example/?x=1'}, "has a query or fragment ('?' or '#')"),
        ({'url': 'https://u:Url-pw-9@archive.example/'}, "url 'https://***@archive.example/' contains a user name"),
        ({'username': 'cli:nic'}, "username 'cli:nic' contains ':'"),
        ({'username': 'cli\nnic'}, "username 'cli\\nnic' contains the control character '\\n'"),
        ({'password': ''}, "password is empty for username 'clinic'"),
        ({'timeout': 10**12}, 'timeout 1000000000000 is out of range'),
    ],
)
def test_hostile_urls_and_credentials_are_refused_before_any_request(fake, capsys, change, fragment):
    failed, res = run_module(orthanc_peer, dict(CENTRAL, **change), capsys)
    assert failed
    assert fragment in res['msg'], res['msg']
    assert 'Url-pw-9' not in json.dumps(res)
    assert fake.calls == []


@pytest.mark.parametrize(
    'url', ['http://archive.example', 'https://10.0.0.5:8443/orthanc/', 'https://[2001:db8::5]/', 'http://h_1:80']
)
def test_plain_urls_are_accepted(fake, capsys, url):
    failed, res = run_module(orthanc_peer, dict(CENTRAL, url=url), capsys)
    assert not failed, res['msg']


def test_peer_without_credentials_may_give_empty_username(fake, capsys):
    failed, res = run_module(orthanc_peer, dict(CENTRAL, username='', password=None), capsys)
    assert not failed, res['msg']
    assert 'Username' not in fake.peers['central']


@pytest.mark.parametrize(
    'answer',
    [(200, b'<html>login</html>'), (200, b'"x"'), (200, {'central': ['http://x/']})],
    ids=['html', 'json-string', 'entry-not-object'],
)
def test_answer_that_is_not_orthanc_is_a_one_line_failure(fake, capsys, answer):
    fake.fail_next = [answer]
    failed, res = run_module(orthanc_peer, CENTRAL, capsys)
    assert failed
    assert res['msg'].endswith('this is not an Orthanc REST API (check api_url)')
    assert 'exception' not in res
    assert fake.writes == []
