# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Modality worklist entries: validation, and the DICOM files (.wl) Orthanc's worklist plugin serves.

Python's standard library only (a clinic box has no pydicom). A worklist file is a DICOM Part 10 file in
explicit VR little endian with the handful of attributes a device needs to pick a patient: written by
``encode_entry`` and read back (for diffs and housekeeping) by ``decode``. Text is UTF-8 with
SpecificCharacterSet ISO_IR 192, so accented names reach the device as they are.
"""

from __future__ import absolute_import, division, print_function

import csv
import datetime
import hashlib
import io
import json
import os
import re
import struct
import tempfile
from urllib.parse import quote, unquote

# Fields of an entry: name -> (DICOM keyword, VR, maximum length in characters, required).
FIELDS = {
    'patient_id': ('PatientID', 'LO', 64, True),
    'patient_name': ('PatientName', 'PN', 64, True),
    'patient_birth_date': ('PatientBirthDate', 'DA', 8, False),
    'patient_sex': ('PatientSex', 'CS', 16, False),
    'accession_number': ('AccessionNumber', 'SH', 16, True),
    'station_aet': ('ScheduledStationAETitle', 'AE', 16, True),
    'modality': ('Modality', 'CS', 16, True),
    'start_date': ('ScheduledProcedureStepStartDate', 'DA', 8, True),
    'start_time': ('ScheduledProcedureStepStartTime', 'TM', 6, False),
    'procedure_description': ('ScheduledProcedureStepDescription', 'LO', 64, False),
}
FIELD_NAMES = list(FIELDS)

FILE_SUFFIX = '.wl'
_FILE_RE = re.compile(r'^(\d{8})-([A-Za-z0-9._%~-]+)\.wl$')
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')
_CS = re.compile(r'^[A-Z0-9_ ]*$')
_AE = re.compile(r'^[\x20-\x7e]*$')

WORKLIST_SOP_CLASS = '1.2.840.10008.5.1.4.31'
EXPLICIT_LE = '1.2.840.10008.1.2.1'
# Our implementation class UID: 2.25 + a fixed 128-bit number (ISO/IEC 9834-8 UUID form).
IMPLEMENTATION_UID = '2.25.' + str(int(hashlib.sha256(b'clinicpacs.orthanc worklist').hexdigest()[:32], 16))
IMPLEMENTATION_VERSION = 'CLINICPACS_WL1'


class WorklistError(Exception):
    """Bad input or an unreadable file; the message names the field, the value and the rule."""


# ---------------------------------------------------------------------------------------------------------
# Validation and normalisation
# ---------------------------------------------------------------------------------------------------------
def _date(value):
    text = str(value).strip()
    if re.match(r'^\d{4}-\d{2}-\d{2}$', text):
        text = text.replace('-', '')
    if not re.match(r'^\d{8}$', text):
        raise ValueError('must be a date YYYYMMDD or YYYY-MM-DD')
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError('is not a calendar date') from None
    return text


def _time(value):
    text = str(value).strip().replace(':', '')
    if not re.match(r'^\d{4}(\d{2})?$', text):
        raise ValueError('must be a time HHMM, HHMMSS, HH:MM or HH:MM:SS')
    if int(text[:2]) > 23 or int(text[2:4]) > 59 or (len(text) == 6 and int(text[4:]) > 59):
        raise ValueError('is not a time of day')
    return text if len(text) == 6 else text + '00'


def _text(value, vr, limit):
    text = str(value).strip()
    if '\\' in text:
        raise ValueError(f'must not contain a backslash ({vr} value)')
    if _CONTROL.search(text):
        raise ValueError(f'must not contain control characters ({vr} value)')
    if vr == 'PN':
        groups = text.split('=')
        if len(groups) > 3:
            raise ValueError('has more than 3 component groups (PN)')
        for group in groups:
            if len(group.split('^')) > 5:
                raise ValueError('has more than 5 components separated by ^ (PN)')
            if len(group) > limit:
                raise ValueError(f'is {len(group)} characters long, more than the {limit} of a PN component group')
    elif len(text) > limit:
        raise ValueError(f'is {len(text)} characters long, more than the {limit} of VR {vr}')
    if vr == 'AE' and not _AE.match(text):
        raise ValueError('must be printable ASCII (AE)')
    if vr == 'CS':
        text = text.upper()
        if not _CS.match(text):
            raise ValueError('may only hold A-Z, 0-9, space and _ (CS)')
    return text


def normalize_entry(entry, prefix=''):
    """Return (normalised entry, errors); each error names the field, the value and the rule."""
    out = {}
    errors = []
    for name, (keyword, vr, limit, required) in FIELDS.items():
        raw = entry.get(name)
        if raw is None or str(raw).strip() == '':
            if required:
                errors.append(f'{prefix}{name} ({keyword}) is required')
            out[name] = ''
            continue
        try:
            if vr == 'DA':
                value = _date(raw)
            elif vr == 'TM':
                value = _time(raw)
            else:
                value = _text(raw, vr, limit)
            if name == 'patient_sex' and value not in ('M', 'F', 'O'):
                raise ValueError('must be M, F or O')
            if vr in ('LO', 'SH', 'AE', 'CS') and required and value == '':
                raise ValueError('must not be blank')
        except ValueError as exc:
            errors.append(f"{prefix}{name} ({keyword}) '{raw}' {exc}")
            continue
        out[name] = value
    return out, errors


def today_string(today=None):
    if today:
        return _date(today)
    return datetime.date.today().strftime('%Y%m%d')


def shift_date(yyyymmdd, days):
    day = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    return (day + datetime.timedelta(days=days)).strftime('%Y%m%d')


def file_name(entry):
    return f"{entry['start_date']}-{quote(entry['accession_number'], safe='')}{FILE_SUFFIX}"


def parse_file_name(name):
    """(date, accession number) of a file this module manages, or None for any other file."""
    match = _FILE_RE.match(name)
    if not match:
        return None
    return match.group(1), unquote(match.group(2))


def derived_uid(kind, accession_number):
    """A stable UID for an entry (same accession number, same UID): 2.25 and 128 bits of a hash."""
    digest = hashlib.sha256(f'clinicpacs-worklist:{kind}:{accession_number}'.encode()).hexdigest()
    return '2.25.' + str(int(digest[:32], 16))


# ---------------------------------------------------------------------------------------------------------
# DICOM encoding: explicit VR little endian, defined lengths, Part 10 file with meta information
# ---------------------------------------------------------------------------------------------------------
_LONG_VRS = {'OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR', 'OD', 'OL', 'OV', 'SV', 'UV'}


def _element(group, element, vr, value):
    if vr == 'SQ':
        body = value
    elif vr == 'UL':
        body = struct.pack('<I', value)
    elif vr == 'OB':
        body = value
        if len(body) % 2:
            body += b'\0'
    else:
        body = value.encode('utf-8')
        if len(body) % 2:
            body += b'\0' if vr == 'UI' else b' '
    head = struct.pack('<HH', group, element) + vr.encode('ascii')
    if vr in _LONG_VRS:
        return head + b'\0\0' + struct.pack('<I', len(body)) + body
    if len(body) > 0xFFFF:
        raise WorklistError(f'({group:04X},{element:04X}) is too long for VR {vr}')
    return head + struct.pack('<H', len(body)) + body


def _item(body):
    return struct.pack('<HHI', 0xFFFE, 0xE000, len(body)) + body


def encode_entry(entry):
    """The bytes of the .wl file of a normalised entry (deterministic: same entry, same bytes)."""
    acc = entry['accession_number']
    study_uid = derived_uid('study', acc)
    description = entry['procedure_description']
    step = b''.join(
        [
            _element(0x0008, 0x0060, 'CS', entry['modality']),
            _element(0x0040, 0x0001, 'AE', entry['station_aet']),
            _element(0x0040, 0x0002, 'DA', entry['start_date']),
            _element(0x0040, 0x0003, 'TM', entry['start_time']),
            _element(0x0040, 0x0007, 'LO', description),
            _element(0x0040, 0x0009, 'SH', acc),
        ]
    )
    dataset = b''.join(
        [
            _element(0x0008, 0x0005, 'CS', 'ISO_IR 192'),
            _element(0x0008, 0x0050, 'SH', acc),
            _element(0x0010, 0x0010, 'PN', entry['patient_name']),
            _element(0x0010, 0x0020, 'LO', entry['patient_id']),
            _element(0x0010, 0x0030, 'DA', entry['patient_birth_date']),
            _element(0x0010, 0x0040, 'CS', entry['patient_sex']),
            _element(0x0020, 0x000D, 'UI', study_uid),
            _element(0x0032, 0x1060, 'LO', description),
            _element(0x0040, 0x0100, 'SQ', _item(step)),
            _element(0x0040, 0x1001, 'SH', acc),
        ]
    )
    meta = b''.join(
        [
            _element(0x0002, 0x0001, 'OB', b'\x00\x01'),
            _element(0x0002, 0x0002, 'UI', WORKLIST_SOP_CLASS),
            _element(0x0002, 0x0003, 'UI', derived_uid('file', acc)),
            _element(0x0002, 0x0010, 'UI', EXPLICIT_LE),
            _element(0x0002, 0x0012, 'UI', IMPLEMENTATION_UID),
            _element(0x0002, 0x0013, 'SH', IMPLEMENTATION_VERSION),
        ]
    )
    return b'\0' * 128 + b'DICM' + _element(0x0002, 0x0000, 'UL', len(meta)) + meta + dataset


# Tags read back, for the fields of an entry.
_TAG_FIELDS = {
    (0x0008, 0x0050): 'accession_number',
    (0x0010, 0x0010): 'patient_name',
    (0x0010, 0x0020): 'patient_id',
    (0x0010, 0x0030): 'patient_birth_date',
    (0x0010, 0x0040): 'patient_sex',
    (0x0008, 0x0060): 'modality',
    (0x0040, 0x0001): 'station_aet',
    (0x0040, 0x0002): 'start_date',
    (0x0040, 0x0003): 'start_time',
    (0x0040, 0x0007): 'procedure_description',
}


def _walk(data, pos, end, out):
    while pos < end:
        if pos + 8 > end:
            raise WorklistError('truncated element')
        group, element = struct.unpack_from('<HH', data, pos)
        if group == 0xFFFE:
            length = struct.unpack_from('<I', data, pos + 4)[0]
            pos += 8
            if element == 0xE000:
                stop = end if length == 0xFFFFFFFF else pos + length
                pos = _walk(data, pos, stop, out)
            elif element in (0xE00D, 0xE0DD):
                return pos
            continue
        vr = data[pos + 4 : pos + 6].decode('ascii', 'replace')
        if vr in _LONG_VRS:
            length = struct.unpack_from('<I', data, pos + 8)[0]
            pos += 12
        else:
            length = struct.unpack_from('<H', data, pos + 6)[0]
            pos += 8
        if vr == 'SQ':
            stop = end if length == 0xFFFFFFFF else pos + length
            pos = _walk(data, pos, stop, out)
            continue
        if length == 0xFFFFFFFF or pos + length > end:
            raise WorklistError(f'element ({group:04X},{element:04X}) runs past the end of the file')
        value = data[pos : pos + length]
        pos += length
        name = _TAG_FIELDS.get((group, element))
        if name:
            out[name] = value.decode('utf-8', 'replace').rstrip(' \0')
    return pos


def decode(data):
    """The entry fields of a .wl file written by encode_entry (explicit VR little endian)."""
    if len(data) < 132 or data[128:132] != b'DICM':
        raise WorklistError('not a DICOM Part 10 file (no DICM prefix)')
    out = dict.fromkeys(FIELD_NAMES, '')
    _walk(data, 132, len(data), out)
    return out


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------
def read_folder(path):
    """{accession number: (file name, bytes)} of the entries this module manages in the folder."""
    found = {}
    for name in sorted(os.listdir(path)):
        parsed = parse_file_name(name)
        if parsed is None:
            continue
        with open(os.path.join(path, name), 'rb') as handle:
            found.setdefault(parsed[1], []).append((name, parsed[0], handle.read()))
    return found


def write_atomic(path, name, data, uid, gid, mode=0o640):
    """Write a file next to its final name (not ending in .wl, so never served half-written), then rename."""
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix='.part', dir=path)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if os.geteuid() == 0:
                os.fchown(handle.fileno(), uid, gid)
            os.fsync(handle.fileno())
        os.replace(tmp, os.path.join(path, name))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------
# Appointments export (CSV or JSON) -> entries, with the row number and reason of every bad row
# ---------------------------------------------------------------------------------------------------------
DEFAULT_COLUMNS = {name: name for name in FIELD_NAMES}


def parse_appointments(text, fmt='csv', columns=None, defaults=None, delimiter=None):
    """Return {'entries': [...], 'errors': [{'row', 'reason'}]}.

    Rows are numbered as a person reading the file counts them: in a CSV file the header is row 1 and the
    first appointment row 2; in JSON (a list of objects) the first object is row 1. ``columns`` maps an
    entry field to the column (or JSON key) of the export; ``defaults`` gives values for fields the export
    lacks (for example the modality of every row). Duplicate accession numbers: the later row is refused.
    """
    mapping = dict(DEFAULT_COLUMNS)
    mapping.update(columns or {})
    unknown = sorted(set(mapping) - set(FIELD_NAMES))
    if unknown:
        raise WorklistError(f'columns: unknown field(s) {", ".join(unknown)} (known: {", ".join(FIELD_NAMES)})')
    text = text.lstrip('\ufeff')
    if fmt == 'csv':
        if delimiter is None:
            first = text.splitlines()[0] if text.strip() else ''
            delimiter = ';' if first.count(';') > first.count(',') else ','
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        rows = [(index + 2, row) for index, row in enumerate(reader)]
    elif fmt == 'json':
        try:
            data = json.loads(text) if text.strip() else []
        except ValueError as exc:
            raise WorklistError(f'the JSON export cannot be read: {exc}') from None
        if isinstance(data, dict):
            data = data.get('appointments', [])
        if not isinstance(data, list):
            raise WorklistError('the JSON export must be a list of objects (or {"appointments": [...]})')
        rows = [(index + 1, row) for index, row in enumerate(data)]
    else:
        raise WorklistError(f"format '{fmt}' is not supported (csv or json)")
    entries = []
    errors = []
    seen = {}
    for number, row in rows:
        if not isinstance(row, dict):
            errors.append({'row': number, 'reason': 'not an object'})
            continue
        if row.get(None):
            errors.append({'row': number, 'reason': f'{len(row[None])} more cell(s) than the header has columns'})
            continue
        raw = dict(defaults or {})
        for field, column in mapping.items():
            value = row.get(column)
            if value is not None and str(value).strip() != '':
                raw[field] = value
        entry, problems = normalize_entry(raw)
        if not problems and entry['accession_number'] in seen:
            problems = [
                f"accession_number '{entry['accession_number']}' is already used by row "
                f'{seen[entry["accession_number"]]}: accession numbers must be unique'
            ]
        if problems:
            errors.append({'row': number, 'reason': '; '.join(problems)})
            continue
        seen[entry['accession_number']] = number
        entries.append(entry)
    return {'entries': entries, 'errors': errors}
