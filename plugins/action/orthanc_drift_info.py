# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action of clinicpacs.orthanc.orthanc_drift_info: everything drift compares, in one module run per clinic.

On the control node it renders the files the clinic should hold (the pacs role's templates and variables), runs
the module once on the box, turns the raw health facts into items with the inventory's thresholds and keeps a
small history per clinic (disk growth, restarts, last study per device) and the image facts per image ID under
``state_dir``. The image facts (Orthanc binary and plugin paths, which orthanc.json names) are read from the image
only when its ID is new; the module then runs a second time with them. Nothing is written to the clinic, and in
check mode nothing is written on the control node either.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.clinicpacs.orthanc.plugins.filter.orthanc_image import orthanc_image_facts
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_drift import (
    SEVERITIES,
    age_text,
    evaluate_health,
)

try:  # ansible-core 2.19 templates only trusted strings
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core

    def trust_as_template(value):
        return value


try:
    from ansible.template import generate_ansible_template_vars
except ImportError:  # pragma: no cover
    generate_ansible_template_vars = None

MODULE = 'clinicpacs.orthanc.orthanc_drift_info'
ACTION_ONLY = (
    'files', 'thresholds', 'minimum_version', 'allow_below_minimum', 'state_dir', 'history_keep',
    'image_facts_plugins', 'image_facts_script_file', 'enforce',
)  # fmt: skip
THRESHOLDS = {
    'disk_used_warning_percent': 80,
    'disk_used_critical_percent': 90,
    'disk_days_left_warning': 30,
    'disk_days_left_critical': 7,
    'device_silent_warning_days': 7,
    'device_silent_critical_days': None,
    'certificate_days_warning': 30,
    'certificate_days_critical': 7,
    'backup_age_warning_hours': 26,
    'backup_age_critical_hours': 72,
    'container_restarts_warning': 1,
    'container_restarts_critical': 5,
}


def check_thresholds(given):
    """The thresholds with defaults filled in; names the unknown key or the bad value."""
    out = dict(THRESHOLDS)
    for key, value in (given or {}).items():
        if key not in THRESHOLDS:
            raise AnsibleActionFail(f"thresholds: unknown key '{key}' (known: {', '.join(sorted(THRESHOLDS))})")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise AnsibleActionFail(f"thresholds: {key} is {value!r}: give a number of 0 or more, or null (off)")
        out[key] = value
    return out


def now_utc():
    return datetime.datetime.now(datetime.UTC)


class StateDir:
    """History and image facts on the control node: small JSON files, written atomically, mode 0600."""

    def __init__(self, path):
        self.path = os.path.expanduser(path)

    def _file(self, *parts):
        return os.path.join(self.path, *parts)

    def read(self, *parts, default=None):
        try:
            with open(self._file(*parts), encoding='utf-8') as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return default

    def write(self, data, *parts):
        path = self._file(*parts)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.tmp-')
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def _render(self, specs, task_vars, image_facts):
        """The files' expected content, rendered with the role's templates and variables and the image facts."""
        variables = dict(task_vars)
        if image_facts:
            variables['_pacs_orthanc_image_facts'] = image_facts
        out = []
        for spec in specs:
            spec = dict(spec)
            if 'template' in spec:
                source = self._find_needle('templates', spec.pop('template'))
                with open(source, encoding='utf-8') as handle:
                    text = handle.read()
                if generate_ansible_template_vars is not None:
                    variables.update(generate_ansible_template_vars(spec['path'], source, spec['path']))
            elif 'var' in spec:
                var = spec.pop('var')
                text = (
                    '{{ ' + var + ' | to_nice_json(indent=2) }}\n'
                    if spec.pop('format', 'raw') == 'json'
                    else '{{ ' + var + ' }}'
                )
            else:
                raise AnsibleActionFail(f"files: '{spec.get('name')}' needs template or var")
            templar = self._templar.copy_with_new_env(available_variables=variables)
            spec['content'] = str(templar.template(trust_as_template(text)))
            out.append(spec)
        return out

    def _gather(self, module_args, files, task_vars, image_facts, script=None):
        args = dict(module_args, files=self._render(files, task_vars, image_facts))
        if script is not None:
            args['image_facts_script'] = script
        result = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        if result.get('failed'):
            raise AnsibleActionFail(result.get('msg', 'orthanc_drift_info failed'), result=result)
        return result

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        host = task_vars.get('inventory_hostname', 'localhost')
        thresholds = check_thresholds(args.get('thresholds'))
        state = StateDir(args.get('state_dir') or '~/.clinicpacs/state')
        keep = int(args.get('history_keep') or 60)
        files = args.get('files') or []
        module_args = {k: v for k, v in args.items() if k not in ACTION_ONLY}
        module_args['image_facts_args'] = args.get('image_facts_plugins') or []
        known = state.read('hosts', f'{host}.json', default={}) or {}
        history = known.get('history') or []
        module_args['changes_since'] = (history[-1].get('last_change') or 0) if history else 0
        script_file = args.get('image_facts_script_file')
        writes = not self._task.check_mode

        image_id = known.get('orthanc_image_id')
        image_facts = state.read('image-facts', f'{image_id.split(":")[-1]}.json') if image_id else None
        passes = 0
        gathered = None
        wants_facts = bool(module_args.get('orthanc_image'))
        if image_facts is not None or not wants_facts:
            gathered = self._gather(module_args, files, task_vars, image_facts)
            passes += 1
        if wants_facts and (gathered is None or gathered.get('orthanc_image_id') != image_id):
            # New clinic or new image: read the image's facts once (a throw-away container), then compare again.
            script = None
            if script_file:
                with open(self._find_needle('files', script_file), encoding='utf-8') as handle:
                    script = handle.read()
            probe = self._gather(module_args, [], task_vars, None, script)
            image_id = probe.get('orthanc_image_id')
            output = probe.get('image_facts_output')
            image_facts = orthanc_image_facts(output) if output else None
            if image_facts and writes:
                state.write(image_facts, 'image-facts', f'{image_id.split(":")[-1]}.json')
            gathered = self._gather(module_args, files, task_vars, image_facts)
            passes += 2

        now = now_utc()
        health = gathered['health']
        items = evaluate_health(
            health, thresholds, history, now, args.get('minimum_version') or '0.0.0',
            bool(args.get('allow_below_minimum')),
        )  # fmt: skip
        if writes:
            sample = {
                'time': now.strftime('%Y-%m-%dT%H:%M:%SZ'),
                'disk_used': (health.get('disk') or {}).get('used'),
                'last_change': gathered.get('last_change'),
                'restarts': {s: c.get('restart_count', 0) for s, c in (health.get('containers') or {}).items()},
                'last_received': dict(
                    (history[-1].get('last_received') or {}) if history else {}, **health['last_received']
                ),
            }
            state.write({'orthanc_image_id': image_id, 'history': [*history, sample][-keep:]}, 'hosts', f'{host}.json')
        counts = {s: sum(1 for i in items if i['severity'] == s) for s in SEVERITIES}
        status = 'critical' if counts['critical'] else 'warning' if counts['warning'] else 'ok'
        backup = next((i for i in items if i['name'] == 'health:backup'), {})
        result.update(
            changed=bool(gathered['items']),
            clinicpacs_drift_items=gathered['items'],
            clinicpacs_health_items=items,
            health_status=status,
            health_counts=counts,
            orthanc_image_id=image_id,
            rest_reads=gathered.get('rest_reads'),
            orthanc_requests=gathered.get('orthanc_requests'),
            docker_requests=gathered.get('docker_requests'),
            module_runs=passes,
            ansible_facts={
                'clinicpacs_drifted': bool(gathered['items']),
                'clinicpacs_health_status': status,
                'clinicpacs_report': {
                    'orthanc_version': health.get('orthanc_version'),
                    'devices': len(health.get('devices') or []),
                    'peers': gathered.get('peer_count'),
                    'users': gathered.get('user_count'),
                    'last_backup_age': age_text(
                        None if not backup.get('value') else backup['value']['age_hours'] * 3600
                    ),
                    'health': status,
                    'enforced': bool(args.get('enforce')),
                },
            },
        )
        return result
