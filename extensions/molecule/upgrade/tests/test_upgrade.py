"""Verify of the upgrade scenario: Orthanc 1.10.1 -> 1.12.7 with every instance intact, then a broken image
that must roll back to 1.12.7 and the backup. Traffic goes only to the box container this scenario created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from pydicom import dcmread
from requests.adapters import HTTPAdapter

DOCKER = "/usr/bin/docker"
BOX = "clinicpacs-molecule-upgrade"
REPO = Path(__file__).resolve().parents[4]
SAMPLES = sorted((REPO / "tests/data/dicom").rglob("*.dcm"))
# Two sample files share one SOP Instance UID: Orthanc stores 84 instances from the 85 files.
UNIQUE = len({str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in SAMPLES})
STATE: dict = {}


def _box_ip() -> str:
    out = subprocess.run(  # noqa: S603 - fixed docker command on the scenario's own box
        [DOCKER, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", BOX],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out, f"box container {BOX} has no IP address"
    return out[0]


@pytest.fixture(scope="module")
def cfg(host):
    variables = host.ansible.get_variables()
    ca = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "clinic-ca" / f"{BOX}-ca.crt"
    return {"vars": variables, "ca": str(ca), "ip": _box_ip()}


class _ServerNameAdapter(HTTPAdapter):
    def __init__(self, server_name: str, **kwargs):
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_hostname"] = self._server_name
        kwargs["server_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _api(cfg, method: str, path: str, **kwargs) -> requests.Response:
    s = requests.Session()
    s.mount("https://", _ServerNameAdapter(cfg["vars"]["pacs_server_name"]))
    s.auth = ("admin", cfg["vars"]["pacs_admin_password"])
    return s.request(method, f"https://{cfg['ip']}{path}", timeout=30, verify=cfg["ca"], **kwargs)


def _json(cfg, path: str):
    r = _api(cfg, "GET", path)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def _snapshot(cfg) -> dict:
    instances = _json(cfg, "/instances")
    return {
        "count": _json(cfg, "/statistics")["CountInstances"],
        "studies": sorted(_json(cfg, "/studies")),
        "md5": {i: _api(cfg, "GET", f"/instances/{i}/attachments/dicom/md5").text for i in instances},
    }


def _upgrade(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(REPO / "playbooks/upgrade.yml"),
        *args,
    ]
    return subprocess.run(  # noqa: S603 - the venv's ansible-playbook on Molecule's own inventory
        cmd + (["--check"] if check else []),
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        check=False,
    )


def _text(res: subprocess.CompletedProcess) -> str:
    """stdout and stderr with every run of whitespace as one space (Ansible wraps long messages)."""
    return " ".join((res.stdout + " " + res.stderr).split())


def _recap_changed(res: subprocess.CompletedProcess) -> int:
    recap = [line for line in res.stdout.splitlines() if f"{BOX} " in line and "changed=" in line]
    assert recap, res.stdout[-3000:]
    return int(recap[-1].split("changed=")[1].split()[0])


def _image(host) -> str:
    return host.run("docker inspect -f '{{.Config.Image}}' clinicpacs-orthanc").stdout.strip()


def test_old_orthanc_holds_every_sample(host, cfg):
    assert _json(cfg, "/system")["Version"] == "1.10.1"
    for path in SAMPLES:
        r = _api(cfg, "POST", "/instances", data=path.read_bytes())
        assert r.status_code == 200, f"{path}: {r.text}"
    STATE["before"] = _snapshot(cfg)
    assert STATE["before"]["count"] == UNIQUE == 84


def test_upgrade_check_mode_changes_nothing(host, cfg):
    res = _upgrade("-e", "upgrade_orthanc_image=clinicpacs/orthanc:1.12.7", check=True)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Upgrade clinicpacs-molecule-upgrade from clinicpacs/orthanc:1.10.1 to clinicpacs/orthanc:1.12.7" in _text(
        res
    )
    assert "Check mode: nothing was changed." in _text(res)
    assert _recap_changed(res) == 0
    assert _image(host) == "clinicpacs/orthanc:1.10.1"


def test_upgrade_to_1_12_7_keeps_every_instance(host, cfg):
    res = _upgrade("-e", "upgrade_orthanc_image=clinicpacs/orthanc:1.12.7")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
    assert "upgraded from clinicpacs/orthanc:1.10.1 to clinicpacs/orthanc:1.12.7" in _text(res)
    assert _image(host) == "clinicpacs/orthanc:1.12.7"
    assert _json(cfg, "/system")["Version"] == "1.12.7"
    assert _snapshot(cfg) == STATE["before"]
    for instance in list(STATE["before"]["md5"])[:10]:
        assert _api(cfg, "POST", f"/instances/{instance}/attachments/dicom/verify-md5").status_code == 200


def test_upgrade_again_is_a_no_op(host):
    res = _upgrade("-e", "upgrade_orthanc_image=clinicpacs/orthanc:1.12.7")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "already runs clinicpacs/orthanc:1.12.7: nothing to upgrade" in _text(res)
    assert _recap_changed(res) == 0


def test_broken_image_rolls_back(host, cfg):
    # A broken release, built on the box from the loaded image: its entrypoint fails at once.
    build = (
        "docker rm -f upgrade-broken-build >/dev/null 2>&1; "
        "docker create --name upgrade-broken-build clinicpacs/orthanc:1.12.7 >/dev/null && "
        "docker commit --change 'ENTRYPOINT [\"/bin/false\"]' upgrade-broken-build clinicpacs/orthanc:broken && "
        "docker rm upgrade-broken-build"
    )
    assert host.run(build).rc == 0
    res = _upgrade("-e", "upgrade_orthanc_image=clinicpacs/orthanc:broken")
    assert res.returncode != 0
    assert "rolled back to clinicpacs/orthanc:1.12.7" in _text(res), res.stdout[-5000:]
    assert _image(host) == "clinicpacs/orthanc:1.12.7"
    assert _json(cfg, "/system")["Version"] == "1.12.7"
    assert _snapshot(cfg) == STATE["before"]
