import json

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_modality import to_orthanc
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_modalities

from ..orthanc_fake import FakeOrthanc, install, run_module

BASE = {'api_url': 'http://127.0.0.1:8042', 'api_username': 'ansible', 'api_password': 'pw'}


def devices(count):
    return [
        {'name': f'dev{i:02d}', 'aet': f'DEV{i:02d}', 'host': f'10.0.0.{i + 1}', 'port': 104 + i} for i in range(count)
    ]


@pytest.fixture
def fake(monkeypatch):
    f = FakeOrthanc()
    install(monkeypatch, f)
    return f


def test_converged_list_of_50_costs_one_get(fake, capsys):
    _failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(50), exclusive=True), capsys)
    assert res['changed'] is True
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 50}
    fake.calls.clear()
    _failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(50), exclusive=True), capsys)
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}
    assert fake.calls == [('GET', '/modalities?expand', None)]


def test_exclusive_removes_unlisted(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    _failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(2), exclusive=True), capsys)
    assert res['deleted'] == ['old']
    assert res['created'] == ['dev00', 'dev01']
    assert 'old' not in fake.modalities
    assert res['diff']['before'] == {'old': fake.calls and res['diff']['before']['old']}


def test_not_exclusive_keeps_unlisted(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    _failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(1)), capsys)
    assert res['deleted'] == []
    assert 'old' in fake.modalities


def test_item_state_absent(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    items = [{'name': 'old', 'state': 'absent'}]
    _failed, res = run_module(orthanc_modalities, dict(BASE, modalities=items), capsys)
    assert res['deleted'] == ['old']


def test_update_reports_fields(fake, capsys):
    run_module(orthanc_modalities, dict(BASE, modalities=devices(3)), capsys)
    items = devices(3)
    items[1]['allow_move'] = False
    _failed, res = run_module(orthanc_modalities, dict(BASE, modalities=items), capsys)
    assert res['updated'] == {'dev01': ['AllowMove']}
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 1}


def test_check_mode_writes_nothing(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    args = dict(BASE, modalities=devices(5), exclusive=True, _ansible_check_mode=True)
    _failed, res = run_module(orthanc_modalities, args, capsys)
    assert res['changed'] is True
    assert fake.writes == []
    assert list(fake.modalities) == ['old']


def test_duplicate_names_fail_before_any_request(fake, capsys):
    items = devices(3)
    items[2]['name'] = 'dev00'
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=items), capsys)
    assert failed
    assert "modalities[2].name 'dev00' is already used by modalities[0]: names must be unique" in res['msg']
    assert fake.calls == []


def test_all_item_errors_reported_together(fake, capsys):
    items = devices(3)
    items[0]['port'] = 0
    items[2]['aet'] = 'X' * 17
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=items), capsys)
    assert failed
    assert 'modalities[0].port 0 is out of range' in res['msg']
    assert 'modalities[2].aet' in res['msg']
    assert fake.calls == []


def test_missing_aet_for_present_item(fake, capsys):
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=[{'name': 'x', 'host': 'h'}]), capsys)
    assert failed
    assert 'modalities[0].aet is empty' in res['msg']


def test_echo_for_changed_devices(fake, capsys):
    fake.echo_ok = False
    args = dict(BASE, modalities=devices(2), echo=True, echo_failure='warn')
    failed, res = run_module(orthanc_modalities, args, capsys)
    assert not failed
    assert res['echo'] == {'dev00': 'failed', 'dev01': 'failed'}
    fake.echo_ok = True
    _failed, res = run_module(orthanc_modalities, dict(args, echo_failure='fail'), capsys)
    assert res['echo'] == {}


def test_echo_failure_fails(fake, capsys):
    fake.echo_ok = False
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(1), echo=True), capsys)
    assert failed
    assert "device 'dev00'" in res['msg']


# -- issue 15 ------------------------------------------------------------------------------------------------------
def test_failure_after_writes_says_changed_and_lists_what_was_done(fake, capsys):
    """Item 3: dev00 is created, dev01 is refused, dev02 is never tried."""
    fake.fail_on[('PUT', '/modalities/dev01')] = (400, {'HttpError': 'Bad Request', 'Message': 'Bad file format'})
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(3)), capsys)
    assert failed
    assert res['changed'] is True
    assert [(d['action'], d['name']) for d in res['done']] == [('create', 'dev00')]
    assert 'create of dev01 failed after 1 earlier change(s) (create dev00, already made)' in res['msg']
    assert sorted(fake.modalities) == ['dev00']
    assert res['orthanc_requests'] == {'GET': 1, 'PUT': 2}


@pytest.mark.parametrize(
    'items',
    [
        'pano',
        [{'name': 'a', 'aet': 'A', 'host': 'h'}, 'b'],
        ['b', {'name': 'a', 'aet': 'A', 'host': 'h'}],
        [['nested']],
    ],
    ids=['string', 'dict-then-string', 'string-then-dict', 'nested-list'],
)
def test_api_password_never_appears_when_the_list_is_malformed(fake, capsys, items):
    """Item 5: the failure's invocation (shown with -vvv) has api_password masked."""
    failed, res = run_module(orthanc_modalities, dict(BASE, api_password='Api-Secret-88', modalities=items), capsys)
    assert failed
    assert 'Api-Secret-88' not in json.dumps(res)
    assert res['invocation']['module_args']['api_password'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert fake.calls == []


# -- issue 15, item 8: concurrent exclusive runs, and an empty exclusive list ----------------------------------------
def test_device_removed_by_another_run_is_not_a_failure_nor_our_change(fake, capsys):
    """A DELETE answered 404 (another run removed the device after our read) reaches the goal: success, and not
    reported as removed by this run."""
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    fake.add_modality('stale', AET='STALE', Host='10.9.9.8', Port=104)
    run_module(orthanc_modalities, dict(BASE, modalities=devices(1)), capsys)  # dev00 exists already
    fake.calls.clear()
    fake.gone_after_read = {'old'}
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(1), exclusive=True), capsys)
    assert not failed, res['msg']
    assert ('DELETE', '/modalities/old', None) in fake.calls
    assert res['already_absent'] == ['old']
    assert res['deleted'] == ['stale']
    assert res['changed'] is True
    assert sorted(res['diff']['before']) == ['stale']
    assert sorted(fake.modalities) == ['dev00']


def test_only_devices_removed_by_another_run_reports_unchanged(fake, capsys):
    fake.add_modality('dev00', **to_orthanc(devices(1)[0]))
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    fake.gone_after_read = {'old'}
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=devices(1), exclusive=True), capsys)
    assert not failed, res['msg']
    assert res['changed'] is False
    assert res['deleted'] == []
    assert res['already_absent'] == ['old']
    assert res['diff'] == {'before': {}, 'after': {}}
    assert res['orthanc_requests'] == {'GET': 1, 'DELETE': 1}


def test_other_delete_errors_still_fail(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    fake.fail_on[('DELETE', '/modalities/old')] = (500, {'HttpStatus': 500, 'Message': 'Internal error'})
    failed, res = run_module(
        orthanc_modalities, dict(BASE, modalities=[], exclusive=True, confirm_remove_all=True), capsys
    )
    assert failed
    assert 'HTTP 500' in res['msg']
    assert 'old' in fake.modalities


@pytest.mark.parametrize('items', [[], [{'name': 'old', 'state': 'absent'}]], ids=['empty', 'only-absent'])
def test_exclusive_without_a_present_device_needs_confirm_remove_all(fake, capsys, items):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=items, exclusive=True), capsys)
    assert failed
    assert res['changed'] is False
    assert 'confirm_remove_all=true' in res['msg']
    assert '\n' not in res['msg']
    assert fake.calls == []
    assert 'old' in fake.modalities


def test_exclusive_empty_list_refused_in_check_mode_too(fake, capsys):
    args = dict(BASE, modalities=[], exclusive=True, _ansible_check_mode=True)
    failed, res = run_module(orthanc_modalities, args, capsys)
    assert failed
    assert 'confirm_remove_all' in res['msg']


def test_confirm_remove_all_removes_every_device(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    fake.add_modality('older', AET='OLDER', Host='10.9.9.8', Port=104)
    args = dict(BASE, modalities=[], exclusive=True, confirm_remove_all=True)
    failed, res = run_module(orthanc_modalities, args, capsys)
    assert not failed
    assert res['deleted'] == ['old', 'older']
    assert fake.modalities == {}
    _failed, res = run_module(orthanc_modalities, args, capsys)
    assert res['changed'] is False
    assert res['orthanc_requests'] == {'GET': 1}


def test_empty_list_without_exclusive_needs_no_confirmation(fake, capsys):
    fake.add_modality('old', AET='OLD', Host='10.9.9.9', Port=104)
    failed, res = run_module(orthanc_modalities, dict(BASE, modalities=[]), capsys)
    assert not failed
    assert res['changed'] is False
    assert 'old' in fake.modalities
