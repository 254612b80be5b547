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
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import clinicbox
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE

BOX = "clinicpacs-molecule-backup_restore"
SAMPLES = clinicbox.SAMPLES
UNIQUE = clinicbox.unique_instances()
BACKUPS = "/var/backups/clinicpacs"
WORKLIST_PROBE = "/srv/clinicpacs/orthanc/worklists/backup-probe.wl"
WORKLIST_TEXT = "worklist entry probe"
TOOL = "/usr/local/sbin/clinicpacs-backup"
ARCHIVE = "/srv/old-archive"
STATE: dict = {}


@pytest.fixture(scope="module")
def clinic(host) -> clinicbox.Clinic:
    return clinicbox.Clinic.of(host, BOX)


def _playbook(name: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    return clinicbox.playbook(name, *args, check=check)


def _text(res: subprocess.CompletedProcess) -> str:
    return clinicbox.text(res)


def _recap_changed(res: subprocess.CompletedProcess) -> int:
    return clinicbox.changed(res, BOX)


def _backups(host) -> list[str]:
    return host.run(f"{TOOL} list").stdout.split()


# ----------------------------------------------------------------------------------------------------
# 1. Import of an existing archive
# ----------------------------------------------------------------------------------------------------


def test_import_archive_reports_bad_files(host):
    assert len(SAMPLES) == 85
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "old-archive"
        for src in SAMPLES:
            dest = folder / src.relative_to(clinicbox.SAMPLES_DIR)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
        (folder / "notes.txt").write_text("patient list exported by the old imaging software\n")
        whole = (clinicbox.SAMPLES_DIR / "Issue154-d1.dcm").read_bytes()
        (folder / "truncated.dcm").write_bytes(whole[: len(whole) // 3])
        subprocess.run([clinicbox.DOCKER, "cp", str(folder), f"{BOX}:{ARCHIVE}"], check=True, capture_output=True)  # noqa: S603
    res = _playbook("import_archive.yml", "-e", f"import_path={ARCHIVE}")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert f"87 files; {UNIQUE} imported, {85 - UNIQUE} already in Orthanc" in _text(res), res.stdout[-3000:]
    assert "Not DICOM (1): notes.txt" in _text(res)
    assert "Refused by Orthanc (1): truncated.dcm" in _text(res)


def test_import_archive_second_run_imports_nothing(host, clinic):
    res = _playbook("import_archive.yml", "-e", f"import_path={ARCHIVE}")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "87 files; 0 imported, 0 already in Orthanc, 87 handled by an earlier run" in _text(res), res.stdout[-3000:]
    assert _recap_changed(res) == 0
    check = _playbook("import_archive.yml", "-e", f"import_path={ARCHIVE}", check=True)
    assert check.returncode == 0 and _recap_changed(check) == 0, check.stdout[-3000:]
    assert clinic.json("/statistics")["CountInstances"] == UNIQUE


# ----------------------------------------------------------------------------------------------------
# 2. Backup, fleet fact, refused corrupt backup, restore plan
# ----------------------------------------------------------------------------------------------------


def test_backup_written_atomically_with_checksums(host, clinic):
    # A worklist entry file (pacs_worklist_enabled keeps them in the storage area's worklists folder): the
    # backup takes it and the restore brings it back (test_restore_after_stack_and_data_destroyed).
    folder = WORKLIST_PROBE.rsplit("/", 1)[0]
    plant = f"install -d -o 4242 -g 4242 -m 0750 {folder} && printf %s {WORKLIST_TEXT!r} >{WORKLIST_PROBE}"
    assert host.run(plant).rc == 0
    STATE["before"] = clinic.snapshot()
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
    assert "orthanc_image=clinicpacs/orthanc:1.13.0" in manifest
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


def test_corrupted_backup_refused_and_nothing_changed(host, clinic):
    corrupt = f"{BACKUPS}/corrupt-copy"
    assert host.run(f"cp -a {BACKUPS}/{STATE['backup']} {corrupt}").rc == 0
    victim = host.run(f"find {corrupt}/storage -type f | sort | head -n 1").stdout.strip()
    assert host.run(f"printf 'X' | dd of={victim} bs=1 seek=300 conv=notrunc status=none").rc == 0
    started = clinicbox.started_at(host)
    res = _playbook("restore.yml", "-e", f"backup_restore_name={corrupt}")
    host.run(f"rm -rf {corrupt}")
    assert res.returncode != 0
    assert "is corrupt: checksum mismatch" in _text(res), res.stdout[-3000:]
    assert "nothing was changed" in _text(res)
    assert clinicbox.started_at(host) == started
    assert _backups(host) == [STATE["backup"]]
    assert clinic.json("/statistics")["CountInstances"] == UNIQUE


def test_restore_check_mode_prints_plan_changes_nothing(host):
    started = clinicbox.started_at(host)
    res = _playbook("restore.yml", check=True)
    assert res.returncode == 0, res.stdout[-3000:]
    assert f"Restore plan for {BOX} from {BACKUPS}/{STATE['backup']}" in _text(res), res.stdout[-3000:]
    assert "Check mode: nothing was changed." in _text(res)
    assert _recap_changed(res) == 0
    assert clinicbox.started_at(host) == started
    assert _backups(host) == [STATE["backup"]]


def test_restore_keeps_the_current_state_first(host, clinic):
    """A restore on a running clinic first backs up what is there now (label pre-restore), so that the restore
    itself can be undone: here the current state lacks one study, which that backup records and the restore
    brings back."""
    study = sorted(clinic.json("/studies"))[0]
    lost = len(clinic.json(f"/studies/{study}/instances"))
    assert clinic.request("DELETE", f"/studies/{study}").status_code == 200
    res = _playbook("restore.yml", "-e", f"backup_restore_name={STATE['backup']}")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert clinic.json("/statistics")["CountInstances"] == UNIQUE
    taken = [name for name in _backups(host) if name != STATE["backup"]]
    assert len(taken) == 1, _backups(host)
    manifest = host.file(f"{BACKUPS}/{taken[0]}/MANIFEST").content_string.splitlines()
    assert "label=pre-restore" in manifest and f"instances={UNIQUE - lost}" in manifest, manifest
    # The tests below expect the one backup of the start.
    assert host.run(f"rm -rf {BACKUPS}/{taken[0]}").rc == 0


# ----------------------------------------------------------------------------------------------------
# 3. Disaster: the stack and its data are gone; restore
# ----------------------------------------------------------------------------------------------------


def test_restore_after_stack_and_data_destroyed(host, clinic):
    assert host.run("docker compose -f /opt/clinicpacs/docker-compose.yml down -v").rc == 0
    assert host.run("rm -rf /srv/clinicpacs/orthanc /srv/clinicpacs/postgresql").rc == 0
    assert host.run("docker ps -q").stdout.strip() == ""
    res = _playbook("restore.yml")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Restored" in _text(res) and f"{UNIQUE} instances" in _text(res)
    after = clinic.snapshot()
    assert after["count"] == STATE["before"]["count"]
    assert after["studies"] == STATE["before"]["studies"]
    assert after["md5"] == STATE["before"]["md5"]
    # Devices live in the database: restored with it.
    assert sorted(clinic.json("/modalities")) == ["sim-cbct"]
    assert host.file(WORKLIST_PROBE).content_string == WORKLIST_TEXT


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
    subprocess.run([clinicbox.DOCKER, "exec", BOX, "sh", "-c", script], check=True, capture_output=True, timeout=30)  # noqa: S603


def test_crashes_while_storing_lose_no_acknowledged_instance(host, clinic):
    datasets = _fresh_copies()
    acked, missing = [], []
    kills = {20: "clinicpacs-orthanc", 50: "clinicpacs-postgres"}
    for index, ds in enumerate(datasets):
        if index in kills:
            # Killed while the device keeps sending: the kill lands during the next stores.
            threading.Timer(0.2, _kill, args=(kills[index],)).start()
        if _store(clinic.ip, ds):
            acked.append(ds)
        else:
            missing.append(ds)
            time.sleep(1)
    clinicbox.wait_healthy(host)
    # Both crashes happened and the containers came back by themselves.
    for name in ("clinicpacs-orthanc", "clinicpacs-postgres"):
        assert int(host.run(f"docker inspect -f '{{{{.RestartCount}}}}' {name}").stdout) >= 1, name
    assert missing, "no store failed: the kills did not hit the transfer"
    for ds in acked:
        ids = clinic.lookup(ds.SOPInstanceUID, "Instance")
        assert len(ids) == 1, f"acknowledged instance {ds.SOPInstanceUID} is missing"
        r = clinic.verify_md5(ids[0])
        assert r.status_code == 200, f"{ids[0]} fails verify-md5: {r.text}"
    # The device re-sends what was not acknowledged: the set is complete.
    for ds in missing:
        deadline = time.monotonic() + 60
        while not _store(clinic.ip, ds):
            assert time.monotonic() < deadline, f"re-send of {ds.SOPInstanceUID} keeps failing"
            time.sleep(2)
    for ds in datasets:
        assert len(clinic.lookup(ds.SOPInstanceUID, "Instance")) == 1
    assert clinic.json("/statistics")["CountInstances"] == UNIQUE + len(datasets)
