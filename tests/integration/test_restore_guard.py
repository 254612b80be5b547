"""restore.yml refuses several clinics in one run unless restore_all_clinics=true (a forgotten -l).

The guard is the play's first task, so a two-clinic inventory of local connections is enough: nothing
after it runs when it refuses, and check mode keeps the accepted run from writing.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import COLLECTIONS, ROOT

pytestmark = pytest.mark.integration


def run_restore(tmp_path, *args):
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(
        'clinics:\n  hosts:\n    clinic-1: {ansible_connection: local}\n    clinic-2: {ansible_connection: local}\n'
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR='1')
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inventory), '--check',
           str(ROOT / 'playbooks' / 'restore.yml'), *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_two_clinics_are_refused_with_the_way_out(tmp_path):
    run = run_restore(tmp_path)
    assert run.returncode != 0
    assert 'restore.yml targets 2 clinics (clinic-1, clinic-2)' in run.stdout
    assert '-e restore_all_clinics=true' in run.stdout
    assert 'Install the backup tool' not in run.stdout


def test_explicit_permission_passes_the_guard(tmp_path):
    # Past the guard the play goes on to the backup role (which fails here for want of a clinic's settings).
    run = run_restore(tmp_path, '-e', 'restore_all_clinics=true')
    assert 'restore.yml targets 2 clinics' not in run.stdout
    assert 'Install the backup tool' in run.stdout
