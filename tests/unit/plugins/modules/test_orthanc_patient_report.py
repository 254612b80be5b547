"""The report templates of playbooks/duplicates_report.yml, rendered by Ansible itself (no Orthanc needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[4]
TEMPLATES = ROOT / 'playbooks' / 'templates'
SCRIPT = '<script>alert("x")</script>'

FOUND = {
    'threshold': 0.8,
    'stats': {'patients': 3, 'studies': 4},
    'groups': [
        {
            'patient_ids': ['P1', f'P2{SCRIPT}'],
            'score': 0.93,
            'reasons': ['same birth date', f'reason {SCRIPT}'],
            'suggested_target': 'P1',
            'pairs': [
                {
                    'patient_ids': ['P1', f'P2{SCRIPT}'],
                    'score': 0.93,
                    'reasons': ['same birth date', f'PatientIDs from different issuers (A / {SCRIPT})'],
                    'evidence': {'name': 1.0},
                }
            ],
        }
    ],
    'ambiguous': [{'patient_id': 'P9', 'candidates': ['P1', SCRIPT], 'reason': SCRIPT}],
    'collisions': [
        {
            'patient_id': 'C"1',
            'kind': 'id_collision',
            'names': [f'Hello{SCRIPT}', 'World'],
            'birth_dates': [],
            'reasons': ['different names'],
        }
    ],
    'shared_study_uids': [{'study_instance_uid': '1.2&3', 'patient_ids': ['A', 'B']}],
    'patients': {
        'P1': {
            'names': [f'Smith^John{SCRIPT}'],
            'birth_dates': ['19800101'],
            'sexes': ['M'],
            'other_patient_ids': [],
            'studies': 1,
            'last_study_date': '20240101',
        },
        'P9': {
            'names': ['<b>bold</b>'],
            'birth_dates': [],
            'sexes': [],
            'other_patient_ids': [],
            'studies': 1,
            'last_study_date': '',
        },
    },
}


def render(tmp_path, found):
    play = [
        {
            'hosts': 'localhost',
            'gather_facts': False,
            'tasks': [
                {
                    'ansible.builtin.template': {
                        'src': str(TEMPLATES / 'duplicates.html.j2'),
                        'dest': str(tmp_path / 'out.html'),
                        'mode': '0600',
                    }
                },
                {
                    'ansible.builtin.template': {
                        'src': str(TEMPLATES / 'merge-proposals.yml.j2'),
                        'dest': str(tmp_path / 'proposals.yml'),
                        'mode': '0600',
                    }
                },
            ],
        }
    ]
    (tmp_path / 'play.yml').write_text(json.dumps(play))
    (tmp_path / 'vars.json').write_text(json.dumps({'duplicates_found': found}))
    env = dict(
        os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false'
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / 'ansible-playbook'),
            '-i',
            'localhost,',
            '-c',
            'local',
            '-e',
            f'ansible_python_interpreter={sys.executable}',
            '-e',
            f"@{tmp_path / 'vars.json'}",
            str(tmp_path / 'play.yml'),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (tmp_path / 'out.html').read_text(), yaml.safe_load((tmp_path / 'proposals.yml').read_text())


def test_html_escapes_every_value(tmp_path):
    html, proposals = render(tmp_path, FOUND)
    assert '<script' not in html.lower()
    assert '<b>bold' not in html
    assert html.count('&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;') >= 6
    assert '&lt;b&gt;bold&lt;/b&gt;' in html
    assert 'C&#34;1' in html and '1.2&amp;3' in html
    assert "Content-Security-Policy" in html
    # why the group was formed: every pair with its reasons, escaped
    assert '<th>Why</th>' in html and '<li>same birth date</li>' in html
    assert '<li>PatientIDs from different issuers (A / &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;)</li>' in html
    assert 'P1 + P2&lt;script&gt;' in html
    assert proposals == {
        'merges': [
            {'target': 'P1', 'patient_ids': ['P1', f'P2{SCRIPT}'], 'score': 0.93, 'approved': False, 'force': False}
        ]
    }


def test_empty_report(tmp_path):
    empty = {k: ([] if isinstance(v, list) else v) for k, v in FOUND.items()}
    empty['patients'] = {}
    html, proposals = render(tmp_path, empty)
    assert 'None found.' in html
    assert proposals == {'merges': []}
