"""The worklist encoder, its validation and the appointments parser (no Orthanc needed).

The files are read back with pydicom and with dcmtk's dcmdump (a real DICOM parser each), so an encoder bug
cannot hide behind our own decoder.
"""

import shutil
import subprocess

import pydicom
import pytest
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_worklist import (
    WorklistError,
    decode,
    encode_entry,
    file_name,
    normalize_entry,
    parse_appointments,
    parse_file_name,
)

ENTRY = {
    'patient_id': '4711',
    'patient_name': "D'Alembert^Zoë",
    'patient_birth_date': '1980-02-29',
    'patient_sex': 'f',
    'accession_number': 'A-1/2',
    'station_aet': 'PANO01',
    'modality': 'px',
    'start_date': '2026-12-02',
    'start_time': '09:30',
    'procedure_description': 'Panoramique dentaire',
}


def normalized(**change):
    entry, errors = normalize_entry(dict(ENTRY, **change))
    assert errors == []
    return entry


def test_normalize():
    entry = normalized()
    assert entry['patient_birth_date'] == '19800229'
    assert entry['start_time'] == '093000'
    assert (entry['patient_sex'], entry['modality']) == ('F', 'PX')


@pytest.mark.parametrize(
    'field, value, message',
    [
        ('patient_id', '', "patient_id (PatientID) is required"),
        (
            'patient_id',
            'x' * 65,
            "patient_id (PatientID) '" + 'x' * 65 + "' is 65 characters long, more than the 64 of VR LO",
        ),
        ('patient_name', 'A' * 65 + '^B', 'more than the 64 of a PN component group'),
        ('patient_name', 'A\\B', 'must not contain a backslash'),
        (
            'patient_birth_date',
            '1981-02-29',
            "patient_birth_date (PatientBirthDate) '1981-02-29' is not a calendar date",
        ),
        ('start_date', '02.12.2026', 'must be a date YYYYMMDD or YYYY-MM-DD'),
        ('start_time', '25:00', 'is not a time of day'),
        ('patient_sex', 'X', "must be M, F or O"),
        ('accession_number', 'A' * 17, 'more than the 16 of VR SH'),
        ('station_aet', 'PANORAMIC_ROOM_01', 'more than the 16 of VR AE'),
        ('station_aet', 'PANÖ', 'must be printable ASCII (AE)'),
        ('modality', 'P-X', 'may only hold A-Z, 0-9, space and _ (CS)'),
    ],
)
def test_validation_names_field_value_and_rule(field, value, message):
    _entry, errors = normalize_entry(dict(ENTRY, **{field: value}), prefix='entries[3].')
    assert len(errors) == 1 and errors[0].startswith(f'entries[3].{field} ')
    assert message in errors[0]


def test_encoding_reads_back_with_pydicom_and_our_decoder(tmp_path):
    entry = normalized(patient_name='Kowalczyk^Zażółć')
    data = encode_entry(entry)
    assert data == encode_entry(entry)  # deterministic: idempotence compares bytes
    path = tmp_path / file_name(entry)
    path.write_bytes(data)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.1'
    assert ds.file_meta.MediaStorageSOPClassUID == '1.2.840.10008.5.1.4.31'
    assert ds.SpecificCharacterSet == 'ISO_IR 192'
    assert str(ds.PatientName) == 'Kowalczyk^Zażółć'
    assert ds.PatientName.original_string == 'Kowalczyk^Zażółć'.encode() + b' ' * (len('Kowalczyk^Zażółć'.encode()) % 2)
    step = ds.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledStationAETitle, step.Modality, step.ScheduledProcedureStepStartDate) == (
        'PANO01',
        'PX',
        '20261202',
    )
    assert (step.ScheduledProcedureStepStartTime, step.ScheduledProcedureStepID) == ('093000', 'A-1/2')
    assert ds.StudyInstanceUID == pydicom.dcmread(path).StudyInstanceUID and len(ds.StudyInstanceUID) <= 64
    assert decode(data) == entry


@pytest.mark.skipif(shutil.which('dcmdump') is None, reason='dcmtk is not installed')
def test_encoding_reads_back_with_dcmtk(tmp_path):
    path = tmp_path / 'entry.wl'
    path.write_bytes(encode_entry(normalized()))
    out = subprocess.run(['dcmdump', '+U8', str(path)], capture_output=True, text=True, check=True).stdout
    assert 'Little Endian Explicit' in out
    assert "(0010,0010) PN [D'Alembert^Zoë]" in out
    assert '(0040,0001) AE [PANO01]' in out
    assert 'E:' not in out and 'W:' not in out


def test_file_names_are_reversible_and_safe():
    entry = normalized(accession_number='../x y')
    name = file_name(entry)
    assert '/' not in name and name.endswith('.wl')
    assert parse_file_name(name) == ('20261202', '../x y')
    assert parse_file_name('other.wl') is None


def test_decode_refuses_a_truncated_file():
    data = encode_entry(normalized())
    with pytest.raises(WorklistError):
        decode(data[:60])
    with pytest.raises(WorklistError):
        decode(data[:-3])


def test_appointments_report_bad_rows_with_row_and_reason():
    text = (
        '\ufeffPatNr;Name;Datum;Termin;Geraet\n'
        "1;O'Brien^Seán;2026-12-02;A1;PANO01\n"
        ';Nobody^Here;2026-12-02;A2;PANO01\n'
        '3;Impossible^Date;2026-02-30;A3;PANO01\n'
        f'4;{"L" * 70}^Long;2026-12-02;A4;PANO01\n'
        '5;Twice^Used;2026-12-02;A1;PANO01\n'
        '6;Müller^Jürgen;20261202;A6;CBCT02\n'
    )
    columns = {
        'patient_id': 'PatNr',
        'patient_name': 'Name',
        'start_date': 'Datum',
        'accession_number': 'Termin',
        'station_aet': 'Geraet',
    }
    out = parse_appointments(text, columns=columns, defaults={'modality': 'PX'})
    assert [e['accession_number'] for e in out['entries']] == ['A1', 'A6']
    assert [e['row'] for e in out['errors']] == [3, 4, 5, 6]
    assert 'patient_id (PatientID) is required' in out['errors'][0]['reason']
    assert "'2026-02-30' is not a calendar date" in out['errors'][1]['reason']
    assert 'more than the 64 of a PN component group' in out['errors'][2]['reason']
    assert 'already used by row 2' in out['errors'][3]['reason']


def test_appointments_json_and_unknown_columns():
    out = parse_appointments(
        '{"appointments": [{"patient_id": "1", "patient_name": "A^B", "accession_number": "X1", '
        '"station_aet": "PANO01", "modality": "PX", "start_date": "2026-12-02"}, {"patient_id": "2"}]}',
        fmt='json',
    )
    assert len(out['entries']) == 1 and out['errors'][0]['row'] == 2
    with pytest.raises(WorklistError, match='unknown field'):
        parse_appointments('a\n', columns={'patient_nr': 'x'})
