"""Verify of the fleet scenario: the fleet playbooks against the three converged clinic boxes.

The tests run in file order and build on each other (drift → enforce → clean → add_device). They drive
ansible-playbook with Molecule's inventory, exactly as an MSP would, and reach into the boxes only with
`docker exec` on the containers this scenario created.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import clinicbox
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

DOCKER = clinicbox.DOCKER
REPO = clinicbox.REPO
BOXES = {"A": "clinicpacs-fleet-a", "B": "clinicpacs-fleet-b", "C": "clinicpacs-fleet-c"}
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
REPORTS = EPHEMERAL / "fleet-reports"
SHEETS = EPHEMERAL / "fleet-sheets"
# An uncompressed sample (storescu sends it as is): BRAINIX MR, see tests/data/dicom/README.md.
SAMPLE = clinicbox.BRAINIX[0]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DEVICESIM = clinicbox.DEVICESIM


def box(name: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, "exec", name, *cmd], capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert not check or result.returncode == 0, f"{cmd} in {name}: {result.stdout}{result.stderr}"
    return result


def host_docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """docker on the Molecule host (containers of this scenario only)."""
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    assert not check or result.returncode == 0, f"docker {args}: {result.stdout}{result.stderr}"
    return result


def api(name: str, method: str, path: str, body: object | None = None) -> object:
    """Call Orthanc's REST API inside a box (loopback port), as the automation account."""
    password = f"fleet-test-only-ansible-{name}"
    code = (
        "import base64, json, sys, urllib.request\n"
        "method, path, password, body = sys.argv[1:5]\n"
        "req = urllib.request.Request('http://127.0.0.1:8042' + path, method=method,\n"
        "    data=body.encode() if body else None)\n"
        "req.add_header('Authorization', 'Basic ' + base64.b64encode(('ansible:' + password).encode()).decode())\n"
        "print(urllib.request.urlopen(req, timeout=30).read().decode() or 'null')\n"
    )
    out = box(name, "python3", "-c", code, method, path, password, json.dumps(body) if body is not None else "")
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:  # metadata answers are plain text
        return out.stdout.strip()


def playbook(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CALLBACKS_ENABLED="clinicpacs.orthanc.drift_report",
        CLINICPACS_REPORT_DIR=str(REPORTS),
        CLINICPACS_REPORT_KEEP="10",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{Path(sys.executable).parent}:/usr/bin:{env.get('PATH', '')}",
    )
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(EPHEMERAL / "inventory"),
           str(REPO / "playbooks" / name), *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)  # noqa: S603


def latest() -> tuple[dict, ET.Element, str]:
    report = json.loads((REPORTS / "drift-latest.json").read_text())
    junit = ET.parse(REPORTS / "drift-latest.xml").getroot()  # noqa: S314 - our own report
    return report, junit, (REPORTS / "drift-latest.html").read_text()


def items(report: dict) -> dict[str, list[str]]:
    return {host: sorted(i["name"] for i in data["items"]) for host, data in report["hosts"].items()}


def started_at(name: str) -> str:
    return box(name, "docker", "inspect", "-f", "{{.State.StartedAt}}", "clinicpacs-orthanc").stdout.strip()


def test_fleet_starts_clean():
    run = playbook("drift.yml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
    report, _junit, _page = latest()
    assert items(report) == {b: [] for b in BOXES.values()}
    assert all(h["facts"]["orthanc_version"] for h in report["hosts"].values())
    ages = {h: d["facts"]["last_backup_age"] for h, d in report["hosts"].items()}
    assert ages == dict.fromkeys(BOXES.values(), "never")


def test_out_of_band_changes_on_b_are_reported():
    b = BOXES["B"]
    device = api(b, "GET", "/modalities/sim-cbct/configuration")
    device["Port"] = 4000
    api(b, "PUT", "/modalities/sim-cbct", device)
    users = "/opt/clinicpacs/orthanc/users.json"
    box(b, "python3", "-c",
        "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['RegisteredUsers'].pop('reception');"
        "json.dump(d, open(p,'w'), indent=2)", users)  # fmt: skip
    before = {name: started_at(name) for name in BOXES.values()}

    run = playbook("drift.yml")
    assert run.returncode != 0, run.stdout[-4000:] + run.stderr[-1500:]
    report, junit, page = latest()
    assert items(report) == {BOXES["A"]: [], b: ["device:sim-cbct", "user:reception"], BOXES["C"]: []}
    assert report["hosts"][b]["status"] == "drifted"
    failures = sorted(
        (case.get("classname"), case.get("name"))
        for case in junit.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    )
    assert failures == [(f"clinic.{b}", "device:sim-cbct"), (f"clinic.{b}", "user:reception")]
    for name in BOXES.values():
        assert f'<td class="clinic">{name}</td>' in page
    assert "device:sim-cbct" in page and "user:reception" in page
    assert {name: started_at(name) for name in BOXES.values()} == before, "a check run restarted Orthanc"


def test_enforce_corrects_and_next_run_is_clean():
    run = playbook("drift.yml", "-e", "enforce=true")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
    assert api(BOXES["B"], "GET", "/modalities/sim-cbct/configuration")["Port"] == 11113
    # A backup of C only: the next report shows its age, and "never" for A and B.
    backup = playbook("backup.yml", "--limit", BOXES["C"])
    assert backup.returncode == 0, backup.stdout[-4000:] + backup.stderr[-1500:]
    again = playbook("drift.yml")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-1500:]
    report, junit, page = latest()
    assert items(report) == {b: [] for b in BOXES.values()}
    ages = {h: d["facts"]["last_backup_age"] for h, d in report["hosts"].items()}
    assert ages[BOXES["A"]] == ages[BOXES["B"]] == "never"
    assert ages[BOXES["C"]].endswith("m"), ages  # minutes old
    assert f"<td>{ages[BOXES['C']]}</td>" in page
    assert not [c for c in junit.iter("testcase") if c.find("failure") is not None]


def test_peer_and_nginx_drift_on_the_other_clinics():
    """The other drift kinds: a peer changed on C, nginx's site edited on A; enforce corrects both."""
    a, c = BOXES["A"], BOXES["C"]
    api(c, "PUT", "/peers/msp-archive", {"Url": "https://rogue.test/orthanc/", "Username": "fleet-archive"})
    site = "/opt/clinicpacs/nginx/orthanc.conf"
    box(a, "sh", "-c", f"echo '# edited by hand' >> {site}")

    run = playbook("drift.yml")
    assert run.returncode != 0, run.stdout[-4000:] + run.stderr[-1500:]
    report, _junit, _page = latest()
    assert items(report) == {a: ["config:orthanc.conf"], BOXES["B"]: [], c: ["peer:msp-archive"]}
    assert "fleet-test-only-peer" not in json.dumps(report)

    run = playbook("drift.yml", "-e", "enforce=true")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
    assert api(c, "GET", "/peers?expand")["msp-archive"]["Url"] == "https://archive.msp.test/orthanc/"
    assert "# edited by hand" not in box(a, "cat", site).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_fleet_page_renders_in_headless_chromium(tmp_path):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path}", "--dump-dom", (REPORTS / "drift-latest.html").as_uri()]  # fmt: skip
    dom = subprocess.run(args, capture_output=True, text=True, timeout=90, check=True).stdout  # noqa: S603
    for name in BOXES.values():
        assert f'<td class="clinic">{name}</td>' in dom


def test_add_device_without_restart_then_it_stores_a_study():
    """A device on the clinic network (a container next to the boxes, like a device on the LAN) is added to A.

    Orthanc checks the calling address (DicomCheckModalityHost) and the firewall lets DICOM in only from
    registered devices, so the device must send from the address it is registered with.
    """
    a = BOXES["A"]
    # The box's address on the Molecule host's bridge (inside, `hostname -I` also lists its own Docker bridges).
    box_ip = host_docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", a).stdout.strip()
    sim = "clinicpacs-fleet-device-a"
    inside = "/tmp/sim-new.dcm"  # noqa: S108 - inside the throw-away device container
    host_docker("rm", "-f", sim, check=False)
    host_docker("run", "-d", "--name", sim, "-e", "DEVICE_AET=SIMNEW", DEVICESIM, "device", "serve")
    try:
        sim_ip = host_docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", sim).stdout.strip()
        for _attempt in range(60):  # the simulator listens after a moment: wait for its own C-ECHO
            probe = host_docker("exec", sim, "device", "--host", "127.0.0.1", "--port", "11112",
                                "--called", "SIMNEW", "--timeout", "5", "echo", check=False)  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(1)
        before = started_at(a)
        device = {"name": "sim-new", "aet": "SIMNEW", "host": sim_ip, "port": 11112, "allow_move": False,
                  "type": "intraoral scanner", "vendor": "Sim"}  # fmt: skip
        run = playbook("add_device.yml", "-e", f"clinic={a}", "-e", json.dumps({"device": device}),
                       "-e", f"clinicpacs_sheet_dir={SHEETS}")  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
        assert started_at(a) == before, "add_device.yml restarted Orthanc"
        assert api(a, "GET", "/modalities/sim-new/configuration")["AET"] == "SIMNEW"

        ds = dcmread(SAMPLE)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        study = EPHEMERAL / "sim-new.dcm"
        ds.save_as(study)
        host_docker("cp", str(study), f"{sim}:{inside}")
        host_docker("exec", sim, "device", "--host", box_ip, "--port", "4242", "--called", "CLINICPACS",
                    "--aet", "SIMNEW", "store", inside)  # fmt: skip
    finally:
        host_docker("rm", "-f", sim, check=False)
    found = api(a, "POST", "/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": str(ds.SOPInstanceUID)}})
    assert len(found) == 1
    assert api(a, "GET", f"/instances/{found[0]}/metadata/RemoteAET") == "SIMNEW"
    md = (SHEETS / f"{a}-sim-new.md").read_text()
    html = (SHEETS / f"{a}-sim-new.html").read_text()
    for text in (md, html):
        assert "CLINICPACS" in text and "SIMNEW" in text and "4242" in text
        assert "intraoral scanner (Sim)" in text
        assert "<b>north</b>" not in text and "&lt;b&gt;north&lt;/b&gt;" in text


def test_drift_schedule_timer_on_c():
    c = BOXES["C"]
    assert box(c, "systemctl", "is-enabled", "clinicpacs-drift.timer").stdout.strip() == "enabled"
    assert box(c, "systemctl", "is-active", "clinicpacs-drift.timer").stdout.strip() == "active"
    script = box(c, "cat", "/usr/local/sbin/clinicpacs-drift").stdout
    assert "ANSIBLE_CALLBACKS_ENABLED=clinicpacs.orthanc.drift_report" in script
    assert "CLINICPACS_REPORT_KEEP=5" in script and "--limit region_north" in script
    assert "--vault-password-file /etc/clinicpacs/vault-password" in script


def test_drift_schedule_check_mode_changes_nothing():
    c = BOXES["C"]
    play = EPHEMERAL / "schedule-check.yml"
    play.write_text(
        "- name: Schedule check mode\n"
        f"  hosts: {c}\n"
        "  gather_facts: false\n"
        "  roles:\n"
        "    - role: clinicpacs.orthanc.drift_schedule\n"
        "      vars:\n"
        "        drift_schedule_name: clinicpacs-drift-other\n"
        "        drift_schedule_inventory: /etc/clinicpacs/other\n"
    )
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "ansible-playbook"), "-i", str(EPHEMERAL / "inventory"), "--check", str(play)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)  # noqa: S603
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
    assert box(c, "test", "-e", "/etc/systemd/system/clinicpacs-drift-other.timer", check=False).returncode == 1
    assert box(c, "test", "-e", "/usr/local/sbin/clinicpacs-drift-other", check=False).returncode == 1


def orthanc_container(name: str) -> tuple[str, str, str]:
    """The Orthanc container of a box: its id, start time and image."""
    out = box(name, "docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.Config.Image}}", "clinicpacs-orthanc")
    container_id, started, image = out.stdout.split()
    return container_id, started, image


def backups(name: str) -> list[str]:
    return sorted(box(name, "sh", "-c", "ls /var/backups/clinicpacs 2>/dev/null || true").stdout.split())


def test_upgrade_check_mode_plans_the_waves_and_changes_nothing():
    _a, b, c = BOXES.values()
    before = {name: orthanc_container(name) for name in BOXES.values()}
    run = clinicbox.playbook("upgrade.yml", "-e", f"upgrade_orthanc_image={clinicbox.BROKEN_IMAGE}", check=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-1500:]
    text = clinicbox.text(run)
    assert f"Wave: the canary (alone); after it: {b}, {c}" in text
    assert f"Wave: {b}, {c}; after it: none" in text
    assert text.count("Check mode: nothing was changed.") == 3
    assert all(clinicbox.changed(run, name) == 0 for name in BOXES.values())
    assert {name: orthanc_container(name) for name in BOXES.values()} == before


def test_failed_canary_stops_the_fleet_upgrade_before_clinic_2():
    """upgrade.yml over the whole fleet to a broken image: the canary (A) fails and is rolled back, and the run
    stops there. B and C could have been upgraded (the broken image is on their boxes too), but are untouched:
    the same Orthanc container (id, start time, image) and no pre-upgrade backup."""
    a, b, c = BOXES.values()
    before = {name: orthanc_container(name) for name in BOXES.values()}
    backups_before = {name: backups(name) for name in BOXES.values()}
    for name in BOXES.values():
        box(name, "sh", "-c", clinicbox.broken_image_script(before[name][2]))

    # A broken Orthanc fails the health wait: 60 s of it is enough here.
    run = clinicbox.playbook("upgrade.yml", "-e", f"upgrade_orthanc_image={clinicbox.BROKEN_IMAGE}",
                             "-e", "pacs_wait_timeout=60")  # fmt: skip
    assert run.returncode != 0, run.stdout[-4000:] + run.stderr[-1500:]
    text = clinicbox.text(run)
    assert f"upgrade of {a} to {clinicbox.BROKEN_IMAGE} failed" in text, run.stdout[-6000:]
    assert f"rolled back to {before[a][2]}" in text
    assert f"The fleet upgrade stops at {a}: left untouched (not backed up, not upgraded): {b}, {c}." in text
    # The canary runs its previous image again and answers; a pre-upgrade backup was taken there only.
    assert orthanc_container(a)[2] == before[a][2]
    assert api(a, "GET", "/system")["Version"]
    labels = [box(a, "cat", f"/var/backups/clinicpacs/{x}/MANIFEST", check=False).stdout
              for x in backups(a) if x not in backups_before[a]]  # fmt: skip
    assert [m for m in labels if "label=pre-upgrade" in m.splitlines()], labels
    for name in (b, c):
        assert orthanc_container(name) == before[name], f"{name} was touched"
        assert backups(name) == backups_before[name], f"{name} was backed up"
        assert f"[{name}]" not in run.stdout, f"a task ran on {name}"
