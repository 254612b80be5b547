"""Verify of the layouts scenario (issue 13): the upstream image layouts under the pacs role, in file order.

1. The stack that converge built on clinicpacs/orthancteam-layout:1.13.0 (the stand-in of orthancteam/orthanc,
   tests/images/README.md): HTTPS through nginx, /system and the plugins, C-ECHO and C-STORE of a real sample
   from the registered device address (the Molecule host, the network's gateway .1), DICOMweb, the hardening,
   the image's own entrypoint never ran, the modality worklist served by libOrthancWorklists.so (upstream's
   file name) from a worklist_sync.yml export, the instance survives a restart of Docker.
2. playbooks/qualify_image.yml with this box as the staging box: --check changes nothing; QUALIFIED for the
   jodogne/orthanc-plugins stand-in and for Debian's clinicpacs/orthanc:1.13.0 (loaded from their archives);
   NOT QUALIFIED, naming the check and the cause, for Orthanc 1.12.7 (the gate) and for an image built here
   from clinicpacs/orthanc:1.13.0 with its DICOMweb plugin truncated (passes the gate, Orthanc cannot start).

Traffic goes only to the box this scenario created and to containers inside it.
"""

from __future__ import annotations

import csv
import datetime
import json
import subprocess

import clinicbox
import pytest

BOX = "clinicpacs-molecule-layouts"
LAYOUT_IMAGE = "clinicpacs/orthancteam-layout:1.13.0"
ARCHIVES = "/srv/image-archives"
# Real sample data (tests/data/dicom/README.md): one uncompressed MR instance of BRAINIX.
SAMPLE = clinicbox.BRAINIX[0]
BROKEN = "clinicpacs/orthanc:1.13.0-truncated-dicomweb"
# Built in the box from the Debian image: the plugin file is there and readable (the gate passes), but cut to
# 4 KiB, so Orthanc dies loading it.
BROKEN_DOCKERFILE = """FROM clinicpacs/orthanc:1.13.0
USER root
RUN truncate -s 4096 "$(readlink -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so)"
USER orthanc
"""
TODAY = datetime.date.today().strftime("%Y%m%d")
CHECKS = ("image", "gate", "deploy", "REST", "C-ECHO", "C-STORE", "DICOMweb", "hardening", "restart")


@pytest.fixture(scope="module")
def clinic(host) -> clinicbox.Clinic:
    return clinicbox.Clinic.of(host, BOX)


def _inspect(host, name: str = "clinicpacs-orthanc") -> dict:
    res = host.run(f"docker inspect {name}")
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout)[0]


def _instance(clinic) -> list:
    return clinic.lookup(str(clinicbox.dcmread(SAMPLE, stop_before_pixels=True).SOPInstanceUID), "Instance")


# ----------------------------------------------------------------------------------------------------
# 1. The full stack on the orthancteam layout
# ----------------------------------------------------------------------------------------------------


def test_orthanc_runs_the_layout_image_as_its_binary(host):
    c = _inspect(host)
    assert c["Config"]["Image"] == LAYOUT_IMAGE
    # The role owns the process: the binary the image step found, with the role's configuration folder.
    assert (c["Path"], c["Args"]) == ("/usr/local/bin/Orthanc", ["/etc/orthanc/"])
    clinicbox.wait_healthy(host)


def test_https_rest_version_and_plugins(host, clinic):
    system = clinic.json("/system")
    assert system["Version"] == "1.13.0"
    assert system["DatabaseBackendPlugin"] == "/usr/share/orthanc/plugins-available/libOrthancPostgreSQLIndex.so"
    assert {"postgresql-index", "dicom-web"} <= set(clinic.json("/plugins"))
    assert clinic.anonymous_get("/system").status_code == 401


def test_c_echo_from_the_registered_device_address(host, clinic):
    res = clinicbox.dcmtk("echoscu", clinic.ip, "SIMSCAN")
    assert res.returncode == 0, res.stdout + res.stderr


def test_c_store_of_a_real_sample(host, clinic):
    res = clinicbox.dcmtk("storescu", clinic.ip, "SIMSCAN", [SAMPLE])
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(_instance(clinic)) == 1


def test_dicomweb_answers(host, clinic):
    study = clinicbox.study_uid([SAMPLE])
    found = clinic.json(f"/dicom-web/studies?StudyInstanceUID={study}")
    assert len(found) == 1 and found[0]["0020000D"]["Value"] == [study]
    assert len(clinic.json(f"/dicom-web/studies/{study}/metadata")) == 1


def test_orthanc_container_hardened(host):
    c = _inspect(host)
    hc = c["HostConfig"]
    assert c["Config"]["User"] == "4242:4242"
    assert hc["ReadonlyRootfs"] is True and hc["Privileged"] is False
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
    assert "no-new-privileges:true" in hc["SecurityOpt"]
    status = host.run("docker exec clinicpacs-orthanc cat /proc/1/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split()[:2] == ["4242", "4242"]
    assert int(fields["CapEff"].strip(), 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    res = host.run("docker exec clinicpacs-orthanc sh -c 'echo x > /etc/clinicpacs-probe'")
    assert res.rc != 0 and "Read-only file system" in res.stderr, res.stderr


def test_image_entrypoint_did_not_run(host):
    """/docker-entrypoint.sh would have written /etc/hostid, generated /tmp/orthanc.json and linked the
    plugins into /usr/share/orthanc/plugins."""
    res = host.run("docker exec clinicpacs-orthanc cat /etc/hostid")
    assert res.rc == 0 and res.stdout.strip() == "not-generated", res.stdout + res.stderr
    assert host.run("docker exec clinicpacs-orthanc test -e /tmp/orthanc.json").rc == 1
    res = host.run("docker exec clinicpacs-orthanc ls -A /usr/share/orthanc/plugins")
    assert res.rc == 0 and res.stdout.strip() == "", res.stdout


def _worklist_find(clinic, calling: str, station: str, out) -> tuple[subprocess.CompletedProcess, list]:
    """findscu -W from the Molecule host: the station's entries of today, every answer as a file."""
    out.mkdir()
    cmd = ["/usr/bin/findscu", "-W", "-aet", calling, "-aec", "ORTHANC", "-to", "20", "-X", "-od", str(out),
           "-k", "SpecificCharacterSet=ISO_IR 192", "-k", "PatientName", "-k", "PatientID",
           "-k", f"ScheduledProcedureStepSequence[0].ScheduledStationAETitle={station}",
           "-k", f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={TODAY}",
           clinic.ip, "4242"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    return res, [clinicbox.dcmread(path) for path in sorted(out.glob("*.dcm"))]


def test_worklist_on_upstream_plugin_file_name(host, clinic, tmp_path):
    """pacs_worklist_enabled on the orthancteam layout: the role loads plugins-available/libOrthancWorklists.so,
    worklist_sync.yml loads an export, and the registered device gets exactly its entry, accents intact."""
    # The role names the plugin it found in Orthanc's configuration, and Orthanc runs it.
    config = json.loads(host.file("/opt/clinicpacs/orthanc/orthanc.json").content_string)
    worklist_plugins = [path for path in config["Plugins"] if "Worklists" in path]
    assert worklist_plugins == ["/usr/share/orthanc/plugins-available/libOrthancWorklists.so"], config["Plugins"]
    assert "worklists" in clinic.json("/plugins")
    export = tmp_path / "appointments.csv"
    day = f"{TODAY[:4]}-{TODAY[4:6]}-{TODAY[6:]}"
    with export.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "patient_name", "patient_birth_date", "accession_number", "station_aet",
                         "start_date", "start_time"])  # fmt: skip
        writer.writerow(["LAY-1", "Lefèvre^Gaëlle", "1971-03-09", "ACC-LAY-1", "SIMSCAN", day, "09:30"])
        writer.writerow(["LAY-2", "O'Brien^Seán", "1980-11-02", "ACC-LAY-2", "OTHER01", day, "10:00"])
    extra = json.dumps({"worklist_sync_source": str(export), "worklist_sync_defaults": {"modality": "PX"}})
    res = clinicbox.playbook("worklist_sync.yml", "-e", extra)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-1500:]
    assert clinicbox.changed(res, BOX) >= 1
    found, answers = _worklist_find(clinic, "SIMSCAN", "SIMSCAN", tmp_path / "find")
    assert found.returncode == 0, found.stdout + found.stderr
    assert [(str(a.PatientID), str(a.PatientName)) for a in answers] == [("LAY-1", "Lefèvre^Gaëlle")]
    again = clinicbox.playbook("worklist_sync.yml", "-e", extra)
    assert again.returncode == 0 and clinicbox.changed(again, BOX) == 0, again.stdout[-4000:]


def _collections_archive(tmp_path) -> str:
    """The collection (this checkout) and its dependencies as installed for the tests, without what a control
    node does not need."""
    archive = tmp_path / "collections.tgz"
    excluded = (".venv", ".cache", ".collections", ".git", "tests", "bench", "docs")
    cmd = ["tar", "-C", str(clinicbox.REPO / ".collections"), "-czhf", str(archive)]
    cmd += [f"--exclude={name}" for name in excluded] + ["ansible_collections"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)  # noqa: S603
    return str(archive)


def test_worklist_sync_on_its_timer(host, clinic, tmp_path):
    """docs/worklist.md "On a timer": the drift_schedule role's second instance runs worklist_sync.yml. The box
    is its own control node here; its service, started as the timer starts it, loads the export, and the
    registered device finds the entry (the previous sync's entries of today are replaced: the day is exclusive)."""
    day = f"{TODAY[:4]}-{TODAY[4:6]}-{TODAY[6:]}"
    export = (
        "patient_id,patient_name,patient_birth_date,accession_number,station_aet,start_date,start_time\n"
        f"LAY-3,D'Alembert^Zoé,1969-07-21,ACC-LAY-3,SIMSCAN,{day},11:15\n"
    )
    extra = {"worklist_timer_collections": _collections_archive(tmp_path), "worklist_timer_csv": export}
    res = clinicbox.playbook("worklist_timer.yml", "-e", json.dumps(extra))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-1500:]
    assert host.run("systemctl is-enabled clinicpacs-worklist-sync.timer").stdout.strip() == "enabled"
    assert host.run("systemctl is-active clinicpacs-worklist-sync.timer").stdout.strip() == "active"
    script = host.run("cat /usr/local/sbin/clinicpacs-worklist-sync").stdout
    assert "clinicpacs.orthanc.worklist_sync" in script, script
    run = host.run("systemctl start clinicpacs-worklist-sync.service")
    log = host.run("journalctl --no-pager -u clinicpacs-worklist-sync.service -n 60").stdout
    assert run.rc == 0, run.stderr + log
    assert host.run("systemctl show -p Result --value clinicpacs-worklist-sync.service").stdout.strip() == "success"
    assert "1 appointment(s) loaded, 0 row(s) refused" in " ".join(log.split()), log
    found, answers = _worklist_find(clinic, "SIMSCAN", "SIMSCAN", tmp_path / "find")
    assert found.returncode == 0, found.stdout + found.stderr
    assert [(str(a.PatientID), str(a.PatientName)) for a in answers] == [("LAY-3", "D'Alembert^Zoé")]


def test_instance_survives_the_stack_recreated(host, clinic):
    """Down and up again: new containers (a restart of the Docker engine would not do, live-restore keeps them)."""
    before = clinicbox.started_at(host)
    compose = "docker compose --project-directory /opt/clinicpacs"
    res = host.run(f"{compose} down && {compose} up --detach --wait")
    assert res.rc == 0, res.stderr
    clinicbox.wait_healthy(host)
    assert clinicbox.started_at(host) != before
    assert len(_instance(clinic)) == 1
    assert clinicbox.dcmtk("echoscu", clinic.ip, "SIMSCAN").returncode == 0


# ----------------------------------------------------------------------------------------------------
# 2. qualify_image.yml on this box as the staging box
# ----------------------------------------------------------------------------------------------------


def _qualify(image: str, *args: str, archive: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    extra = {"qualify_image": image} | ({"qualify_image_archive": f"{ARCHIVES}/{archive}"} if archive else {})
    return clinicbox.playbook("qualify_image.yml", "-e", json.dumps(extra), *args, check=check)


def _assert_qualified(host, clinic, res: subprocess.CompletedProcess, image: str) -> None:
    out = clinicbox.text(res)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
    assert f"QUALIFIED: {image} on {BOX}, every check passed" in out, out[-3000:]
    assert "NOT QUALIFIED" not in out
    for check in CHECKS:
        assert f'"{check}: ' in out, (check, out[-3000:])
    assert _inspect(host)["Config"]["Image"] == image
    # The probe, its device and the sample are gone; the inventory's device is still there.
    assert host.run("docker ps -aq --filter name=clinicpacs-qualify-probe").stdout.strip() == ""
    assert clinic.json("/modalities") == ["sim-scan"]
    assert len(_instance(clinic)) == 1


def _assert_not_qualified(res: subprocess.CompletedProcess, image: str, check: str, *causes: str) -> None:
    out = clinicbox.text(res)
    assert res.returncode != 0, res.stdout[-3000:]
    assert f"NOT QUALIFIED: {image} on {BOX}: check {check} failed:" in out, out[-3000:]
    for cause in causes:
        assert cause in out, (cause, out[-3000:])


def test_qualify_check_mode_prints_the_plan_and_changes_nothing(host):
    before = _inspect(host)["Config"]["Image"]
    res = _qualify("clinicpacs/orthanc-plugins-layout:1.13.0", check=True, archive="orthanc-plugins-layout_1.13.0.tar")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Qualify clinicpacs/orthanc-plugins-layout:1.13.0 on" in clinicbox.text(res)
    assert "Check mode: nothing was changed." in clinicbox.text(res)
    assert clinicbox.changed(res, BOX) == 0
    assert host.run("docker image inspect clinicpacs/orthanc-plugins-layout:1.13.0").rc != 0
    assert _inspect(host)["Config"]["Image"] == before


def test_qualify_passes_the_orthanc_plugins_layout(host, clinic):
    image = "clinicpacs/orthanc-plugins-layout:1.13.0"
    res = _qualify(image, archive="orthanc-plugins-layout_1.13.0.tar")
    _assert_qualified(host, clinic, res, image)
    assert "binary /usr/local/sbin/Orthanc, plugins /usr/local/share/orthanc/plugins/libOrthancPostgreSQLIndex.so" in (
        clinicbox.text(res)
    )


def test_qualify_passes_debian_orthanc_1_13_0(host, clinic):
    image = "clinicpacs/orthanc:1.13.0"
    _assert_qualified(host, clinic, _qualify(image, archive="orthanc_1.13.0.tar"), image)


def test_qualify_refuses_orthanc_1_12_7_at_the_gate(host):
    res = _qualify("clinicpacs/orthanc:1.12.7", archive="orthanc_1.12.7.tar")
    _assert_not_qualified(
        res, "clinicpacs/orthanc:1.12.7", "gate", "it has Orthanc 1.12.7, older than the minimum 1.13.0"
    )
    # Refused before anything was deployed: the clinic still runs the last qualified image.
    assert _inspect(host)["Config"]["Image"] == "clinicpacs/orthanc:1.13.0"


def test_qualify_refuses_a_truncated_plugin_at_runtime(host):
    res = host.run("printf %s %s | DOCKER_BUILDKIT=0 docker build -q -t %s -", "%s", BROKEN_DOCKERFILE, BROKEN)
    assert res.rc == 0, res.stderr
    res = _qualify(BROKEN, "-e", "pacs_wait_timeout=90")
    _assert_not_qualified(res, BROKEN, "deploy", "container clinicpacs-orthanc is unhealthy", "libOrthancDicomWeb.so")
    # The gate passed (the file is there and readable): the failure is Orthanc's own, at start.
    assert "(passed before: image, gate)" in clinicbox.text(res)
    assert host.run("docker ps -aq --filter name=clinicpacs-qualify-probe").stdout.strip() == ""
