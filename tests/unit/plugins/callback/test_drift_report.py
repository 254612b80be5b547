"""Unit tests of the drift_report callback, fed with fake task results (the callback's input boundary)."""

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pydicom
import pytest
from ansible_collections.clinicpacs.orthanc.plugins.callback import drift_report

DATA = Path(__file__).resolve().parents[3] / 'data' / 'dicom'
XSS_NAME = str(pydicom.dcmread(DATA / '2017-06-27-XSSInjection.dcm', stop_before_pixels=True).PatientName)
PAYLOAD = "<img src=x onerror=\"document.title='XSS-RAN'\"><script>document.title='XSS-RAN'</script>"
INJECTED = XSS_NAME + PAYLOAD


class FakeHost:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class FakeTask:
    def __init__(self, name, action, tags=('drift',), args=None):
        self.name = name
        self.action = action
        self.tags = list(tags)
        self.args = args or {}

    def get_name(self):
        return self.name


class FakeResult:
    def __init__(self, host, task, result):
        self._host = FakeHost(host)
        self._task = task
        self._result = result


MODALITIES = FakeTask('Compare the DICOM devices', 'clinicpacs.orthanc.orthanc_modalities')
USERS = FakeTask('Compare the Orthanc users', 'clinicpacs.orthanc.orthanc_user')
PEERS = FakeTask('Compare the peers', 'clinicpacs.orthanc.orthanc_peer')
FACTS = FakeTask('Record the report facts', 'ansible.builtin.set_fact', tags=())


def unchanged(module_keys=('created', 'updated', 'deleted')):
    return {'changed': False, **{k: [] for k in module_keys}, 'diff': {'before': {}, 'after': {}}}


def facts(version='1.12.7', devices=2, users=3):
    return {'ansible_facts': {'clinicpacs_report': {'orthanc_version': version, 'devices': devices, 'users': users}}}


@pytest.fixture
def callback(monkeypatch):
    cb = drift_report.CallbackModule()
    monkeypatch.setattr(drift_report.context, 'CLIARGS', {'check': False})
    return cb


def fleet_run(cb):
    """Clinic B has one changed device and one removed user; A and C are clean; D is unreachable."""
    for host in ('clinic-a', 'clinic-b', 'clinic-c'):
        cb.v2_runner_on_ok(FakeResult(host, FACTS, facts()))
        cb.v2_runner_on_ok(FakeResult(host, USERS, unchanged()))
        cb.v2_runner_on_ok(FakeResult(host, PEERS, {'changed': False, 'results': []}))
        if host != 'clinic-b':
            cb.v2_runner_on_ok(FakeResult(host, MODALITIES, unchanged()))
    cb.v2_runner_on_ok(
        FakeResult(
            'clinic-b',
            MODALITIES,
            {
                'changed': True,
                'created': [],
                'updated': {'CBCT1': ['Port']},
                'deleted': [],
                'diff': {'before': {'CBCT1': {'Port': 4000}}, 'after': {'CBCT1': {'Port': 104}}},
            },
        )
    )
    cb.v2_runner_on_ok(
        FakeResult(
            'clinic-b',
            USERS,
            {
                'changed': True,
                'created': ['reception'],
                'updated': [],
                'deleted': [],
                'restart_required': True,
                'diff': {
                    'before': {'RegisteredUsers': {'ansible': '********'}},
                    'after': {'RegisteredUsers': {'ansible': '********', 'reception': '********'}},
                },
            },
        )
    )
    cb.v2_runner_on_unreachable(
        FakeResult('clinic-d', FakeTask('Gather', 'ansible.builtin.setup'), {'msg': 'ssh: connect timed out'})
    )


def test_items_are_named_after_what_drifted(callback):
    fleet_run(callback)
    report = callback.build_report()
    assert [i['name'] for i in report['hosts']['clinic-b']['items']] == ['device:CBCT1', 'user:reception']
    assert report['hosts']['clinic-a']['items'] == [] and report['hosts']['clinic-c']['items'] == []
    assert report['hosts']['clinic-b']['status'] == 'drifted'
    assert report['hosts']['clinic-a']['status'] == 'ok'
    assert report['hosts']['clinic-d']['status'] == 'unreachable'
    assert report['hosts']['clinic-d']['reachable'] is False
    device = report['hosts']['clinic-b']['items'][0]
    assert device['detail'] == 'differs: Port'
    assert device['diff'] == {'before': {'Port': 4000}, 'after': {'Port': 104}}
    assert report['hosts']['clinic-b']['items'][1]['diff'] == {'before': None, 'after': '********'}
    assert report['hosts']['clinic-a']['facts']['orthanc_version'] == '1.12.7'
    assert report['summary'] == {
        'clinics': 4, 'drifted': 1, 'failed': 0, 'unreachable': 1, 'items': 2,
        'health_critical': 0, 'health_warning': 0,
    }  # fmt: skip


def test_changes_outside_drift_tasks_are_corrections(callback):
    callback.v2_runner_on_ok(
        FakeResult(
            'clinic-a', FakeTask('Write the file', 'ansible.builtin.copy', tags=()), {'changed': True, 'dest': '/x'}
        )
    )
    host = callback.build_report()['hosts']['clinic-a']
    assert host['items'] == [] and host['corrections'] == 1


def test_global_check_mode_collects_every_change(callback, monkeypatch):
    monkeypatch.setattr(drift_report.context, 'CLIARGS', {'check': True})
    callback.v2_playbook_on_start(type('PB', (), {'_file_name': '/x/site.yml'})())
    task = FakeTask('Write the config', 'ansible.builtin.template', tags=())
    callback.v2_runner_on_ok(
        FakeResult('clinic-a', task, {'changed': True, 'dest': '/opt/clinicpacs/docker-compose.yml'})
    )
    items = callback.build_report()['hosts']['clinic-a']['items']
    assert [i['name'] for i in items] == ['config:docker-compose.yml']


def test_no_log_results_are_not_read(callback):
    secret = 'hunter2-super-secret'
    censored = {
        'changed': True,
        '_ansible_no_log': True,
        'results': [
            {'changed': True, 'censored': 'the output has been hidden', '_ansible_item_label': 'central'},
            {'changed': False, 'censored': 'the output has been hidden', '_ansible_item_label': 'backup'},
        ],
    }
    callback.v2_runner_on_ok(FakeResult('clinic-a', PEERS, censored))
    # A no_log result that was not censored upstream is still not read beyond changed.
    leaky = {'changed': True, '_ansible_no_log': True, 'dest': '/opt/x', 'diff': {'after': secret}}
    callback.v2_runner_on_ok(FakeResult('clinic-a', FakeTask('Write secret', 'ansible.builtin.copy'), leaky))
    items = callback.build_report()['hosts']['clinic-a']['items']
    assert [i['name'] for i in items] == ['peer:central', 'task:Write secret']
    assert secret not in json.dumps(items)


def test_secret_looking_keys_are_masked():
    result = {
        'changed': True,
        'changed_fields': ['Password'],
        'invocation': {'module_args': {'name': 'central'}},
        'diff': {'before': {'central': {'Password': 'old-pw'}}, 'after': {'central': {'Password': 'new-pw'}}},
    }
    items = drift_report.drift_items(result, 'peer', 'clinicpacs.orthanc.orthanc_peer')
    assert items[0]['name'] == 'peer:central'
    assert 'old-pw' not in json.dumps(items) and 'new-pw' not in json.dumps(items)


def test_debug_items_and_deleted_devices():
    items = drift_report.drift_items(
        {'changed': True, 'clinicpacs_drift_items': [{'name': 'image:orthanc', 'detail': 'runs a:1, wants a:2'}]},
        'images',
        'ansible.builtin.debug',
    )
    assert items[0]['name'] == 'image:orthanc' and items[0]['detail'] == 'runs a:1, wants a:2'
    items = drift_report.drift_items(
        {'changed': True, 'created': ['new'], 'updated': {}, 'deleted': ['old'], 'diff': {}},
        'devices',
        'orthanc_modalities',
    )
    assert [i['name'] for i in items] == ['device:new', 'device:old']


def test_failed_host_and_gate_task(callback):
    callback.v2_runner_on_failed(
        FakeResult('clinic-a', FakeTask('Reach Orthanc', 'clinicpacs.orthanc.orthanc_info'), {'msg': 'HTTP 401'})
    )
    callback.v2_runner_on_failed(
        FakeResult(
            'localhost', FakeTask('Fail when drifted', 'ansible.builtin.fail', tags=('drift_gate',)), {'msg': 'x'}
        )
    )
    callback.v2_runner_on_failed(
        FakeResult('clinic-c', FakeTask('Ignored', 'ansible.builtin.command'), {'msg': 'x'}), ignore_errors=True
    )
    report = callback.build_report()
    assert report['hosts']['clinic-a']['status'] == 'failed'
    assert report['hosts']['clinic-a']['errors'] == [{'task': 'Reach Orthanc', 'msg': 'HTTP 401'}]
    assert 'localhost' not in report['hosts'] and 'clinic-c' not in report['hosts']


def test_writes_json_junit_html_latest_and_prunes(callback, tmp_path, monkeypatch):
    fleet_run(callback)
    options = {'report_dir': str(tmp_path / 'reports'), 'keep': 2, 'title': 'Fleet'}
    monkeypatch.setattr(callback, 'get_option', options.get)
    for _run in range(3):
        callback.v2_playbook_on_stats(None)
    names = sorted(os.listdir(tmp_path / 'reports'))
    stems = {n.rsplit('.', 1)[0] for n in names}
    assert len(stems) == 3  # two kept reports + latest
    assert {'drift-latest.json', 'drift-latest.xml', 'drift-latest.html'} <= set(names)
    report = json.loads((tmp_path / 'reports' / 'drift-latest.json').read_text())
    assert [i['name'] for i in report['hosts']['clinic-b']['items']] == ['device:CBCT1', 'user:reception']
    suites = ET.parse(tmp_path / 'reports' / 'drift-latest.xml').getroot()  # noqa: S314  # our own file
    suite = suites.find('testsuite')
    cases = [(c.get('classname'), c.get('name'), c.find('failure') is not None) for c in suite.findall('testcase')]
    assert ('clinic.clinic-b', 'device:CBCT1', True) in cases
    assert ('clinic.clinic-b', 'user:reception', True) in cases
    assert ('clinic.clinic-a', 'no drift', False) in cases and ('clinic.clinic-c', 'no drift', False) in cases
    assert [c for c in cases if c[2]] == [
        ('clinic.clinic-b', 'device:CBCT1', True),
        ('clinic.clinic-b', 'user:reception', True),
    ]
    assert suite.get('failures') == '2' and suite.get('errors') == '1'


def hostile_report():
    hosts = {
        'clinic-a': {
            'status': 'ok',
            'reachable': True,
            'facts': {'orthanc_version': '1.12.7', 'devices': 1, 'users': 2, 'last_backup_age': '3 h'},
            'items': [],
            'errors': [],
            'corrections': 0,
        },
        'clinic-b': {
            'status': 'ok',
            'reachable': True,
            'facts': {'orthanc_version': INJECTED},
            'items': [
                {
                    'name': 'device:' + INJECTED,
                    'detail': INJECTED,
                    'task': INJECTED,
                    'module': 'x',
                    'diff': {'before': {'Manufacturer': INJECTED}, 'after': None},
                }
            ],
            'errors': [{'task': INJECTED, 'msg': INJECTED}],
            'corrections': 0,
        },
        'clinic-c': {
            'status': 'unreachable',
            'reachable': False,
            'facts': {},
            'items': [],
            'errors': [],
            'corrections': 0,
        },
    }
    return drift_report.build_report(hosts, INJECTED, drift_report.utcnow())


def test_html_escapes_everything_and_has_csp():
    page = drift_report.render_html(hostile_report(), 'Fleet <b>')
    assert '<script>' not in page and '<img' not in page
    assert 'HelloWorld&lt;script&gt;alert(' in page
    assert "Content-Security-Policy\" content=\"default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;\"" in page
    assert 'Fleet &lt;b&gt;' in page


class _VisibleText(HTMLParser):
    """The text a browser shows: everything outside <head>, <script> and <style>, white space collapsed."""

    def __init__(self):
        super().__init__()
        self.parts = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ('head', 'script', 'style'):
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in ('head', 'script', 'style'):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(page):
    parser = _VisibleText()
    parser.feed(page)
    return ' '.join(' '.join(parser.parts).split())


def test_html_summary_line_says_the_item_count():
    """The summary line shows the number of drift items (it once showed ``<built-in method items ...>``)."""
    report = hostile_report()
    assert report['summary']['items'] == 1
    text = visible_text(drift_report.render_html(report, 'Fleet'))
    assert '3 clinics, 1 drifted, 0 failed, 1 unreachable, 1 drift items; health: 0 critical, 0 warning.' in text
    assert 'built-in method' not in text


def find_chromium():
    """A chromium binary that is not a snap, or None.

    Ubuntu's chromium and chromium-browser packages only install the snap (tools/setup.sh leaves them out
    there), and a snap has a /tmp of its own: it could not open this test's files.
    """
    for name in ('chromium', 'chromium-browser'):
        path = shutil.which(name)
        if not path or os.path.realpath(path).startswith('/snap/'):
            continue
        with open(path, 'rb') as f:
            if b'/snap/' in f.read(65536):  # Ubuntu's transitional wrapper script runs the snap
                continue
        return path
    return None


CHROMIUM = find_chromium()


def dump_dom(path, tmp_path):
    args = [
        CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
        f'--user-data-dir={tmp_path / "profile"}', '--dump-dom', path.as_uri(),
    ]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, timeout=90, check=True)
    return out.stdout


@pytest.mark.skipif(
    CHROMIUM is None,
    reason='no chromium outside a snap: on Debian, tools/setup.sh test installs it (apt-get install -y chromium);'
    ' Ubuntu ships it only as a snap, so this test cannot run there',
)
def test_html_renders_in_headless_chromium_without_running_the_script(tmp_path):
    # Control: the same payload unescaped, without CSP, does run in this browser, so the check below can see it.
    control = tmp_path / 'control.html'
    # (The sample's own alert() would block a headless browser: the control leaves it out.)
    control.write_text(f'<!DOCTYPE html><html><head><title>control</title></head><body>{PAYLOAD}</body></html>')
    assert '<title>XSS-RAN</title>' in dump_dom(control, tmp_path)

    report_dir = tmp_path / 'reports'
    drift_report.write_reports(hostile_report(), str(report_dir), keep=0, title='Fleet')
    dom = dump_dom(report_dir / 'drift-latest.html', tmp_path)
    assert '<title>Fleet ' in dom and 'XSS-RAN</title>' not in dom
    assert '<table id="fleet">' in dom
    for clinic in ('clinic-a', 'clinic-b', 'clinic-c'):
        assert f'<td class="clinic">{clinic}</td>' in dom
    assert '<script' not in dom.lower() and '<img' not in dom.lower()
    assert 'HelloWorld&lt;script&gt;' in dom
    text = visible_text(dom)
    assert '3 clinics, 1 drifted, 0 failed, 1 unreachable, 1 drift items; health: 0 critical, 0 warning.' in text
    assert 'built-in method' not in text


def test_probe_tasks_are_neither_items_nor_corrections(callback):
    probe = FakeTask('Hidden peer check', 'clinicpacs.orthanc.orthanc_peer', tags=('drift_probe',))
    callback.v2_runner_on_ok(FakeResult('clinic-a', probe, {'changed': True, 'censored': 'hidden'}))
    host = callback.build_report()['hosts']['clinic-a']
    assert host['items'] == [] and host['corrections'] == 0


def drifted_fleet_result():
    """The gather's result for a drifted clinic: field changes, a masked unified diff and health items."""
    return {
        'changed': True,
        'clinicpacs_drift_items': [
            {
                'name': 'device:CBCT1',
                'detail': 'AllowMove: true \u2192 false, Host: 10.214.0.99 \u2192 10.214.0.20',
                'changes': [
                    {'field': 'AllowMove', 'before': True, 'after': False},
                    {'field': 'Host', 'before': '10.214.0.99', 'after': '10.214.0.20'},
                ],
                'diff': None,
            },
            {
                'name': 'config:orthanc.json',
                'detail': 'content differs',
                'changes': [],
                'diff': '--- orthanc.json (on the clinic)\n+++ orthanc.json (inventory)\n@@ -1 +1 @@\n'
                '-  "Name": "A",\n+  "Name": "B",\n',
            },
        ],
        'clinicpacs_health_items': [
            {'name': 'health:disk', 'severity': 'critical', 'value': {'used_percent': 95.0}, 'detail': '/srv 95% used'},
            {'name': 'health:device:PANO1', 'severity': 'warning', 'value': None, 'detail': 'no study received yet'},
            {'name': 'health:backup', 'severity': 'ok', 'value': None, 'detail': 'newest backup 1 h old'},
        ],
    }


def test_gather_items_health_in_json_junit_and_html(callback, tmp_path):
    task = FakeTask('Gather', 'clinicpacs.orthanc.orthanc_drift_info', tags=('drift',))
    callback.v2_runner_on_ok(FakeResult('clinic-a', task, drifted_fleet_result()))
    report = callback.build_report()
    host = report['hosts']['clinic-a']
    assert host['status'] == 'drifted' and host['health_status'] == 'critical'
    assert host['items'][0]['changes'][1] == {'field': 'Host', 'before': '10.214.0.99', 'after': '10.214.0.20'}
    assert report['summary']['health_critical'] == 1 and report['summary']['items'] == 2
    junit = ET.fromstring(drift_report.render_junit(report, 'Fleet'))  # noqa: S314 - our own report
    cases = {c.get('name'): c for c in junit.iter('testcase')}
    assert cases['health:disk'].find('failure').get('type') == 'health-critical'
    assert cases['health:device:PANO1'].find('system-out').text == 'WARNING health:device:PANO1: no study received yet'
    assert cases['health:backup'].find('failure') is None and cases['health:backup'].find('system-out') is None
    assert cases['config:orthanc.json'].find('failure').text.startswith('--- orthanc.json (on the clinic)')
    page = drift_report.render_html(report, 'Fleet')
    text = visible_text(page)
    assert 'AllowMove: true \u2192 false, Host: 10.214.0.99 \u2192 10.214.0.20' in text
    assert '- "Name": "A", + "Name": "B",' in text  # (whitespace collapsed)
    assert 'critical health:disk /srv 95% used' in text and 'warning health:device:PANO1' in text
    assert '1 clinics, 1 drifted, 0 failed, 0 unreachable, 2 drift items; health: 1 critical, 0 warning.' in text
