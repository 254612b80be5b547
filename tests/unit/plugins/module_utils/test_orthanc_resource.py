import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import (
    MASK,
    MASK_CHANGED,
    changed_fields,
    mask_secrets,
    plan_changes,
)

A = {'AET': 'A', 'Port': 104}


@pytest.mark.parametrize(
    ('current', 'desired', 'exclusive', 'expected'),
    [
        ({}, {'a': A}, False, [('create', 'a')]),
        ({'a': A}, {'a': A}, False, []),
        ({'a': A}, {'a': dict(A, Port=4242)}, False, [('update', 'a')]),
        ({'a': A}, {'a': None}, False, [('delete', 'a')]),
        ({}, {'a': None}, False, []),
        ({'a': A, 'b': A}, {'a': A}, False, []),
        ({'a': A, 'b': A}, {'a': A}, True, [('delete', 'b')]),
        ({'b': A}, {'a': A}, True, [('create', 'a'), ('delete', 'b')]),
    ],
)
def test_plan_actions(current, desired, exclusive, expected):
    plan = plan_changes(current, desired, exclusive=exclusive)
    assert [(c.action, c.name) for c in plan.changes] == expected
    assert plan.changed is bool(expected)


def test_update_lists_only_changed_fields_and_diff():
    plan = plan_changes({'a': A}, {'a': dict(A, Port=4242)})
    assert plan.changes[0].fields == ['Port']
    before, after = plan.diff['before']['a'], plan.diff['after']['a']
    assert changed_fields(before, after) == ['Port']


def test_exclusive_keep():
    plan = plan_changes({'a': A, 'admin': A}, {'a': A}, exclusive=True, keep={'admin'})
    assert plan.changes == []


def test_unreadable_secret_is_not_compared_and_not_in_diff():
    current = {'p': {'Url': 'http://x/', 'Username': 'u', 'Password': None}}
    desired = {'p': {'Url': 'http://x/', 'Username': 'u', 'Password': 's3cret'}}
    assert plan_changes(current, desired, secret_keys=('Password',)).changes == []
    changed = dict(desired['p'], Url='http://y/')
    plan = plan_changes(current, {'p': changed}, secret_keys=('Password',))
    assert plan.changes[0].fields == ['Url']
    assert 's3cret' not in repr(plan.diff)
    assert 'Password' not in plan.diff['after']['p']


def test_forced_secret_is_a_change_and_masked():
    current = {'p': {'Url': 'http://x/', 'Password': None}}
    desired = {'p': {'Url': 'http://x/', 'Password': 's3cret'}}
    plan = plan_changes(current, desired, secret_keys=('Password',), force_secret={'p'})
    assert plan.changes[0].fields == ['Password']
    assert plan.diff['after']['p']['Password'] == MASK_CHANGED
    assert plan.diff['before']['p']['Password'] == MASK
    assert 's3cret' not in repr(plan.diff)


def test_readable_secret_is_compared():
    plan = plan_changes({'u': {'password': 'a'}}, {'u': {'password': 'b'}}, secret_keys=('password',))
    assert plan.changes[0].fields == ['password']
    assert plan.diff == {'before': {'u': {'password': MASK}}, 'after': {'u': {'password': MASK_CHANGED}}}
    assert plan_changes({'u': {'password': 'a'}}, {'u': {'password': 'a'}}, secret_keys=('password',)).changes == []


def test_create_and_delete_diff_mask_secrets():
    plan = plan_changes(
        {'old': {'password': 'x'}}, {'new': {'password': 'y'}}, exclusive=True, secret_keys=('password',)
    )
    assert plan.diff == {'before': {'old': {'password': MASK}}, 'after': {'new': {'password': MASK}}}


def test_mask_secrets_copies():
    obj = {'a': 1, 'Password': 'x'}
    masked = mask_secrets(obj, ('Password',))
    assert masked == {'a': 1, 'Password': MASK}
    assert obj['Password'] == 'x'
    assert mask_secrets(None, ('Password',)) is None
