# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Owners and modes of the files the pacs role writes on a box (tasks/directories.yml, tls-provided.yml,
config.yml), run for real by files.yml into a temporary folder: every file that holds a secret of the
inventory or a private key is readable by its owner only, and the folders that hold them too.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from .conftest import HERE, SECRETS, inventory_vars, playbook, throwaway_certificate


@pytest.fixture(scope='module')
def box(tmp_path_factory, network, image_facts) -> Path:
    tmp = tmp_path_factory.mktemp('box')
    extra = inventory_vars(network, image_facts)
    key, crt = throwaway_certificate(tmp_path_factory)
    extra.update(pacs_base_dir=str(tmp / 'opt'), pacs_data_dir=str(tmp / 'srv'), pacs_tls_mode='provided')
    extra.update(pacs_tls_certificate=crt.read_text(), pacs_tls_private_key=key.read_text())
    res = playbook(HERE / 'files.yml', extra, tmp)
    assert res.returncode == 0, f'the role\'s tasks failed:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}'
    return tmp / 'opt'


def secret_files(base: Path) -> list[Path]:
    found = []
    for path in sorted(p for p in base.rglob('*') if p.is_file()):
        text = path.read_bytes().decode(errors='replace')
        if 'PRIVATE KEY' in text or any(secret in text for secret in SECRETS.values()):
            found.append(path)
    return found


def test_secret_files_readable_by_their_owner_only(box):
    files = secret_files(box)
    names = {p.relative_to(box).as_posix() for p in files}
    # What must be among them (a test that finds no secret file proves nothing).
    assert {
        'secrets/postgres_password',
        'orthanc/users.json',
        'orthanc/postgresql.json',
        'tls/server/server.key',
    } <= names, names
    too_open = {
        p.relative_to(box).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o077
    }
    assert not too_open, f'secret files readable by others than their owner: {too_open}'


def test_secret_folders_closed(box):
    for folder in ('.', 'secrets', 'tls', 'tls/server', 'orthanc'):
        mode = stat.S_IMODE((box / folder).stat().st_mode)
        assert mode & 0o077 == 0, f'{folder} has mode {oct(mode)}'
