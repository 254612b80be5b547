# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Comparison, diff and health helpers of the fast drift check (module and action orthanc_drift_info,
callback drift_report). Pure functions on plain data: no I/O, so they are unit-tested directly.

A drift item is ``{'name': 'device:CBCT1', 'detail': 'Host: 10.214.0.99 → 10.214.0.20', 'changes': [...],
'diff': '<unified diff>' or None}``; ``changes`` lists ``{'field', 'before', 'after'}`` with secrets masked.
A health item is ``{'name': 'health:disk', 'severity': 'ok|warning|critical', 'value', 'detail'}``.
"""

from __future__ import absolute_import, division, print_function

import datetime
import difflib
import json
import re

MASK = '********'
SECRET_KEY = re.compile(r'pass(word)?|secret|token|private.?key|credential', re.IGNORECASE)
# A line of JSON, YAML, nginx or key=value text that sets a secret-looking key: the value is masked.
SECRET_LINE = re.compile(
    r'''^(?P<head>\s*["']?[\w.-]*(?:pass(?:word)?|secret|token|private.?key|credential)[\w.-]*["']?\s*[:= ]\s*)'''
    r'''(?P<value>.+?)(?P<tail>,?\s*)$''',
    re.IGNORECASE,
)
SEVERITIES = ('ok', 'warning', 'critical')


def mask_value(key, value):
    return MASK if SECRET_KEY.search(str(key)) and value not in (None, '') else value


def show(value):
    """A value as a person reads it in a change line: JSON spelling (true, null, "text" only when empty)."""
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, sort_keys=True)


def field_changes(before, after, secret_keys=()):
    """Field-level changes between two flat dicts, sorted by field; secret fields masked on both sides."""
    before = before or {}
    after = after or {}
    out = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in secret_keys or SECRET_KEY.search(str(key)):
            old = MASK if old not in (None, '') else old
            new = MASK if new not in (None, '') else new
        out.append({'field': key, 'before': old, 'after': new})
    return out


def format_changes(changes):
    """``Host: 10.214.0.99 → 10.214.0.20, AllowMove: true → false``."""
    return ', '.join('{}: {} \u2192 {}'.format(c['field'], show(c['before']), show(c['after'])) for c in changes)


def item(name, detail, changes=None, diff=None):
    return {'name': name, 'detail': detail, 'changes': changes or [], 'diff': diff}


def compare_objects(kind, current, desired, exclusive=True, secret_keys=(), unreadable=()):
    """Drift items of one object kind.

    ``current``: ``{name: public config}`` as read; ``desired``: ``{name: config or None (absent)}``;
    ``exclusive``: objects that exist but are not declared are drift; ``unreadable``: keys the server never
    returns (passwords), left out of the comparison."""
    items = []
    for name in sorted(desired):
        want = desired[name]
        have = current.get(name)
        if want is None:
            if have is not None:
                items.append(item(f'{kind}:{name}', 'declared absent but present: would be removed'))
            continue
        want = {k: v for k, v in want.items() if k not in unreadable}
        if have is None:
            changes = field_changes({}, want, secret_keys)
            items.append(item(f'{kind}:{name}', 'missing: would be created', changes))
            continue
        changes = field_changes(have, want, secret_keys)
        if changes:
            items.append(item(f'{kind}:{name}', format_changes(changes), changes))
    if exclusive:
        for name in sorted(set(current) - set(desired)):
            changes = field_changes(current[name], {}, secret_keys)
            items.append(item(f'{kind}:{name}', 'not in the inventory: would be removed', changes))
    return items


def compare_users(current, desired, exclusive):
    """Users of users.json (``{name: password}``) against ``[{name, password, state}]``; passwords never shown."""
    items = []
    declared = set()
    for entry in desired:
        name = entry['name']
        declared.add(name)
        present = entry.get('state', 'present') == 'present'
        if not present:
            if name in current:
                items.append(item(f'user:{name}', 'declared absent but present: would be removed'))
        elif name not in current:
            items.append(item(f'user:{name}', 'missing: would be created'))
        elif current[name] != entry.get('password'):
            changes = [{'field': 'password', 'before': MASK, 'after': MASK}]
            items.append(item(f'user:{name}', 'password differs (not shown)', changes))
    if exclusive:
        for name in sorted(set(current) - declared):
            items.append(item(f'user:{name}', 'not in the inventory: would be removed'))
    return items


def mask_text(text):
    """Text with the value of every secret-looking key masked, line by line."""
    out = []
    for line in text.splitlines(True):
        end = '\n' if line.endswith('\n') else ''
        match = SECRET_LINE.match(line.rstrip('\n'))
        if match and match.group('value').strip('"\' ;') not in ('', 'null'):
            quote = '"' if match.group('value').startswith('"') else ''
            line = match.group('head') + quote + MASK + quote + match.group('tail') + end
        out.append(line)
    return ''.join(out)


def unified_diff(name, current, expected, secret=False):
    """Unified diff from the box's file to the inventory's content, secrets masked; None when the file holds
    secrets as a whole (it is then named without content)."""
    if secret:
        return None
    lines = difflib.unified_diff(
        mask_text(current or '').splitlines(True),
        mask_text(expected or '').splitlines(True),
        fromfile=f'{name} (on the clinic)',
        tofile=f'{name} (inventory)',
    )
    text = ''.join(line if line.endswith('\n') else line + '\n\\ No newline at end of file\n' for line in lines)
    return text or None


def compare_file(spec, current):
    """Drift item of one configuration file, or None. ``current``: ``{exists, content, uid, gid, mode}`` as read
    (``content`` None when unreadable)."""
    name = spec['name']
    if not current.get('exists'):
        return item(f'config:{name}', 'missing: would be written')
    problems = []
    changes = []
    if current.get('content') != spec['content']:
        problems.append('content differs' + (' (not shown: it holds secrets)' if spec.get('secret') else ''))
    for field in ('uid', 'gid', 'mode'):
        want = spec.get(field)
        if want is not None and current.get(field) != want:
            changes.append({'field': field, 'before': current.get(field), 'after': want})
    if changes:
        problems.append(format_changes(changes))
    if not problems:
        return None
    diff = None
    if current.get('content') != spec['content']:
        diff = unified_diff(name, current.get('content'), spec['content'], spec.get('secret'))
    return item(f'config:{name}', '; '.join(problems), changes, diff)


def compare_containers(specs, found):
    """Items for containers missing, stopped or running another image. ``found``: ``{service: inspect or None}``."""
    items = []
    for spec in specs:
        service = spec['service']
        info = found.get(service)
        if not info:
            items.append(item(f'container:{service}', 'missing'))
            continue
        image = (info.get('Config') or {}).get('Image')
        if image != spec['image']:
            changes = [{'field': 'image', 'before': image, 'after': spec['image']}]
            items.append(item(f'image:{service}', format_changes(changes), changes))
        state = info.get('State') or {}
        if not state.get('Running'):
            items.append(item(f'container:{service}', 'not running ({})'.format(state.get('Status', 'unknown'))))
    return items


# ----- health -------------------------------------------------------------------------------------------------
def parse_time(value):
    """A UTC datetime from Orthanc's 20261202T031500, ISO 8601 or a POSIX timestamp; None when empty."""
    if value in (None, ''):
        return None
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)  # noqa: UP017 (Python 3.10 on the box)
    text = str(value).strip().replace('Z', '+00:00')
    for fmt in ('%Y%m%dT%H%M%S', '%Y%m%dT%H%M%S%z'):
        try:
            parsed = datetime.datetime.strptime(text, fmt)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)  # noqa: UP017 (Python 3.10 on the box)
        except ValueError:
            pass
    parsed = datetime.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)  # noqa: UP017 (Python 3.10 on the box)


def rank(value, warning, critical, higher_is_worse=True):
    """Severity of a value against its thresholds (None: that level is off)."""
    if value is None:
        return 'ok'
    if higher_is_worse:
        if critical is not None and value >= critical:
            return 'critical'
        if warning is not None and value >= warning:
            return 'warning'
        return 'ok'
    if critical is not None and value <= critical:
        return 'critical'
    if warning is not None and value <= warning:
        return 'warning'
    return 'ok'


def worst(severities):
    return max(severities, key=SEVERITIES.index, default='ok')


def version_tuple(text):
    return tuple(int(p) for p in re.findall(r'\d+', str(text or ''))[:3]) or (0,)


def age_text(seconds):
    """An age as the fleet report shows it: 40m, 5h (under two days), 3d; never for None."""
    if seconds is None:
        return 'never'
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f'{seconds // 60}m'
    if seconds < 172800:
        return f'{seconds // 3600}h'
    return f'{seconds // 86400}d'


def days(seconds):
    return round(seconds / 86400.0, 1)


def growth_per_day(history, used_now, now):
    """Bytes per day from the oldest kept sample to now; None without a usable sample (at least an hour old)."""
    best = None
    for sample in history or []:
        when = parse_time(sample.get('time'))
        if when is None or sample.get('disk_used') is None:
            continue
        age = (now - when).total_seconds()
        if age >= 3600 and (best is None or age > best[0]):
            best = (age, sample['disk_used'])
    if best is None:
        return None
    return (used_now - best[1]) / (best[0] / 86400.0)


def evaluate_health(raw, thresholds, history, now, minimum_version, allow_below_minimum=False):
    """Health items from the facts the module read and the thresholds of the inventory.

    ``history``: samples of earlier runs (oldest first) ``{time, disk_used, restarts, last_received}``."""
    t = thresholds
    items = []

    def add(name, severity, value, detail):
        items.append({'name': name, 'severity': severity, 'value': value, 'detail': detail})

    disk = raw.get('disk') or {}
    if disk.get('total'):
        used_pct = round(100.0 * disk['used'] / disk['total'], 1)
        sev = rank(used_pct, t['disk_used_warning_percent'], t['disk_used_critical_percent'])
        growth = growth_per_day(history, disk['used'], now)
        days_left = None
        if growth and growth > 0:
            days_left = round(disk['free'] / growth, 1)
        sev = worst([sev, rank(days_left, t['disk_days_left_warning'], t['disk_days_left_critical'], False)])
        left = 'days until full: {}'.format(days_left if days_left is not None else 'unknown (no growth measured yet)')
        add(
            'health:disk',
            sev,
            {'used_percent': used_pct, 'days_until_full': days_left, 'path': disk.get('path')},
            '{} {}% used, {:.1f} GiB free; {}'.format(disk.get('path'), used_pct, disk['free'] / 2.0**30, left),
        )
    elif disk.get('error'):
        add('health:disk', 'warning', None, disk['error'])

    last_seen = dict((history[-1].get('last_received') or {}) if history else {})
    for name, when in (raw.get('last_received') or {}).items():
        if when:
            last_seen[name] = when
    for name in raw.get('devices') or []:
        when = last_seen.get(name)
        if when is None:
            add(
                f'health:device:{name}',
                'warning' if t['device_silent_warning_days'] is not None else 'ok',
                None,
                'no study received yet',
            )
            continue
        silent = (now - parse_time(when)).total_seconds() / 86400.0
        sev = rank(silent, t['device_silent_warning_days'], t['device_silent_critical_days'])
        add(
            f'health:device:{name}',
            sev,
            {'last_received': when, 'silent_days': round(silent, 2)},
            f'last study received {when} ({days(silent * 86400)} days ago)',
        )

    for cert in raw.get('certificates') or []:
        if cert.get('error'):
            add('health:certificate:' + cert['path'], 'warning', None, cert['error'])
            continue
        left = (parse_time(cert['not_after']) - now).total_seconds() / 86400.0
        sev = rank(left, t['certificate_days_warning'], t['certificate_days_critical'], False)
        add(
            'health:certificate:' + cert['path'],
            sev,
            {'not_after': cert['not_after'], 'days_left': round(left, 1)},
            '{} expires {} ({} days left)'.format(cert['path'], cert['not_after'], round(left, 1)),
        )

    backup = raw.get('backup') or {}
    if backup.get('newest') is None:
        # A new clinic has no backup yet: a warning (the age thresholds apply once one exists).
        add(
            'health:backup',
            'warning' if t['backup_age_warning_hours'] is not None else 'ok',
            None,
            'no complete backup in {}'.format(backup.get('dir')),
        )
    else:
        hours = (now - parse_time(backup['newest'])).total_seconds() / 3600.0
        add(
            'health:backup',
            rank(hours, t['backup_age_warning_hours'], t['backup_age_critical_hours']),
            {'newest': backup['newest'], 'age_hours': round(hours, 3)},
            'newest backup {} ({} hours old)'.format(backup['newest'], round(hours, 1)),
        )

    version = raw.get('orthanc_version')
    if version:
        below = version_tuple(version) < version_tuple(minimum_version)
        sev = ('warning' if allow_below_minimum else 'critical') if below else 'ok'
        add(
            'health:orthanc_version',
            sev,
            version,
            'Orthanc {} (gate {}{})'.format(
                version,
                minimum_version,
                ', allowed below by pacs_orthanc_allow_below_minimum' if below and allow_below_minimum else '',
            ),
        )

    before = (history[-1].get('restarts') or {}) if history else {}
    for service, info in sorted((raw.get('containers') or {}).items()):
        count = info.get('restart_count') or 0
        new = max(0, count - before.get(service, count))
        sev = rank(new, t['container_restarts_warning'], t['container_restarts_critical'])
        if info.get('restarting'):
            sev = 'critical'
        add(
            f'health:container:{service}',
            sev,
            {'restart_count': count, 'restarts_since_last_report': new},
            '{} restarts since the last report{}'.format(new, ', restarting now' if info.get('restarting') else ''),
        )
    return items
