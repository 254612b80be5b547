# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
name: drift_report
type: aggregate
version_added: 0.1.0
short_description: Write JSON, JUnit XML and HTML fleet reports of a drift run
description:
  - Collects, per host, every drift item of the run, the hosts that were unreachable or failed, and the
    facts a play sets in C(clinicpacs_report) (Orthanc version, device and user counts, last backup age).
  - A drift item is a C(changed) result of a task tagged C(drift) (the checks of C(clinicpacs.orthanc.drift),
    which run in check mode), or of any task when the whole run is in check mode (C(--check)).
    Changed results of other tasks (the corrections of C(-e enforce=true)) are only counted.
  - Items are named after what drifted, derived from the module results, for example C(device:CBCT1) and
    C(user:reception) (M(clinicpacs.orthanc.orthanc_modalities), M(clinicpacs.orthanc.orthanc_user)),
    C(peer:central) (M(clinicpacs.orthanc.orthanc_peer)), C(config:orthanc.json) (file modules), or the
    C(clinicpacs_drift_items) list that a C(ansible.builtin.debug) task shows.
  - Results of C(no_log) tasks are never read beyond C(changed) (Ansible hides their loop labels too, so such an
    item is named after the task); values of keys that look like secrets (password, secret, token, private
    key) are masked in every diff that is kept. A check whose result must stay hidden can be tagged
    C(drift_probe) (ignored here) and summarised, without its secrets, by a C(debug) task tagged C(drift).
  - The failure of a task tagged C(drift_gate) (the deliberate non-zero exit of a drifted run) is not
    reported as a failed host.
  - At the end of the playbook it writes C(drift-<UTC timestamp>.json), C(.xml) (JUnit, one test case per
    clinic and drift item) and C(.html) (a static page, every shown value HTML-escaped, no JavaScript,
    a restrictive Content-Security-Policy) into O(report_dir), copies them to C(drift-latest.*), and
    removes the oldest reports beyond O(keep).
requirements:
  - Jinja2 (a dependency of ansible-core)
options:
  report_dir:
    description: Directory on the control node that receives the reports (created with mode C(0750)).
    type: path
    default: ~/.clinicpacs/reports
    env:
      - name: CLINICPACS_REPORT_DIR
    ini:
      - section: clinicpacs_drift_report
        key: report_dir
  keep:
    description: Number of reports (sets of JSON, XML and HTML) to keep; older ones are removed. V(0) keeps all.
    type: int
    default: 30
    env:
      - name: CLINICPACS_REPORT_KEEP
    ini:
      - section: clinicpacs_drift_report
        key: keep
  title:
    description: Title of the HTML page and name of the JUnit test suite.
    type: str
    default: Clinic PACS fleet drift
    env:
      - name: CLINICPACS_REPORT_TITLE
    ini:
      - section: clinicpacs_drift_report
        key: title
'''

import datetime  # noqa: E402
import html  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

from ansible import context  # noqa: E402
from ansible.plugins.callback import CallbackBase  # noqa: E402

try:
    from jinja2 import Environment
except ImportError:  # pragma: no cover - Jinja2 ships with ansible-core
    Environment = None

MASK = '********'
SECRET_KEY = re.compile(r'pass(word)?|secret|token|private.?key|credential', re.IGNORECASE)
DRIFT_TAG = 'drift'
GATE_TAG = 'drift_gate'
PROBE_TAG = 'drift_probe'
REPORT_FACT = 'clinicpacs_report'
ITEMS_KEY = 'clinicpacs_drift_items'
HEALTH_KEY = 'clinicpacs_health_items'
SEVERITIES = ('ok', 'warning', 'critical')
PREFIX = 'drift-'
EXTENSIONS = ('json', 'xml', 'html')
CSP = "default-src 'none'; style-src 'unsafe-inline'"

HTML_TEMPLATE = '''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="referrer" content="no-referrer">
<title>{{ title }} {{ report.generated }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #eee; }
.ok { background: #e6f4e6; } .drifted, .warning { background: #fff3d6; }
.failed, .unreachable, .critical { background: #fbe0e0; }
.sev { font-weight: bold; text-transform: uppercase; }
code, pre { font-family: monospace; white-space: pre-wrap; word-break: break-all; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p id="summary">Generated {{ report.generated }} by <code>{{ report.playbook }}</code>:
{{ report.summary.clinics }} clinics, {{ report.summary.drifted }} drifted,
{{ report.summary.failed }} failed, {{ report.summary.unreachable }} unreachable,
{{ report.summary["items"] }} drift items;
health: {{ report.summary.health_critical }} critical, {{ report.summary.health_warning }} warning.</p>
<table id="fleet">
<thead><tr><th>Clinic</th><th>Status</th><th>Reachable</th><th>Orthanc version</th><th>Devices</th>
<th>Users</th><th>Drift items</th><th>Health</th><th>Last backup age</th></tr></thead>
<tbody>
{% for name, host in report.hosts | dictsort %}
<tr class="{{ host.status }}" id="clinic-{{ loop.index }}">
<td class="clinic">{{ name }}</td>
<td>{{ host.status }}</td>
<td>{{ 'yes' if host.reachable else 'no' }}</td>
<td>{{ host.facts.orthanc_version | default('unknown', true) }}</td>
<td>{{ host.facts.devices | default('', true) }}</td>
<td>{{ host.facts.users | default('', true) }}</td>
<td>{% if host['items'] %}<ul>{% for item in host['items'] %}<li><code>{{ item.name }}</code>
{{ item.detail }}</li>{% endfor %}</ul>{% else %}none{% endif %}</td>
{% set bad = host.health | rejectattr('severity', 'equalto', 'ok') | list %}
<td class="{{ host.health_status }}">{{ host.health_status }}
{% if bad %}<ul>{% for check in bad %}<li><span class="sev">{{ check.severity }}</span> <code>{{ check.name }}</code>
{{ check.detail }}</li>{% endfor %}</ul>{% endif %}</td>
<td>{{ host.facts.last_backup_age | default('unknown', true) }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% for name, host in report.hosts | dictsort %}{% if host['items'] or host.errors or host.health %}
<h2>{{ name }}</h2>
{% for error in host.errors %}<p class="error">{{ error.task }}: {{ error.msg }}</p>{% endfor %}
{% for item in host['items'] %}
<h3><code>{{ item.name }}</code></h3>
<p>{{ item.detail }} (task: {{ item.task }})</p>
{% if item.changes %}<table class="changes">
<thead><tr><th>Field</th><th>On the clinic</th><th>Inventory</th></tr></thead>
<tbody>{% for c in item.changes %}<tr><td>{{ c.field }}</td><td><code>{{ c.before | tojson }}</code></td>
<td><code>{{ c.after | tojson }}</code></td></tr>{% endfor %}</tbody></table>{% endif %}
{% if item.diff is string %}<pre class="diff">{{ item.diff }}</pre>
{% elif item.diff %}<pre>{{ item.diff | tojson(indent=2) }}</pre>{% endif %}
{% endfor %}
{% if host.health %}<h3>Health</h3>
<table class="health"><thead><tr><th>Check</th><th>Severity</th><th>Detail</th></tr></thead><tbody>
{% for check in host.health %}<tr class="{{ check.severity }}"><td><code>{{ check.name }}</code></td>
<td class="sev">{{ check.severity }}</td><td>{{ check.detail }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
{% endif %}{% endfor %}
</body>
</html>
'''


def utcnow():
    return datetime.datetime.now(datetime.UTC)


def mask_secrets(value):
    """Copy of value with every value under a secret-looking key replaced by the mask."""
    if isinstance(value, dict):
        return {
            k: (MASK if SECRET_KEY.search(str(k)) and v not in (None, '') else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value


def worst(severities):
    return max((s for s in severities if s in SEVERITIES), key=SEVERITIES.index, default='ok')


def is_censored(result):
    return bool(result.get('_ansible_no_log')) or 'censored' in result


def short_action(action):
    return (action or '').rsplit('.', 1)[-1]


def _sub_diff(diff, name):
    if not isinstance(diff, dict):
        return None
    before = diff.get('before') if isinstance(diff.get('before'), dict) else {}
    after = diff.get('after') if isinstance(diff.get('after'), dict) else {}
    if 'RegisteredUsers' in before or 'RegisteredUsers' in after:
        before = before.get('RegisteredUsers') or {}
        after = after.get('RegisteredUsers') or {}
    return mask_secrets({'before': before.get(name), 'after': after.get(name)})


def _item(name, detail, task, module, diff=None, changes=None):
    return {'name': name, 'detail': detail, 'task': task, 'module': module, 'diff': diff, 'changes': changes or []}


def _masked_diff(diff):
    """A unified diff (text) keeps its masking by the gather; structured diffs are masked here."""
    return diff if isinstance(diff, str) else mask_secrets(diff)


def _named_changes(result, prefix, task, module):
    """Items from the created/updated/deleted lists of the collection's list modules."""
    items = []
    diff = result.get('diff')
    for name in result.get('created') or []:
        items.append(_item(f'{prefix}:{name}', 'missing: would be created', task, module, _sub_diff(diff, name)))
    updated = result.get('updated') or []
    if isinstance(updated, dict):
        for name, keys in sorted(updated.items()):
            detail = 'differs: {}'.format(', '.join(str(k) for k in keys)) if keys else 'differs'
            items.append(_item(f'{prefix}:{name}', detail, task, module, _sub_diff(diff, name)))
    else:
        for name in updated:
            items.append(_item(f'{prefix}:{name}', 'differs', task, module, _sub_diff(diff, name)))
    for name in result.get('deleted') or []:
        items.append(
            _item(f'{prefix}:{name}', 'not in the inventory: would be removed', task, module, _sub_diff(diff, name))
        )
    return items


def drift_items(result, task_name, action, args=None, label=None):
    """Name what a changed result says drifted. Never reads more than changed and the label of no_log results."""
    module = short_action(action)
    args = args or {}
    if is_censored(result):
        if module == 'orthanc_peer' and label:
            return [_item(f'peer:{label}', 'differs (details hidden: no_log)', task_name, module)]
        name = f'{label}' if label else task_name
        return [_item(f'task:{name}', 'changed (details hidden: no_log)', task_name, module)]
    if isinstance(result.get(ITEMS_KEY), list):
        return [
            _item(
                str(entry.get('name')),
                str(entry.get('detail', '')),
                task_name,
                module,
                _masked_diff(entry.get('diff')),
                mask_secrets(entry.get('changes') or []),
            )
            if isinstance(entry, dict)
            else _item(str(entry), '', task_name, module)
            for entry in result[ITEMS_KEY]
        ]
    if module == 'orthanc_modalities':
        return _named_changes(result, 'device', task_name, module)
    if module == 'orthanc_user':
        return _named_changes(result, 'user', task_name, module)
    if module in ('orthanc_modality', 'orthanc_peer'):
        prefix = 'device' if module == 'orthanc_modality' else 'peer'
        invocation = (result.get('invocation') or {}).get('module_args') or {}
        name = invocation.get('name') or label or args.get('name') or task_name
        keys = result.get('changed_fields') or []
        detail = 'differs: {}'.format(', '.join(keys)) if keys else 'differs'
        return [_item(f'{prefix}:{name}', detail, task_name, module, _sub_diff(result.get('diff'), name))]
    if module in ('copy', 'template', 'file', 'lineinfile', 'blockinfile', 'ini_file'):
        path = result.get('dest') or result.get('path') or args.get('dest') or args.get('path') or task_name
        return [_item(f'config:{os.path.basename(str(path))}', 'content or attributes differ', task_name, module)]
    if module == 'docker_compose_v2':
        actions = result.get('actions') or []
        if actions:
            return [
                _item(f"container:{a.get('id') or a.get('what')}", str(a.get('status', 'changes')), task_name, module)
                for a in actions
                if isinstance(a, dict)
            ]
    return [_item(f'task:{label or task_name}', 'changed', task_name, module)]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'clinicpacs.orthanc.drift_report'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hosts = {}
        self.playbook = ''
        self.started = utcnow()
        self.global_check = False
        self._looped = set()

    # ----- collecting ---------------------------------------------------------------------------------------
    def host(self, name):
        return self.hosts.setdefault(
            name,
            {
                'status': 'ok',
                'reachable': True,
                'facts': {},
                'items': [],
                'errors': [],
                'corrections': 0,
                'health': [],
                'health_status': 'unknown',
            },
        )

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(getattr(playbook, '_file_name', '') or '')
        try:
            self.global_check = bool(context.CLIARGS.get('check', False))
        except (AttributeError, TypeError):
            self.global_check = False

    def v2_playbook_on_play_start(self, play):
        try:
            for name in play.get_variable_manager()._inventory.get_hosts(play.hosts):
                self.host(name.get_name())
        except Exception:  # noqa: BLE001  # the host list is a nicety: results add their hosts anyway
            self._display.vvv('drift_report: could not list the hosts of the play')

    def _task_tags(self, task):
        tags = getattr(task, 'tags', None) or []
        return [tags] if isinstance(tags, str) else list(tags)

    def _record_health(self, host, result):
        health = result.get(HEALTH_KEY) if isinstance(result, dict) and not is_censored(result) else None
        if isinstance(health, list):
            host['health'] = [mask_secrets(h) for h in health if isinstance(h, dict)]
            host['health_status'] = worst(h.get('severity', 'ok') for h in host['health'])

    def _record_facts(self, host, result):
        self._record_health(host, result)
        facts = result.get('ansible_facts') if isinstance(result, dict) else None
        if isinstance(facts, dict) and isinstance(facts.get(REPORT_FACT), dict):
            host['facts'].update(mask_secrets(facts[REPORT_FACT]))

    def _record_change(self, host, result, task, label=None):
        tags = self._task_tags(task)
        if not result.get('changed') or PROBE_TAG in tags:
            return
        if self.global_check or DRIFT_TAG in tags:
            name = task.get_name() if hasattr(task, 'get_name') else str(task)
            args = getattr(task, 'args', None) or {}
            host['items'].extend(drift_items(result, name, getattr(task, 'action', ''), args, label))
        else:
            host['corrections'] += 1

    def v2_runner_item_on_ok(self, result):
        """One loop item: its label names the item, also for no_log tasks (whose results are censored)."""
        host_name = result._host.get_name()
        host = self.host(host_name)
        res = result._result
        self._looped.add((host_name, getattr(result._task, '_uuid', id(result._task))))
        if res.get('_ansible_no_log') and 'censored' not in res:
            res = {'changed': res.get('changed'), '_ansible_no_log': True}
        self._record_facts(host, res)
        label = result._result.get('_ansible_item_label')
        self._record_change(host, res, result._task, None if label is None else str(label))

    def v2_runner_on_ok(self, result):
        host_name = result._host.get_name()
        host = self.host(host_name)
        res = result._result
        task = result._task
        self._record_facts(host, res)
        if (host_name, getattr(task, '_uuid', id(task))) in self._looped:
            return  # the items were recorded one by one
        loop_results = res.get('results')
        if isinstance(loop_results, list) and loop_results and isinstance(loop_results[0], dict):
            for entry in loop_results:
                if res.get('_ansible_no_log') and 'censored' not in entry:
                    entry = {
                        'changed': entry.get('changed'),
                        '_ansible_no_log': True,
                        '_ansible_item_label': entry.get('_ansible_item_label'),
                    }
                label = entry.get('_ansible_item_label')
                self._record_change(host, entry, task, None if label is None else str(label))
            return
        self._record_change(host, res, task)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        task = result._task
        if ignore_errors or GATE_TAG in self._task_tags(task):
            return
        host = self.host(result._host.get_name())
        res = result._result
        msg = 'details hidden: no_log' if is_censored(res) else str(res.get('msg') or 'failed')
        host['errors'].append({'task': task.get_name(), 'msg': msg})
        if host['status'] != 'unreachable':
            host['status'] = 'failed'

    def v2_runner_on_unreachable(self, result):
        host = self.host(result._host.get_name())
        host['reachable'] = False
        host['status'] = 'unreachable'
        host['errors'].append({'task': result._task.get_name(), 'msg': str(result._result.get('msg') or 'unreachable')})

    def v2_playbook_on_stats(self, stats):
        report = self.build_report()
        try:
            paths = write_reports(
                report, self.get_option('report_dir'), self.get_option('keep'), self.get_option('title')
            )
        except OSError as e:
            self._display.warning(f'drift_report: could not write the reports: {e}')
            return
        self._display.display(
            'drift_report: {} drift item(s); reports: {}'.format(report['summary']['items'], ', '.join(paths))
        )

    # ----- the report ---------------------------------------------------------------------------------------
    def build_report(self):
        return build_report(self.hosts, self.playbook, self.started)


def build_report(hosts, playbook, started):
    summary = {
        'clinics': len(hosts),
        'drifted': 0,
        'failed': 0,
        'unreachable': 0,
        'items': 0,
        'health_critical': 0,
        'health_warning': 0,
    }
    out = {}
    for name in sorted(hosts):
        host = dict(hosts[name])
        if host['status'] == 'ok' and host['items']:
            host['status'] = 'drifted'
        if host['status'] in ('drifted', 'failed', 'unreachable'):
            summary[host['status']] += 1
        summary['items'] += len(host['items'])
        host.setdefault('health', [])
        host.setdefault('health_status', 'unknown')
        if host['health_status'] in ('critical', 'warning'):
            summary['health_' + host['health_status']] += 1
        out[name] = host
    return {
        'generated': started.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'playbook': playbook,
        'summary': summary,
        'hosts': out,
    }


def render_junit(report, title):
    suites = ET.Element('testsuites', name=title)
    cases = []
    for name, host in report['hosts'].items():
        classname = f'clinic.{name}'
        if host['status'] in ('failed', 'unreachable'):
            case = ET.Element('testcase', classname=classname, name=f'{name}: {host["status"]}')
            error = ET.SubElement(case, 'error', message=f'{name} {host["status"]}', type=host['status'])
            error.text = '\n'.join(f'{e["task"]}: {e["msg"]}' for e in host['errors'])
            cases.append(case)
        for item in host['items']:
            case = ET.Element('testcase', classname=classname, name=item['name'])
            failure = ET.SubElement(
                case, 'failure', message=f'{name}: {item["name"]} drifted ({item["detail"]})', type='drift'
            )
            failure.text = (
                item['diff']
                if isinstance(item.get('diff'), str)
                else json.dumps(
                    {'task': item['task'], 'changes': item.get('changes') or [], 'diff': item['diff']},
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
            cases.append(case)
        for check in host.get('health') or []:
            severity = check.get('severity', 'ok')
            case = ET.Element('testcase', classname=classname, name=check['name'])
            if severity == 'critical':
                failure = ET.SubElement(
                    case,
                    'failure',
                    message=f'{name}: {check["name"]} critical ({check["detail"]})',
                    type='health-critical',
                )
                failure.text = check['detail']
            elif severity == 'warning':
                # JUnit has no warning state: the case passes and says WARNING in its output and properties.
                props = ET.SubElement(case, 'properties')
                ET.SubElement(props, 'property', name='severity', value='warning')
                ET.SubElement(case, 'system-out').text = f'WARNING {check["name"]}: {check["detail"]}'
            cases.append(case)
        if not host['items'] and host['status'] == 'ok':
            cases.append(ET.Element('testcase', classname=classname, name='no drift'))
    failures = sum(1 for c in cases if c.find('failure') is not None)
    errors = sum(1 for c in cases if c.find('error') is not None)
    suite = ET.SubElement(
        suites,
        'testsuite',
        name=title,
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        timestamp=report['generated'],
    )
    suite.extend(cases)
    suites.set('tests', str(len(cases)))
    suites.set('failures', str(failures))
    suites.set('errors', str(errors))
    ET.indent(suites)
    return ET.tostring(suites, encoding='unicode', xml_declaration=True) + '\n'


def render_html(report, title):
    if Environment is None:  # pragma: no cover
        return render_html_plain(report, title)
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)  # autoescape is on
    return env.from_string(HTML_TEMPLATE).render(report=report, title=title, csp=CSP)


def render_html_plain(report, title):  # pragma: no cover - only without Jinja2
    e = html.escape
    rows = ''.join(
        f'<tr><td>{e(n)}</td><td>{e(h["status"])}</td><td>{len(h["items"])}</td></tr>'
        for n, h in report['hosts'].items()
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{e(CSP)}"><title>{e(title)}</title></head><body><table>{rows}</table></body></html>\n'
    )


def _write(path, text):
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


def write_reports(report, report_dir, keep=0, title='Clinic PACS fleet drift'):
    """Write the three reports and their drift-latest copies; prune beyond keep. Returns the paths written."""
    report_dir = os.path.expanduser(report_dir)
    os.makedirs(report_dir, mode=0o750, exist_ok=True)
    stamp = report['generated'].replace('-', '').replace(':', '')
    base = os.path.join(report_dir, PREFIX + stamp)
    suffix = 1
    while os.path.exists(base + '.json'):
        suffix += 1
        base = os.path.join(report_dir, f'{PREFIX}{stamp}-{suffix}')
    texts = {
        'json': json.dumps(report, indent=2, sort_keys=True, default=str) + '\n',
        'xml': render_junit(report, title),
        'html': render_html(report, title),
    }
    paths = []
    for ext in EXTENSIONS:
        _write(f'{base}.{ext}', texts[ext])
        shutil.copyfile(f'{base}.{ext}', os.path.join(report_dir, f'{PREFIX}latest.{ext}'))
        paths.append(f'{base}.{ext}')
    if keep and int(keep) > 0:
        prune(report_dir, int(keep))
    return paths


def prune(report_dir, keep):
    stems = sorted(
        {
            f.rsplit('.', 1)[0]
            for f in os.listdir(report_dir)
            if f.startswith(PREFIX) and not f.startswith(PREFIX + 'latest') and f.rsplit('.', 1)[-1] in EXTENSIONS
        }
    )
    for stem in stems[:-keep]:
        for ext in EXTENSIONS:
            path = os.path.join(report_dir, f'{stem}.{ext}')
            if os.path.exists(path):
                os.remove(path)
