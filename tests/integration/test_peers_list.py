"""orthanc_peers (the whole peer list in one task) against a real Orthanc 1.13.0 with the PostgreSQL index."""

import pytest
import requests

from .conftest import run_ansible

pytestmark = pytest.mark.integration

A = {'name': 'central', 'url': 'http://127.0.0.1:8042', 'username': 'clinic', 'password': 'peers-pw-a'}
B = {'name': 'teleradio', 'url': 'https://tr.example.invalid/orthanc', 'username': 'clinic', 'password': 'peers-pw-b'}


def test_peers_list_lifecycle(stack):
    # clean slate for this test's peers (the session stack is shared)
    run_ansible('orthanc_peers', {'peers': [], 'exclusive': True, 'confirm_remove_all': True}, stack)

    # create two peers
    res = run_ansible('orthanc_peers', {'peers': [A, B]}, stack, diff=True)
    assert res['changed'] is True, res
    assert res['created'] == ['central', 'teleradio']
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 2}
    assert 'peers-pw-a' not in res['_stdout'] and 'peers-pw-b' not in res['_stdout']
    stored = stack.peers()
    assert stored['central']['Url'] == 'http://127.0.0.1:8042/' and stored['central']['Username'] == 'clinic'
    assert stored['teleradio']['Url'] == 'https://tr.example.invalid/orthanc/'

    # repeat: unchanged, one GET and nothing else
    res = run_ansible('orthanc_peers', {'peers': [A, B]}, stack)
    assert res['changed'] is False, res
    assert res['orthanc_requests'] == {'GET': 1}

    # change one peer: only that one is written, only the changed field in the diff
    res = run_ansible('orthanc_peers', {'peers': [A, dict(B, timeout=45)]}, stack, diff=True)
    assert res['changed'] is True
    assert res['updated'] == {'teleradio': ['Timeout']}
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 1}
    before, after = res['diff']['before']['teleradio'], res['diff']['after']['teleradio']
    assert sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)) == ['Timeout']
    assert stack.peers()['teleradio']['Timeout'] == 45
    assert 'peers-pw-b' not in res['_stdout']

    # exclusive: a peer added behind our back is removed
    response = requests.put(
        f'{stack.url}/peers/stray', json={'Url': 'http://127.0.0.1:9/'}, auth=stack.auth, timeout=10
    )
    response.raise_for_status()
    assert 'stray' in stack.peers()
    res = run_ansible('orthanc_peers', {'peers': [A, dict(B, timeout=45)], 'exclusive': True}, stack, diff=True)
    assert res['changed'] is True
    assert res['deleted'] == ['stray'] and res['created'] == [] and res['updated'] == {}
    assert sorted(stack.peers()) == ['central', 'teleradio']

    # check mode: a change, a removal and a new peer are reported, nothing is written
    before_peers = stack.peers()
    new = dict(B, name='new-peer')
    res = run_ansible('orthanc_peers', {'peers': [dict(A, timeout=10), new], 'exclusive': True}, stack, check=True)
    assert res['changed'] is True
    assert res['created'] == ['new-peer'] and res['updated'] == {'central': ['Timeout']}
    assert res['deleted'] == ['teleradio']
    assert res['orthanc_requests'] == {'GET': 1}
    assert stack.peers() == before_peers

    # clean up
    res = run_ansible('orthanc_peers', {'peers': [], 'exclusive': True, 'confirm_remove_all': True}, stack)
    assert res['changed'] is True and stack.peers() == {}
