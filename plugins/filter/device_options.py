# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter that turns a clinic's device descriptions into options of the orthanc_modalities module."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# Keys of a device in the inventory that describe it for people (connection sheets, reports) and that
# Orthanc does not store. Everything else is passed on, so a misspelt option still meets the module's check.
DESCRIPTIVE_KEYS = frozenset(('type', 'vendor', 'model', 'location', 'notes'))


def orthanc_modality_options(devices):
    """Return the devices without their descriptive keys (type, vendor, model, location, notes)."""
    if devices is None:
        return []
    if isinstance(devices, (str, bytes)) or not hasattr(devices, '__iter__'):
        raise AnsibleFilterError(f'orthanc_modality_options expects a list of devices, got {type(devices).__name__}')
    options = []
    for index, device in enumerate(devices):
        if not isinstance(device, Mapping):
            raise AnsibleFilterError(
                f'orthanc_modality_options: device #{index + 1} must be a mapping, got {type(device).__name__}'
            )
        options.append({key: value for key, value in device.items() if key not in DESCRIPTIVE_KEYS})
    return options


class FilterModule:
    """clinicpacs.orthanc filters."""

    def filters(self):
        return {'orthanc_modality_options': orthanc_modality_options}
