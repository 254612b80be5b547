"""orthanc_peer and orthanc_user against a real Orthanc (1.13.0) with the PostgreSQL index."""

import json
import os
import stat

import pytest
import requests

from .conftest import ORTHANC_UID, ORTHANC_VERSION, run_ansible

pytestmark = pytest.mark.integration


def test_peer_lifecycle(stack):
    peer = {'name': 'central', 'url': 'http://127.0.0.1:8042', 'username': 'clinic', 'password': 'peer-pw-1'}
    res = run_ansible('orthanc_peer', peer, stack, diff=True)
    assert res['changed'] is True, res
    assert 'peer-pw-1' not in res['_stdout']
    stored = stack.peers()['central']
    assert stored['Url'] == 'http://127.0.0.1:8042/' and stored['Username'] == 'clinic'

    res = run_ansible('orthanc_peer', peer, stack)
    assert res['changed'] is False, res
    assert res['orthanc_requests'] == {'GET': 1}

    res = run_ansible('orthanc_peer', dict(peer, timeout=45), stack, diff=True)
    assert res['changed'] is True
    before, after = res['diff']['before']['central'], res['diff']['after']['central']
    assert sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)) == ['Timeout']
    assert stack.peers()['central']['Timeout'] == 45

    res = run_ansible('orthanc_peer', dict(peer, timeout=45, url='http://127.0.0.1:9/'), stack, check=True)
    assert res['changed'] is True
    assert stack.peers()['central']['Url'] == 'http://127.0.0.1:8042/'

    # passwords cannot be read back: update_password=always sends it and says so, masked
    res = run_ansible('orthanc_peer', dict(peer, timeout=45, update_password='always'), stack, diff=True)
    assert res['changed'] is True and res['changed_fields'] == ['Password']
    assert 'peer-pw-1' not in res['_stdout']

    res = run_ansible('orthanc_peer', {'name': 'central', 'state': 'absent'}, stack)
    assert res['changed'] is True and stack.peers() == {}
    res = run_ansible('orthanc_peer', {'name': 'central', 'state': 'absent'}, stack)
    assert res['changed'] is False


def login(stack, user, password):
    return requests.get(f'{stack.url}/system', auth=(user, password), timeout=10).status_code


def test_user_lifecycle(stack):
    path = str(stack.users_file)
    admin = {'name': stack.auth[0], 'password': stack.auth[1]}
    common = {'path': path, 'owner': str(ORTHANC_UID), 'group': str(ORTHANC_UID), 'exclusive': True}
    both = dict(common, users=[admin, {'name': 'reception', 'password': 'rec-pw-1'}])

    # check mode: reported, file untouched
    before = stack.users_file.read_bytes()
    res = run_ansible('orthanc_user', both, stack, check=True, diff=True)
    assert res['changed'] is True and res['restart_required'] is True
    assert stack.users_file.read_bytes() == before

    # add a user: file 0600, owned by Orthanc, restart needed; after the restart the user logs in
    res = run_ansible('orthanc_user', both, stack, diff=True)
    assert res['changed'] is True and res['created'] == ['reception'] and res['restart_required'] is True
    assert 'rec-pw-1' not in res['_stdout']
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == ORTHANC_UID
    assert json.loads(stack.users_file.read_text())['RegisteredUsers']['reception'] == 'rec-pw-1'
    assert login(stack, 'reception', 'rec-pw-1') == 401  # not before the restart
    stack.restart_orthanc()
    assert login(stack, 'reception', 'rec-pw-1') == 200

    # repeat with verify_login: unchanged, both accounts really log in
    res = run_ansible('orthanc_user', dict(both, verify_login=True), stack)
    assert res['changed'] is False and res['restart_required'] is False
    assert res['verified'] == sorted([stack.auth[0], 'reception'])

    # change one password: diff names only that user, masked
    changed = dict(common, users=[admin, {'name': 'reception', 'password': 'rec-pw-2'}])
    res = run_ansible('orthanc_user', changed, stack, diff=True)
    assert res['updated'] == ['reception']
    assert res['diff']['after']['RegisteredUsers']['reception'] == '******** (changed)'
    assert 'rec-pw-2' not in res['_stdout']

    # check mode of a change: reported, file untouched
    before = stack.users_file.read_bytes()
    third = dict(common, users=[admin, {'name': 'reception', 'password': 'rec-pw-3'}])
    res = run_ansible('orthanc_user', third, stack, check=True, diff=True)
    assert res['changed'] is True and res['updated'] == ['reception'] and res['restart_required'] is True
    assert stack.users_file.read_bytes() == before

    # remove it (exclusive), restart: 401; remove again: unchanged
    res = run_ansible('orthanc_user', dict(common, users=[admin]), stack)
    assert res['deleted'] == ['reception'] and res['restart_required'] is True
    stack.restart_orthanc()
    assert login(stack, 'reception', 'rec-pw-2') == 401
    assert login(stack, *stack.auth) == 200
    res = run_ansible('orthanc_user', dict(common, users=[admin]), stack)
    assert res['changed'] is False
    res = run_ansible('orthanc_user', {'path': path, 'name': 'reception', 'state': 'absent'}, stack)
    assert res['changed'] is False


def test_info_reads_real_server(stack):
    res = run_ansible('orthanc_info', {}, stack, check=True)
    assert res['changed'] is False
    assert res['version'] == ORTHANC_VERSION
    assert res['database_backend'] == 'PostgreSQL'
    assert res['system']['DatabaseServerIdentifier'].startswith('it-')
    assert 'postgresql-index' in res['plugins']
    assert res['orthanc_requests'] == {'GET': 5}


def test_action_group_module_defaults(stack):
    """The connection set once for the whole ``clinicpacs.orthanc.orthanc`` action group, no env vars."""
    defaults = {'group/clinicpacs.orthanc.orthanc': {
        'api_url': stack.url, 'api_username': stack.auth[0], 'api_password': stack.auth[1]}}  # fmt: skip
    res = run_ansible('orthanc_info', {'gather': ['modalities']}, play_extra={'module_defaults': defaults})
    assert not res.get('failed'), res
    assert res['version'] == ORTHANC_VERSION
    assert res['orthanc_requests'] == {'GET': 2}
