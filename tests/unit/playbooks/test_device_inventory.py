"""add_device.yml / remove_device.yml's inventory steps and the sheet, in real ansible-playbook runs (local
connection, no box): the plan (lookup clinicpacs.orthanc.inventory_devices) and tasks/inventory_write.yml,
tasks/inventory_patch.yml and tasks/connection_sheet.yml as the playbooks include them, and the pacs preflight's
check of pacs_dicom_address. Orthanc's side is tested in the Molecule fleet scenario.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CLINIC_VARS = """\
---
# Clinic A. Owner: Dr. Example.
pacs_orthanc_name: Clinic A
pacs_devices:
  # The panoramic X-ray in room 1.
  - name: pano
    aet: PANO
    host: 192.0.2.21
# Backups go to the NAS.
backup_target: nas
"""
DEVICE = {'name': 'sensor', 'aet': 'SENSOR', 'host': '192.0.2.23', 'type': 'intraoral sensor', 'allow_find': True}


def _inventory(tmp_path: Path, host_vars: str = CLINIC_VARS) -> Path:
    inv = tmp_path / 'inv'
    (inv / 'host_vars' / 'clinic-a').mkdir(parents=True)
    (inv / 'host_vars' / 'clinic-a' / 'main.yml').write_text(host_vars)
    (inv / 'hosts.yml').write_text('clinics:\n  hosts:\n    clinic-a:\n')
    return inv


def _play(tmp_path: Path, tasks: list, extra: dict | None = None) -> Path:
    play = [{'hosts': 'clinic-a', 'gather_facts': False, 'vars': {'pacs_devices': [], **(extra or {})}, 'tasks': tasks}]
    # A play directory of its own that sees the playbooks' tasks/, templates/ and files/ (never a file in the
    # work tree: lint runs beside the unit tests in make test).
    plays = tmp_path / 'plays'
    plays.mkdir(exist_ok=True)
    for sub in ('tasks', 'templates', 'files'):
        if not (plays / sub).exists():
            (plays / sub).symlink_to(REPO / 'playbooks' / sub)
    path = plays / f'play-{len(list(plays.glob("play-*.yml")))}.yml'
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _run(inv: Path, play: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0')
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inv / 'hosts.yml'), '-c', 'local',
           '-e', f'ansible_python_interpreter={sys.executable}', *args, str(play)]  # fmt: skip
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    finally:
        play.unlink()


def _add_tasks(device: dict, patch: bool = False) -> list:
    plan = {
        'name': 'Plan',
        'ansible.builtin.set_fact': {
            'plan': "{{ query('clinicpacs.orthanc.inventory_devices', inventory_hostname, device=device,"
            ' current=pacs_devices) | first }}'
        },
        'vars': {'device': device},
    }
    write = {'ansible.builtin.include_tasks': 'tasks/inventory_write.yml', 'vars': {'inventory_change': '{{ plan }}'}}
    show = {
        'ansible.builtin.include_tasks': 'tasks/inventory_patch.yml',
        'vars': {'inventory_change': '{{ plan }}', 'inventory_patch_name': 'clinic-a-sensor-add'},
    }
    return [plan, show if patch else write]


def test_check_mode_writes_nothing_and_diff_shows_the_change(tmp_path):
    inv = _inventory(tmp_path)
    run = _run(inv, _play(tmp_path, _add_tasks(DEVICE)), '--check', '--diff')
    assert run.returncode == 0, run.stdout[-3000:]
    assert (inv / 'host_vars/clinic-a/main.yml').read_text() == CLINIC_VARS
    assert '+  - name: sensor' in run.stdout and 'changed=1' in run.stdout


def test_add_writes_once_keeping_comments_then_nothing_changes(tmp_path):
    inv = _inventory(tmp_path)
    run = _run(inv, _play(tmp_path, _add_tasks(DEVICE)))
    assert run.returncode == 0, run.stdout[-3000:]
    text = (inv / 'host_vars/clinic-a/main.yml').read_text()
    assert text.startswith(CLINIC_VARS.split('# Backups', maxsplit=1)[0])
    assert text.endswith('    allow_find: true\n# Backups go to the NAS.\nbackup_target: nas\n')
    assert yaml.safe_load(text)['pacs_devices'][1] == DEVICE
    again = _run(inv, _play(tmp_path, _add_tasks(DEVICE)))
    assert again.returncode == 0 and 'changed=0' in again.stdout, again.stdout[-3000:]
    assert (inv / 'host_vars/clinic-a/main.yml').read_text() == text


def test_patch_option_prints_the_patch_and_writes_no_inventory_file(tmp_path):
    inv = _inventory(tmp_path)
    sheets = tmp_path / 'sheets'
    run = _run(inv, _play(tmp_path, _add_tasks(DEVICE, patch=True)), '-e', f'clinicpacs_sheet_dir={sheets}')
    assert run.returncode == 0, run.stdout[-3000:]
    assert (inv / 'host_vars/clinic-a/main.yml').read_text() == CLINIC_VARS
    patch = (sheets / 'clinic-a-sensor-add.patch').read_text()
    assert patch.startswith('--- a/host_vars/clinic-a/main.yml\n+++ b/host_vars/clinic-a/main.yml\n')
    assert '"+  - name: sensor"' in run.stdout
    subprocess.run(['patch', '-p1', '-i', str(sheets / 'clinic-a-sensor-add.patch')], cwd=inv, check=True,
                   capture_output=True)  # fmt: skip
    assert yaml.safe_load((inv / 'host_vars/clinic-a/main.yml').read_text())['pacs_devices'][1] == DEVICE


def test_a_vaulted_host_vars_file_is_refused_and_untouched(tmp_path):
    inv = _inventory(tmp_path)
    vault_pw = tmp_path / 'vault-pw'
    vault_pw.write_text('unit-test-only\n')
    secret = inv / 'host_vars/clinic-a/main.yml'
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / 'ansible-vault'), 'encrypt', '--vault-password-file', str(vault_pw), str(secret)],
                   check=True, capture_output=True)  # fmt: skip
    before = secret.read_bytes()
    run = _run(inv, _play(tmp_path, _add_tasks(DEVICE)), '--vault-password-file', str(vault_pw))
    assert run.returncode != 0
    assert 'vaulted files are never written' in run.stdout and 'Traceback' not in run.stdout + run.stderr
    assert secret.read_bytes() == before and sorted(p.name for p in secret.parent.iterdir()) == ['main.yml']


def _address_task() -> dict:
    preflight = yaml.safe_load((REPO / 'roles/pacs/tasks/preflight.yml').read_text())
    (task,) = [t for t in preflight if 'pacs_dicom_address' in t['name']]
    return task


def test_preflight_refuses_a_loopback_dicom_address_with_the_rule(tmp_path):
    inv = _inventory(tmp_path)
    extra = {'pacs_dicom_address': '127.0.0.1', 'pacs_management_addresses': []}
    run = _run(inv, _play(tmp_path, [_address_task()], extra))
    assert run.returncode != 0
    assert "pacs: pacs_dicom_address '127.0.0.1' is a loopback address: pacs_dicom_address must be" in run.stdout


def test_preflight_requires_the_address_for_add_device_and_accepts_a_lan_address(tmp_path):
    inv = _inventory(tmp_path)
    needed = {'pacs_dicom_address': '', 'pacs_management_addresses': [], '_pacs_dicom_address_required': True}
    run = _run(inv, _play(tmp_path, [_address_task()], needed))
    assert run.returncode != 0 and 'pacs_dicom_address is not set' in run.stdout
    lan = {'pacs_dicom_address': '192.0.2.10', 'pacs_management_addresses': ['10.8.0.5']}
    run = _run(inv, _play(tmp_path, [_address_task()], lan))
    assert run.returncode == 0, run.stdout[-3000:]


def test_sheet_names_the_clinic_lan_address_and_the_rights(tmp_path):
    inv = _inventory(tmp_path)
    sheets = tmp_path / 'sheets'
    device = {'name': 'sensor', 'aet': 'SENSOR', 'host': '192.0.2.23', 'type': 'intraoral sensor'}
    extra = {
        'pacs_dicom_address': '192.0.2.10',
        'ansible_host': '10.8.0.5',  # the MSP's VPN: never on the sheet
        'pacs_orthanc_name': 'Clinic A',
        'pacs_orthanc_aet': 'ORTHANC',
        'pacs_dicom_port': 4242,
        'pacs_server_name': 'pacs.clinic-a.lan',
        'pacs_public_https_port': 443,
        'clinicpacs_sheet_dir': str(sheets),
    }
    effective = "{{ [device] | clinicpacs.orthanc.orthanc_modality_options | first | combine(device) }}"
    task = {
        'ansible.builtin.include_tasks': 'tasks/connection_sheet.yml',
        'vars': {'device': device, 'sheet_device': effective},
    }
    run = _run(inv, _play(tmp_path, [task], extra))
    assert run.returncode == 0, run.stdout[-3000:]
    md = (sheets / 'clinic-a-sensor.md').read_text()
    html = (sheets / 'clinic-a-sensor.html').read_text()
    assert '| PACS address on the clinic network (IP or host name) | `192.0.2.10` |' in md
    assert '<td><code>192.0.2.10</code></td>' in html and '10.8.0.5' not in md + html
    rights = {line.split('|')[1].strip(): line.split('|')[2].strip() for line in md.splitlines() if '(C-' in line}
    assert rights == {
        'Verify the connection (C-ECHO)': 'yes',
        'Send images (C-STORE)': 'yes',
        'Query the PACS (C-FIND)': 'no',
        'Retrieve from the PACS (C-MOVE / C-GET)': 'no',
        'Query the worklist (C-FIND worklist)': 'no',
    }
    assert json.dumps('Storage commitment (N-ACTION / N-EVENT-REPORT)')[1:-1] in md
