import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_user

from ..orthanc_fake import FakeOrthanc, install, run_module


@pytest.fixture
def fake(monkeypatch):
    f = FakeOrthanc()
    install(monkeypatch, f)
    return f


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'users.json')


def read(path):
    with open(path) as handle:
        return json.load(handle)['RegisteredUsers']


def test_create_file_with_mode_0600(path, capsys):
    _failed, res = run_module(orthanc_user, {'path': path, 'name': 'alice', 'password': 'pw1'}, capsys)
    assert res['changed'] is True
    assert res['restart_required'] is True
    assert res['created'] == ['alice']
    assert read(path) == {'alice': 'pw1'}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert 'pw1' not in json.dumps(res)
    assert res['diff'] == {'before': {'RegisteredUsers': {}}, 'after': {'RegisteredUsers': {'alice': '********'}}}


def test_unchanged_second_run(path, capsys):
    args = {'path': path, 'name': 'alice', 'password': 'pw1'}
    run_module(orthanc_user, args, capsys)
    mtime = os.stat(path).st_mtime_ns
    _failed, res = run_module(orthanc_user, args, capsys)
    assert res['changed'] is False
    assert res['restart_required'] is False
    assert os.stat(path).st_mtime_ns == mtime


def test_password_change_masked_diff(path, capsys):
    run_module(orthanc_user, {'path': path, 'name': 'alice', 'password': 'pw1'}, capsys)
    _failed, res = run_module(orthanc_user, {'path': path, 'name': 'alice', 'password': 'pw2'}, capsys)
    assert res['updated'] == ['alice']
    assert res['diff']['after']['RegisteredUsers']['alice'] == '******** (changed)'
    assert read(path) == {'alice': 'pw2'}
    assert 'pw2' not in json.dumps(res) and 'pw1' not in json.dumps(res)


def test_update_password_on_create_keeps_existing(path, capsys):
    run_module(orthanc_user, {'path': path, 'name': 'alice', 'password': 'pw1'}, capsys)
    args = {'path': path, 'name': 'alice', 'password': 'pw2', 'update_password': 'on_create'}
    _failed, res = run_module(orthanc_user, args, capsys)
    assert res['changed'] is False
    assert read(path) == {'alice': 'pw1'}


def test_users_list_exclusive_and_other_keys_kept(path, capsys):
    with open(path, 'w') as handle:
        json.dump({'RegisteredUsers': {'old': 'x', 'alice': 'pw1'}, 'AuthenticationEnabled': True}, handle)
    users = [{'name': 'alice', 'password': 'pw1'}, {'name': 'bob', 'password': 'pw3'}]
    _failed, res = run_module(orthanc_user, {'path': path, 'users': users, 'exclusive': True}, capsys)
    assert res['deleted'] == ['old'] and res['created'] == ['bob']
    with open(path) as handle:
        doc = json.load(handle)
    assert doc == {'RegisteredUsers': {'alice': 'pw1', 'bob': 'pw3'}, 'AuthenticationEnabled': True}


def test_absent_user_and_absent_again(path, capsys):
    run_module(
        orthanc_user,
        {'path': path, 'users': [{'name': 'a', 'password': 'pw-a'}, {'name': 'b', 'password': 'pw-b'}]},
        capsys,
    )
    _failed, res = run_module(orthanc_user, {'path': path, 'name': 'b', 'state': 'absent'}, capsys)
    assert res['deleted'] == ['b'] and res['restart_required'] is True
    _failed, res = run_module(orthanc_user, {'path': path, 'name': 'b', 'state': 'absent'}, capsys)
    assert res['changed'] is False


def test_check_mode_writes_no_file(path, capsys):
    args = {'path': path, 'name': 'alice', 'password': 'pw1', '_ansible_check_mode': True}
    _failed, res = run_module(orthanc_user, args, capsys)
    assert res['changed'] is True and res['restart_required'] is True
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    ('args', 'fragment'),
    [
        ({'name': 'bad name', 'password': 'x'}, "name 'bad name' is invalid"),
        ({'name': 'alice'}, "password is required to create user 'alice'"),
        ({'name': 'alice', 'password': ''}, 'password of user alice is empty'),
        (
            {'users': [{'name': 'a', 'password': 'pa-one'}, {'name': 'a', 'password': 'pa-two'}]},
            "users[1].name 'a' is already used by users[0]",
        ),
    ],
)
def test_validation(path, capsys, args, fragment):
    failed, res = run_module(orthanc_user, dict(args, path=path), capsys)
    assert failed
    assert fragment in res['msg']
    assert not os.path.exists(path)


def test_broken_file_is_reported(path, capsys):
    with open(path, 'w') as handle:
        handle.write('{not json')
    failed, res = run_module(orthanc_user, {'path': path, 'name': 'a', 'password': 'pw-broken'}, capsys)
    assert failed
    assert res['msg'].startswith(f'cannot read users file {path}')


def test_verify_login(fake, path, capsys):
    fake.credentials = {'alice': 'pw1'}
    args = {'path': path, 'name': 'alice', 'password': 'pw1', 'verify_login': True}
    _failed, res = run_module(orthanc_user, args, capsys)
    assert res['verified'] == [] and 'verify_login skipped' in str(res['warnings'])
    assert fake.calls == []
    _failed, res = run_module(orthanc_user, args, capsys)
    assert res['verified'] == ['alice']
    assert res['orthanc_requests'] == {'GET': 1}


def test_verify_login_failure(fake, path, capsys):
    fake.credentials = {'alice': 'other'}
    args = {'path': path, 'name': 'alice', 'password': 'pw1'}
    run_module(orthanc_user, args, capsys)
    failed, res = run_module(orthanc_user, dict(args, verify_login=True), capsys)
    assert failed
    assert "user 'alice' cannot log in to Orthanc" in res['msg']
    assert 'pw1' not in res['msg']


# -- issue 15, item 4: the file never appears with the wrong mode or owner --------------------------------------------
@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'owner': 'nosuchuser-15'}, "owner 'nosuchuser-15' is not a user on this host"),
        ({'group': 'nosuchgroup-15'}, "group 'nosuchgroup-15' is not a group on this host"),
    ],
)
@pytest.mark.parametrize('exists', [False, True], ids=['new-file', 'existing-file'])
def test_unknown_owner_or_group_fails_before_anything_is_written(path, capsys, change, message, exists):
    if exists:
        with open(path, 'w') as handle:
            json.dump({'RegisteredUsers': {'alice': 'pw1'}}, handle)
        os.chmod(path, 0o600)
        before = Path(path).read_bytes()
    args = dict({'path': path, 'name': 'bob', 'password': 'pw2'}, **change)
    failed, res = run_module(orthanc_user, args, capsys)
    assert failed
    if exists:
        assert Path(path).read_bytes() == before
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    else:
        assert not os.path.exists(path)
    assert os.listdir(os.path.dirname(path)) == ([os.path.basename(path)] if exists else [])
    assert message in res['msg']
    assert res['changed'] is False


def test_file_has_its_final_mode_and_owner_before_it_appears(path, capsys, monkeypatch):
    seen = []

    def spy(real):
        def rename(src, dst):
            st = os.stat(src)
            seen.append((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, os.fsdecode(dst)))
            real(src, dst)

        return rename

    monkeypatch.setattr(os, 'replace', spy(os.replace))
    monkeypatch.setattr(os, 'rename', spy(os.rename))
    args = {'path': path, 'name': 'alice', 'password': 'pw1', 'owner': '4242', 'group': '4242', 'mode': '0640'}
    failed, res = run_module(orthanc_user, args, capsys)
    assert not failed, res['msg']
    assert seen == [(0o640, 4242, 4242, path)]
    st = os.stat(path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 4242, 4242)


def test_a_failing_chown_leaves_no_file(path, capsys, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise PermissionError(1, 'Operation not permitted')

    monkeypatch.setattr(os, 'chown', refuse)
    monkeypatch.setattr(os, 'lchown', refuse)
    failed, res = run_module(orthanc_user, {'path': path, 'name': 'alice', 'password': 'pw1', 'owner': '4242'}, capsys)
    assert failed
    assert 'chown failed' in res['msg']
    assert os.listdir(os.path.dirname(path)) == []


def test_existing_owner_is_kept_when_not_given(path, capsys):
    args = {'path': path, 'name': 'alice', 'password': 'pw1', 'owner': '4242', 'group': '4242'}
    run_module(orthanc_user, args, capsys)
    _failed, res = run_module(orthanc_user, {'path': path, 'name': 'alice', 'password': 'pw2'}, capsys)
    assert res['changed'] is True
    st = os.stat(path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 4242, 4242)


@pytest.mark.parametrize('users', [[], [{'name': 'alice', 'state': 'absent'}]], ids=['empty', 'only-absent'])
def test_exclusive_without_a_present_user_needs_confirm_remove_all(path, capsys, users):
    with open(path, 'w') as handle:
        json.dump({'RegisteredUsers': {'alice': 'pw1', 'bob': 'pw2'}}, handle)
    before = Path(path).read_bytes()
    failed, res = run_module(orthanc_user, {'path': path, 'users': users, 'exclusive': True}, capsys)
    assert failed
    assert res['changed'] is False
    assert 'confirm_remove_all=true' in res['msg'] and '\n' not in res['msg']
    assert Path(path).read_bytes() == before


def test_confirm_remove_all_removes_every_user(path, capsys):
    with open(path, 'w') as handle:
        json.dump({'RegisteredUsers': {'alice': 'pw1', 'bob': 'pw2'}}, handle)
    args = {'path': path, 'users': [], 'exclusive': True, 'confirm_remove_all': True}
    failed, res = run_module(orthanc_user, args, capsys)
    assert not failed
    assert res['deleted'] == ['alice', 'bob']
    assert read(path) == {}
