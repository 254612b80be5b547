"""Verify of the backup_restore scenario, after test_backup_restore.py: the backup tool under stress.

1. The pause: Orthanc is paused while the database is dumped and the storage snapshotted, and runs while the
   snapshot is copied. The run is held at each of those moments: pg_dump waits for a table lock the test
   holds in PostgreSQL; `cp` (the snapshot) and `rsync` (the copy) are wrappers on the run's PATH that wait
   for the test. A failure and a SIGKILL inside the pause window leave Orthanc running.
2. Interruptions: the run is killed (SIGKILL, SIGTERM) before, during and after the storage copy. No
   directory that looks like a backup appears, `latest` stays the last good one, and the next run succeeds
   and removes the leftovers; retention keeps the last good backup.
3. The off-box copy to an MSP host: a container with sshd and rsync on the scenario network (image
   clinicpacs/mspbackup:trixie), the box's key in its authorized_keys, its host key pinned by the role. The
   copy arrives complete; a wrong key, a changed host key and a host that is down each fail the copy with one
   clear line (exit 4) while the local backup is complete.

Traffic goes only to the box and the MSP container this scenario created.
"""

from __future__ import annotations

import json
import subprocess
import time

import clinicbox
import pytest
import requests

BOX = "clinicpacs-molecule-backup_restore"
NETWORK = "clinicpacs-molecule-backup_restore-net"
MSP = f"{BOX}-msp"
MSP_IP = "10.213.48.20"
MSP_IMAGE = "clinicpacs/mspbackup:trixie"
BACKUPS = "/var/backups/clinicpacs"
SNAPSHOT = "/srv/clinicpacs/.backup-snapshot"
TOOL = "/usr/local/sbin/clinicpacs-backup"
HOLD = "/var/tmp/cpb-hold"  # noqa: S108 - inside the box (its /tmp is noexec), made by the fixture
ORTHANC = "clinicpacs-orthanc"
PSQL = "docker exec -i clinicpacs-postgres psql -U orthanc -d orthanc -tAc"
# The first call of each wrapped command waits for the test when armed (HOLD/<cmd>.arm); with <cmd>.slow the
# held rsync then copies at 2 MB/s, so that the test can kill the run in the middle of the copy.
WRAPPER = r"""#!/bin/sh
name=$(basename "$0")
dir=/var/tmp/cpb-hold
if [ -e "$dir/$name.arm" ] && mkdir "$dir/$name.at" 2>/dev/null; then
  while [ ! -e "$dir/$name.go" ]; do sleep 0.05; done
  [ ! -e "$dir/$name.slow" ] || exec "/usr/bin/$name" --bwlimit=2000 "$@"
fi
exec "/usr/bin/$name" "$@"
"""
HELD = ("cp", "rsync", "sha256sum")


@pytest.fixture(scope="module")
def clinic(host) -> clinicbox.Clinic:
    return clinicbox.Clinic.of(host, BOX)


@pytest.fixture(autouse=True)
def hold(host):
    """Fresh wrappers, nothing armed; afterwards every lock released and Orthanc unpaused, whatever happened."""
    script = f"rm -rf {HOLD} && mkdir -p {HOLD} && cat >{HOLD}/wrapper && chmod 0755 {HOLD}/wrapper"
    script += "".join(f" && ln -s wrapper {HOLD}/{name}" for name in HELD)
    subprocess.run([clinicbox.DOCKER, "exec", "-i", BOX, "sh", "-c", script], input=WRAPPER, text=True, check=True)  # noqa: S603
    yield
    _release_table_lock(host)
    host.run(f"touch {' '.join(f'{HOLD}/{name}.go' for name in HELD)}")
    host.run(f"docker unpause {ORTHANC}")


def _backups(host) -> list[str]:
    return host.run(f"{TOOL} list").stdout.split()


def _state(host) -> str:
    return host.run(f"docker inspect -f '{{{{.State.Status}}}}' {ORTHANC}").stdout.strip()


def _answers(clinic) -> bool:
    try:
        return clinic.request("GET", "/system", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def _wait(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start(host, *names: str, slow: bool = False) -> subprocess.Popen:
    """Arm the wrappers `names` and start a backup run in the box; its pid is in HOLD/pid."""
    arm = " ".join(f"{HOLD}/{name}.arm" for name in names) + (f" {HOLD}/rsync.slow" if slow else "")
    if arm.strip():
        assert host.run(f"touch {arm}").rc == 0
    script = f"echo $$ >{HOLD}/pid; exec env PATH={HOLD}:/usr/sbin:/usr/bin:/sbin:/bin {TOOL} run --label stress"
    return subprocess.Popen(  # noqa: S603 - the scenario's own box
        [clinicbox.DOCKER, "exec", BOX, "bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _held(host, name: str, timeout: float = 60) -> None:
    _wait(lambda: host.file(f"{HOLD}/{name}.at").exists, f"the run to reach {name}", timeout)


def _go(host, name: str) -> None:
    assert host.run(f"touch {HOLD}/{name}.go").rc == 0


def _kill(host, signal: str) -> None:
    assert host.run(f"kill -{signal} $(cat {HOLD}/pid)").rc == 0


def _finish(run: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = run.communicate(timeout=timeout)
    return run.returncode, out, err


def _hold_table_lock(host) -> subprocess.Popen:
    """An open transaction holding an exclusive lock on a table that Orthanc does not touch while idle and that
    the run's instance count does not read: the run's pg_dump waits for it (inside the pause window)."""
    lock = subprocess.Popen(  # noqa: S603 - the scenario's own box
        [clinicbox.DOCKER, "exec", BOX, "sh", "-c",
         f"{PSQL} 'BEGIN; LOCK TABLE maindicomtags IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT'"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    query = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'maindicomtags'::regclass"
    _wait(lambda: host.run(f'{PSQL} "{query}"').stdout.strip() == "1", "the test's table lock")
    return lock


def _release_table_lock(host) -> None:
    query = (
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' "
        "AND pid <> pg_backend_pid()"
    )
    host.run(f'{PSQL} "{query}"')


def _dump_waiting(host) -> bool:
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"
    return host.run(f'{PSQL} "{query}"').stdout.strip() == "1"


def _no_leftovers(host) -> None:
    assert host.run(f"ls -A {BACKUPS} | grep -c '^\\.tmp-'").stdout.strip() == "0", host.run(f"ls -A {BACKUPS}").stdout
    assert not host.file(SNAPSHOT).exists


# ----------------------------------------------------------------------------------------------------
# 1. The pause window
# ----------------------------------------------------------------------------------------------------


def test_orthanc_paused_during_dump_and_snapshot_running_during_copy(host, clinic):
    before = _backups(host)
    lock = _hold_table_lock(host)
    run = _start(host, "cp", "rsync")
    _wait(lambda: _dump_waiting(host), "pg_dump waiting for the table lock")
    assert _state(host) == "paused"
    assert not _answers(clinic), "Orthanc answered while the database was being dumped"
    _release_table_lock(host)
    lock.wait(timeout=30)
    _held(host, "cp")
    assert _state(host) == "paused", "the storage snapshot was taken while Orthanc ran"
    _go(host, "cp")
    _held(host, "rsync")
    # The snapshot is complete before Orthanc runs again; the copy runs while Orthanc works.
    assert _state(host) == "running"
    assert _answers(clinic)
    stored = int(host.run("find /srv/clinicpacs/orthanc -type f | wc -l").stdout)
    assert int(host.run(f"find {SNAPSHOT} -type f | wc -l").stdout) == stored
    _go(host, "rsync")
    rc, out, err = _finish(run)
    assert rc == 0, err
    name = out.split()[-1]
    assert _backups(host)[0] == name and name not in before
    assert "(Orthanc was paused meanwhile)" in err
    assert host.run(f"{TOOL} verify {name}").rc == 0
    _no_leftovers(host)


def test_failure_inside_the_pause_window_leaves_orthanc_running(host, clinic):
    before = _backups(host)
    lock = _hold_table_lock(host)
    run = _start(host)
    _wait(lambda: _dump_waiting(host), "pg_dump waiting for the table lock")
    assert _state(host) == "paused"
    # pg_dump's connection is ended by the server: the dump fails while Orthanc is paused.
    query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
    host.run(f'{PSQL} "{query}"')
    rc, _out, err = _finish(run)
    _release_table_lock(host)
    lock.wait(timeout=30)
    assert rc != 0, err
    assert _state(host) == "running"
    assert _answers(clinic)
    assert _backups(host) == before
    _no_leftovers(host)


def test_sigkill_inside_the_pause_window_leaves_orthanc_running(host, clinic):
    """SIGKILL runs no trap: the guard process unpauses Orthanc once the dead run's lock is released."""
    before = _backups(host)
    lock = _hold_table_lock(host)
    run = _start(host)
    _wait(lambda: _dump_waiting(host), "pg_dump waiting for the table lock")
    assert _state(host) == "paused"
    _kill(host, "KILL")
    _finish(run)
    _wait(lambda: _state(host) == "running", "Orthanc to be unpaused after the run was killed", timeout=20)
    assert _answers(clinic)
    _release_table_lock(host)
    lock.wait(timeout=30)
    assert _backups(host) == before
    # What the killed run left is no backup: not listed, not `latest`, refused by verify.
    left = host.run(f"ls -A {BACKUPS} | grep '^\\.tmp-'").stdout.split()
    assert len(left) == 1, left
    assert host.run(f"{TOOL} verify {BACKUPS}/{left[0]}").rc == 3
    assert f"from {BACKUPS}/{before[0]}:" in host.run(f"{TOOL} plan latest").stdout


# ----------------------------------------------------------------------------------------------------
# 2. Interrupted runs
# ----------------------------------------------------------------------------------------------------

INTERRUPTIONS = [
    ("before-copy", "rsync", False, "KILL"),
    ("mid-copy", "rsync", True, "KILL"),
    ("mid-copy", "rsync", True, "TERM"),
    ("checksums", "sha256sum", False, "KILL"),
    ("checksums", "sha256sum", False, "TERM"),
]


@pytest.mark.parametrize(
    ("point", "command", "slow", "signal"), INTERRUPTIONS, ids=[f"{p}-{s}" for p, _c, _sl, s in INTERRUPTIONS]
)
def test_interrupted_run_leaves_no_backup_and_the_next_run_succeeds(host, clinic, point, command, slow, signal):
    before = _backups(host)
    run = _start(host, command, slow=slow)
    _held(host, command)
    # The directory the run writes into (.tmp-<name>).
    tmp = [name for name in host.run(f"ls -A {BACKUPS}").stdout.split() if name not in before]
    assert len(tmp) == 1, tmp
    if slow:
        # Killed in the middle of the copy: some storage files are copied, not all.
        _go(host, command)
        _wait(
            lambda: int(host.run(f"find {BACKUPS}/{tmp[0]}/storage -type f | wc -l").stdout or 0) > 3, "a partial copy"
        )
        _kill(host, signal)
    else:
        # Killed just before the command; what it started then goes on as an orphan of the killed run.
        _kill(host, signal)
        _go(host, command)
    rc, _out, _err = _finish(run)
    assert rc != 0
    assert _state(host) == "running"
    # No directory that looks like a backup: the list, `latest` and every timestamp-named directory unchanged.
    assert _backups(host) == before
    named = host.run(f"find {BACKUPS} -mindepth 1 -maxdepth 1 -name '2*' -printf '%f\\n' | sort -r").stdout.split()
    assert named == before
    assert f"from {BACKUPS}/{before[0]}:" in host.run(f"{TOOL} plan latest").stdout
    left = host.run(f"ls -A {BACKUPS} | grep '^\\.tmp-'").stdout.split()
    if signal == "TERM":
        # The run's own cleanup: nothing left, its copy stopped.
        time.sleep(1)
        _no_leftovers(host)
        assert host.run("pgrep -x rsync").rc != 0
    for name in left:
        assert host.run(f"{TOOL} verify {BACKUPS}/{name}").rc == 3
    # A copy that a SIGKILL orphaned keeps the run's lock until it ends: no run starts beside it.
    _wait(lambda: host.run("flock -n /run/lock/clinicpacs-backup.lock true").rc == 0, "the orphaned copy to end")
    # The next run succeeds, removes what the killed one left, and retention keeps the last good backup.
    res = host.run(f"{TOOL} run --label after-{point}")
    assert res.rc == 0, res.stderr
    name = res.stdout.split()[-1]
    after = _backups(host)
    assert after[0] == name and before[0] in after, (before, after)
    assert host.run(f"{TOOL} verify {name}").rc == 0
    _no_leftovers(host)
    assert _state(host) == "running"


# ----------------------------------------------------------------------------------------------------
# 3. The off-box copy
# ----------------------------------------------------------------------------------------------------


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([clinicbox.DOCKER, *args], capture_output=True, text=True, check=check, timeout=60)  # noqa: S603


@pytest.fixture(scope="module")
def msp():
    """The MSP backup host: sshd + rsync at MSP_IP on the scenario network, with a fresh host key."""
    _docker("rm", "-f", MSP, check=False)
    _docker("run", "-d", "--name", MSP, "--network", NETWORK, "--ip", MSP_IP, MSP_IMAGE)
    try:
        _wait(
            lambda: (
                _docker("exec", MSP, "test", "-s", "/etc/ssh/ssh_host_ed25519_key.pub", check=False).returncode == 0
            ),
            "the MSP host's key",
        )
        yield
    finally:
        _docker("rm", "-f", MSP, check=False)


def _remote_vars(host_key: str) -> str:
    return json.dumps(
        {
            "backup_remote_enabled": True,
            "backup_remote_host": MSP_IP,
            "backup_remote_known_hosts_line": f"{MSP_IP} {host_key}",
            "backup_remote_connect_timeout": 5,
        }
    )


def _authorize(public_key: str) -> None:
    keys = "/home/clinicpacs-backup/.ssh/authorized_keys"
    script = f"cat >{keys} && chown clinicpacs-backup: {keys}"
    subprocess.run([clinicbox.DOCKER, "exec", "-i", MSP, "sh", "-c", script], input=public_key, text=True, check=True)  # noqa: S603


def test_off_box_copy_arrives_complete_and_failures_are_one_line(host, msp):
    host_key = " ".join(_docker("exec", MSP, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2])
    # The role installs the SSH client and pins the host key; the box's key is made here (the MSP deploys it).
    host.run("rm -f /root/.ssh/clinicpacs-backup /root/.ssh/clinicpacs-backup.pub")
    started = time.monotonic()
    res = clinicbox.playbook("backup.yml", "-e", _remote_vars(host_key))
    print(f"backup.yml with the remote settings: {time.monotonic() - started:.1f} s")
    # No key on the box yet: the MSP host refuses the copy; the play fails with the tool's one line, and the
    # local backup is complete.
    assert res.returncode != 0
    assert host.run(f"grep -c '^{MSP_IP} ssh-ed25519' /root/.ssh/known_hosts").stdout.strip() == "1"
    text = clinicbox.text(res)
    assert "is complete on this box, but its off-box copy to clinicpacs-backup@" in text, res.stdout[-3000:]
    local = _backups(host)
    assert host.run(f"{TOOL} verify {local[0]}").rc == 0
    assert host.run("ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/clinicpacs-backup").rc == 0
    _authorize(host.file("/root/.ssh/clinicpacs-backup.pub").content_string)

    # A copy on the MSP host that this box no longer has (taken before the box lost its disk): the next
    # backup adds to the MSP host and never deletes it.
    remote = f"/srv/backups/{BOX}"
    older = "20000101T000000Z"
    _docker(
        "exec",
        "-u",
        "clinicpacs-backup",
        MSP,
        "sh",
        "-c",
        f"mkdir -p {remote}/{older} && echo kept >{remote}/{older}/MANIFEST",
    )
    res = host.run(f"{TOOL} run --label off-box")
    assert res.rc == 0, res.stderr
    assert f"copied to clinicpacs-backup@{MSP_IP}:/srv/backups/{BOX}" in res.stderr
    names = _docker("exec", MSP, "sh", "-c", f"ls {remote}").stdout.split()
    assert older in names, "the off-box copy deleted an older backup the box no longer has"
    _docker("exec", MSP, "rm", "-r", f"{remote}/{older}")
    names.remove(older)
    assert sorted(names, reverse=True) == _backups(host), (names, _backups(host))
    for name in names:
        check = _docker(
            "exec",
            "-w",
            f"{remote}/{name}",
            MSP,
            "sha256sum",
            "--check",
            "--quiet",
            "--strict",
            "SHA256SUMS",
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
    assert not [n for n in _docker("exec", MSP, "ls", "-A", remote).stdout.split() if n.startswith(".tmp-")]

    # A key the MSP host does not know: one line, exit 4, the local backup complete and listed.
    other = _docker(
        "exec", MSP, "sh", "-c", "ssh-keygen -q -t ed25519 -N '' -f /tmp/other && cat /tmp/other.pub"
    ).stdout
    _authorize(other)
    res = host.run(f"{TOOL} run --label wrong-key")
    assert res.rc == 4, res.stderr
    errors = [line for line in res.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Permission denied (publickey)" in errors[0], res.stderr
    name = res.stdout.split()[-1]
    assert _backups(host)[0] == name and host.run(f"{TOOL} verify {name}").rc == 0
    assert name not in _docker("exec", MSP, "ls", remote).stdout.split()

    # Another host key at the pinned address (a man in the middle, or a reinstalled host): refused, never
    # accepted blindly; the pinned line is unchanged.
    _authorize(host.file("/root/.ssh/clinicpacs-backup.pub").content_string)
    _docker(
        "exec",
        MSP,
        "sh",
        "-c",
        "rm /etc/ssh/ssh_host_* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && kill -HUP 1",
    )
    time.sleep(1)
    known = host.file("/root/.ssh/known_hosts").content_string
    res = host.run(f"{TOOL} run --label host-key")
    assert res.rc == 4, res.stderr
    assert "Host key verification failed" in res.stderr and "ERROR: backup" in res.stderr, res.stderr
    assert host.file("/root/.ssh/known_hosts").content_string == known

    # The host is down: the copy gives up after backup_remote_connect_timeout (5 s here).
    _docker("stop", "-t", "1", MSP)
    res = host.run(f"{TOOL} run --label host-down")
    assert res.rc == 4, res.stderr
    name = res.stdout.split()[-1]
    assert f"ERROR: backup {name} is complete on this box" in res.stderr
    assert f"connect to host {MSP_IP} port 22" in res.stderr, res.stderr
    assert _backups(host)[0] == name and host.run(f"{TOOL} verify {name}").rc == 0
