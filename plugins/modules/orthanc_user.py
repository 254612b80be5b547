#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_user
short_description: Manage Orthanc's HTTP users (RegisteredUsers) in a dedicated configuration file
version_added: 0.1.0
description:
  - Orthanc keeps its HTTP users only in its configuration (C(RegisteredUsers), passwords in clear) and reads
    every C(.json) file of its configuration directory. This module owns one dedicated file there (O(path))
    holding C(RegisteredUsers), and adds, changes or removes users in it.
  - Orthanc refuses to start when two files define the same key, so C(RegisteredUsers) must not appear in any
    other file of the directory, and this file must hold B(all) users, the automation account included.
  - The file is written atomically and with mode V(0600) unless O(mode) says otherwise; Orthanc must be able to
    read it (set O(owner) to the account Orthanc runs as).
  - A temporary file in the same directory gets the content, mode V(0600), then the final owner, group and mode,
    and only then is renamed to O(path); the file never appears with other permissions. An O(owner) or
    O(group) that does not exist on the host fails before anything is written.
  - Orthanc reads users only at start-up. The module returns RV(restart_required) so that a handler restarts
    Orthanc once, after all changes. A later task with O(verify_login=true) proves the users can log in.
  - Runs on the Orthanc host (it edits a local file); only O(verify_login) talks to the REST API.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: Reports what would change and whether a restart would be needed; writes nothing.
  diff_mode:
    support: full
    description: Shows user names before and after; passwords are shown masked, never in clear.
  idempotent:
    support: full
    description:
      - Passwords can be read back from the file, so they are compared and a second run changes nothing.
options:
  path:
    description:
      - The dedicated users file in Orthanc's configuration directory.
    type: path
    default: /etc/orthanc/users.json
  name:
    description:
      - One user to manage. Mutually exclusive with O(users).
    type: str
  password:
    description:
      - Password of O(name). Required to create a user. Never logged, never shown in a diff.
    type: str
  state:
    description:
      - V(present) adds or updates O(name), V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  users:
    description:
      - Several users in one task. Names must be unique. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name:
        description: User name (letters, digits, V(.), V(-), V(_), V(@)).
        type: str
        required: true
      password:
        description: Password of the user; required to create it.
        type: str
      state:
        description: V(present) or V(absent).
        type: str
        choices: [present, absent]
        default: present
  exclusive:
    description:
      - Remove every user of the file that is not listed (in O(users) or O(name)).
      - With no present user listed (an empty O(users), or only V(absent) users) this removes every user, and the
        module refuses unless O(confirm_remove_all=true).
    type: bool
    default: false
  confirm_remove_all:
    description:
      - Confirm that O(exclusive=true) with no present user is meant to remove every user of the file. Without it
        such a run fails before anything is read or written, so that a user list left empty by mistake cannot
        lock everyone out (with authentication on and no user, Orthanc 1.13 refuses to start).
      - Has no effect when O(exclusive=false) or when a present user is listed.
    type: bool
    default: false
    version_added: 0.1.0
  update_password:
    description:
      - V(always) sets the password of existing users when it differs from the file.
      - V(on_create) only sets passwords of new users and keeps existing ones.
    type: str
    choices: [always, on_create]
    default: always
  verify_login:
    description:
      - After a run that left the file unchanged, log in to Orthanc (O(api_url)) as every present user with a
        password (C(GET /system)) and fail when one is refused.
      - When the file changed in the same run, the check is skipped with a warning, because Orthanc only sees
        the users after a restart. Run it in a task after the restart handler
        (C(ansible.builtin.meta) C(flush_handlers)).
      - O(api_username) and O(api_password) are not used; each user logs in with its own password.
    type: bool
    default: false
  mode:
    description:
      - Permissions of the users file, as for M(ansible.builtin.file). Quote octal values (V('0640')).
      - The file holds passwords in clear, so the default is V('0600').
    type: raw
    default: '0600'
notes:
  - Passwords are stored in clear in the file because Orthanc needs them so; keep the file V(0600) and owned by
    the Orthanc account.
seealso:
  - module: clinicpacs.orthanc.orthanc_info
'''

EXAMPLES = r'''
- name: All HTTP users of the clinic PACS
  clinicpacs.orthanc.orthanc_user:
    path: /etc/orthanc/users.json
    owner: "4242"
    group: "4242"
    exclusive: true
    users:
      - name: ansible
        password: "{{ vault_orthanc_ansible_password }}"
      - name: reception
        password: "{{ vault_orthanc_reception_password }}"
  notify: Restart Orthanc

- name: Restart now if needed
  ansible.builtin.meta: flush_handlers

- name: The users can log in
  clinicpacs.orthanc.orthanc_user:
    path: /etc/orthanc/users.json
    owner: "4242"
    group: "4242"
    exclusive: true
    users:
      - name: ansible
        password: "{{ vault_orthanc_ansible_password }}"
      - name: reception
        password: "{{ vault_orthanc_reception_password }}"
    verify_login: true
    api_url: http://127.0.0.1:8042
'''

RETURN = r'''
users:
  description: Names of the users in the file after the run.
  returned: always
  type: list
  elements: str
  sample: [ansible, reception]
created:
  description: Users added.
  returned: always
  type: list
  elements: str
  sample: [reception]
updated:
  description: Users whose password changed.
  returned: always
  type: list
  elements: str
  sample: []
deleted:
  description: Users removed.
  returned: always
  type: list
  elements: str
  sample: [olduser]
restart_required:
  description: Whether the users changed and Orthanc must be restarted to see them.
  returned: always
  type: bool
  sample: true
verified:
  description: Users that logged in successfully during O(verify_login).
  returned: when O(verify_login=true)
  type: list
  elements: str
  sample: [ansible, reception]
path:
  description: The users file.
  returned: always
  type: str
  sample: /etc/orthanc/users.json
diff:
  description: Users before and after with masked passwords.
  returned: always
  type: dict
  sample:
    before: {RegisteredUsers: {ansible: '********'}}
    after: {RegisteredUsers: {ansible: '********', reception: '********'}}
orthanc_requests:
  description: HTTP requests sent to Orthanc by method (only O(verify_login) sends any).
  returned: always
  type: dict
  sample: {GET: 2}
'''

import contextlib  # noqa: E402
import grp  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.common.text.converters import to_native  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancClient, OrthancError  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import (  # noqa: E402
    MASK,
    MASK_CHANGED,
    OrthancModule,
    plan_changes,
)

KEY = 'RegisteredUsers'
USER_RE = re.compile(r'^[A-Za-z0-9._@-]{1,64}$')


def read_users_file(path):
    """Return (whole document, users dict); a missing file is empty."""
    if not os.path.exists(path):
        return {}, {}
    with open(path, 'rb') as handle:
        text = handle.read().decode('utf-8')
    if not text.strip():
        return {}, {}
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError('the top level is not a JSON object')
    users = doc.get(KEY) or {}
    if not isinstance(users, dict):
        raise ValueError(f'{KEY} is not a JSON object')
    return doc, users


def render(doc):
    return (json.dumps(doc, indent=2, sort_keys=True) + '\n').encode('utf-8')


def owner_errors(p):
    """Errors for an ``owner`` or ``group`` that does not exist on this host (checked before anything is written)."""
    errors = []
    for field, lookup in (('owner', pwd.getpwnam), ('group', grp.getgrnam)):
        value = p.get(field)
        if value is None or str(value).isdigit():
            continue
        try:
            lookup(value)
        except KeyError:
            kind = 'user' if field == 'owner' else 'group'
            errors.append(f"{field} '{value}' is not a {kind} on this host: give an existing name or a numeric id")
    return errors


def write_users_file(module, om, path, content):
    """Write ``content`` to ``path`` so that it never appears under its name with other permissions or owner.

    A temporary file in the same directory is created with mode 0600, filled, given the owner, group and mode of
    ``path`` (those of the replaced file unless the task sets them), then renamed over ``path``. On any
    failure the temporary file is removed and ``path`` stays as it was.
    """
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.orthanc-users-', suffix='.tmp', dir=directory)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.exists(path):
            old = os.stat(path)
            with contextlib.suppress(PermissionError):  # not root: the file stays ours, as atomic_move does
                os.chown(tmp, old.st_uid, old.st_gid)
        module.set_fs_attributes_if_different(module.load_file_common_arguments(om.params, path=tmp), False)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        om.fail(f'cannot write users file {path}: {to_native(exc)}')
    except BaseException:  # fail_json of set_fs_attributes_if_different exits: leave nothing behind
        _remove(tmp)
        raise


def _remove(tmp):
    if os.path.lexists(tmp):
        os.unlink(tmp)


def main():
    spec = {
        'path': {'type': 'path', 'default': '/etc/orthanc/users.json'},
        'name': {'type': 'str'},
        'password': {'type': 'str', 'no_log': True},
        'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
        'users': {
            'type': 'list',
            'elements': 'dict',
            'options': {
                'name': {'type': 'str', 'required': True},
                'password': {'type': 'str', 'no_log': True},
                'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
            },
        },
        'exclusive': {'type': 'bool', 'default': False},
        'confirm_remove_all': {'type': 'bool', 'default': False},
        'update_password': {'type': 'str', 'default': 'always', 'choices': ['always', 'on_create'], 'no_log': False},
        'verify_login': {'type': 'bool', 'default': False},
        'mode': {'type': 'raw', 'default': '0600'},
    }
    om = OrthancModule(
        spec, add_file_common_args=True, mutually_exclusive=[('name', 'users')], required_one_of=[('name', 'users')]
    )
    module = om.module
    p = om.params
    path = p['path']

    entries = (
        p['users'] if p['users'] is not None else [{'name': p['name'], 'password': p['password'], 'state': p['state']}]
    )
    label = 'users[%d].' if p['users'] is not None else ''
    errors = []
    seen = {}
    for index, entry in enumerate(entries):
        prefix = label % index if label else ''
        name = entry['name']
        if not USER_RE.match(name or ''):
            errors.append(f"{prefix}name '{name}' is invalid: use 1 to 64 letters, digits, '.', '-', '_' or '@'")
        if name in seen:
            errors.append(f"{prefix}name '{name}' is already used by users[{seen[name]}]: names must be unique")
        seen[name] = index
        if entry['state'] == 'present' and entry.get('password') is not None and entry['password'] == '':
            errors.append(f'{prefix}password of user {name} is empty: Orthanc needs a password')
    errors.extend(owner_errors(p))
    if errors:
        om.fail('; '.join(errors))
    if p['exclusive'] and not p['confirm_remove_all'] and not any(e['state'] == 'present' for e in entries):
        om.fail(
            f'exclusive=true with no present user would remove every user of {path} (with authentication on, '
            'Orthanc then has no user and 1.13 refuses to start); set confirm_remove_all=true to confirm that this '
            'is wanted'
        )

    try:
        doc, users = read_users_file(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        om.fail(f'cannot read users file {path}: {to_native(exc)}')

    current = {n: {'password': pw} for n, pw in users.items()}
    desired = {}
    for index, entry in enumerate(entries):
        name = entry['name']
        if entry['state'] == 'absent':
            desired[name] = None
            continue
        password = entry.get('password')
        if name in users and (password is None or p['update_password'] == 'on_create'):  # noqa: S105
            password = users[name]
        if password is None:
            om.fail("{}password is required to create user '{}'".format(label % index if label else '', name))
        desired[name] = {'password': password}

    plan = plan_changes(current, desired, exclusive=p['exclusive'], secret_keys=('password',))
    new_users = dict(users)
    for change in plan.changes:
        if change.action == 'delete':
            new_users.pop(change.name, None)
        else:
            new_users[change.name] = change.after['password']
    new_doc = dict(doc)
    new_doc[KEY] = new_users

    def masked(names, changed=()):
        return {KEY: {n: MASK_CHANGED if n in changed else MASK for n in sorted(names)}}

    updated = [c.name for c in plan.changes if c.action == 'update']
    diff = {'before': masked(users), 'after': masked(new_users, changed=updated)}
    content_changed = plan.changed or not os.path.exists(path)

    if content_changed and not module.check_mode:
        directory = os.path.dirname(path) or '.'
        if not os.path.isdir(directory):
            om.fail(f'the directory of path {path} does not exist: is this the Orthanc configuration directory?')
        write_users_file(module, om, path, render(new_doc))
    attrs_changed = False
    if os.path.exists(path):
        file_args = module.load_file_common_arguments(p)
        attrs_changed = module.set_fs_attributes_if_different(file_args, False)

    result = {
        'path': path,
        'users': sorted(new_users),
        'created': [c.name for c in plan.changes if c.action == 'create'],
        'updated': updated,
        'deleted': [c.name for c in plan.changes if c.action == 'delete'],
        'restart_required': bool(content_changed and plan.changed),
    }
    requests = {}
    if p['verify_login']:
        if result['restart_required']:
            om.warn(
                'verify_login skipped: the users changed in this run, restart Orthanc first and verify in a later task'
            )
            result['verified'] = []
        else:
            verified = []
            for name in sorted(new_users):
                client = OrthancClient(
                    url=p['api_url'],
                    username=name,
                    password=new_users[name],
                    validate_certs=p['validate_certs'],
                    ca_path=p['ca_path'],
                    timeout=p['api_timeout'],
                    retries=p['api_retries'],
                )
                try:
                    client.get('/system')
                except OrthancError as exc:
                    for method, count in client.requests.items():
                        requests[method] = requests.get(method, 0) + count
                    om.fail(
                        f"user '{name}' cannot log in to Orthanc: {exc.msg} (was Orthanc restarted after the "
                        'users file changed?)',
                        orthanc_requests=requests,
                        **result,
                    )
                for method, count in client.requests.items():
                    requests[method] = requests.get(method, 0) + count
                verified.append(name)
            result['verified'] = verified
    result['orthanc_requests'] = requests
    module.exit_json(changed=bool(content_changed or attrs_changed), diff=diff, **result)


if __name__ == '__main__':
    main()
