# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Orthanc peer options, validation and conversion, shared by orthanc_peer and orthanc_peers."""

from __future__ import absolute_import, division, print_function

import re

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OBJECTS, check_http_url
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import plan_changes

NAME_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
# Orthanc reads a peer's Timeout as an unsigned 32-bit number (WebServiceParameters); more than an hour is
# taken for a mistake.
MAX_TIMEOUT = 3600
# Keys Orthanc never returns: not comparable, masked in diffs, left out of results.
SECRETS = ('Password', 'CertificateKeyFile', 'CertificateKeyPassword')
SECRET_OPTIONS = (
    ('Password', 'password'),
    ('CertificateKeyFile', 'certificate_key_file'),
    ('CertificateKeyPassword', 'certificate_key_password'),
)


def peer_options():
    """Options describing one peer (``name`` and ``state`` included, no connection options)."""
    return {
        'name': {'type': 'str', 'required': True},
        'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
        'url': {'type': 'str'},
        'username': {'type': 'str'},
        'password': {'type': 'str', 'no_log': True},
        'update_password': {'type': 'str', 'default': 'on_create', 'choices': ['always', 'on_create'], 'no_log': False},
        'certificate_file': {'type': 'str'},
        'certificate_key_file': {'type': 'str', 'no_log': False},
        'certificate_key_password': {'type': 'str', 'no_log': True},
        'pkcs11': {'type': 'bool', 'default': False},
        'timeout': {'type': 'int'},
    }


def normalize_url(url):
    return url if url.endswith('/') else url + '/'


def normalize_current(cfg):
    """Public fields of one peer as Orthanc returns them, in the form we compare."""
    if isinstance(cfg, list):  # simple format: [url, username, password]
        cfg = {'Url': cfg[0], 'Username': cfg[1] if len(cfg) > 1 else None}
    out = {
        'Url': normalize_url(cfg.get('Url') or cfg.get('URL') or ''),
        'Pkcs11': bool(cfg.get('Pkcs11', False)),
        'HttpHeaders': sorted(cfg.get('HttpHeaders') or []),
    }
    if cfg.get('Username'):
        out['Username'] = cfg['Username']
    if cfg.get('CertificateFile'):
        out['CertificateFile'] = cfg['CertificateFile']
    if cfg.get('Timeout') not in (None, '', 0, '0'):  # 0 = Orthanc's HttpTimeout, same as unset
        out['Timeout'] = int(cfg['Timeout'])
    return out


def desired_peer(p):
    """Public fields of one peer from module options, in the form we compare."""
    want = {'Url': normalize_url(p['url']), 'Pkcs11': bool(p.get('pkcs11')), 'HttpHeaders': []}
    if p.get('username'):
        want['Username'] = p['username']
    if p.get('certificate_file'):
        want['CertificateFile'] = p['certificate_file']
    if p.get('timeout'):
        want['Timeout'] = p['timeout']
    return want


def desired_with_secrets(p):
    """``desired_peer`` plus the secrets that are set: what a write sends."""
    want = desired_peer(p)
    for key, option in SECRET_OPTIONS:
        if p.get(option):
            want[key] = p[option]
    return want


def public(cfg):
    """A peer configuration without its secrets."""
    return {k: v for k, v in (cfg or {}).items() if k not in SECRETS}


def forces_password(p):
    """True when the password of this peer is sent on every run (``update_password: always``)."""
    return p.get('update_password') == 'always' and bool(p.get('password'))


def validate(p, prefix=''):
    """List the validation errors of one peer given as module options; ``prefix`` names the item."""
    errors = []
    name = p.get('name')
    if not NAME_RE.match(name or ''):
        errors.append(f"{prefix}name '{name}' is invalid: use 1 to 64 letters, digits, '-' or '_'")
    if p.get('state', 'present') == 'absent':
        return errors
    url = p.get('url')
    if url is None:
        errors.append(f'{prefix}url is required for a present peer')
    else:
        msg = check_http_url(url, prefix + 'url', f'{prefix}username and {prefix}password')
        if msg:
            errors.append(msg)
    username = p.get('username')
    password = p.get('password')
    if username:  # an empty username means no authentication, as when it is left out
        msg = check_username(username, prefix + 'username')
        if msg:
            errors.append(msg)
        elif password == '':
            errors.append(
                f"{prefix}password is empty for username '{username}': give the password Orthanc sends to the peer "
                '(an empty one would be dropped and the peer stored without it)'
            )
    if password and not username:
        errors.append(f'{prefix}password is set but username is empty: Orthanc needs a username with a password')
    if p.get('certificate_file') and not p.get('certificate_key_password'):
        errors.append(
            f'{prefix}certificate_key_password is required with certificate_file (Orthanc refuses a client '
            'certificate without it)'
        )
    timeout = p.get('timeout')
    if timeout is not None and (isinstance(timeout, bool) or not 0 <= timeout <= MAX_TIMEOUT):
        errors.append(f'{prefix}timeout {timeout} is out of range: give 0 (Orthanc default) to {MAX_TIMEOUT} seconds')
    return errors


def check_username(value, field):
    """Error message for a user name Orthanc sends with HTTP basic authentication, or None.

    RFC 7617: the user name may not contain ':' (it separates it from the password) nor control characters."""
    for char in value:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f'{field} {value!r} contains the control character {char!r}: a user name may not contain one'
    if ':' in value:
        return f"{field} {value!r} contains ':': HTTP basic authentication cannot carry it in a user name"
    if value != value.strip():
        return f'{field} {value!r} starts or ends with white space'
    return None


def missing_password(p, change):
    """Error message when ``change`` would rewrite a peer with a username but no password, else None.

    Orthanc replaces the whole peer on PUT and cannot return the stored password, so such a write would
    erase it."""
    if change is None or change.action != 'update' or not p.get('username') or p.get('password'):
        return None
    return (
        "password is required to change peer '{}' (fields {}): Orthanc replaces the whole peer and "
        'cannot return the stored password'.format(change.name, ', '.join(change.fields))
    )


def read_peers(client):
    """All peers known to Orthanc as ``{name: public config}`` with one GET."""
    raw = client.get('/peers?expand', expect=OBJECTS)
    return {name: normalize_current(cfg) for name, cfg in raw.items()}


def write_change(client, change):
    """Apply one Change from plan_changes to Orthanc (the complete peer on PUT); ``False`` when a delete found the
    peer already gone."""
    path = '/peers/' + client.quote(change.name)
    if change.action == 'delete':
        # Absent is the goal: a 404 means another run removed it after our read, not a failure. False tells
        # OrthancModule.apply that this run changed nothing.
        return client.delete(path, missing_ok=True)
    client.put(path, {k: v for k, v in change.after.items() if k != 'HttpHeaders' and v is not None})
    return True


def converge(om, items, exclusive=False):
    """Make Orthanc's peers match ``items`` (``{name: validated options}``) for an ``OrthancModule``.

    Reads all peers with one GET, plans the changes, refuses (before any write) a rewrite that would erase a
    stored password, then writes unless in check mode. Returns ``(plan, desired)``; ``desired`` holds the
    configuration to send per name (``None`` for an absent peer)."""
    desired = {n: desired_with_secrets(e) if e['state'] == 'present' else None for n, e in items.items()}
    force = {n for n, e in items.items() if e['state'] == 'present' and forces_password(e)}
    current = om.call(read_peers, om.client)
    plan = plan_changes(current, desired, exclusive=exclusive, secret_keys=SECRETS, force_secret=force)
    refused = [missing_password(items[c.name], c) for c in plan.changes if c.name in items]
    refused = [msg for msg in refused if msg]
    if refused:
        om.fail('; '.join(refused))
    om.apply(plan, lambda change: write_change(om.client, change))
    return plan, desired
