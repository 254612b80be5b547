"""The drift_report callback inside a real ansible-playbook run (local connection, no network).

The fake-result tests show the naming rules; this one shows the callback sees what Ansible really hands to
callbacks: tags, check mode, loop items, censored no_log results, set_fact facts and the gate's failure.
"""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

COLLECTIONS = Path(__file__).resolve().parents[4] / '.collections'
SECRET = 'hunter2-not-a-real-secret'

PLAY = [
    {
        'name': 'A drift run in miniature',
        'hosts': 'all',
        'gather_facts': False,
        'tasks': [
            {
                'name': 'Record what the report shows',
                'ansible.builtin.set_fact': {'clinicpacs_report': {'orthanc_version': '1.12.7', 'devices': 2}},
            },
            {
                'name': 'Compare the images',
                'ansible.builtin.debug': {'var': 'clinicpacs_drift_items'},
                'vars': {
                    'clinicpacs_drift_items': "{{ [{'name': 'image:orthanc', 'detail': 'runs a:1'}] "
                    "if inventory_hostname == 'clinic-b' else [] }}"
                },
                'changed_when': 'clinicpacs_drift_items | length > 0',
                'tags': ['drift'],
            },
            {
                'name': 'Hidden probe with a secret',
                'ansible.builtin.debug': {'msg': '{{ item.password }}'},
                'loop': [{'name': 'central', 'password': SECRET}],
                'loop_control': {'label': '{{ item.name }}'},
                'changed_when': True,
                'no_log': True,
                'tags': ['drift_probe'],
            },
            {
                'name': 'Hidden check with a secret',
                'ansible.builtin.debug': {'msg': SECRET},
                'changed_when': "inventory_hostname == 'clinic-b'",
                'no_log': True,
                'tags': ['drift'],
            },
            {
                'name': 'Compare a configuration file',
                'ansible.builtin.copy': {
                    'content': 'wanted\n',
                    'dest': '{{ target_dir }}/{{ inventory_hostname }}.conf',
                    'mode': '0600',
                },
                'check_mode': True,
                'diff': True,
                'tags': ['drift'],
            },
            {'name': 'A correction', 'ansible.builtin.command': 'true', 'changed_when': True},
            {
                'name': 'Fail when drifted',
                'ansible.builtin.fail': {'msg': 'drifted'},
                'when': "inventory_hostname == 'clinic-b'",
                'tags': ['drift_gate'],
            },
        ],
    }
]  # fmt: skip


def test_callback_in_a_real_run(tmp_path):
    target = tmp_path / 'target'
    target.mkdir()
    (target / 'clinic-a.conf').write_text('wanted\n')
    (target / 'clinic-a.conf').chmod(0o600)
    (target / 'clinic-b.conf').write_text('changed by hand\n')
    (target / 'clinic-b.conf').chmod(0o600)
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump(PLAY))
    reports = tmp_path / 'reports'
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_CALLBACKS_ENABLED='clinicpacs.orthanc.drift_report',
        CLINICPACS_REPORT_DIR=str(reports),
        ANSIBLE_NOCOLOR='1',
    )
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'clinic-a,clinic-b,', '-c', 'local',
           '-e', f'ansible_python_interpreter={sys.executable}',
           '-e', f'target_dir={target}', str(playbook)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 2, run.stdout + run.stderr  # the gate failed clinic-b
    assert 'drift_report: 3 drift item(s)' in run.stdout

    report = json.loads((reports / 'drift-latest.json').read_text())
    a, b = report['hosts']['clinic-a'], report['hosts']['clinic-b']
    assert [i['name'] for i in a['items']] == []
    assert [i['name'] for i in b['items']] == [
        'image:orthanc',
        'task:Hidden check with a secret',
        'config:clinic-b.conf',
    ]
    assert b['items'][1]['detail'] == 'changed (details hidden: no_log)'
    assert (a['status'], b['status']) == ('ok', 'drifted')
    assert b['errors'] == []  # the gate's failure is the run's exit code, not a failed clinic
    assert a['facts'] == {'orthanc_version': '1.12.7', 'devices': 2}
    assert (a['corrections'], b['corrections']) == (1, 1)
    for path in reports.iterdir():
        assert SECRET not in path.read_text(), path
    junit = ET.parse(reports / 'drift-latest.xml').getroot()  # noqa: S314  # our own file
    assert junit.get('failures') == '3' and junit.get('errors') == '0'
