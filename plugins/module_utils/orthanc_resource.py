# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compare-then-change helper shared by the clinicpacs.orthanc modules.

The pattern every module follows:

1. read the current objects once (``{name: object}``),
2. ``plan_changes(current, desired, exclusive)`` lists what differs (create / update / delete) and builds the
   ``diff`` (before/after, secrets masked),
3. ``OrthancModule.apply(plan, writer)`` calls ``writer(change)`` for every change unless in check mode,
4. ``OrthancModule.exit(...)`` returns ``changed``, ``diff``, the objects and ``orthanc_requests``.
"""

from __future__ import absolute_import, division, print_function

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import (
    OrthancError,
    client_from_module,
    orthanc_argument_spec,
)

MASK = '********'
MASK_CHANGED = '******** (changed)'


def mask_secrets(obj, secret_keys, changed_keys=()):
    """Return a deep copy of ``obj`` where every key of ``secret_keys`` that is present and not ``None`` is
    replaced by a mask; keys listed in ``changed_keys`` get a mask that says the secret changes."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    for key in secret_keys:
        if key in out and out[key] is not None:
            out[key] = MASK_CHANGED if key in changed_keys else MASK
    return out


def changed_fields(before, after, ignore=()):
    """Sorted list of keys whose values differ between two dicts (keys in ``ignore`` skipped)."""
    keys = set(before or {}) | set(after or {})
    return sorted(k for k in keys if k not in ignore and (before or {}).get(k) != (after or {}).get(k))


class Change(object):
    """One planned write: ``action`` is ``create``, ``update`` or ``delete``."""

    def __init__(self, action, name, before=None, after=None, fields=None):
        self.action = action
        self.name = name
        self.before = before
        self.after = after
        self.fields = fields or []

    def __repr__(self):
        return f'Change({self.action}, {self.name}, {self.fields})'


class Plan(object):
    """The result of ``plan_changes``: ``changes`` (list of Change) and ``diff`` (before/after dicts)."""

    def __init__(self, changes, diff):
        self.changes = changes
        self.diff = diff

    @property
    def changed(self):
        return bool(self.changes)


def plan_changes(current, desired, exclusive=False, secret_keys=(), force_secret=(), keep=None):
    """Compare ``current`` and ``desired`` (both ``{name: object}``) and return a ``Plan``.

    ``desired[name] = None`` means the object must be absent. With ``exclusive`` every current object not
    named in ``desired`` is deleted. ``secret_keys`` are never compared from ``current`` (they are not readable
    back) unless present there, and are masked in the diff. ``force_secret`` is a set of names whose secrets
    must be written even if everything else is equal (``update_password: always``). ``keep`` is an optional
    set of names ``exclusive`` must never delete.
    """
    changes = []
    before = {}
    after = {}
    for name in sorted(desired):
        want = desired[name]
        have = current.get(name)
        if want is None:
            if have is not None:
                changes.append(Change('delete', name, before=have))
                before[name] = mask_secrets(have, secret_keys)
            continue
        if have is None:
            changes.append(Change('create', name, after=want, fields=sorted(want)))
            after[name] = mask_secrets(want, secret_keys)
            continue
        readable = [k for k in secret_keys if have.get(k) is not None]
        ignore = [k for k in secret_keys if k not in readable]
        fields = changed_fields(have, want, ignore=ignore)
        secret_changed = [
            k
            for k in secret_keys
            if k in want
            and want[k] is not None
            and (name in force_secret or (k in readable and have.get(k) != want[k]))
        ]
        for k in secret_changed:
            if k not in fields:
                fields.append(k)
        if fields:
            changes.append(Change('update', name, before=have, after=want, fields=sorted(fields)))
            shown_before = {k: have.get(k) for k in set(have) | set(want) if k not in ignore}
            before[name] = mask_secrets(shown_before, secret_keys)
            shown_after = {
                k: v
                for k, v in want.items()
                if (v is not None or k in have) and (k not in ignore or k in secret_changed)
            }
            after[name] = mask_secrets(shown_after, secret_keys, changed_keys=secret_changed)
            for k in secret_changed:
                before[name].setdefault(k, MASK)
    if exclusive:
        for name in sorted(current):
            if name not in desired and not (keep and name in keep):
                changes.append(Change('delete', name, before=current[name]))
                before[name] = mask_secrets(current[name], secret_keys)
    return Plan(changes, {'before': before, 'after': after})


class OrthancModule(object):
    """An AnsibleModule with an Orthanc client, one error path and a uniform result.

    ``argument_spec`` holds the module's own options; the connection options are added here.
    """

    def __init__(self, argument_spec, connection=True, **kwargs):
        spec = dict(argument_spec)
        if connection:
            spec.update(orthanc_argument_spec())
        kwargs.setdefault('supports_check_mode', True)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.client = client_from_module(self.module) if connection else None
        self.warnings = []

    def fail(self, msg, **extra):
        """Fail with ``msg`` (one line), always reporting the requests already made."""
        extra.setdefault('changed', False)
        if self.client is not None:
            extra.setdefault('orthanc_requests', dict(self.client.requests))
        self.module.fail_json(msg=msg, **extra)

    def call(self, func, *args, **kwargs):
        """Run a client call and turn ``OrthancError`` into ``fail``."""
        try:
            return func(*args, **kwargs)
        except OrthancError as exc:
            self.fail(exc.msg, status=exc.status)

    def apply(self, plan, writer):
        """Run ``writer(change)`` for every planned change, never in check mode."""
        if self.check_mode:
            return
        for change in plan.changes:
            try:
                writer(change)
            except OrthancError as exc:
                done = plan.changes.index(change)
                self.fail(
                    f'{change.action} of {change.name} failed after {done} earlier change(s): {exc.msg}',
                    status=exc.status,
                )

    def warn(self, msg):
        self.warnings.append(msg)
        self.module.warn(msg)

    def exit(self, changed, diff=None, **result):
        """Exit with ``changed``, ``diff`` and ``orthanc_requests`` plus the module's own keys."""
        result['changed'] = bool(changed)
        if diff is not None:
            result['diff'] = diff
        if self.client is not None:
            result['orthanc_requests'] = dict(self.client.requests)
        self.module.exit_json(**result)
