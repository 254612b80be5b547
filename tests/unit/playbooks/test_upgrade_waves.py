"""playbooks/upgrade.yml's waves and its stop, in a real ansible-playbook run (local connection, no box).

The play is the real one (its `serial`, the wave facts, the guard before each wave, the rescue that stops the
run); only the per-clinic work inside the block (backup, new image, rollback) is replaced by a stub that
records the clinic and fails where the test says. The Molecule fleet scenario shows the same stop on real
boxes for a failed canary; with three boxes it cannot show the case only the guard covers: a failed clinic in
a batch beside a clinic that succeeds, with a later batch that must stay untouched.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CLINICS = ['c1', 'c2', 'c3', 'c4', 'c5']
WORK = 'Upgrade this clinic; on failure stop the fleet upgrade'


def _play(tmp_path: Path) -> Path:
    play = yaml.safe_load((REPO / 'playbooks/upgrade.yml').read_text())[0]
    play['become'] = False
    (work,) = [t for t in play['tasks'] if t['name'] == WORK]
    work['block'] = [
        {'name': 'Stub: the clinic is touched', 'ansible.builtin.debug': {'msg': 'TOUCHED {{ inventory_hostname }}'}},
        {
            'name': 'Stub: the upgrade fails and is rolled back',
            'ansible.builtin.fail': {'msg': 'upgrade of {{ inventory_hostname }} failed; rolled back.'},
            'when': "inventory_hostname in fail_clinics.split(',')",
        },
    ]
    path = tmp_path / 'upgrade-waves.yml'
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def _run(tmp_path: Path, fail: str, *args: str) -> subprocess.CompletedProcess:
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text('[clinics]\n' + '\n'.join(CLINICS) + '\n')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0')
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inventory), '-c', 'local',
           '-e', f'ansible_python_interpreter={sys.executable}', '-e', f'fail_clinics={fail}',
           '-e', 'upgrade_batch_size=2', *args, str(_play(tmp_path))]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)


def _touched(run: subprocess.CompletedProcess) -> list[list[str]]:
    """The clinics touched in each wave (one PLAY header per wave; side by side within a wave)."""
    waves = [sorted(re.findall(r'"msg": "TOUCHED (c[0-9])"', play)) for play in run.stdout.split('PLAY [')[1:]]
    return [wave for wave in waves if wave]


def _text(run: subprocess.CompletedProcess) -> str:
    return ' '.join((run.stdout + run.stderr).split())


def test_waves_canary_then_batches(tmp_path):
    run = _run(tmp_path, 'none')
    assert run.returncode == 0, run.stdout + run.stderr
    assert _touched(run) == [['c1'], ['c2', 'c3'], ['c4', 'c5']]


def test_failed_canary_stops_the_run(tmp_path):
    run = _run(tmp_path, 'c1')
    assert run.returncode != 0
    assert _touched(run) == [['c1']]
    assert 'The fleet upgrade stops at c1: left untouched (not backed up, not upgraded): c2, c3, c4, c5.' in _text(run)


@pytest.mark.parametrize('fail', ['c2', 'c3'])
def test_failed_clinic_in_a_batch_stops_before_the_next_batch(tmp_path, fail):
    run = _run(tmp_path, fail)
    assert run.returncode != 0
    # The other clinic of the failed one's batch finishes; the next batch is never started.
    assert _touched(run) == [['c1'], ['c2', 'c3']]
    text = _text(run)
    assert f'The fleet upgrade stops at {fail}: left untouched (not backed up, not upgraded): c4, c5.' in text
    stopped = f'Fleet upgrade stopped: {fail} failed (see above); left untouched (not backed up, not upgraded): c4, c5.'
    assert stopped in text


def test_limit_forms_the_waves_from_the_limited_clinics(tmp_path):
    run = _run(tmp_path, 'c3', '--limit', 'c3,c4,c5')
    assert run.returncode != 0
    assert _touched(run) == [['c3']]
    assert 'The fleet upgrade stops at c3: left untouched (not backed up, not upgraded): c4, c5.' in _text(run)
