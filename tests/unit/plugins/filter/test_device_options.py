# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.clinicpacs.orthanc.plugins.filter.device_options import (
    LEAST_PRIVILEGE,
    FilterModule,
    dicom_address_error,
    orthanc_modality_options,
)
from ansible_collections.clinicpacs.orthanc.plugins.modules import orthanc_modalities

from ..orthanc_fake import FakeOrthanc, install, run_module

# What a device gets without allow_* options: echo and store, nothing else (transcoding is Orthanc's default).
DEFAULTS = {
    'allow_echo': True,
    'allow_store': True,
    'allow_find': False,
    'allow_find_worklist': False,
    'allow_get': False,
    'allow_move': False,
    'allow_n_action': False,
    'allow_event_report': False,
}


def test_descriptive_keys_are_dropped_and_options_kept_in_order():
    devices = [
        {
            'name': 'CBCT1',
            'aet': 'CBCT1',
            'host': '192.0.2.21',
            'port': 104,
            'type': 'CBCT',
            'vendor': 'Example Imaging',
            'model': 'X1',
            'location': 'room 1',
            'notes': 'serial 42',
        },
        {'name': 'PANO1', 'aet': 'PANO1', 'host': '192.0.2.22', 'allow_move': False},
    ]
    assert orthanc_modality_options(devices) == [
        {'name': 'CBCT1', 'aet': 'CBCT1', 'host': '192.0.2.21', 'port': 104, **DEFAULTS},
        {'name': 'PANO1', 'aet': 'PANO1', 'host': '192.0.2.22', **DEFAULTS, 'allow_move': False},
    ]
    # The inventory's data is not modified.
    assert devices[0]['type'] == 'CBCT'


def test_unknown_keys_reach_the_module():
    misspelt = [{'name': 'A', 'aet': 'A', 'hots': 'x'}]
    assert orthanc_modality_options(misspelt) == [{**misspelt[0], **DEFAULTS}]


def test_least_privilege_is_echo_and_store_only():
    assert LEAST_PRIVILEGE == DEFAULTS
    (device,) = orthanc_modality_options([{'name': 'CBCT', 'aet': 'CBCT', 'host': '192.0.2.5'}])
    granted = sorted(key for key, value in device.items() if key.startswith('allow_') and value)
    assert granted == ['allow_echo', 'allow_store']
    assert 'allow_transcoding' not in device  # not a right of the device: Orthanc's default stays


def test_rights_granted_in_the_inventory_are_kept():
    grants = {'allow_find': True, 'allow_move': True, 'allow_store': False, 'allow_transcoding': False}
    (device,) = orthanc_modality_options([{'name': 'WS', 'aet': 'WS', 'host': '192.0.2.6', **grants}])
    assert device == {'name': 'WS', 'aet': 'WS', 'host': '192.0.2.6', **DEFAULTS, **grants}


def test_absent_devices_get_no_rights():
    absent = [{'name': 'OLD', 'state': 'absent', 'type': 'CBCT'}]
    assert orthanc_modality_options(absent) == [{'name': 'OLD', 'state': 'absent'}]


def test_empty_and_none():
    assert orthanc_modality_options([]) == []
    assert orthanc_modality_options(None) == []


@pytest.mark.parametrize(
    'bad, message',
    [
        ('CBCT1', 'expects a list of devices, got str'),
        (42, 'expects a list of devices, got int'),
        ([{'name': 'A'}, 'B'], 'device #2 must be a mapping, got str'),
    ],
)
def test_bad_input_is_named(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        orthanc_modality_options(bad)


def test_registered_under_its_name():
    assert FilterModule().filters()['orthanc_modality_options'] is orthanc_modality_options
    assert FilterModule().filters()['dicom_address_error'] is dicom_address_error


@pytest.mark.parametrize(
    'address, kwargs',
    [
        ('10.214.0.10', {}),
        ('192.168.1.20', {'ansible_host': '192.168.1.20', 'connection': 'ssh'}),  # the LAN is how Ansible comes
        ('pacs.clinic-a.lan', {}),
        ('2001:db8::10', {}),
        ('10.214.0.10', {'ansible_host': 'clinicpacs-demo', 'connection': 'community.docker.docker'}),
    ],
)
def test_clinic_lan_addresses_are_accepted(address, kwargs):
    assert dicom_address_error(address, **kwargs) == ''


@pytest.mark.parametrize(
    'address, kwargs, reason',
    [
        ('', {}, 'is not set'),
        (None, {}, 'is not set'),
        ('127.0.0.1', {}, "'127.0.0.1' is a loopback address"),
        ('127.1.2.3', {}, 'is a loopback address'),
        ('::1', {}, 'is a loopback address'),
        ('localhost', {}, 'names the box itself'),
        ('pacs.localhost', {}, 'names the box itself'),
        ('0.0.0.0', {}, 'is the unspecified address'),  # noqa: S104 - the value under test
        ('224.0.0.5', {}, 'is a multicast address'),
        ('http://10.0.0.1/', {}, 'is not an IP address or a DNS name'),
        ('10.8.0.10', {'management': ['10.8.0.10']}, 'is listed in pacs_management_addresses'),
        ('box-a', {'ansible_host': 'box-a', 'connection': 'community.docker.docker'}, 'is ansible_host of a'),
    ],
)
def test_bad_addresses_are_refused_with_the_rule(address, kwargs, reason):
    message = dicom_address_error(address, **kwargs)
    assert reason in message
    assert 'the address of the box on the clinic network that devices send to' in message


def test_an_existing_device_with_every_right_is_drift_before_it_is_enforced(monkeypatch, capsys):
    """A clinic registered before least privilege: Orthanc's defaults (every Allow* true) against an inventory
    entry that grants nothing. The check-mode comparison (what drift.yml runs) reports the rights by name and
    writes nothing; granting them in the inventory keeps the device as it is."""
    fake = FakeOrthanc()
    install(monkeypatch, fake)
    fake.add_modality('cbct', AET='CBCT', Host='192.0.2.5', Port=104)  # Orthanc's defaults: all Allow* true
    entry = [{'name': 'cbct', 'aet': 'CBCT', 'host': '192.0.2.5', 'type': 'CBCT'}]
    args = {'api_url': 'http://127.0.0.1:8042', 'api_username': 'ansible', 'api_password': 'pw'}
    check = dict(args, modalities=orthanc_modality_options(entry), _ansible_check_mode=True)
    _failed, res = run_module(orthanc_modalities, check, capsys)
    assert res['changed'] is True
    assert sorted(res['updated']['cbct']) == [
        'AllowEventReport', 'AllowFind', 'AllowFindWorklist', 'AllowGet', 'AllowMove', 'AllowNAction'
    ]  # fmt: skip
    assert fake.modalities['cbct']['AllowFind'] is True
    assert [call for call in fake.calls if call[0] != 'GET'] == []
    # The way to keep the old rights: grant them in the inventory entry; then nothing is drift.
    keep = [{**entry[0], **dict.fromkeys(LEAST_PRIVILEGE, True)}]
    _failed, res = run_module(orthanc_modalities, dict(check, modalities=orthanc_modality_options(keep)), capsys)
    assert res['changed'] is False
