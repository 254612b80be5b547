"""add_device.yml / remove_device.yml run through ansible-runner (what AWX and AAP use) against a real Orthanc.

The clinic is the integration stack's Orthanc + PostgreSQL (conftest.py), reached over its published REST port
from a ``local`` connection; a simulated device (clinicpacs/devicesim, a C-ECHO/C-STORE SCP) runs on the
stack's network. Checked: the device is registered and answers Orthanc's C-ECHO, Orthanc was not restarted
(container start time unchanged), the device then stores a study, the connection sheets are written and
escaped, invalid input is refused with a message naming the field, and remove_device.yml removes it. Both write
the clinic's inventory (host_vars/clinic-it/devices.yml next to the runner's inventory file).
"""

import json
import sys
import time
import uuid
from pathlib import Path

import ansible_runner
import pydicom
import pytest
import requests
import yaml
from pydicom.uid import generate_uid

from .conftest import COLLECTIONS, ROOT, docker

pytestmark = pytest.mark.integration

DEVICESIM = 'clinicpacs/devicesim:trixie'
SAMPLE = ROOT / 'tests' / 'data' / 'dicom' / 'Comunix' / 'Ct' / 'IM-0001-0001.dcm'
HOSTILE = 'Praxis <script>document.title="XSS"</script> & Co'


@pytest.fixture(scope='module')
def device(stack):
    if docker('image', 'inspect', DEVICESIM, check=False).returncode != 0:
        pytest.fail(f'image {DEVICESIM} is missing: run `bash tests/images/build.sh`')
    name = f'cpo-fleet-sim-{uuid.uuid4().hex[:8]}'
    docker('run', '-d', '--name', name, '--network', stack.network, '-e', 'DEVICE_AET=SIMDEV1',
           DEVICESIM, 'device', 'serve')  # fmt: skip
    # The simulator needs a moment (more on a loaded machine) before it listens: wait for its own C-ECHO.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe = docker('exec', name, 'device', '--host', '127.0.0.1', '--port', '11112', '--called', 'SIMDEV1',
                       '--timeout', '5', 'echo', check=False)  # fmt: skip
        if probe.returncode == 0:
            break
        time.sleep(1)
    else:
        docker('rm', '-f', name, check=False)
        pytest.fail(f'device simulator {name} did not answer a C-ECHO within 60 s')
    try:
        yield name
    finally:
        docker('rm', '-f', name, check=False)


def started_at(container):
    return docker('inspect', '-f', '{{.State.StartedAt}}', container).stdout.strip()


def run_playbook(tmp_path, stack, playbook, extravars):
    port = stack.url.rsplit(':', 1)[1]
    inventory = {
        'clinics': {
            'hosts': {
                'clinic-it': {
                    'ansible_connection': 'local',
                    'ansible_python_interpreter': sys.executable,
                    'ansible_become': False,
                    'pacs_rest_port': int(port),
                    'pacs_api_username': stack.auth[0],
                    'pacs_api_password': stack.auth[1],
                    'pacs_postgres_password': 'not-used-here-postgres',
                    'pacs_admin_password': 'not-used-here-admin',
                    'pacs_orthanc_aet': 'ORTHANC',
                    'pacs_server_name': 'pacs.clinic-it.test',
                    'clinic_display_name': HOSTILE,
                    'pacs_dicom_address': '192.0.2.50',
                    'clinicpacs_sheet_dir': str(tmp_path / 'sheets'),
                }
            }
        }
    }
    (tmp_path / 'inventory').mkdir(exist_ok=True)
    (tmp_path / 'inventory' / 'hosts.yml').write_text(yaml.safe_dump(inventory))
    env = {
        'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS),
        'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'false',
        'ANSIBLE_NOCOLOR': '1',
        'PATH': f'{Path(sys.executable).parent}:/usr/bin:/bin',
    }
    (tmp_path / 'runner').mkdir(exist_ok=True)
    result = ansible_runner.run(
        private_data_dir=str(tmp_path / 'runner'),
        playbook=str(ROOT / 'playbooks' / playbook),
        inventory=str(tmp_path / 'inventory' / 'hosts.yml'),
        extravars=extravars,
        envvars=env,
        quiet=True,
        timeout=300,
    )
    return result


def task_results(result, task_name):
    return [
        e['event_data']['res']
        for e in result.events
        if e.get('event') in ('runner_on_ok', 'runner_on_failed') and e['event_data'].get('task') == task_name
    ]


def test_add_store_and_remove_device_through_ansible_runner(tmp_path, stack, device):
    before = started_at(stack.orthanc)
    # The device as the inventory describes it: Orthanc's options plus type/vendor/location for people.
    new_device = {
        'name': 'SIMDEV1',
        'aet': 'SIMDEV1',
        'host': device,
        'port': 11112,
        'allow_move': False,
        'type': 'intraoral scanner',
        'vendor': 'Sim',
        'location': 'room 3',
    }
    result = run_playbook(tmp_path, stack, 'add_device.yml', {'clinic': 'clinic-it', 'device': new_device})
    assert result.status == 'successful', result.stdout.read()
    assert result.rc == 0
    applied = task_results(result, 'Register the device in Orthanc (no restart) and check it answers a C-ECHO')
    assert applied and applied[0]['changed'] is True
    assert applied[0]['echo'] == {'SIMDEV1': 'ok'}
    assert stack.modalities()['SIMDEV1']['AET'] == 'SIMDEV1'
    # Least privilege: no allow_find/allow_get given, so neither is granted.
    assert not stack.modalities()['SIMDEV1']['AllowFind'] and not stack.modalities()['SIMDEV1']['AllowGet']
    assert started_at(stack.orthanc) == before, 'Orthanc was restarted'
    # The inventory is the truth: the device entry went into a new host_vars file of the clinic.
    devices_file = tmp_path / 'inventory' / 'host_vars' / 'clinic-it' / 'devices.yml'
    assert yaml.safe_load(devices_file.read_text())['pacs_devices'] == [new_device]

    # The device stores a study (a sample with fresh UIDs, so that it is new to this Orthanc).
    study_dir = tmp_path / 'study'
    study_dir.mkdir()
    ds = pydicom.dcmread(SAMPLE)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(study_dir / 'new.dcm')
    (study_dir / 'new.dcm').chmod(0o644)
    study_dir.chmod(0o755)
    docker('run', '--rm', '--network', stack.network, '-v', f'{study_dir}:/data:ro', '-e', 'DEVICE_AET=SIMDEV1',
           DEVICESIM, 'device', '--host', stack.orthanc, '--called', 'ORTHANC', 'store', '/data')  # fmt: skip
    found = requests.post(
        stack.url + '/tools/find',
        json={'Level': 'Instance', 'Query': {'SOPInstanceUID': str(ds.SOPInstanceUID)}},
        auth=stack.auth,
        timeout=10,
    ).json()
    assert len(found) == 1
    assert stack.get(f'/instances/{found[0]}/metadata/RemoteAET').text == 'SIMDEV1'

    sheets = tmp_path / 'sheets'
    md = (sheets / 'clinic-it-SIMDEV1.md').read_text()
    page = (sheets / 'clinic-it-SIMDEV1.html').read_text()
    for text in (md, page):
        assert '<script>' not in text
        assert '&lt;script&gt;' in text
        assert '`ORTHANC`' in text or '<code>ORTHANC</code>' in text
        assert '192.0.2.50' in text and '4242' in text and 'SIMDEV1' in text
        assert 'intraoral scanner (Sim)' in text and 'room 3' in text
    assert "default-src 'none'" in page

    # Running it again changes nothing and still checks the device with a C-ECHO.
    again = run_playbook(tmp_path, stack, 'add_device.yml', {'clinic': 'clinic-it', 'device': new_device})
    assert again.status == 'successful'
    assert again.stats['changed'].get('clinic-it', 0) == 0
    assert started_at(stack.orthanc) == before

    removed = run_playbook(tmp_path, stack, 'remove_device.yml', {'clinic': 'clinic-it', 'device_name': 'SIMDEV1'})
    assert removed.status == 'successful', removed.stdout.read()
    assert 'SIMDEV1' not in stack.modalities()
    assert yaml.safe_load(devices_file.read_text())['pacs_devices'] == []
    assert 'no longer has access' in (sheets / 'clinic-it-SIMDEV1.md').read_text()
    assert started_at(stack.orthanc) == before


@pytest.mark.parametrize(
    ('device', 'field'),
    [
        ({'name': 'BAD', 'aet': 'THIS_AE_TITLE_IS_TOO_LONG', 'host': '192.0.2.9'}, 'aet=THIS_AE_TITLE_IS_TOO_LONG'),
        ({'name': 'bad name', 'aet': 'OK', 'host': '192.0.2.9'}, 'name=bad name'),
        ({'name': 'NOHOST', 'aet': 'OK'}, 'host=(missing)'),
    ],
)
def test_invalid_device_is_refused_before_anything_is_written(tmp_path, stack, device, field):
    result = run_playbook(tmp_path, stack, 'add_device.yml', {'clinic': 'clinic-it', 'device': device})
    assert result.status == 'failed'
    failed = [e for e in result.events if e.get('event') == 'runner_on_failed']
    assert failed and field in json.dumps(failed[0]['event_data']['res'].get('msg'))
    assert device['name'] not in stack.modalities()
    assert not (tmp_path / 'sheets').exists()
