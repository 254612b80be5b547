"""Clinic health in the drift run, against the real session stack (Orthanc 1.13.0 + PostgreSQL index).

A 4 MiB tmpfs is the clinic's data mount and is filled past the critical threshold; a certificate made with
openssl expires in two days (a warning with these thresholds); of two registered devices one sends a real study
over DICOM (dcmtk storescu) and the other stays silent. The gather (clinicpacs.orthanc.orthanc_drift_info) runs
with the drift_report callback and the same gate as playbooks/drift.yml: each fact must appear with its severity
in the JSON, JUnit and HTML reports, and the exit code must follow (2 with the critical disk, 0 once it is freed:
warnings only show).
"""

import json
import os
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from .conftest import COLLECTIONS, ORTHANC_IMAGE, docker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'tests' / 'data' / 'dicom'
PLAYBOOK = """
- name: Drift and health of the test clinic
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Gather, compare and read the health of the clinic
      clinicpacs.orthanc.orthanc_drift_info: {args}
      tags: [drift]

    - name: Fail when the clinic drifted or its health is critical (as playbooks/drift.yml)
      ansible.builtin.fail:
        msg: "{{{{ inventory_hostname }}}}: drifted or critical"
      when: clinicpacs_drifted | bool or clinicpacs_health_status == 'critical'
      tags: [drift_gate]
"""


def sample_file():
    path = SAMPLE / 'DummyCT.dcm'  # uncompressed CT, accepted by Orthanc's default transfer syntaxes
    if not path.is_file():
        pytest.skip(f'no DICOM sample {path}')
    return path


@pytest.fixture
def data_mount(tmp_path):
    mount = tmp_path / 'data'
    mount.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(mount)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {done.stderr.strip()}')
    try:
        yield mount
    finally:
        subprocess.run(['umount', str(mount)], check=False)


def short_lived_certificate(directory):
    key, cert = directory / 'server.key', directory / 'server.crt'
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
         '-subj', '/CN=health-test', '-keyout', str(key), '-out', str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def run(playbook, report_dir):
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_CALLBACKS_ENABLED='clinicpacs.orthanc.drift_report',
        CLINICPACS_REPORT_DIR=str(report_dir),
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        PATH='/usr/bin:' + env.get('PATH', ''),
    )
    argv = [
        str(Path(sys.executable).parent / 'ansible-playbook'),
        '-i',
        'localhost,',
        str(playbook),
        '-e',
        f'ansible_python_interpreter={sys.executable}',
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    reports = {ext: (report_dir / f'drift-latest.{ext}').read_text() for ext in ('json', 'xml', 'html')}
    return done, reports


def severities(report):
    return {h['name']: h['severity'] for h in report['hosts']['localhost']['health']}


def test_full_disk_near_expiry_certificate_and_silent_device(stack, data_mount, tmp_path):
    tag = uuid.uuid4().hex[:6]
    sender, quiet = f'HSEND{tag}'.upper()[:16], f'HQUIET{tag}'.upper()[:16]
    keys = ('AllowEcho', 'AllowFind', 'AllowFindWorklist', 'AllowGet', 'AllowMove', 'AllowStore', 'AllowNAction',
            'AllowEventReport', 'AllowTranscoding')  # fmt: skip
    flags = dict.fromkeys(keys, True)
    options = {f'allow_{k[5:].lower()}': True for k in flags}
    options['allow_find_worklist'] = options.pop('allow_findworklist')
    options['allow_n_action'] = options.pop('allow_naction')
    options['allow_event_report'] = options.pop('allow_eventreport')
    devices = []
    for name in (sender, quiet):
        body = dict(flags, AET=name, Host='127.0.0.1', Port=104)
        requests.put(f'{stack.url}/modalities/{name}', json=body, auth=stack.auth, timeout=30).raise_for_status()
        devices.append(dict(options, name=name, aet=name, host='127.0.0.1', port=104))
    try:
        ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', stack.orthanc)
        argv = ['/usr/bin/storescu', '-aet', sender, '-aec', 'ORTHANC', ip.stdout.strip(), '4242', str(sample_file())]
        sent = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert sent.returncode == 0, sent.stderr
        stats = requests.get(f'{stack.url}/statistics', auth=stack.auth, timeout=30).json()
        assert stats['CountInstances'] >= 1
        (data_mount / 'fill').write_bytes(os.urandom(int(3.8 * 2**20)))
        cert = short_lived_certificate(tmp_path)
        backups = tmp_path / 'backups'
        (backups / time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())).mkdir(parents=True)
        args = {
            'api_url': stack.url,
            'api_username': stack.auth[0],
            'api_password': stack.auth[1],
            'devices': devices,
            'devices_exclusive': False,
            'containers': [{'service': 'orthanc', 'name': stack.orthanc, 'image': ORTHANC_IMAGE}],
            'data_dir': str(data_mount),
            'certificates': [str(cert)],
            'backup_dir': str(backups),
            'state_dir': str(tmp_path / 'state'),
            'minimum_version': '1.13.0',
            'thresholds': {'certificate_days_warning': 30, 'certificate_days_critical': 1},
        }
        playbook = tmp_path / 'health.yml'
        playbook.write_text(PLAYBOOK.format(args=json.dumps(args)))
        done, reports = run(playbook, tmp_path / 'reports')
        assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-2000:]
        report = json.loads(reports['json'])
        sev = severities(report)
        expected = {
            'health:disk': 'critical',
            f'health:certificate:{cert}': 'warning',
            f'health:device:{quiet}': 'warning',
            f'health:device:{sender}': 'ok',
            'health:orthanc_version': 'ok',
            'health:backup': 'ok',
        }
        assert {k: sev.get(k) for k in expected} == expected, report['hosts']['localhost']['health']
        assert report['hosts']['localhost']['items'] == []  # no drift: the run fails on health alone
        assert report['hosts']['localhost']['status'] == 'ok'  # the gather itself did not fail
        assert report['summary']['health_critical'] == 1
        junit = ET.fromstring(reports['xml'])  # noqa: S314 - our own report
        cases = {c.get('name'): c for c in junit.iter('testcase')}
        assert cases['health:disk'].find('failure').get('type') == 'health-critical'
        assert cases[f'health:device:{quiet}'].find('system-out').text.startswith('WARNING')
        assert cases[f'health:certificate:{cert}'].find('failure') is None
        assert 'health:disk' in reports['html'] and 'no study received yet' in reports['html']
        assert '<td class="sev">critical</td>' in reports['html'] and '<td class="sev">warning</td>' in reports['html']
        assert stack.auth[1] not in reports['json'] + reports['xml'] + reports['html']

        # Freed disk: warnings only show, the run passes.
        (data_mount / 'fill').unlink()
        done, reports = run(playbook, tmp_path / 'reports')
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        sev = severities(json.loads(reports['json']))
        assert sev['health:disk'] == 'ok' and sev[f'health:device:{quiet}'] == 'warning'
        assert ET.fromstring(reports['xml']).find('.//testcase[@name="health:disk"]/failure') is None  # noqa: S314
    finally:
        for name in (sender, quiet):
            requests.delete(f'{stack.url}/modalities/{name}', auth=stack.auth, timeout=30)


def test_gather_reads_each_object_kind_once(stack, tmp_path):
    """One REST read per object kind: system, devices, peers; the last received studies in a bounded few."""
    playbook = tmp_path / 'count.yml'
    args = {'api_url': stack.url, 'api_username': stack.auth[0], 'api_password': stack.auth[1],
            'state_dir': str(tmp_path / 'state'), 'backup_dir': str(tmp_path), 'devices_exclusive': False}  # fmt: skip
    playbook.write_text(
        '- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n'
        f'    - clinicpacs.orthanc.orthanc_drift_info: {json.dumps(args)}\n      register: g\n'
        '    - ansible.builtin.copy: {content: "{{ g | to_json }}", dest: "' + str(tmp_path / 'g.json') + '"}\n'
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
               PATH='/usr/bin:' + os.environ.get('PATH', ''), DOCKER_HOST='')  # fmt: skip
    argv = [
        str(Path(sys.executable).parent / 'ansible-playbook'),
        '-i',
        'localhost,',
        str(playbook),
        '-e',
        f'ansible_python_interpreter={sys.executable}',
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    gathered = json.loads((tmp_path / 'g.json').read_text())
    reads = gathered['rest_reads']
    assert reads['system'] == reads['devices'] == reads['peers'] == 1
    # Without the extended find (PostgreSQL index 5): the last change, the changes log (100 per page, at most
    # 2000 changes) and one bulk read of the new instances.
    assert 1 <= reads['last_received'] <= 22
    assert sum(gathered['orthanc_requests'].values()) == 3 + reads.get('last_received', 0)
    assert gathered['module_runs'] == 1
