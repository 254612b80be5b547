"""orthanc_modality and orthanc_modalities against a real Orthanc 1.13.0 with the PostgreSQL index."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import run_ansible

pytestmark = pytest.mark.integration

STALE = 150
PANO = {'name': 'pano', 'aet': 'PANO01', 'host': '192.0.2.20', 'port': 104, 'allow_move': False}


def changed_keys(diff, name):
    before, after = diff['before'].get(name, {}), diff['after'].get(name, {})
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def test_modality_lifecycle(stack):
    # create
    res = run_ansible('orthanc_modality', PANO, stack, diff=True)
    assert res['changed'] is True, res
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 1}
    stored = stack.modalities()['pano']
    assert stored['AET'] == 'PANO01' and stored['AllowMove'] is False and stored['AllowStore'] is True
    assert len(stored) == 17

    # repeat: unchanged, one GET, no write
    res = run_ansible('orthanc_modality', PANO, stack, diff=True)
    assert res['changed'] is False, res
    assert res['orthanc_requests'] == {'GET': 1}

    # change one field: only that field in the diff
    res = run_ansible('orthanc_modality', dict(PANO, port=11112), stack, diff=True)
    assert res['changed'] is True
    assert changed_keys(res['diff'], 'pano') == ['Port']
    assert res['changed_fields'] == ['Port']
    assert stack.modalities()['pano']['Port'] == 11112

    # check mode of a change: reported, nothing written (read back)
    res = run_ansible('orthanc_modality', dict(PANO, port=4006, aet='PANO02'), stack, check=True, diff=True)
    assert res['changed'] is True
    assert changed_keys(res['diff'], 'pano') == ['AET', 'Port']
    assert res['orthanc_requests'] == {'GET': 1}
    back = stack.modalities()['pano']
    assert (back['Port'], back['AET']) == (11112, 'PANO01')

    # converged check mode reports no change
    res = run_ansible('orthanc_modality', dict(PANO, port=11112), stack, check=True)
    assert res['changed'] is False

    # delete, delete again
    res = run_ansible('orthanc_modality', {'name': 'pano', 'state': 'absent'}, stack, diff=True)
    assert res['changed'] is True
    assert res['orthanc_requests'] == {'GET': 1, 'DELETE': 1}
    assert 'pano' not in stack.modalities()
    res = run_ansible('orthanc_modality', {'name': 'pano', 'state': 'absent'}, stack)
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}


def test_echo_through_orthanc(stack):
    # Orthanc answers C-ECHO itself (DicomAlwaysAllowEcho): a device pointing at Orthanc's own DICOM port.
    me = {'name': 'self', 'aet': 'ORTHANC', 'host': '127.0.0.1', 'port': 4242, 'echo': True}
    res = run_ansible('orthanc_modality', me, stack)
    assert res['changed'] is True and res['echo'] == 'ok', res

    # nothing listens on port 1: the task fails and says why
    dead = {'name': 'dead', 'aet': 'DEAD', 'host': '127.0.0.1', 'port': 1, 'echo': True, 'timeout': 2}
    res = run_ansible('orthanc_modality', dead, stack)
    assert res.get('failed') is True
    assert "C-ECHO from Orthanc to device 'dead' (AET 'DEAD' at 127.0.0.1:1) failed" in res['msg']

    # the same with echo_failure=warn only warns
    res = run_ansible('orthanc_modality', dict(dead, port=2, echo_failure='warn'), stack)
    assert not res.get('failed') and res['echo'] == 'failed'
    assert 'C-ECHO' in str(res.get('warnings'))
    for name in ('self', 'dead'):
        run_ansible('orthanc_modality', {'name': name, 'state': 'absent'}, stack)


def devices(count, port_base=104):
    items = [
        {'name': f'dev{i:02d}', 'aet': f'DEV{i:02d}', 'host': f'10.1.{i // 200}.{i % 200 + 1}', 'port': port_base + i}
        for i in range(count)
    ]
    for item in items[3:4]:
        item.update(retrieve_method='C-GET', manufacturer='GE', use_dicom_tls=True, local_aet='CLINIC', timeout=30)
    return items


def test_device_list_exclusive_and_converged_costs_one_get(stack):
    run_ansible('orthanc_modality', {'name': 'stray', 'aet': 'STRAY', 'host': '10.9.9.9'}, stack)
    res = run_ansible('orthanc_modalities', {'modalities': devices(50), 'exclusive': True}, stack)
    assert res['changed'] is True
    assert res['deleted'] == ['stray']
    assert len(res['created']) == 50
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 50, 'DELETE': 1}
    stored = stack.modalities()
    assert sorted(stored) == [f'dev{i:02d}' for i in range(50)]
    assert stored['dev03']['RetrieveMethod'] == 'C-GET' and stored['dev03']['LocalAet'] == 'CLINIC'

    # converged: exactly one GET and no write, in check mode and for real
    for check in (True, False):
        res = run_ansible('orthanc_modalities', {'modalities': devices(50), 'exclusive': True}, stack, check=check)
        assert res['changed'] is False, res
        assert res['orthanc_requests'] == {'GET': 1}

    # drift: one device edited behind Ansible's back, one added
    items = devices(50)
    stack_put = {'AET': 'DEV07', 'Host': '10.1.0.8', 'Port': 9999}
    requests.put(f'{stack.url}/modalities/dev07', json=stack_put, auth=stack.auth, timeout=10).raise_for_status()
    requests.put(f'{stack.url}/modalities/rogue', json=stack_put, auth=stack.auth, timeout=10).raise_for_status()
    res = run_ansible('orthanc_modalities', {'modalities': items, 'exclusive': True}, stack, diff=True)
    assert res['updated'] == {'dev07': ['Port']}
    assert res['deleted'] == ['rogue']
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 1, 'DELETE': 1}

    # an empty exclusive list would remove everything: refused without confirm_remove_all, before any request
    res = run_ansible('orthanc_modalities', {'modalities': [], 'exclusive': True}, stack)
    assert res.get('failed') is True and res['changed'] is False, res
    assert 'confirm_remove_all=true' in res['msg'] and '\n' not in res['msg']
    assert 'orthanc_requests' not in res or res['orthanc_requests'] == {}
    assert len(stack.modalities()) == 50

    # cleanup through the module: confirmed, an empty exclusive list removes everything
    res = run_ansible('orthanc_modalities', {'modalities': [], 'exclusive': True, 'confirm_remove_all': True}, stack)
    assert len(res['deleted']) == 50
    assert stack.modalities() == {}


def test_three_parallel_exclusive_runs_all_succeed(stack):
    """Issue 15, item 8: three runs read the same stale devices and race to delete them; a DELETE answered 404
    (another run removed the device first) reaches the goal. Every run succeeds, each stale device is reported
    removed by exactly one run (``deleted``) and as ``already_absent`` by the others that tried, and the end
    state is the list."""
    # many stale devices, so that the deletes of the three runs overlap whatever the start-up skew
    stale = [f'stale{i:03d}' for i in range(STALE)]
    with requests.Session() as session:
        for name in stale:
            body = {'AET': name.upper()[:16], 'Host': '10.9.9.9', 'Port': 104}
            session.put(f'{stack.url}/modalities/{name}', json=body, auth=stack.auth, timeout=10).raise_for_status()
    wanted = devices(3)
    args = {'modalities': wanted, 'exclusive': True}
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _i: run_ansible('orthanc_modalities', args, stack), range(3)))

    for res in results:
        assert not res.get('failed'), res.get('msg')
        assert res['_rc'] == 0, res['_stderr']
    deleted = [name for res in results for name in res['deleted']]
    assert sorted(deleted) == stale, 'each stale device is reported removed by exactly one run'
    for res in results:
        assert not set(res['deleted']) & set(res['already_absent'])
        assert res['orthanc_requests']['DELETE'] == len(res['deleted']) + len(res['already_absent'])
    raced = sum(len(res['already_absent']) for res in results)
    assert raced > 0, 'the three runs did not race for the same device: the test proves nothing'
    assert sorted(stack.modalities()) == [d['name'] for d in wanted]

    # converged: the next exclusive run changes nothing
    res = run_ansible('orthanc_modalities', args, stack)
    assert res['changed'] is False and res['already_absent'] == [] and res['orthanc_requests'] == {'GET': 1}
    run_ansible('orthanc_modalities', {'modalities': [], 'exclusive': True, 'confirm_remove_all': True}, stack)
