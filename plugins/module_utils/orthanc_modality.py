# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""DICOM modality (device) options, validation and conversion, shared by orthanc_modality and
orthanc_modalities."""

from __future__ import absolute_import, division, print_function

import ipaddress
import re

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OBJECTS, OrthancError

# Values Orthanc 1.12.7 accepts for Manufacturer (checked against the real server; StoreScp is refused).
MANUFACTURERS = ['Generic', 'GenericNoWildcardInDates', 'GenericNoUniversalWildcard', 'Vitrea', 'GE']
# RetrieveMethod (Orthanc 1.12.6 and later); older servers do not return it and it reads as SystemDefault.
RETRIEVE_METHODS = ['SystemDefault', 'C-MOVE', 'C-GET']

# option name -> Orthanc key, default (PUT /modalities/{name} replaces everything, so defaults are explicit)
ALLOW_FLAGS = [
    ('allow_echo', 'AllowEcho'),
    ('allow_find', 'AllowFind'),
    ('allow_find_worklist', 'AllowFindWorklist'),
    ('allow_get', 'AllowGet'),
    ('allow_move', 'AllowMove'),
    ('allow_store', 'AllowStore'),
    ('allow_n_action', 'AllowNAction'),
    ('allow_event_report', 'AllowEventReport'),
    ('allow_transcoding', 'AllowTranscoding'),
]

NAME_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
HOST_LABEL_RE = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')
# Orthanc reads Timeout as an unsigned 32-bit number (RemoteModalityParameters) and answers HTTP 500 for more;
# a DICOM timeout of more than an hour is taken for a mistake.
MAX_TIMEOUT = 3600
# Orthanc 1.12.7 answers HTTP 400 "A TCP port number must be in range [1..65534]" to Port 65535.
MAX_PORT = 65534


def modality_options():
    """Options describing one device (without ``state``)."""
    spec = {
        'name': {'type': 'str', 'required': True},
        'aet': {'type': 'str'},
        'host': {'type': 'str'},
        'port': {'type': 'int', 'default': 104},
        'manufacturer': {'type': 'str', 'default': 'Generic', 'choices': MANUFACTURERS},
        'use_dicom_tls': {'type': 'bool', 'default': False},
        'local_aet': {'type': 'str', 'default': ''},
        'timeout': {'type': 'int', 'default': 0},
        'retrieve_method': {'type': 'str', 'default': 'SystemDefault', 'choices': RETRIEVE_METHODS},
    }
    for option, _key in ALLOW_FLAGS:
        spec[option] = {'type': 'bool', 'default': True}
    return spec


def check_aet(value, field):
    """Return an error message for an invalid AE title, or None."""
    if value is None or value == '':
        return f'{field} is empty: an AE title needs 1 to 16 characters'
    if len(value) > 16:
        return f"{field} '{value}' is {len(value)} characters long: an AE title has at most 16 characters"
    for char in value:
        if char == '\\':
            return f"{field} '{value}' contains a backslash, which the DICOM AE character set forbids"
        if ord(char) < 0x20 or ord(char) > 0x7E:
            return (
                f"{field} {value!r} contains the character {char!r}: an AE title allows only printable ASCII "
                "(no control characters)"
            )
    if not value.strip(' '):
        return f"{field} '{value}' has only spaces: an AE title needs a visible character"
    return None


def check_host(host, field):
    """Return an error message when ``host`` is not an IP address or a DNS name (RFC 1123), or None."""
    if host is None or not host.strip():
        return f'{field} is empty: give the IP address or DNS name of the device'
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in host):
        return f'{field} {host!r} contains white space or a control character: give an IP address or a DNS name'
    if '://' in host or '/' in host or '@' in host:
        return f"{field} '{host}' looks like a URL: give only the IP address or DNS name of the device"
    if len(host) > 253:
        return f"{field} '{host[:40]}...' is {len(host)} characters long: a DNS name has at most 253 characters"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    labels = host[:-1].split('.') if host.endswith('.') else host.split('.')
    if all(label.isdigit() for label in labels):
        return f"{field} '{host}' is not a valid IPv4 address: four numbers 0-255 separated by '.'"
    for label in labels:
        if not HOST_LABEL_RE.match(label):
            return (
                f"{field} '{host}' is not an IP address or a DNS name: the label '{label}' must have 1 to 63 "
                "letters, digits or '-', and not start or end with '-' (RFC 1123)"
            )
    return None


def validate_modality(item, prefix=''):
    """List the validation errors of one device given as module options (``item``)."""
    errors = []
    name = item.get('name')
    if name is None or not NAME_RE.match(name):
        errors.append(f"{prefix}name '{name}' is invalid: use 1 to 64 letters, digits, '-' or '_'")
    if item.get('state', 'present') == 'absent':
        return errors
    msg = check_aet(item.get('aet'), prefix + 'aet')
    if msg:
        errors.append(msg)
    msg = check_host(item.get('host'), prefix + 'host')
    if msg:
        errors.append(msg)
    port = item.get('port')
    if isinstance(port, bool):
        errors.append(
            f'{prefix}port {port} is a boolean (YAML yes/no/true/false): Orthanc accepts an integer 1-{MAX_PORT}'
        )
    elif port is None or port < 1 or port > MAX_PORT:
        errors.append(f'{prefix}port {port} is out of range: Orthanc accepts a TCP port 1-{MAX_PORT}')
    if item.get('local_aet'):
        msg = check_aet(item['local_aet'], prefix + 'local_aet')
        if msg:
            errors.append(msg)
    timeout = item.get('timeout')
    if isinstance(timeout, bool):
        errors.append(
            f'{prefix}timeout {timeout} is a boolean (YAML yes/no/true/false): give 0 (Orthanc default) to '
            f'{MAX_TIMEOUT} seconds'
        )
    elif timeout is not None and not 0 <= timeout <= MAX_TIMEOUT:
        errors.append(f'{prefix}timeout {timeout} is out of range: give 0 (Orthanc default) to {MAX_TIMEOUT} seconds')
    manufacturer = item.get('manufacturer')
    if manufacturer is not None and manufacturer not in MANUFACTURERS:
        errors.append(
            "{}manufacturer '{}' is unknown: use one of {}".format(prefix, manufacturer, ', '.join(MANUFACTURERS))
        )
    return errors


def to_orthanc(item):
    """Complete Orthanc configuration (all 17 keys) of one device from module options."""
    body = {
        'AET': item['aet'],
        'Host': item['host'].strip(),
        'Port': item['port'],
        'Manufacturer': item.get('manufacturer') or 'Generic',
        'UseDicomTls': bool(item.get('use_dicom_tls')),
        'LocalAet': item.get('local_aet') or '',
        'Timeout': item.get('timeout') or 0,
        'RetrieveMethod': item.get('retrieve_method') or 'SystemDefault',
    }
    for option, key in ALLOW_FLAGS:
        value = item.get(option)
        body[key] = True if value is None else bool(value)
    return body


def normalize_current(config):
    """Orthanc's answer for one device, reduced to the 17 keys we manage (the short array form included)."""
    if isinstance(config, list):
        config = {
            'AET': config[0],
            'Host': config[1],
            'Port': config[2],
            'Manufacturer': config[3] if len(config) > 3 else 'Generic',
        }
    out = {
        'AET': config.get('AET'),
        'Host': config.get('Host'),
        'Port': int(config.get('Port')) if config.get('Port') is not None else None,
        'Manufacturer': config.get('Manufacturer', 'Generic'),
        'UseDicomTls': config.get('UseDicomTls', False),
        'LocalAet': config.get('LocalAet', ''),
        'Timeout': config.get('Timeout', 0),
        'RetrieveMethod': config.get('RetrieveMethod', 'SystemDefault'),
    }
    for _option, key in ALLOW_FLAGS:
        out[key] = config.get(key, True)
    return out


def read_modalities(client):
    """All devices known to Orthanc as ``{name: config}`` with one GET."""
    data = client.get('/modalities?expand', expect=(dict, list))
    if isinstance(data, list):  # very old Orthanc without ?expand support
        raise OrthancError('this Orthanc does not support GET /modalities?expand (Orthanc 1.5 or later needed)')
    data = client.require('GET', '/modalities?expand', data, OBJECTS)
    return {name: normalize_current(cfg) for name, cfg in data.items()}


def write_change(client, change):
    """Apply one Change from plan_changes to Orthanc; ``False`` when a delete found the device already gone."""
    path = '/modalities/' + client.quote(change.name)
    if change.action == 'delete':
        # Absent is the goal: a 404 means another run removed it after our read, not a failure. False tells
        # OrthancModule.apply that this run changed nothing.
        return client.delete(path, missing_ok=True)
    client.put(path, change.after)
    return True


def echo(client, name, config):
    """Run a C-ECHO from Orthanc to device ``name``; return None when it answered, else a one-line reason."""
    try:
        client.post(f'/modalities/{client.quote(name)}/echo', body={})
    except OrthancError as exc:
        return "C-ECHO from Orthanc to device '{}' (AET '{}' at {}:{}) failed: the device did not answer ({})".format(
            name, config.get('AET'), config.get('Host'), config.get('Port'), exc.msg
        )
    return None
