"""Helpers of the duplicate-patient integration tests: load the real samples, run a collection playbook."""

import json
import os
import subprocess
import sys

import requests

from .conftest import ANSIBLE, COLLECTIONS, ROOT

SAMPLES = ROOT / 'tests' / 'data' / 'dicom'
# 2017-06-27-XSSInjection.dcm and DummyCT.dcm share a SOPInstanceUID: the first one sent is kept. The XSS file
# goes first so that its <script> PatientName reaches Orthanc and the HTML report has to escape it.
FIRST = '2017-06-27-XSSInjection.dcm'


def sample_files():
    files = sorted(p for p in SAMPLES.rglob('*') if p.is_file() and p.name != 'README.md')
    files.sort(key=lambda p: p.name != FIRST)
    return files


def clear(stack):
    """Delete every patient (the integration stack is shared by the whole session)."""
    for pid in stack.get('/patients').json():
        requests.delete(stack.url + f'/patients/{pid}', auth=stack.auth, timeout=60).raise_for_status()


def load_samples(stack):
    """Empty Orthanc, then send every sample file; return the number of instances stored."""
    clear(stack)
    for path in sample_files():
        response = requests.post(stack.url + '/instances', data=path.read_bytes(), auth=stack.auth, timeout=60)
        assert response.status_code == 200, (path, response.status_code, response.text)
    return stack.get('/statistics').json()['CountInstances']


def statistics(stack):
    return stack.get('/statistics').json()


def patients_by_id(stack):
    """PatientID -> expanded patient of Orthanc."""
    return {p['MainDicomTags'].get('PatientID', ''): p for p in stack.get('/patients?expand').json()}


def run_playbook(name, stack, extra_vars, check=False):
    """Run playbooks/<name>.yml against localhost with the stack's connection; return (rc, json output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('ORTHANC_')}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        PATH='/usr/bin:' + env.get('PATH', ''),
    )
    variables = {
        'clinicpacs_target': 'localhost',
        'ansible_python_interpreter': sys.executable,
    }
    variables.update(extra_vars)
    cmd = [ANSIBLE + '-playbook', '-i', 'localhost,', '-c', 'local', '-e', json.dumps(variables),
           str(ROOT / 'playbooks' / f'{name}.yml')]  # fmt: skip
    if check:
        cmd.append('--check')
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f'unexpected ansible output:\n{proc.stdout}\n{proc.stderr}') from None
    return proc.returncode, out


def task_results(out, task_name):
    """The localhost result of the task named ``task_name`` in the first play."""
    for task in out['plays'][0]['tasks']:
        if task['task']['name'] == task_name:
            return task['hosts']['localhost']
    raise AssertionError(f'task {task_name!r} not in the output')
