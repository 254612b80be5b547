# Copyright: (c) 2026, clinicpacs.orthanc contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pacs role's version gate (tasks/version.yml, pacs_orthanc_minimum_version) run for real against two
images: Orthanc 1.12.7 (Debian 13, before the fixes of 1.12.11 and 1.13.0) must be refused, 1.13.0 accepted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import HERE, OLD_ORTHANC_IMAGE, ORTHANC_IMAGE, playbook, roles_dir


def test_version_gate_refuses_orthanc_1_12_7(tmp_path):
    def gate(image):
        folder = tmp_path / image.rsplit(':', 1)[1]
        folder.mkdir()
        return playbook(HERE / 'gate.yml', {'mut_roles': str(roles_dir()), 'pacs_orthanc_image': image}, folder)

    with ThreadPoolExecutor(2) as pool:
        new, old = pool.map(gate, (ORTHANC_IMAGE, OLD_ORTHANC_IMAGE))
    assert new.returncode == 0, f'the gate refused {ORTHANC_IMAGE}:\n{new.stdout[-3000:]}'
    assert old.returncode != 0, f'the gate let {OLD_ORTHANC_IMAGE} through:\n{old.stdout[-1500:]}'
    assert 'older than the minimum' in old.stdout, old.stdout[-3000:]
