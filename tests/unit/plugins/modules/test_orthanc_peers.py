import json

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_peers

from ..orthanc_fake import FakeOrthanc, install, run_module

BASE = {'api_url': 'http://127.0.0.1:8042', 'api_username': 'ansible', 'api_password': 'pw'}


def peers(count):
    return [
        {'name': f'peer{i}', 'url': f'https://p{i}.example/orthanc', 'username': 'clinic', 'password': f'secret-{i}'}
        for i in range(count)
    ]


@pytest.fixture
def fake(monkeypatch):
    f = FakeOrthanc()
    install(monkeypatch, f)
    return f


def run(capsys, items, **extra):
    return run_module(orthanc_peers, dict(BASE, peers=items, **extra), capsys)


def test_create_then_converged_costs_one_get(fake, capsys):
    _failed, res = run(capsys, peers(3), exclusive=True)
    assert res['changed'] is True
    assert res['created'] == ['peer0', 'peer1', 'peer2']
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 3}
    assert fake.calls[1] == (
        'PUT',
        '/peers/peer0',
        {'Url': 'https://p0.example/orthanc/', 'Username': 'clinic', 'Password': 'secret-0', 'Pkcs11': False},
    )
    assert res['peers']['peer1'] == {
        'Url': 'https://p1.example/orthanc/',
        'Username': 'clinic',
        'Pkcs11': False,
        'HttpHeaders': [],
    }
    fake.calls.clear()
    _failed, res = run(capsys, peers(3), exclusive=True)
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}
    assert fake.calls == [('GET', '/peers?expand', None)]
    assert res['diff'] == {'before': {}, 'after': {}}


def test_change_one_writes_only_that_peer(fake, capsys):
    run(capsys, peers(2))
    items = peers(2)
    items[1]['timeout'] = 60
    _failed, res = run(capsys, items)
    assert res['updated'] == {'peer1': ['Timeout']}
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 1}
    assert fake.calls[-1][1] == '/peers/peer1'
    assert fake.calls[-1][2]['Password'] == 'secret-1'  # the complete peer, password included
    before, after = res['diff']['before']['peer1'], res['diff']['after']['peer1']
    assert [k for k in set(before) | set(after) if before.get(k) != after.get(k)] == ['Timeout']


def test_exclusive_removes_unlisted(fake, capsys):
    run(capsys, peers(3))
    _failed, res = run(capsys, peers(2), exclusive=True)
    assert res['deleted'] == ['peer2']
    assert sorted(fake.peers) == ['peer0', 'peer1']
    assert list(res['diff']['before']) == ['peer2']


def test_not_exclusive_keeps_unlisted(fake, capsys):
    run(capsys, peers(3))
    _failed, res = run(capsys, peers(1))
    assert res['changed'] is False
    assert len(fake.peers) == 3


def test_item_state_absent(fake, capsys):
    run(capsys, peers(2))
    _failed, res = run(capsys, [{'name': 'peer1', 'state': 'absent'}])
    assert res['deleted'] == ['peer1']
    assert list(fake.peers) == ['peer0']


def test_check_mode_writes_nothing(fake, capsys):
    run(capsys, peers(1))
    fake.calls.clear()
    items = peers(3)
    items[0]['url'] = 'https://moved.example/'
    _failed, res = run(capsys, items[:1] + items[2:], exclusive=True, _ansible_check_mode=True)
    assert res['changed'] is True
    assert res['created'] == ['peer2'] and res['updated'] == {'peer0': ['Url']}
    assert fake.writes == []
    assert res['orthanc_requests'] == {'GET': 1}


def test_diff_never_shows_passwords(fake, capsys):
    run(capsys, peers(2))
    items = peers(3)
    items[0]['update_password'] = 'always'
    items[1]['timeout'] = 5
    _failed, res = run(capsys, items, _ansible_diff=True)
    assert res['created'] == ['peer2']
    assert res['updated'] == {'peer0': ['Password'], 'peer1': ['Timeout']}
    assert res['diff']['after']['peer0']['Password'] == '******** (changed)'
    assert res['diff']['after']['peer2']['Password'] == '********'
    for i in range(3):
        assert f'secret-{i}' not in repr(res)


def test_update_password_always_is_never_converged(fake, capsys):
    items = [dict(peers(1)[0], update_password='always')]
    run(capsys, items)
    _failed, res = run(capsys, items)
    assert res['changed'] is True and res['updated'] == {'peer0': ['Password']}


def test_change_without_password_refused_before_any_write(fake, capsys):
    run(capsys, peers(2))
    fake.calls.clear()
    items = peers(3)
    del items[1]['password']
    items[1]['url'] = 'https://other.example/'
    failed, res = run(capsys, items)
    assert failed
    assert "password is required to change peer 'peer1' (fields Url)" in res['msg']
    assert fake.writes == [] and 'peer2' not in fake.peers


@pytest.mark.parametrize(
    ('change', 'fragment'),
    [
        ({'name': 'peer0'}, "peers[1].name 'peer0' is already used by peers[0]: names must be unique"),
        ({'url': 'ftp://x'}, "peers[1].url 'ftp://x' is invalid"),
        ({'url': None}, 'peers[1].url is required for a present peer'),
        ({'name': 'a/b'}, "peers[1].name 'a/b' is invalid"),
        ({'username': None}, 'peers[1].password is set but username is empty'),
        ({'certificate_file': '/c.pem'}, 'peers[1].certificate_key_password is required'),
        ({'timeout': -5}, 'peers[1].timeout -5 is out of range'),
    ],
)
def test_validation_before_any_request(fake, capsys, change, fragment):
    items = peers(3)
    items[1].update(change)
    items[2]['url'] = 'not-a-url'
    failed, res = run(capsys, items)
    assert failed
    assert fragment in res['msg']
    assert "peers[2].url 'not-a-url' is invalid" in res['msg']  # every item is reported, not only the first
    assert fake.calls == []


# -- issue 15 ------------------------------------------------------------------------------------------------------
def test_failure_after_writes_says_changed_and_lists_what_was_done(fake, capsys):
    """Item 3: the second PUT fails; the first one was made and the result says so."""
    fake.fail_on[('PUT', '/peers/peer1')] = (500, {'HttpError': 'Internal Server Error', 'Message': 'Database error'})
    failed, res = run(capsys, peers(3))
    assert failed
    assert res['changed'] is True
    assert res['done'] == [{'action': 'create', 'name': 'peer0', 'fields': res['done'][0]['fields']}]
    assert res['msg'].startswith(
        'create of peer1 failed after 1 earlier change(s) (create peer0, already made): Orthanc PUT /peers/peer1: '
        'HTTP 500'
    )
    assert list(fake.peers) == ['peer0']


def test_failure_of_the_first_write_says_unchanged(fake, capsys):
    fake.fail_on[('PUT', '/peers/peer0')] = (500, {'Message': 'Database error'})
    failed, res = run(capsys, peers(2))
    assert failed
    assert res['changed'] is False
    assert 'done' not in res


@pytest.mark.parametrize(
    'items',
    [[{'name': 'a', 'url': 'http://a'}, 'b'], 'pano', [7]],
    ids=['dict-then-string', 'string', 'number'],
)
def test_api_password_is_registered_even_when_the_list_is_malformed(fake, capsys, items):
    """Item 5: ansible-core stops collecting no_log values at the first list item that is not a dict."""
    failed, res = run_module(orthanc_peers, dict(BASE, api_password='Api-Secret-77', peers=items), capsys)
    assert failed
    assert 'Api-Secret-77' not in json.dumps(res)
    assert fake.calls == []


@pytest.mark.parametrize(
    'answer',
    [(200, b'<html>login</html>'), (200, b'"x"'), (200, {'peer0': 'x'})],
    ids=['html', 'json-string', 'entry-not-object'],
)
def test_answer_that_is_not_orthanc_is_a_one_line_failure(fake, capsys, answer):
    fake.fail_next = [answer]
    failed, res = run(capsys, peers(1))
    assert failed
    assert res['msg'].endswith('this is not an Orthanc REST API (check api_url)')
    assert 'exception' not in res


def test_item_passwords_after_a_malformed_item_are_hidden_too(fake, capsys):
    items = ['b', {'name': 'a', 'url': 'http://a', 'username': 'u', 'password': 'Peer-Pw-5'}, 'k=v password=Kv-Pw-6']
    failed, res = run_module(orthanc_peers, dict(BASE, api_password='Api-Secret-77', peers=items), capsys)
    assert failed
    text = json.dumps(res)
    assert 'Api-Secret-77' not in text and 'Peer-Pw-5' not in text and 'Kv-Pw-6' not in text


# -- issue 15, item 8: concurrent exclusive runs, and an empty exclusive list ----------------------------------------
def test_peer_removed_by_another_run_is_not_a_failure_nor_our_change(fake, capsys):
    run(capsys, peers(3))
    fake.calls.clear()
    fake.gone_after_read = {'peer2'}
    failed, res = run(capsys, peers(2), exclusive=True)
    assert not failed, res['msg']
    assert ('DELETE', '/peers/peer2', None) in fake.calls
    assert res['changed'] is False
    assert res['deleted'] == []
    assert res['already_absent'] == ['peer2']
    assert res['diff'] == {'before': {}, 'after': {}}
    assert sorted(fake.peers) == ['peer0', 'peer1']


@pytest.mark.parametrize('items', [[], [{'name': 'peer0', 'state': 'absent'}]], ids=['empty', 'only-absent'])
def test_exclusive_without_a_present_peer_needs_confirm_remove_all(fake, capsys, items):
    run(capsys, peers(2))
    fake.calls.clear()
    failed, res = run(capsys, items, exclusive=True)
    assert failed
    assert 'confirm_remove_all=true' in res['msg']
    assert fake.calls == []
    assert sorted(fake.peers) == ['peer0', 'peer1']
    failed, res = run(capsys, items, exclusive=True, confirm_remove_all=True)
    assert not failed
    assert res['deleted'] == ['peer0', 'peer1']
    assert fake.peers == {}
