# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compare-then-change helper shared by the clinicpacs.orthanc modules.

The pattern every module follows:

1. read the current objects once (``{name: object}``),
2. ``plan_changes(current, desired, exclusive)`` lists what differs (create / update / delete) and builds the
   ``diff`` (before/after, secrets masked),
3. ``OrthancModule.apply(plan, writer)`` calls ``writer(change)`` for every change unless in check mode; a
   writer returns ``False`` when the object was already as wanted (a delete answered 404 because another run
   removed it first), and the change is then dropped from the plan (``plan.already``),
4. ``OrthancModule.exit(...)`` returns ``changed``, ``diff``, the objects and ``orthanc_requests``.
"""

from __future__ import absolute_import, division, print_function

import copy
from collections.abc import Mapping

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import (
    OrthancError,
    client_from_module,
    connection_errors,
    orthanc_argument_spec,
    url_password,
    url_query_secret,
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
    """The result of ``plan_changes``: ``changes`` (list of Change) and ``diff`` (before/after dicts).

    ``already`` lists the planned changes that turned out to be made already when they were written (another
    client got there between our read and our write); they are no longer in ``changes`` nor in ``diff``.
    """

    def __init__(self, changes, diff):
        self.changes = changes
        self.diff = diff
        self.already = []

    @property
    def changed(self):
        return bool(self.changes)

    def drop(self, change):
        """Take ``change`` out of the plan and its diff and record it in ``already``: not a change of this run."""
        self.changes.remove(change)
        for side in ('before', 'after'):
            self.diff[side].pop(change.name, None)
        self.already.append(change)


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


CONFIRM_REMOVE_ALL = 'confirm_remove_all'


def remove_all_refusal(params, option, what):
    """The one-line refusal of ``exclusive=true`` with no present item in the list option ``option``, or ``None``.

    Such a run removes every ``what`` known to Orthanc (an empty list, or only ``state: absent`` items). That is
    what an inventory variable left empty by mistake would do, so it needs ``confirm_remove_all=true``.
    """
    if not params.get('exclusive') or params.get(CONFIRM_REMOVE_ALL):
        return None
    if any(item.get('state', 'present') == 'present' for item in params.get(option) or []):
        return None
    return (
        f'exclusive=true with no present item in {option} would remove every {what} known to Orthanc; set '
        f'{CONFIRM_REMOVE_ALL}=true to confirm that this is wanted'
    )


def _secret_strings(value):
    """The strings to hide for one ``no_log`` value (what ansible-core registers for it)."""
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, (int, float)):
        return {str(value)}
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple, set)):
        out = set()
        for item in value:
            out |= _secret_strings(item)
        return out
    return set()


def no_log_values(argument_spec, params):
    """Every value of a ``no_log`` option in ``params``, also inside malformed list or dict options.

    ansible-core's own collection (``_list_no_log_values``) raises at the first list item that is neither a dict
    nor a ``k=v`` string (``modalities: pano``, ``peers: [{...}, 7]``) and then registers *no* value at all,
    so the failure it reports would show ``api_password`` in its ``invocation`` (visible with ``-vvv``). This
    walk skips what it cannot read instead.
    """
    found = set()
    if not isinstance(params, Mapping):
        return found
    for name, opts in argument_spec.items():
        value = params.get(name)
        if value is None:
            continue
        if opts.get('no_log'):
            found |= _secret_strings(value)
        sub_spec = opts.get('options')
        if sub_spec:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    try:
                        item = check_type_dict(item)
                    except TypeError:
                        continue
                found |= no_log_values(sub_spec, item)
    return found


class SecretKeepingModule(AnsibleModule):
    """An ``AnsibleModule`` whose failures never show a ``no_log`` value, even when the options are malformed."""

    def fail_json(self, msg, **kwargs):
        self.no_log_values.update(no_log_values(self.argument_spec, getattr(self, 'params', None)))
        super().fail_json(msg, **kwargs)


class OrthancModule(object):
    """An AnsibleModule with an Orthanc client, one error path and a uniform result.

    ``argument_spec`` holds the module's own options; the connection options are added here. They are checked
    (URL scheme and form, ``api_timeout``, ``api_retries``) before anything is sent; a password inside
    ``api_url`` is registered as a secret. The ``AnsibleModule`` is a ``SecretKeepingModule``, so a malformed
    list option cannot make ``api_password`` appear in the failure.
    """

    def __init__(self, argument_spec, connection=True, **kwargs):
        spec = dict(argument_spec)
        if connection:
            spec.update(orthanc_argument_spec())
        kwargs.setdefault('supports_check_mode', True)
        self.module = SecretKeepingModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.client = None
        self.warnings = []
        self.done = []
        if connection:
            self.hide_url_password(self.params.get('api_url'))
            errors = connection_errors(self.params)
            if errors:
                self.fail('; '.join(errors))
            self.client = client_from_module(self.module)

    def hide_url_password(self, url):
        """Register the password inside ``url`` (``scheme://user:password@host``) and its query or fragment (a
        refused URL that may carry a token), if any, as secrets."""
        for secret in (url_password(url), url_query_secret(url)):
            if secret:
                self.module.no_log_values.add(secret)

    def fail(self, msg, **extra):
        """Fail with ``msg`` (one line), always reporting the requests already made.

        After writes (``apply``), the result says ``changed: true`` and lists them in ``done``.
        """
        extra.setdefault('changed', bool(self.done))
        if self.done:
            extra.setdefault('done', [{'action': c.action, 'name': c.name, 'fields': c.fields} for c in self.done])
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
        """Run ``writer(change)`` for every planned change, never in check mode.

        A writer that returns ``False`` found the object already as wanted (a delete that Orthanc answers with
        404: another run removed it after our read, and absent is the goal). The change is then dropped from
        the plan (``plan.already``), so it is neither reported nor counted as made by this run.

        A failing write stops the run: the failure says ``changed: true`` when earlier writes were made and
        names them (``done`` in the result, and in the message).
        """
        if self.check_mode:
            return
        for change in list(plan.changes):
            try:
                if writer(change) is False:
                    plan.drop(change)
                    continue
            except OrthancError as exc:
                done = ', '.join(f'{c.action} {c.name}' for c in self.done)
                self.fail(
                    f'{change.action} of {change.name} failed after {len(self.done)} earlier change(s)'
                    + (f' ({done}, already made)' if done else '')
                    + f': {exc.msg}',
                    status=exc.status,
                )
            self.done.append(change)

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
