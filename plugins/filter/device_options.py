# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for a clinic's devices: inventory entries as orthanc_modalities options (least privilege), and the
check of the box's DICOM address that devices send to."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# Keys of a device in the inventory that describe it for people (connection sheets, reports) and that
# Orthanc does not store. Everything else is passed on, so a misspelt option still meets the module's check.
DESCRIPTIVE_KEYS = frozenset(('type', 'vendor', 'model', 'location', 'notes'))

# Least privilege: a device whose inventory entry does not grant a right gets these. Acquisition devices only
# need to be verified (C-ECHO) and to send (C-STORE); query, retrieve, worklist and storage commitment are
# granted per device (allow_find: true, ...). Transcoding is not a right of the device (it lets Orthanc
# convert what it sends to the device) and keeps Orthanc's default.
LEAST_PRIVILEGE = {
    'allow_echo': True,
    'allow_store': True,
    'allow_find': False,
    'allow_find_worklist': False,
    'allow_get': False,
    'allow_move': False,
    'allow_n_action': False,
    'allow_event_report': False,
}


def orthanc_modality_options(devices):
    """Return the devices without their descriptive keys, with every right the entry does not grant set to
    the least-privilege default (echo and store only). Entries with ``state: absent`` only lose their
    descriptive keys."""
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
        item = {key: value for key, value in device.items() if key not in DESCRIPTIVE_KEYS}
        if item.get('state', 'present') != 'absent':
            for option, default in LEAST_PRIVILEGE.items():
                item.setdefault(option, default)
        options.append(item)
    return options


# Names that always mean the box itself, never an address a device on the clinic network can reach.
LOOPBACK_NAMES = ('localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback')
# Connections whose ansible_host is a container name or the control node itself, never a clinic-LAN address.
LOCAL_CONNECTIONS = ('community.docker.docker', 'docker', 'community.docker.nsenter', 'local', 'ansible.builtin.local')


def dicom_address_error(address, ansible_host=None, connection=None, management=None):
    """Return why ``address`` cannot be the box's DICOM address for devices, or '' when it can.

    The rule: an IP address or DNS name on the clinic network that devices reach; never loopback, an
    unspecified or multicast address, never an address listed in ``management`` (pacs_management_addresses:
    VPN, jump host), and never ansible_host when Ansible reaches the box through a Docker or local connection
    (a container name, not an address on the clinic network).
    """
    rule = (
        'pacs_dicom_address must be the address of the box on the clinic network that devices send to (an IP '
        'address or DNS name; not loopback, not 0.0.0.0/::, not multicast, not a management address)'
    )
    if address is None or not str(address).strip():
        return f'pacs_dicom_address is not set: {rule}.'
    address = str(address).strip()
    if any(c.isspace() or c in '/@' for c in address) or '://' in address:
        return f"pacs_dicom_address '{address}' is not an IP address or a DNS name: {rule}."
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback:
            return f"pacs_dicom_address '{address}' is a loopback address: {rule}."
        if ip.is_unspecified:
            return f"pacs_dicom_address '{address}' is the unspecified address: {rule}."
        if ip.is_multicast:
            return f"pacs_dicom_address '{address}' is a multicast address: {rule}."
    else:
        name = address.rstrip('.').lower()
        if name in LOOPBACK_NAMES or name.endswith('.localhost'):
            return f"pacs_dicom_address '{address}' names the box itself (loopback): {rule}."
    listed = [str(item).strip() for item in (management or [])]
    if address in listed:
        return f"pacs_dicom_address '{address}' is listed in pacs_management_addresses: {rule}."
    if connection and str(connection) in LOCAL_CONNECTIONS and ansible_host and address == str(ansible_host):
        return (
            f"pacs_dicom_address '{address}' is ansible_host of a {connection} connection (a management path, "
            f'not the clinic network): {rule}.'
        )
    return ''


class FilterModule:
    """clinicpacs.orthanc filters."""

    def filters(self):
        return {
            'orthanc_modality_options': orthanc_modality_options,
            'dicom_address_error': dicom_address_error,
        }
