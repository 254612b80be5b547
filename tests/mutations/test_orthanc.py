# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Orthanc's security settings (roles/pacs/vars/main.yml ``_pacs_orthanc_config_base``, roles/pacs/defaults)
in a real Orthanc 1.13.0, probed over REST and over DICOM with Debian's dcmtk from the host.

The host reaches Orthanc on the session network from the bridge address, so Orthanc sees it as that address:
device GOOD is registered with it, device FAR with another address of the network. Every refusal is checked
next to the same request that must succeed, so a broken test bed cannot pass for a refusal.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from .conftest import API, DEVICE_HOST

SAMPLE = Path(__file__).resolve().parents[1] / 'data' / 'dicom' / 'DummyCT.dcm'


@pytest.fixture(scope='module')
def devices(orthanc, network):
    for name, host in (('GOOD', network.gateway), ('FAR', network.ip(DEVICE_HOST))):
        body = {'AET': name, 'Host': host, 'Port': 104}
        response = orthanc.request('PUT', f'/modalities/{name.lower()}', json=body)
        assert response.status_code == 200, response.text
    return orthanc


def dcmtk(tool: str, orthanc, calling: str, called: str = 'ORTHANC', files=()) -> subprocess.CompletedProcess:
    cmd = [f'/usr/bin/{tool}', '-aet', calling, '-aec', called, '-to', '10', '-ta', '10', '-td', '10']
    cmd += [orthanc.ip, '4242', *[str(f) for f in files]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def fresh_instance(tmp_path) -> tuple[Path, str]:
    """The sample with a new SOP Instance UID (a store that is refused must not find it already stored)."""
    ds = copy.deepcopy(pydicom.dcmread(SAMPLE))
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    path = tmp_path / f'{uid}.dcm'
    ds.save_as(path)
    return path, uid


def stored(orthanc, uid: str) -> bool:
    response = orthanc.request('POST', '/tools/lookup', data=uid)
    response.raise_for_status()
    return bool(response.json())


def store(orthanc, tmp_path, calling: str, called: str = 'ORTHANC') -> tuple[bool, str]:
    path, uid = fresh_instance(tmp_path)
    res = dcmtk('storescu', orthanc, calling, called, [path])
    return stored(orthanc, uid), (res.stdout + res.stderr).strip()[-400:]


# ------------------------------------------------------------------------------------------------------------
# REST
# ------------------------------------------------------------------------------------------------------------


def test_rest_api_requires_authentication(orthanc):
    assert orthanc.request('GET', '/system').status_code == 200
    anonymous = orthanc.request('GET', '/system', auth=None)
    assert anonymous.status_code == 401, f'anonymous GET /system answered {anonymous.status_code}'
    wrong = orthanc.request('GET', '/system', auth=(API[0], 'not-the-password'))
    assert wrong.status_code == 401, f'a wrong password answered {wrong.status_code}'


def test_no_lua_execution_over_rest(orthanc):
    response = orthanc.request('POST', '/tools/execute-script', data='print(42)')
    assert response.status_code == 403, f'POST /tools/execute-script answered {response.status_code}: {response.text}'


def test_rest_api_cannot_write_to_the_filesystem(orthanc, tmp_path):
    path, _uid = fresh_instance(tmp_path)
    upload = orthanc.request('POST', '/instances', data=path.read_bytes())
    assert upload.status_code == 200, upload.text
    instance = upload.json()['ID']
    response = orthanc.request('POST', f'/instances/{instance}/export', data='/tmp/exported.dcm')
    assert response.status_code == 403, f'POST /instances/../export answered {response.status_code}'


def test_no_webdav(orthanc):
    assert orthanc.request('GET', '/system').status_code == 200
    response = orthanc.request('PROPFIND', '/webdav/', headers={'Depth': '1'})
    assert response.status_code not in (200, 207), f'WebDAV answered PROPFIND with {response.status_code}'


# ------------------------------------------------------------------------------------------------------------
# DICOM
# ------------------------------------------------------------------------------------------------------------


def test_unregistered_device_cannot_echo(devices):
    assert dcmtk('echoscu', devices, 'GOOD').returncode == 0
    res = dcmtk('echoscu', devices, 'STRANGER')
    assert res.returncode != 0, 'C-ECHO from an unregistered AE title was answered'


def test_unregistered_device_cannot_query(devices, tmp_path):
    ok, out = store(devices, tmp_path, 'GOOD')  # something to find
    assert ok, out
    query = ['-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID']
    good = dcmtk('findscu', devices, 'GOOD', files=query)
    assert good.returncode == 0 and 'StudyInstanceUID' in good.stderr + good.stdout, good.stderr[-400:]
    res = dcmtk('findscu', devices, 'STRANGER', files=query)
    answered = 'StudyInstanceUID' in res.stderr + res.stdout
    assert res.returncode != 0 and not answered, 'C-FIND from an unregistered AE title was answered'


def test_unregistered_device_cannot_store(devices, tmp_path):
    ok, out = store(devices, tmp_path, 'GOOD')
    assert ok, f'the registered device could not store: {out}'
    ok, out = store(devices, tmp_path, 'STRANGER')
    assert not ok, 'an unregistered AE title stored an instance'


def test_device_stores_only_from_its_registered_address(devices, tmp_path):
    ok, out = store(devices, tmp_path, 'GOOD')
    assert ok, f'the registered device could not store: {out}'
    ok, out = store(devices, tmp_path, 'FAR')
    assert not ok, "a registered AE title stored from another address than its device's"


def test_called_ae_title_is_checked(devices, tmp_path):
    ok, out = store(devices, tmp_path, 'GOOD')
    assert ok, f'the registered device could not store: {out}'
    ok, out = store(devices, tmp_path, 'GOOD', called='NOT_ORTHANC')
    assert not ok, 'a store calling another AE title than Orthanc\'s was accepted'
