"""Modality worklist from the practice's appointments, end to end on a real Orthanc 1.13.0.

Orthanc runs with the orthanc.json that the pacs role renders with ``pacs_worklist_enabled: true`` (the
role's image step finds the worklist plugin in the image); only the index is SQLite here instead of the
PostgreSQL plugin, to keep the test short. ``playbooks/worklist_sync.yml`` loads a CSV export, and a
simulated device queries the worklist with dcmtk's ``findscu -W`` and with pynetdicom from the test host:
Orthanc sees the host with the network's gateway address, which is where the devices are registered
(``DicomCheckModalityHost`` is on in the rendered configuration).
"""

import copy
import csv
import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pydicom
import pytest
import requests
import yaml
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind

from .conftest import COLLECTIONS, ORTHANC_UID, ROOT, docker

sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_worklist import (
    encode_entry,
    file_name,
    normalize_entry,
    write_atomic,
)

pytestmark = pytest.mark.integration

IMAGE = os.environ.get('ORTHANC_IMAGE', 'clinicpacs/orthanc:1.13.0')
TODAY = datetime.date.today().strftime('%Y%m%d')
YESTERDAY = (datetime.date.today() - datetime.timedelta(days=1)).strftime('%Y%m%d')
SAMPLE = ROOT / 'tests' / 'data' / 'dicom' / 'DummyCT.dcm'
USER = ('ansible', 'wl-' + secrets.token_hex(8))

# 20 appointments of today: accents, apostrophes, a hyphen; 12 for the panoramic unit, 8 for the CBCT.
NAMES = [
    "Dupont^Hélène",
    "O'Brien^Seán",
    "Müller^Jürgen",
    "D'Alembert^Zoé",
    "Ibáñez^Nuño",
    "Çelik^Ayşe",
    "Ødegård^Bjørn",
    "Lefèvre^Gaëlle",
    "Núñez^José",
    "Dvořák^Antonín",
    "L'Hôpital^Renée",
    "Weiß^Günther",
    "Smith-Jones^Mary",
    "Åström^Mårten",
    "Brontë^Charlotte",
    "Ó Súilleabháin^Pádraig",
    "Garçon^François",
    "Zoë^Chloé",
    "N'Diaye^Aïssatou",
    "Kowalczyk^Zażółć",
]
STATIONS = ['PANO01'] * 12 + ['CBCT02'] * 8


def appointments():
    rows = []
    for index, name in enumerate(NAMES):
        rows.append(
            {
                'PatNr': f'P{1000 + index}',
                'Name': name,
                'Geburtsdatum': f'19{50 + index}-0{1 + index % 9}-1{index % 9}',
                'Sex': 'MF'[index % 2],
                'Termin': f'A{TODAY}{index:02d}',
                'Geraet': STATIONS[index],
                'Datum': f'{TODAY[:4]}-{TODAY[4:6]}-{TODAY[6:]}',
                'Zeit': f'{8 + index // 4:02d}:{(index % 4) * 15:02d}',
                'Leistung': 'Panoramique dentaire' if STATIONS[index] == 'PANO01' else 'DVT Oberkiefer',
            }
        )
    return rows


BAD_ROWS = [
    # (row content changes, the words the reason must hold)
    ({'PatNr': ''}, 'patient_id (PatientID) is required'),
    ({'Datum': f'{TODAY[:4]}-02-30'}, 'is not a calendar date'),
    ({'Name': 'Vandenberghe-Oosterhuis-' + 'x' * 40 + '^Anne'}, 'more than the 64 of a PN component group'),
]
COLUMNS = {
    'patient_id': 'PatNr',
    'patient_name': 'Name',
    'patient_birth_date': 'Geburtsdatum',
    'patient_sex': 'Sex',
    'accession_number': 'Termin',
    'station_aet': 'Geraet',
    'start_date': 'Datum',
    'start_time': 'Zeit',
    'procedure_description': 'Leistung',
}


def write_csv(path, rows):
    with open(path, 'w', encoding='utf-8', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=';')
        writer.writeheader()
        writer.writerows(rows)


class Clinic:
    def __init__(self, tmp):
        self.tmp = tmp
        self.tag = uuid.uuid4().hex[:8]
        self.network = f'cpo-h19-wl-{self.tag}'
        self.container = f'cpo-h19-wl-orthanc-{self.tag}'
        self.data = tmp / 'data'
        self.config = tmp / 'config'
        self.worklists = self.data / 'orthanc' / 'worklists'
        self.ip = None
        self.gateway = None

    @property
    def url(self):
        return f'http://{self.ip}:8042'

    def inventory(self, **extra):
        host = {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'ansible_become': False,
            'pacs_data_dir': str(self.data),
            'pacs_orthanc_image': IMAGE,
            'pacs_worklist_enabled': True,
            'worklist_sync_columns': COLUMNS,
            'worklist_sync_defaults': {'modality': 'PX'},
        }
        host.update(extra)
        path = self.tmp / 'hosts.yml'
        path.write_text(yaml.safe_dump({'clinics': {'hosts': {'clinic-wl': host}}}))
        return path

    def playbook(self, playbook, extravars=None, check=False):
        env = dict(os.environ)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
            ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
            ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
            ANSIBLE_NOCOLOR='1',
            PATH=f'/usr/bin:{Path(sys.executable).parent}:/bin',
        )
        cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(self.inventory()), str(playbook)]
        for key, value in (extravars or {}).items():
            cmd += ['-e', json.dumps({key: value})]
        if check:
            cmd.append('--check')
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f'ansible-playbook output is not JSON:\n{proc.stdout}\n{proc.stderr}') from None
        tasks = {}
        for play in out['plays']:
            for task in play['tasks']:
                tasks.setdefault(task['task']['name'], []).append(next(iter(task['hosts'].values())))
        return proc.returncode, tasks, out['stats']

    def register(self, name, aet, allow_find_worklist=True):
        body = {'AET': aet, 'Host': self.gateway, 'Port': 104, 'AllowFindWorklist': allow_find_worklist}
        response = requests.put(f'{self.url}/modalities/{name}', json=body, auth=USER, timeout=10)
        response.raise_for_status()


def render_config(clinic):
    """The pacs role's orthanc.json for a worklist clinic, through the role's own image step."""
    play = clinic.tmp / 'render.yml'
    play.write_text(
        yaml.safe_dump(
            [
                {
                    'name': 'Render the role configuration',
                    'hosts': 'clinics',
                    'gather_facts': False,
                    'tasks': [
                        {
                            'name': 'memory and cores (the role sizes its settings from them)',
                            'ansible.builtin.setup': {
                                'gather_subset': ['!all', '!min', 'hardware'],
                                'filter': ['ansible_memtotal_mb', 'ansible_processor_vcpus'],
                            },
                        },
                        {
                            'name': 'image step',
                            'ansible.builtin.include_role': {
                                'name': 'clinicpacs.orthanc.pacs',
                                'tasks_from': 'version.yml',
                                'public': True,
                            },
                        },
                        {
                            'name': 'write orthanc.json',
                            'ansible.builtin.copy': {
                                'content': '{{ _pacs_orthanc_config | to_nice_json }}',
                                'dest': str(clinic.config / 'orthanc.json'),
                                'mode': '0644',
                            },
                        },
                    ],
                }
            ]
        )
    )
    rc, tasks, _stats = clinic.playbook(play)
    assert rc == 0, json.dumps(tasks, indent=1)[-3000:]
    config = json.loads((clinic.config / 'orthanc.json').read_text())
    assert config['Worklists']['Enable'] is True
    assert config['Worklists']['Database'] == '/var/lib/orthanc/db/worklists'
    assert config['Worklists']['FilterIssuerAet'] is True
    assert any(p.endswith('/libModalityWorklists.so') for p in config['Plugins'])
    assert config['DefaultEncoding'] == 'Utf8'
    assert config['DicomAlwaysAllowFindWorklist'] is False
    assert config['DicomCheckModalityHost'] is True
    # Test only: SQLite index instead of the PostgreSQL plugin (no database container to wait for).
    config['Plugins'] = [p for p in config['Plugins'] if 'PostgreSQL' not in p]
    (clinic.config / 'orthanc.json').write_text(json.dumps(config, indent=2))
    (clinic.config / 'users.json').write_text(json.dumps({'RegisteredUsers': {USER[0]: USER[1]}}))
    for name in ('orthanc.json', 'users.json'):
        (clinic.config / name).chmod(0o600)
        os.chown(clinic.config / name, ORTHANC_UID, ORTHANC_UID)


@pytest.fixture(scope='module')
def clinic():
    if docker('image', 'inspect', IMAGE, check=False).returncode != 0:
        pytest.fail(f'image {IMAGE} is missing: run `bash tests/images/build.sh`')
    tmp = Path(tempfile.mkdtemp(prefix='cpo-h19-wl-'))
    cl = Clinic(tmp)
    try:
        cl.config.mkdir()
        (cl.data / 'orthanc').mkdir(parents=True)
        os.chown(cl.data / 'orthanc', ORTHANC_UID, ORTHANC_UID)
        cl.worklists.mkdir(mode=0o750)
        os.chown(cl.worklists, ORTHANC_UID, ORTHANC_UID)
        render_config(cl)
        docker('network', 'create', cl.network)
        docker('run', '-d', '--name', cl.container, '--network', cl.network, '--user', f'{ORTHANC_UID}:{ORTHANC_UID}',
               '-v', f'{cl.config}:/etc/orthanc:ro', '-v', f'{cl.data}/orthanc:/var/lib/orthanc/db',
               IMAGE, 'Orthanc', '/etc/orthanc/')  # fmt: skip
        cl.ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
                       cl.container).stdout.strip()  # fmt: skip
        cl.gateway = docker('network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', cl.network).stdout.strip()
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(cl.url + '/system', auth=USER, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                logs = docker('logs', '--tail', '40', cl.container, check=False)
                raise AssertionError(f'Orthanc did not start:\n{logs.stdout}{logs.stderr}')
            time.sleep(0.3)
        cl.register('pano', 'PANO01')
        cl.register('cbct', 'CBCT02')
        cl.register('viewer', 'VIEWER1', allow_find_worklist=False)
        yield cl
    finally:
        docker('rm', '-f', '-v', cl.container, check=False)
        docker('network', 'rm', cl.network, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def sync(clinic, rows, today=TODAY, check=False):
    export = clinic.tmp / f'appointments-{uuid.uuid4().hex[:6]}.csv'
    write_csv(export, rows)
    rc, tasks, stats = clinic.playbook(
        ROOT / 'playbooks' / 'worklist_sync.yml',
        {'worklist_sync_source': str(export), 'worklist_sync_today': today},
        check=check,
    )
    assert rc == 0, json.dumps(tasks, indent=1)[-4000:]
    return task(tasks, 'Make the worklist match the appointments'), tasks, stats


def task(tasks, name):
    """The first result of a task (a role's task is named '<role> : <name>')."""
    return next(results[0] for full, results in tasks.items() if full.split(' : ')[-1] == name)


def findscu(clinic, aet, station, date, tmp_path):
    out = tmp_path / f'find-{aet}-{uuid.uuid4().hex[:4]}'
    out.mkdir()
    cmd = ['/usr/bin/findscu', '-W', '-aet', aet, '-aec', 'ORTHANC', '-X', '-od', str(out),
           '-k', 'SpecificCharacterSet=ISO_IR 192', '-k', 'PatientName', '-k', 'PatientID', '-k', 'PatientBirthDate',
           '-k', 'PatientSex', '-k', 'AccessionNumber', '-k', 'StudyInstanceUID',
           '-k', 'ScheduledProcedureStepSequence[0].Modality',
           '-k', f'ScheduledProcedureStepSequence[0].ScheduledStationAETitle={station}',
           '-k', f'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={date}',
           '-k', 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime',
           clinic.ip, '4242']  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return proc, [pydicom.dcmread(p) for p in sorted(out.glob('*.dcm'))]


def pynetdicom_find(clinic, aet, station, date):
    query = Dataset()
    query.SpecificCharacterSet = 'ISO_IR 192'
    for keyword in (
        'PatientName',
        'PatientID',
        'PatientBirthDate',
        'PatientSex',
        'AccessionNumber',
        'StudyInstanceUID',
    ):
        setattr(query, keyword, '')
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.Modality = ''
    query.ScheduledProcedureStepSequence = [step]
    ae = AE(ae_title=aet)
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate(clinic.ip, 4242, ae_title='ORTHANC')
    if not assoc.is_established:
        return None
    found = []
    try:
        for status, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            if status and status.Status in (0xFF00, 0xFF01) and identifier is not None:
                found.append(identifier)
    finally:
        assoc.release()
    return found


def expected(station):
    return {(f'P{1000 + i}', NAMES[i], f'A{TODAY}{i:02d}') for i in range(len(NAMES)) if STATIONS[i] == station}


def test_worklist_from_appointments_end_to_end(clinic, tmp_path):
    # Yesterday's appointments, as yesterday's sync left them (written with the module's own encoder).
    for i in range(2):
        entry, problems = normalize_entry(
            {
                'patient_id': f'P{1000 + i}',
                'patient_name': NAMES[i],
                'accession_number': f'Y{YESTERDAY}{i}',
                'station_aet': 'PANO01',
                'modality': 'PX',
                'start_date': YESTERDAY,
            }
        )
        assert not problems
        write_atomic(str(clinic.worklists), file_name(entry), encode_entry(entry), ORTHANC_UID, ORTHANC_UID)
    assert len(pynetdicom_find(clinic, 'PANO01', 'PANO01', YESTERDAY)) == 2
    # An entry of today for a registered device without allow_find_worklist: it must not get it. The export does
    # not list it, so the sync removes it (exclusive per day).
    viewer, _problems = normalize_entry(
        {
            'patient_id': 'P9',
            'patient_name': 'Viewer^Only',
            'accession_number': f'V{TODAY}',
            'station_aet': 'VIEWER1',
            'modality': 'PX',
            'start_date': TODAY,
        }
    )
    write_atomic(str(clinic.worklists), file_name(viewer), encode_entry(viewer), ORTHANC_UID, ORTHANC_UID)
    assert not pynetdicom_find(clinic, 'VIEWER1', 'VIEWER1', TODAY)
    rows = appointments()
    bad = []
    for change, _reason in BAD_ROWS:
        bad.append(dict(rows[0], Termin=f'BAD{len(bad)}', **change))
    export_rows = rows[:5] + bad + rows[5:]  # bad rows are rows 7, 8 and 9 of the file (header = row 1)

    # 1. The sync loads the 20 good rows, reports the 3 bad ones with row and reason, expires yesterday's.
    result, tasks, _stats = sync(clinic, export_rows)
    assert len(result['created']) == 20 and result['entries'] == 20
    assert sorted(result['expired']) == [f'Y{YESTERDAY}0', f'Y{YESTERDAY}1']
    assert result['removed'] == [f'V{TODAY}']
    reports = [
        r['msg']
        for r in task(tasks, 'Report the rows that were refused (they are skipped; the good rows load)')['results']
    ]
    assert len(reports) == 3
    for number, (report, (_change, reason)) in enumerate(zip(reports, BAD_ROWS, strict=True), start=7):
        assert f'row {number} skipped: ' in report and reason in report, report
    files = sorted(os.listdir(clinic.worklists))
    assert len(files) == 20 and all(f.startswith(TODAY) for f in files)
    for name in files:
        st = (clinic.worklists / name).stat()
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, ORTHANC_UID, ORTHANC_UID)
    # The files read back with pydicom and dcmtk.
    ds = pydicom.dcmread(clinic.worklists / files[1])
    assert ds.SpecificCharacterSet == 'ISO_IR 192'
    dump = subprocess.run(
        ['/usr/bin/dcmdump', str(clinic.worklists / files[1])], capture_output=True, text=True, check=True
    )
    assert 'ScheduledStationAETitle' in dump.stdout and 'ISO_IR 192' in dump.stdout

    # 6. A second sync changes nothing.
    result, _tasks, stats = sync(clinic, export_rows)
    assert not result['changed'] and stats['clinic-wl']['changed'] == 0

    # 2. The device queries with findscu -W and with pynetdicom: exactly its entries, correct characters.
    proc, answers = findscu(clinic, 'PANO01', 'PANO01', TODAY, tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = {(a.PatientID, str(a.PatientName), a.AccessionNumber) for a in answers}
    assert got == expected('PANO01'), [(a.SpecificCharacterSet, a.PatientName.original_string) for a in answers]
    answers_py = pynetdicom_find(clinic, 'CBCT02', 'CBCT02', TODAY)
    assert {(a.PatientID, str(a.PatientName), a.AccessionNumber) for a in answers_py} == expected('CBCT02')
    # FilterIssuerAet: a device that asks for another station's entries never gets them (the plugin
    # matches on the caller's own AE title instead).
    other = pynetdicom_find(clinic, 'CBCT02', 'PANO01', TODAY)
    assert {a.AccessionNumber for a in other} <= {acc for _pid, _name, acc in expected('CBCT02')}

    # 5. An unregistered AE title gets nothing.
    stranger = pynetdicom_find(clinic, 'INTRUDER', 'PANO01', TODAY)
    assert not stranger
    proc, answers = findscu(clinic, 'INTRUDER', 'PANO01', TODAY, tmp_path)
    assert answers == []

    # 7. Yesterday's entries are gone.
    assert pynetdicom_find(clinic, 'PANO01', 'PANO01', YESTERDAY) == []

    # 3./4. The device stores a study stamped with the returned patient data; Orthanc files it under the
    # practice's PatientID.
    picked = next(a for a in answers_py if a.AccessionNumber == f'A{TODAY}19')
    image = pydicom.dcmread(SAMPLE)
    image = copy.deepcopy(image)
    image.SpecificCharacterSet = 'ISO_IR 192'
    for keyword in ('PatientID', 'PatientName', 'PatientBirthDate', 'PatientSex', 'AccessionNumber',
                    'StudyInstanceUID'):  # fmt: skip
        setattr(image, keyword, getattr(picked, keyword))
    image.SeriesInstanceUID = pydicom.uid.generate_uid()
    image.SOPInstanceUID = pydicom.uid.generate_uid()
    image.file_meta.MediaStorageSOPInstanceUID = image.SOPInstanceUID
    stamped = tmp_path / 'stamped.dcm'
    image.save_as(stamped)
    store = subprocess.run(['/usr/bin/storescu', '-aet', 'CBCT02', '-aec', 'ORTHANC', clinic.ip, '4242', str(stamped)],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert store.returncode == 0, store.stderr
    patients = requests.get(f'{clinic.url}/patients?expand', auth=USER, timeout=10).json()
    assert len(patients) == 1
    assert patients[0]['MainDicomTags']['PatientID'] == 'P1019'
    assert patients[0]['MainDicomTags']['PatientName'] == 'Kowalczyk^Zażółć'
    study = requests.get(f'{clinic.url}/studies/{patients[0]["Studies"][0]}', auth=USER, timeout=10).json()
    assert study['MainDicomTags']['AccessionNumber'] == f'A{TODAY}19'
