"""Verify of the backup_restore scenario: data safety of one clinic box, in file order.

1. import_archive.yml: every real sample plus a non-DICOM file and a truncated DICOM file; a second run
   imports nothing.
2. backup.yml; the fleet fact clinicpacs_last_backup_age; a corrupted backup is refused with nothing changed;
   restore.yml --check prints the plan and changes nothing.
3. The stack and its data are destroyed; restore.yml brings back the same instances, studies and MD5s.
4. Retention.
5. Faults: a simulated device (pynetdicom, one association per instance) stores the samples with fresh
   UIDs while Orthanc and then PostgreSQL are killed (SIGKILL from the box) and come back by their restart
   policy; every acknowledged instance is present and passes verify-md5; a re-send completes the set.

Traffic goes only to the box container this scenario created.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE
from requests.adapters import HTTPAdapter

DOCKER = "/usr/bin/docker"
BOX = "clinicpacs-molecule-backup_restore"
REPO = Path(__file__).resolve().parents[4]
SAMPLES = sorted((REPO / "tests/data/dicom").rglob("*.dcm"))
# Two sample files share one SOP Instance UID: Orthanc stores 84 instances from the 85 files.
UNIQUE = len({str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in SAMPLES})
CONTAINERS = ("clinicpacs-postgres", "clinicpacs-orthanc", "clinicpacs-nginx")
BACKUPS = "/var/backups/clinicpacs"
TOOL = "/usr/local/sbin/clinicpacs-backup"
ARCHIVE = "/srv/old-archive"
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


def _session(cfg) -> requests.Session:
    s = requests.Session()
    s.mount("https://", _ServerNameAdapter(cfg["vars"]["pacs_server_name"]))
    s.auth = ("admin", cfg["vars"]["pacs_admin_password"])
    return s


def _api(cfg, method: str, path: str, **kwargs) -> requests.Response:
    return _session(cfg).request(method, f"https://{cfg['ip']}{path}", timeout=30, verify=cfg["ca"], **kwargs)


def _json(cfg, path: str):
    r = _api(cfg, "GET", path)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def _snapshot(cfg) -> dict:
    """Instance count, sorted studies and every instance's attachment MD5."""
    instances = _json(cfg, "/instances")
    md5 = {i: _api(cfg, "GET", f"/instances/{i}/attachments/dicom/md5").text for i in instances}
    return {
        "count": _json(cfg, "/statistics")["CountInstances"],
        "studies": sorted(_json(cfg, "/studies")),
        "md5": md5,
    }


def _playbook(name: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    path = scenario / name if (scenario / name).exists() else REPO / "playbooks" / name
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(path),
    ]
    cmd += ["--check"] if check else []
    return subprocess.run(  # noqa: S603 - the venv's ansible-playbook on Molecule's own inventory
        cmd + list(args),
        capture_output=True,
        text=True,
        timeout=900,
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


def _started_at(host, name: str = "clinicpacs-orthanc") -> str:
    return host.run(f"docker inspect -f '{{{{.State.StartedAt}}}}' {name}").stdout.strip()


def _backups(host) -> list[str]:
    return host.run(f"{TOOL} list").stdout.split()


def _wait_healthy(host, timeout: int = 180) -> None:
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        res = host.run(f"docker inspect -f '{{{{.Name}}}} {{{{.State.Health.Status}}}}' {' '.join(CONTAINERS)}")
        states = res.stdout
        if res.rc == 0 and states.count(" healthy") == len(CONTAINERS):
            return
        time.sleep(2)
    raise AssertionError(f"containers not healthy after {timeout}s: {states}")


# ----------------------------------------------------------------------------------------------------
# 1. Import of an existing archive
# ----------------------------------------------------------------------------------------------------


def test_import_archive_reports_bad_files(host):
    assert len(SAMPLES) == 85
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "old-archive"
        for src in SAMPLES:
            dest = folder / src.relative_to(REPO / "tests/data/dicom")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
        (folder / "notes.txt").write_text("patient list exported by the old imaging software\n")
        whole = (REPO / "tests/data/dicom/Issue154-d1.dcm").read_bytes()
        (folder / "truncated.dcm").write_bytes(whole[: len(whole) // 3])
        subprocess.run([DOCKER, "cp", str(folder), f"{BOX}:{ARCHIVE}"], check=True, capture_output=True)  # noqa: S603
    res = _playbook("import_archive.yml", "-e", f"import_path={ARCHIVE}")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert f"87 files; {UNIQUE} imported, {85 - UNIQUE} already in Orthanc" in _text(res), res.stdout[-3000:]
    assert "Not DICOM (1): notes.txt" in _text(res)
    assert "Refused by Orthanc (1): truncated.dcm" in _text(res)


def test_import_archive_second_run_imports_nothing(host, cfg):
    res = _playbook("import_archive.yml", "-e", f"import_path={ARCHIVE}")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "87 files; 0 imported, 0 already in Orthanc, 87 handled by an earlier run" in _text(res), res.stdout[-3000:]
    assert _recap_changed(res) == 0
    check = _playbook("import_archive.yml", "-e", f"import_path={ARCHIVE}", check=True)
    assert check.returncode == 0 and _recap_changed(check) == 0, check.stdout[-3000:]
    assert _json(cfg, "/statistics")["CountInstances"] == UNIQUE


# ----------------------------------------------------------------------------------------------------
# 2. Backup, fleet fact, refused corrupt backup, restore plan
# ----------------------------------------------------------------------------------------------------


def test_backup_written_atomically_with_checksums(host, cfg):
    STATE["before"] = _snapshot(cfg)
    assert STATE["before"]["count"] == UNIQUE == 84
    res = _playbook("backup.yml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    names = _backups(host)
    assert len(names) == 1
    STATE["backup"] = names[0]
    d = f"{BACKUPS}/{names[0]}"
    assert host.file(BACKUPS).mode == 0o700
    assert host.run(f"ls -a {BACKUPS}").stdout.count(".tmp-") == 0
    manifest = host.file(f"{d}/MANIFEST").content_string
    assert f"instances={UNIQUE}" in manifest
    assert "orthanc_image=clinicpacs/orthanc:1.12.7" in manifest
    assert host.run(f"cd {d} && sha256sum --check --quiet --strict SHA256SUMS").rc == 0
    # pg_dump custom format, and a storage file per instance.
    assert host.run(f"head -c 5 {d}/postgresql.dump").stdout == "PGDMP"
    assert int(host.run(f"find {d}/storage -type f | wc -l").stdout) >= UNIQUE
    assert host.run(f"{TOOL} verify {names[0]}").rc == 0


def test_backup_timer_scheduled(host):
    timer = host.service("clinicpacs-backup.timer")
    assert timer.is_enabled and timer.is_running


def test_last_backup_age_fact(host):
    res = _playbook("age.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    assert f"last backup age=0m name={STATE['backup']}" in _text(res), res.stdout[-2000:]
    check = _playbook("age.yml", check=True)
    assert check.returncode == 0 and _recap_changed(check) == 0


def test_corrupted_backup_refused_and_nothing_changed(host, cfg):
    corrupt = f"{BACKUPS}/corrupt-copy"
    assert host.run(f"cp -a {BACKUPS}/{STATE['backup']} {corrupt}").rc == 0
    victim = host.run(f"find {corrupt}/storage -type f | sort | head -n 1").stdout.strip()
    assert host.run(f"printf 'X' | dd of={victim} bs=1 seek=300 conv=notrunc status=none").rc == 0
    started = _started_at(host)
    res = _playbook("restore.yml", "-e", f"backup_restore_name={corrupt}")
    host.run(f"rm -rf {corrupt}")
    assert res.returncode != 0
    assert "is corrupt: checksum mismatch" in _text(res), res.stdout[-3000:]
    assert "nothing was changed" in _text(res)
    assert _started_at(host) == started
    assert _backups(host) == [STATE["backup"]]
    assert _json(cfg, "/statistics")["CountInstances"] == UNIQUE


def test_restore_check_mode_prints_plan_changes_nothing(host):
    started = _started_at(host)
    res = _playbook("restore.yml", check=True)
    assert res.returncode == 0, res.stdout[-3000:]
    assert f"Restore plan for {BOX} from {BACKUPS}/{STATE['backup']}" in _text(res), res.stdout[-3000:]
    assert "Check mode: nothing was changed." in _text(res)
    assert _recap_changed(res) == 0
    assert _started_at(host) == started
    assert _backups(host) == [STATE["backup"]]


# ----------------------------------------------------------------------------------------------------
# 3. Disaster: the stack and its data are gone; restore
# ----------------------------------------------------------------------------------------------------


def test_restore_after_stack_and_data_destroyed(host, cfg):
    assert host.run("docker compose -f /opt/clinicpacs/docker-compose.yml down -v").rc == 0
    assert host.run("rm -rf /srv/clinicpacs/orthanc /srv/clinicpacs/postgresql").rc == 0
    assert host.run("docker ps -q").stdout.strip() == ""
    res = _playbook("restore.yml")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Restored" in _text(res) and f"{UNIQUE} instances" in _text(res)
    after = _snapshot(cfg)
    assert after["count"] == STATE["before"]["count"]
    assert after["studies"] == STATE["before"]["studies"]
    assert after["md5"] == STATE["before"]["md5"]
    # Devices live in the database: restored with it.
    assert sorted(_json(cfg, "/modalities")) == ["sim-cbct"]


# ----------------------------------------------------------------------------------------------------
# 4. Retention
# ----------------------------------------------------------------------------------------------------


def test_retention_keeps_last_daily_weekly(host):
    fakes = ["20251110T010000Z", "20251109T010000Z", "20251101T010000Z", "20251020T010000Z"]
    for name in fakes:
        host.run(f"mkdir -p {BACKUPS}/{name}")
    assert host.run(f"{TOOL} prune").rc == 0
    # keep_last 2 (today's, 20251110), daily 2 (same two days), weekly 3 (+ 20251109, ISO week 45).
    assert _backups(host) == [STATE["backup"], "20251110T010000Z", "20251109T010000Z"]
    host.run(f"rm -rf {BACKUPS}/20251110T010000Z {BACKUPS}/20251109T010000Z")


# ----------------------------------------------------------------------------------------------------
# 5. Crashes while a device stores
# ----------------------------------------------------------------------------------------------------


def _fresh_copies() -> list:
    """The samples with new Study/Series/SOP Instance UIDs (deep copies), keyed by new SOP Instance UID."""
    studies, series, out = {}, {}, []
    for path in SAMPLES:
        ds = copy.deepcopy(dcmread(path))
        studies.setdefault(ds.StudyInstanceUID, generate_uid())
        series.setdefault(ds.SeriesInstanceUID, generate_uid())
        ds.StudyInstanceUID = studies[ds.StudyInstanceUID]
        ds.SeriesInstanceUID = series[ds.SeriesInstanceUID]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out.append(ds)
    return out


def _store(ip: str, ds) -> bool:
    """One association, one C-STORE; True when Orthanc acknowledged with status Success."""
    ae = AE(ae_title="SIMCBCT")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
    try:
        assoc = ae.associate(ip, 4242, ae_title="ORTHANC")
        if not assoc.is_established:
            return False
        try:
            status = assoc.send_c_store(ds)
            return bool(status) and status.Status == 0x0000
        finally:
            assoc.release()
    except (OSError, RuntimeError, ValueError):
        return False


def _kill(name: str) -> None:
    """SIGKILL the container's main process from the box: a crash; the restart policy brings it back."""
    script = f"kill -9 $(docker inspect -f '{{{{.State.Pid}}}}' {name})"
    subprocess.run([DOCKER, "exec", BOX, "sh", "-c", script], check=True, capture_output=True, timeout=30)  # noqa: S603


def _lookup(cfg, uid: str) -> list:
    r = _api(cfg, "POST", "/tools/lookup", data=uid)
    assert r.status_code == 200, r.text
    return [x["ID"] for x in r.json() if x["Type"] == "Instance"]


def test_crashes_while_storing_lose_no_acknowledged_instance(host, cfg):
    datasets = _fresh_copies()
    acked, missing = [], []
    kills = {20: "clinicpacs-orthanc", 50: "clinicpacs-postgres"}
    for index, ds in enumerate(datasets):
        if index in kills:
            # Killed while the device keeps sending: the kill lands during the next stores.
            threading.Timer(0.2, _kill, args=(kills[index],)).start()
        if _store(cfg["ip"], ds):
            acked.append(ds)
        else:
            missing.append(ds)
            time.sleep(1)
    _wait_healthy(host)
    # Both crashes happened and the containers came back by themselves.
    for name in ("clinicpacs-orthanc", "clinicpacs-postgres"):
        assert int(host.run(f"docker inspect -f '{{{{.RestartCount}}}}' {name}").stdout) >= 1, name
    assert missing, "no store failed: the kills did not hit the transfer"
    for ds in acked:
        ids = _lookup(cfg, ds.SOPInstanceUID)
        assert len(ids) == 1, f"acknowledged instance {ds.SOPInstanceUID} is missing"
        r = _api(cfg, "POST", f"/instances/{ids[0]}/attachments/dicom/verify-md5")
        assert r.status_code == 200, f"{ids[0]} fails verify-md5: {r.text}"
    # The device re-sends what was not acknowledged: the set is complete.
    for ds in missing:
        deadline = time.monotonic() + 60
        while not _store(cfg["ip"], ds):
            assert time.monotonic() < deadline, f"re-send of {ds.SOPInstanceUID} keeps failing"
            time.sleep(2)
    for ds in datasets:
        assert len(_lookup(cfg, ds.SOPInstanceUID)) == 1
    assert _json(cfg, "/statistics")["CountInstances"] == UNIQUE + len(datasets)
