# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.clinicpacs.orthanc.plugins.filter.device_options import (
    FilterModule,
    orthanc_modality_options,
)


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
        {'name': 'CBCT1', 'aet': 'CBCT1', 'host': '192.0.2.21', 'port': 104},
        {'name': 'PANO1', 'aet': 'PANO1', 'host': '192.0.2.22', 'allow_move': False},
    ]
    # The inventory's data is not modified.
    assert devices[0]['type'] == 'CBCT'


def test_unknown_keys_reach_the_module():
    misspelt = [{'name': 'A', 'aet': 'A', 'hots': 'x'}]
    assert orthanc_modality_options(misspelt) == misspelt


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
