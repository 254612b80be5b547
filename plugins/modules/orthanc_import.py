#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) clinicpacs.orthanc developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r'''
module: orthanc_import
short_description: Import a folder of DICOM files into Orthanc, resumably
version_added: 0.2.0
description:
  - Uploads every DICOM file under O(path) (a folder on the host the module runs on, or a share mounted
    there) to Orthanc with C(POST /instances).
  - A journal file records every file handled (relative path, size, modification time, outcome). Files in
    the journal with the same size and time are skipped, so a second run imports nothing and a run that was
    interrupted (power cut, Ctrl+C, lost SSH connection) resumes where it stopped. A file uploaded before the
    interruption but not yet journaled is answered C(AlreadyStored) by Orthanc and counted as such.
  - Files that are not DICOM (no C(DICM) marker at offset 128) and files Orthanc refuses (HTTP 400, for
    example a truncated file) are reported and do not stop the import. Any other failure (Orthanc down,
    disk full, wrong password) stops it after saving the journal; run it again to resume.
  - Progress is written to O(progress_file) (JSON, every 10 files) and to the system log every 100 files.
author:
  - clinicpacs.orthanc developers (@clinicpacs)
extends_documentation_fragment:
  - clinicpacs.orthanc.orthanc
attributes:
  check_mode:
    support: full
    description: In check mode the folder and the journal are read and the files that would be uploaded are
      counted; nothing is uploaded or written.
  diff_mode:
    support: none
    description: No diff; the result lists the counts and the bad files.
  idempotent:
    support: full
    description: Files already journaled are skipped; files already in Orthanc are not stored twice.
options:
  path:
    description: Folder whose files are imported (recursively).
    type: path
    required: true
  journal:
    description:
      - Journal file (JSON). The default lives under C(/var/lib/clinicpacs/import/), named after O(path), so
        the imported folder itself can be read-only.
    type: path
  progress_file:
    description: File rewritten every 10 files with C({"total", "done", "imported", "bad"}).
    type: path
  retry_refused:
    description: Upload again the files that were refused or not DICOM in an earlier run.
    type: bool
    default: false
notes:
  - Files without the 128-byte preamble and C(DICM) marker (old ACR-NEMA files) are reported as not DICOM.
seealso:
  - module: clinicpacs.orthanc.orthanc_info
'''

EXAMPLES = r'''
- name: Import the old imaging software's export
  clinicpacs.orthanc.orthanc_import:
    path: /mnt/old-archive
    api_username: ansible
    api_password: "{{ vault_orthanc_ansible_password }}"
  register: imported

- name: Report the files that were not imported
  ansible.builtin.debug:
    msg: "{{ imported.not_dicom + (imported.refused | map(attribute='file') | list) }}"
'''

RETURN = r'''
total:
  description: Files found under O(path).
  returned: always
  type: int
  sample: 1200
imported:
  description: Files stored by this run (C(Success)); in check mode, files that would be uploaded.
  returned: always
  type: int
  sample: 1180
already_stored:
  description: Files uploaded by this run that Orthanc already had (C(AlreadyStored)).
  returned: always
  type: int
  sample: 3
journaled:
  description: Files skipped because the journal already lists them unchanged.
  returned: always
  type: int
  sample: 0
not_dicom:
  description: Files (relative to O(path)) without a DICOM marker, from this run and earlier ones.
  returned: always
  type: list
  elements: str
  sample: [notes.txt]
refused:
  description: Files Orthanc refused, with its answer, from this run and earlier ones.
  returned: always
  type: list
  elements: dict
  sample: [{file: CT/IM0001.dcm, error: "Orthanc POST /instances: HTTP 400 Bad Request: Bad file format"}]
journal:
  description: Path of the journal file.
  returned: always
  type: str
  sample: /var/lib/clinicpacs/import/mnt-old-archive-3f2a1c9e.json
orthanc_requests:
  description: Number of HTTP requests sent to Orthanc, by method.
  returned: always
  type: dict
  sample: {POST: 1183}
'''

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_client import OrthancError  # noqa: E402
from ansible_collections.clinicpacs.orthanc.plugins.module_utils.orthanc_resource import OrthancModule  # noqa: E402

JOURNAL_DIR = '/var/lib/clinicpacs/import'
JOURNAL_EVERY = 50
PROGRESS_EVERY = 10
LOG_EVERY = 100
BAD = ('not_dicom', 'refused')


def default_journal(path):
    """Journal path for a source folder: readable name plus a hash of the absolute path."""
    absolute = os.path.abspath(path)
    slug = re.sub(r'[^A-Za-z0-9]+', '-', absolute).strip('-')[-60:] or 'root'
    digest = hashlib.sha256(absolute.encode('utf-8')).hexdigest()[:8]
    return os.path.join(JOURNAL_DIR, f'{slug}-{digest}.json')


def write_json_atomic(path, data):
    """Write ``data`` to ``path`` through a temporary file, fsync and rename: never half-written."""
    directory = os.path.dirname(path) or '.'
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_journal(path, source):
    """Return the ``files`` mapping of the journal, or an empty one. Raises ValueError when unreadable."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding='utf-8') as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or not isinstance(data.get('files'), dict):
        raise ValueError(f'journal {path} is not a clinicpacs import journal')
    if data.get('source') != source:
        raise ValueError(f"journal {path} belongs to folder {data.get('source')!r}, not {source!r}")
    return data['files']


def scan(path, skip):
    """Sorted relative paths of every regular file under ``path`` (symlinks to files followed), minus ``skip``."""
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            if full in skip or not os.path.isfile(full):
                continue
            found.append(os.path.relpath(full, path))
    return sorted(found)


def is_dicom(full):
    """True when the file carries the DICOM Part 10 marker ``DICM`` after the 128-byte preamble."""
    with open(full, 'rb') as handle:
        head = handle.read(132)
    return len(head) == 132 and head[128:132] == b'DICM'


def signature(full):
    st = os.stat(full)
    return {'size': st.st_size, 'mtime': int(st.st_mtime)}


def unchanged(entry, sig, retry_refused):
    if not entry or entry.get('size') != sig['size'] or entry.get('mtime') != sig['mtime']:
        return False
    return not (retry_refused and entry.get('status') in BAD)


class Importer(object):
    """One import run: scan, skip what the journal holds, upload the rest, keep the journal current."""

    def __init__(self, om, source, journal_path, progress_path):
        self.om = om
        self.source = source
        self.journal_path = journal_path
        self.progress_path = progress_path
        self.files = {}
        self.counts = {'imported': 0, 'already_stored': 0, 'journaled': 0}
        self.total = 0
        self.done = 0

    def save(self):
        write_json_atomic(self.journal_path, {'version': 1, 'source': self.source, 'files': self.files})

    def progress(self, final=False):
        if self.progress_path and (final or self.done % PROGRESS_EVERY == 0):
            write_json_atomic(
                self.progress_path,
                {'total': self.total, 'done': self.done, 'bad': len(self.bad_entries()), **self.counts},
            )
        if self.done % LOG_EVERY == 0 and self.done:
            self.om.module.log(f'orthanc_import {self.source}: {self.done}/{self.total} files')

    def bad_entries(self):
        return [(name, e) for name, e in sorted(self.files.items()) if e.get('status') in BAD]

    def upload(self, rel, full, sig):
        if not is_dicom(full):
            self.files[rel] = dict(sig, status='not_dicom')
            return
        with open(full, 'rb') as handle:
            data = handle.read()
        try:
            answer = self.om.client.request('POST', '/instances', body=data, ok=(200,))
        except OrthancError as exc:
            if exc.status in (400, 415):
                self.files[rel] = dict(sig, status='refused', error=exc.msg)
                return
            self.save()
            self.progress(final=True)
            self.om.fail(
                f'import of {self.source} stopped at {rel} after {self.counts["imported"]} file(s) stored: '
                f'{exc.msg}; the journal is saved, run again to resume',
                status=exc.status,
                journal=self.journal_path,
                **self.counts,
            )
        status = (answer or {}).get('Status') if isinstance(answer, dict) else None
        if status == 'AlreadyStored':
            self.counts['already_stored'] += 1
        else:
            self.counts['imported'] += 1
        self.files[rel] = dict(sig, status='stored', id=(answer or {}).get('ID') if isinstance(answer, dict) else None)

    def run(self, retry_refused):
        skip = {self.journal_path, self.progress_path} if self.progress_path else {self.journal_path}
        names = scan(self.source, skip)
        self.total = len(names)
        pending = []
        for rel in names:
            full = os.path.join(self.source, rel)
            sig = signature(full)
            if unchanged(self.files.get(rel), sig, retry_refused):
                self.counts['journaled'] += 1
            else:
                pending.append((rel, full, sig))
        if self.om.check_mode:
            self.counts['imported'] = len(pending)
            return bool(pending)
        self.done = self.counts['journaled']
        for index, (rel, full, sig) in enumerate(pending, 1):
            self.upload(rel, full, sig)
            self.done += 1
            self.progress()
            if index % JOURNAL_EVERY == 0:
                self.save()
        if pending or not os.path.exists(self.journal_path):
            self.save()
        self.progress(final=True)
        return self.counts['imported'] > 0


def main():
    om = OrthancModule(
        {
            'path': {'type': 'path', 'required': True},
            'journal': {'type': 'path'},
            'progress_file': {'type': 'path'},
            'retry_refused': {'type': 'bool', 'default': False},
        }
    )
    source = os.path.abspath(om.params['path'])
    if not os.path.isdir(source):
        om.fail(f"path '{om.params['path']}' is not a directory: it must be the folder to import")
    journal = os.path.abspath(om.params['journal'] or default_journal(source))
    progress = os.path.abspath(om.params['progress_file']) if om.params['progress_file'] else None
    importer = Importer(om, source, journal, progress)
    try:
        importer.files = load_journal(journal, source)
    except (ValueError, OSError) as exc:
        om.fail(f'journal {journal} cannot be used: {exc} (move it away to start over)')
    changed = importer.run(om.params['retry_refused'])
    bad = importer.bad_entries()
    om.exit(
        changed,
        total=importer.total,
        journal=journal,
        not_dicom=[name for name, e in bad if e['status'] == 'not_dicom'],
        refused=[{'file': name, 'error': e.get('error', '')} for name, e in bad if e['status'] == 'refused'],
        **importer.counts,
    )


if __name__ == '__main__':
    main()
