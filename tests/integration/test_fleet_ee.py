"""execution-environment.yml (ansible-builder v3) produces a build context with this collection in it."""

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f'{" ".join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}'
    return result.stdout


def test_ansible_builder_create(tmp_path):
    # Same layout as the repository: the EE file, requirements.yml and the tarball under .build/ee.
    shutil.copy(ROOT / 'execution-environment.yml', tmp_path)
    shutil.copy(ROOT / 'requirements.yml', tmp_path)
    run(BIN / 'ansible-galaxy', 'collection', 'build', '--force', '--output-path', tmp_path / '.build' / 'ee', ROOT,
        cwd=tmp_path)  # fmt: skip
    run(BIN / 'ansible-builder', 'create', '-f', 'execution-environment.yml', '-c', 'context', '--output-filename',
        'Containerfile', cwd=tmp_path)  # fmt: skip

    context = tmp_path / 'context'
    containerfile = (context / 'Containerfile').read_text()
    # The base image is a build argument (overridable with --build-arg EE_BASE_IMAGE=...).
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'FROM $EE_BASE_IMAGE AS base' in containerfile
    assert 'ansible-core>=2.16,<2.20 ansible-runner>=2.4' in containerfile
    assert 'ansible-galaxy collection install --offline --no-deps' in containerfile
    assert 'clinicpacs-orthanc-*.tar.gz' in containerfile

    galaxy = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())
    names = {c['name'] for c in galaxy['collections']}
    assert {'community.docker', 'community.crypto', 'ansible.posix'} <= names
    assert 'jinja2' in (context / '_build' / 'requirements.txt').read_text()
    assert 'openssh-clients' in (context / '_build' / 'bindep.txt').read_text()

    tarballs = list((context / '_build' / 'collections').glob('clinicpacs-orthanc-*.tar.gz'))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tar:
        members = set(tar.getnames())
    for member in ('MANIFEST.json', 'plugins/callback/drift_report.py', 'playbooks/drift.yml',
                   'playbooks/add_device.yml', 'roles/drift_schedule/tasks/main.yml'):  # fmt: skip
        assert member in members, member
    assert not any(m.startswith(('.venv/', '.collections/', '.build/')) for m in members)
