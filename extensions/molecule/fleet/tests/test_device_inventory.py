"""Verify of the fleet scenario: the inventory is the only truth, connection sheets name the clinic-LAN address,
and a device gets the least privilege (echo and store) unless its inventory entry grants more.

It runs before test_fleet.py (file order) and leaves clinic A's devices as the scenario defines them: the device
it adds is removed again, and the clinic's list stays in its host_vars file, equal to the group's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import clinicbox
import yaml
from pydicom import dcmread
from pydicom.uid import generate_uid

DOCKER = clinicbox.DOCKER
REPO = clinicbox.REPO
BOX = "clinicpacs-fleet-a"
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
HOST_VARS = EPHEMERAL / "inventory" / "host_vars" / BOX  # Molecule's file of clinic A's host variables
SHEETS = EPHEMERAL / "device-sheets"
REPORTS = EPHEMERAL / "device-reports"
SIM = "clinicpacs-fleet-h17b-device"
GROUP_DEVICES = ["sim-pano", "sim-cbct"]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    assert not check or result.returncode == 0, f"docker {args}: {result.stdout}{result.stderr}"
    return result


def playbook(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="clinicpacs.orthanc.drift_report", ANSIBLE_NOCOLOR="1")
    env.update(CLINICPACS_REPORT_DIR=str(REPORTS), PATH=f"{Path(sys.executable).parent}:/usr/bin:{env['PATH']}")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(EPHEMERAL / "inventory"),
           str(REPO / "playbooks" / name), *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)  # noqa: S603


def modality(name: str) -> dict | None:
    code = (
        "import base64, json, sys, urllib.request\n"
        "req = urllib.request.Request('http://127.0.0.1:8042/modalities?expand')\n"
        "req.add_header('Authorization', 'Basic ' + base64.b64encode(sys.argv[1].encode()).decode())\n"
        "print(urllib.request.urlopen(req, timeout=30).read().decode())\n"
    )
    out = docker("exec", BOX, "python3", "-c", code, f"ansible:fleet-test-only-ansible-{BOX}")
    return json.loads(out.stdout).get(name)


def inventory_devices() -> list[str]:
    return [d["name"] for d in (yaml.safe_load(HOST_VARS.read_text()) or {}).get("pacs_devices", [])]


def dcmtk(tool: str, box_ip: str, *args: str) -> int:
    """findscu/movescu from the device container, calling as the device; the number of C-FIND answers.

    The answers are extracted to files (-X): findscu prints the query keys again when the PACS refuses, so its
    text output cannot tell an answer from a refusal."""
    cmd = [tool, "-S", "-aet", "LPSCAN", "-aec", "CLINICPACS", "-to", "10", "-ta", "10", "-td", "10"]
    if tool == "findscu":
        cmd += ["-X", "-od", "/tmp/answers"]  # noqa: S108 - inside the throw-away device container
    cmd += [*args, box_ip, "4242"]
    docker("exec", SIM, "sh", "-c", "rm -rf /tmp/answers && mkdir /tmp/answers")
    docker("exec", SIM, *cmd, check=False)
    return int(docker("exec", SIM, "sh", "-c", "ls /tmp/answers | wc -l").stdout)


def received() -> int:
    return int(docker("exec", SIM, "sh", "-c", "find /tmp/received -type f 2>/dev/null | wc -l").stdout)


def test_add_device_inventory_sheet_least_privilege_then_remove():
    box_ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", BOX).stdout.strip()
    docker("rm", "-f", SIM, check=False)
    docker("run", "-d", "--name", SIM, "-e", "DEVICE_AET=LPSCAN", clinicbox.DEVICESIM, "device", "serve")
    try:
        sim_ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", SIM).stdout.strip()
        for _attempt in range(60):  # the simulator listens after a moment
            probe = docker("exec", SIM, "device", "--host", "127.0.0.1", "--port", "11112", "--called", "LPSCAN",
                           "--timeout", "5", "echo", check=False)  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(1)
        before = HOST_VARS.read_text()
        device = {"name": "lp-scanner", "aet": "LPSCAN", "host": sim_ip, "port": 11112, "type": "CBCT"}
        sheet_args = ("-e", f"clinic={BOX}", "-e", f"clinicpacs_sheet_dir={SHEETS}")

        # add_device: the inventory gets the entry (the group's list copied into A's host_vars, then the device).
        run = playbook("add_device.yml", *sheet_args, "-e", json.dumps({"device": device}))
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
        assert inventory_devices() == [*GROUP_DEVICES, "lp-scanner"]
        assert HOST_VARS.read_text().startswith(before)
        drift = playbook("drift.yml", "--limit", BOX)
        assert drift.returncode == 0, drift.stdout[-4000:] + drift.stderr[-1500:]

        # Least privilege in Orthanc, and what the sheet says.
        rights = {k: v for k, v in modality("lp-scanner").items() if k.startswith("Allow") and k != "AllowTranscoding"}
        assert {k for k, v in rights.items() if v} == {"AllowEcho", "AllowStore"}, rights
        md = (SHEETS / f"{BOX}-lp-scanner.md").read_text()
        assert f"| PACS address on the clinic network (IP or host name) | `{box_ip}` |" in md
        assert "| Query the PACS (C-FIND) | no |" in md and "| Retrieve from the PACS (C-MOVE / C-GET) | no |" in md

        # The device echoes and stores; it may neither query nor retrieve.
        ds = dcmread(clinicbox.BRAINIX[0])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        study = EPHEMERAL / "lp-scanner.dcm"
        ds.save_as(study)
        inside = "/tmp/lp-scanner.dcm"  # noqa: S108 - inside the throw-away device container
        docker("cp", str(study), f"{SIM}:{inside}")
        base = ("device", "--host", box_ip, "--port", "4242", "--called", "CLINICPACS", "--aet", "LPSCAN")
        docker("exec", SIM, *base, "echo")
        docker("exec", SIM, *base, "store", inside)
        keys = ("-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={ds.StudyInstanceUID}")
        assert dcmtk("findscu", box_ip, *keys) == 0, "C-FIND answered without allow_find"
        dcmtk("movescu", box_ip, "-aem", "LPSCAN", *keys)
        assert received() == 0, "C-MOVE served without allow_move"

        # Granted in the inventory: query and retrieve work, and the sheet says so.
        granted = {**device, "allow_find": True, "allow_move": True}
        run = playbook("add_device.yml", *sheet_args, "-e", json.dumps({"device": granted}))
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
        entry = yaml.safe_load(HOST_VARS.read_text())["pacs_devices"][-1]
        assert entry == granted
        assert dcmtk("findscu", box_ip, *keys) == 1
        dcmtk("movescu", box_ip, "-aem", "LPSCAN", *keys)
        assert received() == 1
        md = (SHEETS / f"{BOX}-lp-scanner.md").read_text()
        assert "| Query the PACS (C-FIND) | yes |" in md and "| Retrieve from the PACS (C-MOVE / C-GET) | yes |" in md

        # remove_device: out of Orthanc and out of the inventory; drift stays clean.
        run = playbook("remove_device.yml", *sheet_args, "-e", "device_name=lp-scanner")
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
        assert modality("lp-scanner") is None
        assert inventory_devices() == GROUP_DEVICES
        drift = playbook("drift.yml", "--limit", BOX)
        assert drift.returncode == 0, drift.stdout[-4000:] + drift.stderr[-1500:]
    finally:
        docker("rm", "-f", SIM, check=False)
