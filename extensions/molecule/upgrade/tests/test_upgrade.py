"""Verify of the upgrade scenario: Orthanc 1.10.1 -> 1.13.0 with every instance intact, then a broken image
that must roll back to 1.13.0 and the backup. Traffic goes only to the box container this scenario created."""

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


def test_broken_image_rolls_back(host, clinic):
    # A broken release, built on the box from the running image: Orthanc stops at once (its PostgreSQL plugin
    # does not load). The shared recipe, also used by the fleet scenario's canary test.
    built = host.run(clinicbox.broken_image_script(NEW))
    assert built.rc == 0, built.stderr
    res = _upgrade("-e", f"upgrade_orthanc_image={clinicbox.BROKEN_IMAGE}")
    assert res.returncode != 0
    assert f"rolled back to {NEW}" in _text(res), res.stdout[-5000:]
    assert f"The fleet upgrade stops at {BOX}: left untouched (not backed up, not upgraded): no other clinic." in _text(
        res
    )
    assert _image(host) == NEW
    assert clinic.json("/system")["Version"] == "1.13.0"
    assert clinic.snapshot() == STATE["before"]
