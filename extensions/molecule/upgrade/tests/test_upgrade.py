"""Verify of the upgrade scenario: Orthanc 1.10.1 -> 1.13.0 with every instance intact, then a destructive
release (it deletes every patient, then fails) that must roll back to 1.13.0 and the backup's database and
storage. Traffic goes only to the box container this scenario created."""

from __future__ import annotations

import subprocess

import clinicbox
import pytest

BOX = "clinicpacs-molecule-upgrade"
OLD = "clinicpacs/orthanc:1.10.1"
NEW = "clinicpacs/orthanc:1.13.0"
SAMPLES = clinicbox.SAMPLES
UNIQUE = clinicbox.unique_instances()
STATE: dict = {}


@pytest.fixture(scope="module")
def clinic(host) -> clinicbox.Clinic:
    return clinicbox.Clinic.of(host, BOX)


def _upgrade(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return clinicbox.playbook("upgrade.yml", *args, check=check, timeout=1200)


def _text(res: subprocess.CompletedProcess) -> str:
    return clinicbox.text(res)


def _recap_changed(res: subprocess.CompletedProcess) -> int:
    return clinicbox.changed(res, BOX)


def _image(host) -> str:
    return host.run("docker inspect -f '{{.Config.Image}}' clinicpacs-orthanc").stdout.strip()


def test_old_orthanc_holds_every_sample(host, clinic):
    assert clinic.json("/system")["Version"] == "1.10.1"
    for path in SAMPLES:
        r = clinic.request("POST", "/instances", data=path.read_bytes())
        assert r.status_code == 200, f"{path}: {r.text}"
    STATE["before"] = clinic.snapshot()
    assert STATE["before"]["count"] == UNIQUE == 84


def test_upgrade_check_mode_changes_nothing(host, clinic):
    res = _upgrade("-e", f"upgrade_orthanc_image={NEW}", check=True)
    assert res.returncode == 0, res.stdout[-3000:]
    assert f"Upgrade {BOX} from {OLD} to {NEW}" in _text(res)
    assert "Wave: the canary (alone); after it: none" in _text(res)
    assert "Check mode: nothing was changed." in _text(res)
    assert _recap_changed(res) == 0
    assert _image(host) == OLD


def test_upgrade_to_1_13_0_keeps_every_instance(host, clinic):
    res = _upgrade("-e", f"upgrade_orthanc_image={NEW}")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
    assert f"upgraded from {OLD} to {NEW}" in _text(res)
    assert _image(host) == NEW
    assert clinic.json("/system")["Version"] == "1.13.0"
    assert clinic.snapshot() == STATE["before"]
    for instance in list(STATE["before"]["md5"])[:10]:
        assert clinic.verify_md5(instance).status_code == 200


def test_upgrade_again_is_a_no_op(host):
    res = _upgrade("-e", f"upgrade_orthanc_image={NEW}")
    assert res.returncode == 0, res.stdout[-3000:]
    assert f"already runs {NEW}: nothing to upgrade" in _text(res)
    assert _recap_changed(res) == 0


def test_destructive_release_rolls_back_database_and_storage(host, clinic):
    # A release whose start deletes every patient (database rows and storage files), then fails; built on the
    # box from the running image (clinicbox.destructive_release_script). Only a rollback that restores the
    # backup's database and storage gets every instance back, readable and with its MD5.
    built = host.run(clinicbox.destructive_release_script(NEW))
    assert built.rc == 0, built.stderr
    res = _upgrade("-e", f"upgrade_orthanc_image={clinicbox.DESTRUCTIVE_IMAGE}")
    assert res.returncode != 0
    assert f"rolled back to {NEW}" in _text(res), res.stdout[-5000:]
    assert f"The fleet upgrade stops at {BOX}: left untouched (not backed up, not upgraded): no other clinic." in _text(
        res
    )
    assert _image(host) == NEW
    assert clinic.json("/system")["Version"] == "1.13.0"
    assert clinic.snapshot() == STATE["before"]
    bad = [i for i in STATE["before"]["md5"] if clinic.verify_md5(i).status_code != 200]
    assert bad == [], f"{len(bad)} instances whose stored file is missing or differs after the rollback"
