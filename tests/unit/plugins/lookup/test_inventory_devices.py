# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The inventory edit of add_device.yml / remove_device.yml: comments and order kept, vaulted files refused."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from ansible_collections.clinicpacs.orthanc.plugins.lookup.inventory_devices import (
    InventoryEditError,
    check,
    edit_block,
    plan,
)

CLINIC = """\
---
# Clinic A, Musterstadt. Owner: Dr. Example.
pacs_orthanc_name: Clinic A  # shown in Orthanc Explorer
pacs_devices:
  # The panoramic X-ray in room 1.
  - name: pano
    aet: PANO  # as set on the device
    host: 192.0.2.21
  - name: cbct
    aet: CBCT
    host: 192.0.2.22
    allow_find: true   # the CBCT workstation queries

# Backups go to the NAS.
backup_target: nas
"""

NEW = {'name': 'sensor', 'aet': 'SENSOR', 'host': '192.0.2.23', 'port': 104, 'type': 'intraoral sensor'}


def devices(text):
    return yaml.safe_load(text)['pacs_devices']


def test_add_keeps_comments_and_order_and_appends_after_the_last_entry():
    after = edit_block(CLINIC, 'sensor', NEW)
    assert [d['name'] for d in devices(after)] == ['pano', 'cbct', 'sensor']
    assert devices(after)[2] == NEW
    # Every line of the file is still there, in the same order; the new entry sits after the last device.
    removed = [line for line in CLINIC.splitlines() if line not in after.splitlines()]
    assert removed == []
    lines = after.splitlines()
    assert lines.index('  - name: sensor') == lines.index('    allow_find: true   # the CBCT workstation queries') + 1
    assert lines[-3:] == ['', '# Backups go to the NAS.', 'backup_target: nas']


def test_add_again_changes_nothing():
    after = edit_block(CLINIC, 'sensor', NEW)
    assert edit_block(after, 'sensor', NEW) == after


def test_change_rewrites_only_that_entry():
    changed = {'name': 'cbct', 'aet': 'CBCT', 'host': '192.0.2.99'}
    after = edit_block(CLINIC, 'cbct', changed)
    assert devices(after)[1] == changed
    assert '  # The panoramic X-ray in room 1.\n' in after and 'aet: PANO  # as set on the device' in after


def test_remove_takes_the_entry_and_its_comment_only():
    after = edit_block(CLINIC, 'pano', None)
    assert [d['name'] for d in devices(after)] == ['cbct']
    assert 'The panoramic X-ray' not in after
    assert '# Clinic A, Musterstadt.' in after and '# Backups go to the NAS.' in after
    assert edit_block(after, 'pano', None) == after  # removing again changes nothing


def test_remove_the_last_device_leaves_an_empty_list_and_add_fills_it():
    text = 'pacs_devices:  # none yet\n  - name: pano\n    aet: PANO\n    host: 192.0.2.21\nother: 1\n'
    empty = edit_block(text, 'pano', None)
    assert empty == 'pacs_devices: []  # none yet\nother: 1\n'
    again = edit_block(empty, 'sensor', NEW)
    assert devices(again) == [NEW] and again.startswith('pacs_devices:  # none yet\n  - name: sensor\n')


def test_unindented_block_list():
    text = 'pacs_devices:\n- name: pano\n  aet: PANO\n  host: 192.0.2.21\nother: 1\n'
    after = edit_block(text, 'sensor', NEW)
    assert [d['name'] for d in devices(after)] == ['pano', 'sensor'] and after.endswith('other: 1\n')


@pytest.mark.parametrize(
    'text',
    [
        'pacs_devices: [{name: pano, aet: PANO, host: 192.0.2.21}]\n',
        '{"pacs_devices": [{"name": "pano", "aet": "PANO", "host": "192.0.2.21"}]}\n',
    ],
)
def test_flow_style_is_refused(text):
    with pytest.raises(InventoryEditError, match='is not written as a block list'):
        edit_block(text, 'sensor', NEW)


def inventory(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


def test_plan_edits_the_file_that_sets_the_list_and_makes_a_patch(tmp_path):
    inv = inventory(tmp_path, {'host_vars/clinic-a/main.yml': CLINIC, 'host_vars/clinic-a/other.yml': 'x: 1\n'})
    result = plan(inv, 'clinic-a', 'sensor', NEW, current=[])
    assert result['action'] == 'edit' and result['relpath'] == 'host_vars/clinic-a/main.yml'
    assert result['before'] == CLINIC and devices(result['after'])[-1] == NEW
    assert result['patch'].startswith('--- a/host_vars/clinic-a/main.yml\n+++ b/host_vars/clinic-a/main.yml\n')
    assert '+  - name: sensor\n' in result['patch']
    # The patch applies to the inventory as it is (what a GitOps pipeline does with it).
    patch = tmp_path / 'change.patch'
    patch.write_text(result['patch'])
    subprocess.run(['patch', '-p1', '-i', str(patch)], cwd=inv, check=True, capture_output=True)
    assert (tmp_path / 'host_vars/clinic-a/main.yml').read_text() == result['after']


def test_plan_copies_the_inherited_list_into_a_new_devices_file(tmp_path):
    inv = inventory(tmp_path, {'group_vars/clinics.yml': 'x: 1\n', 'host_vars/clinic-a/main.yml': 'y: 2\n'})
    inherited = [{'name': 'pano', 'aet': 'PANO', 'host': '192.0.2.21'}]
    result = plan(inv, 'clinic-a', 'sensor', NEW, current=inherited)
    assert result['action'] == 'create' and result['relpath'] == 'host_vars/clinic-a/devices.yml'
    assert devices(result['after']) == [*inherited, NEW] and result['mode'] == '0640'
    assert result['patch'].startswith('--- /dev/null\n+++ b/host_vars/clinic-a/devices.yml\n')
    # Removing a device that the clinic does not have plans nothing.
    assert plan(inv, 'clinic-a', 'nope', None, current=inherited)['changed'] is False


def test_plan_appends_to_a_plain_host_vars_file(tmp_path):
    inv = inventory(tmp_path, {'host_vars/clinic-a': '# Clinic A\npacs_orthanc_name: Clinic A\n'})
    result = plan(inv, 'clinic-a', 'pano', None, current=[{'name': 'pano', 'aet': 'P', 'host': '192.0.2.1'}])
    assert result['action'] == 'append' and result['after'].startswith('# Clinic A\npacs_orthanc_name: Clinic A\n')
    assert yaml.safe_load(result['after']) == {'pacs_orthanc_name': 'Clinic A', 'pacs_devices': []}


VAULTED = '$ANSIBLE_VAULT;1.1;AES256\n6162636465\n'


def test_a_vaulted_file_that_sets_the_list_is_refused(tmp_path):
    inv = inventory(tmp_path, {'host_vars/clinic-a/vault.yml': VAULTED})
    before = (tmp_path / 'host_vars/clinic-a/vault.yml').read_text()
    with pytest.raises(InventoryEditError, match=r'vaulted file .*vault\.yml: vaulted files are never written'):
        plan(inv, 'clinic-a', 'sensor', NEW, current=[], load_vaulted=lambda _path: {'pacs_devices': []})
    assert (tmp_path / 'host_vars/clinic-a/vault.yml').read_text() == before


def test_a_vaulted_file_without_the_list_is_left_alone(tmp_path):
    inv = inventory(tmp_path, {'host_vars/clinic-a/vault.yml': VAULTED})
    result = plan(inv, 'clinic-a', 'sensor', NEW, current=[], load_vaulted=lambda _path: {'secret': 'x'})
    assert result['relpath'] == 'host_vars/clinic-a/devices.yml' and result['action'] == 'create'


def test_an_inline_vaulted_value_next_to_the_list_is_refused(tmp_path):
    text = CLINIC + 'pacs_api_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n'
    inv = inventory(tmp_path, {'host_vars/clinic-a.yml': text})
    with pytest.raises(InventoryEditError, match=r'inline vaulted value \(!vault\)'):
        plan(inv, 'clinic-a', 'sensor', NEW, current=[])


def test_the_list_in_two_files_is_refused(tmp_path):
    inv = inventory(tmp_path, {'host_vars/clinic-a/a.yml': CLINIC, 'host_vars/clinic-a/b.yml': CLINIC})
    with pytest.raises(InventoryEditError, match='set in more than one file'):
        plan(inv, 'clinic-a', 'sensor', NEW, current=[])


def test_no_inventory_directory_is_refused():
    with pytest.raises(InventoryEditError, match='is not a directory on the control node'):
        plan(None, 'clinic-a', 'sensor', NEW, current=[])


def test_the_result_is_parsed_again_and_a_wrong_edit_refused():
    """The safety net of the text edit: another variable changed, or the list not the expected one."""
    after = edit_block(CLINIC, 'sensor', NEW)
    check(CLINIC, after, devices(after), 'main.yml')  # the real edit passes
    with pytest.raises(InventoryEditError, match='would not give the expected result'):
        check(CLINIC, after.replace('backup_target: nas', 'backup_target: cloud'), devices(after), 'main.yml')
    with pytest.raises(InventoryEditError, match='would not give the expected result'):
        check(CLINIC, after, devices(after)[:2], 'main.yml')


def test_an_alias_broken_by_a_removal_is_refused():
    text = 'pacs_devices:\n  - &pano\n    name: pano\n    aet: PANO\n    host: 192.0.2.21\nspare: *pano\n'
    with pytest.raises(InventoryEditError, match='is not valid YAML'):
        edit_block(text, 'pano', None)
