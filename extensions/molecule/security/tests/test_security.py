"""Verify of the security scenario (issue 8): each property is proved by a test that fails without it.

The box is at 10.213.47.10 on the scenario's own network. Simulated DICOM devices are throw-away
clinicpacs/devicesim containers started here on that network with fixed addresses: .21 is the registered
SIMPANO, .22 the registered SIMCBCT, .23 is not registered. Traffic only goes to the box this scenario made.
Every test takes `host`, so pytest keeps them in file order; the first one is the scenario's idempotence run
(at -vvv, searched for secrets), the last one switches the clinic to DICOM TLS.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import clinicbox
import pytest

BOX = "clinicpacs-molecule-security"
NETWORK = "clinicpacs-molecule-security-net"
BOX_IP = "10.213.47.10"
PANO_IP, CBCT_IP, STRANGER_IP = "10.213.47.21", "10.213.47.22", "10.213.47.23"
# Real sample data (tests/data/dicom/README.md): one uncompressed MR instance of BRAINIX.
SAMPLE = clinicbox.BRAINIX[0]
CONTAINERS = clinicbox.CONTAINERS


def _playbook(name: str, *args: str) -> subprocess.CompletedProcess:
    return clinicbox.playbook(name, *args, timeout=600)


def _recap(res: subprocess.CompletedProcess) -> str:
    return clinicbox.recap(res, BOX)


def _device(ip: str, *argv: str, tls_dir: Path | None = None) -> subprocess.CompletedProcess:
    """Run a dcmtk tool in a throw-away device container with the fixed address `ip`."""
    volumes = [(SAMPLE.parent, "/samples")] + ([(tls_dir, "/tls")] if tls_dir else [])
    return clinicbox.device(NETWORK, ip, *argv, volumes=volumes)


def _store(ip: str, calling: str, called: str = "ORTHANC", timeout: str = "10") -> subprocess.CompletedProcess:
    return _device(ip, "storescu", "-aet", calling, "-aec", called, "-to", timeout, "-ta", timeout, "-td", timeout,
                   BOX_IP, "4242", f"/samples/{SAMPLE.name}")  # fmt: skip


def _echo(ip: str, calling: str, timeout: str = "10") -> subprocess.CompletedProcess:
    return _device(ip, "echoscu", "-aet", calling, "-aec", "ORTHANC", "-to", timeout, BOX_IP, "4242")


def _dropped(host, counter: str = "dicom_dropped") -> int:
    res = host.run(f"nft -j list counter inet clinicpacs {counter}")
    assert res.rc == 0, res.stderr
    counters = [o["counter"] for o in json.loads(res.stdout)["nftables"] if "counter" in o]
    return counters[0]["packets"]


def _secrets(host) -> list[str]:
    v = host.ansible.get_variables()
    found = [v["pacs_postgres_password"], v["pacs_api_password"], v["pacs_admin_password"]]
    found += [u["password"] for u in v["pacs_users"]]
    assert all(len(s) >= 12 for s in found)
    return found


# ----------------------------------------------------------------------------------------------------
# Idempotence at -vvv and secrets: the second converge changes nothing and shows no secret
# ----------------------------------------------------------------------------------------------------


def test_second_converge_at_vvv_is_idempotent_and_shows_no_secret(host):
    res = _playbook("converge.yml", "-vvv")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "changed=0" in _recap(res), _recap(res)
    # The run really is verbose (module arguments are printed), so the search below means something.
    assert "<10.213.47.10>" in out or "ESTABLISH DOCKER CONNECTION" in out, out[:2000]
    for secret in _secrets(host):
        assert secret not in out, "a secret of the inventory appears in the -vvv output"


def test_no_secret_in_docker_inspect_or_compose_file(host):
    res = host.run(f"docker inspect {' '.join(CONTAINERS)}")
    assert res.rc == 0, res.stderr
    compose = host.file("/opt/clinicpacs/docker-compose.yml").content_string
    for secret in _secrets(host):
        assert secret not in res.stdout
        assert secret not in compose


# ----------------------------------------------------------------------------------------------------
# Containers (CIS Docker Benchmark 5.x)
# ----------------------------------------------------------------------------------------------------


def _inspect(host, name: str) -> dict:
    res = host.run(f"docker inspect {name}")
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout)[0]


@pytest.mark.parametrize("name", CONTAINERS)
def test_container_config_hardened(host, name):
    c = _inspect(host, name)
    hc = c["HostConfig"]
    assert c["Config"]["User"] not in ("", "0", "root", "0:0"), c["Config"]["User"]
    assert hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
    assert "no-new-privileges:true" in hc["SecurityOpt"]
    assert hc["Memory"] > 0 and hc["PidsLimit"] > 0
    assert hc["LogConfig"]["Type"] == "json-file" and hc["LogConfig"]["Config"]["max-size"]
    assert c["Config"]["Healthcheck"]["Test"]
    assert hc["Privileged"] is False
    mounts = [m["Source"] for m in c["Mounts"]]
    assert not [m for m in mounts if m.endswith("docker.sock")], mounts


def _processes(host, name: str) -> dict[str, dict[str, str]]:
    """{pid: {Name, Uid, CapEff, NoNewPrivs}} of the container's processes (one that ended meanwhile is left out)."""
    script = (
        "for f in /proc/[0-9]*/status; do echo \"== $f\"; "
        "grep -E '^(Name|Uid|CapEff|NoNewPrivs):' \"$f\" 2>/dev/null | tr -s '\\t' ' '; done; true"
    )
    res = host.run(f"docker exec {name} sh -c %s", script)
    assert res.rc == 0, res.stderr
    procs: dict[str, dict[str, str]] = {}
    for line in res.stdout.splitlines():
        if line.startswith("== "):
            current = procs.setdefault(line.split("/")[2], {})
        elif ":" in line:
            key, _sep, value = line.partition(":")
            current[key] = value.split()[0] if value.split() else ""
    return {pid: fields for pid, fields in procs.items() if "Uid" in fields}


def _privileged(procs: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {
        pid: p
        for pid, p in procs.items()
        if p["Uid"] == "0" or p.get("CapEff") != "0000000000000000" or p.get("NoNewPrivs") != "1"
    }


@pytest.mark.parametrize("name", CONTAINERS)
def test_processes_run_unprivileged(host, name):
    """Every process of the container: non-root uid, no effective capability, no_new_privs set.

    A process Docker is starting in the container (the health check every few seconds, a docker exec) is
    root for a moment, as runc's init, before it becomes the container's user and runs its program: a
    process found privileged must still be privileged, with the same name, in a second look a moment later."""
    procs = _processes(host, name)
    assert procs, "no process found"
    suspects = _privileged(procs)
    if suspects:
        time.sleep(2)
        again = _privileged(_processes(host, name))
        suspects = {pid: p for pid, p in suspects.items() if again.get(pid, {}).get("Name") == p.get("Name")}
    assert not suspects, suspects


@pytest.mark.parametrize("name", CONTAINERS)
def test_root_filesystem_is_read_only(host, name):
    res = host.run(f"docker exec {name} sh -c 'echo x > /etc/clinicpacs-probe'")
    assert res.rc != 0
    assert "Read-only file system" in res.stderr, res.stderr


def test_postgres_socket_shared_with_orthanc_only(host):
    """pacs_postgres_unix_socket: PostgreSQL's socket directory is a volume of PostgreSQL (read-write) and Orthanc
    (read-only) only, and Orthanc's index connections come over it (no client address), none over TCP."""
    mounts = {
        name: {m["Destination"]: m for m in _inspect(host, name)["Mounts"]} for name in CONTAINERS
    }  # fmt: skip
    assert mounts["clinicpacs-postgres"]["/var/run/postgresql"]["RW"] is True
    assert mounts["clinicpacs-orthanc"]["/var/run/postgresql"]["RW"] is False
    assert "/var/run/postgresql" not in mounts["clinicpacs-nginx"]
    query = (
        "SELECT coalesce(host(client_addr), 'socket') FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND application_name <> 'psql'"
    )
    res = host.run("docker exec clinicpacs-postgres psql -U orthanc -d orthanc -tAc %s", query)
    assert res.rc == 0, res.stderr
    assert res.stdout.split() and set(res.stdout.split()) == {"socket"}, res.stdout


def test_no_docker_socket_anywhere(host):
    res = host.run("docker ps -q | xargs docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}'")
    assert res.rc == 0, res.stderr
    assert "docker.sock" not in res.stdout


def test_userland_proxy_off(host):
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["userland-proxy"] is False
    assert not host.run("pgrep -x docker-proxy").stdout.strip()


# ----------------------------------------------------------------------------------------------------
# DICOM network access: address, AE titles, firewall
# ----------------------------------------------------------------------------------------------------


def test_orthanc_checks_modality_host_and_called_aet(host):
    conf = json.loads(host.file("/opt/clinicpacs/orthanc/orthanc.json").content_string)
    assert conf["DicomCheckModalityHost"] is True
    assert conf["DicomCheckCalledAet"] is True


def test_registered_device_from_its_address_stores(host):
    res = _store(PANO_IP, "SIMPANO")
    assert res.returncode == 0, res.stdout + res.stderr


def test_registered_aet_from_wrong_address_is_refused(host):
    # .22 is let through by the firewall (it is sim-cbct's address), so the refusal is Orthanc's own check.
    assert _echo(CBCT_IP, "SIMCBCT").returncode == 0
    res = _store(CBCT_IP, "SIMPANO")
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Association Rejected" in res.stderr, res.stderr


def test_wrong_called_aet_is_refused(host):
    res = _store(PANO_IP, "SIMPANO", called="NOTORTHANC")
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Association Rejected" in res.stderr, res.stderr


def test_firewall_drops_dicom_from_unregistered_address(host):
    before = _dropped(host)
    res = _store(STRANGER_IP, "SIMPANO", timeout="5")
    assert res.returncode != 0, res.stdout + res.stderr
    # Dropped, not rejected by Orthanc: no association is ever negotiated.
    assert "Association Rejected" not in res.stderr, res.stderr
    assert _dropped(host) > before


def test_firewall_follows_device_add_and_remove(host):
    """tasks/devices.yml of the firewall role: an added address gets through to Orthanc (which rejects the
    unknown AET), a removed one is dropped again."""
    extra = json.dumps({"firewall_dicom_extra_sources": [STRANGER_IP]})
    res = _playbook("firewall_devices.yml", "-e", extra)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "changed=1" in _recap(res) or "changed=2" in _recap(res), _recap(res)
    res = _echo(STRANGER_IP, "STRANGER")
    assert "Association Rejected" in res.stderr, res.stderr
    res = _playbook("firewall_devices.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    before = _dropped(host)
    res = _echo(STRANGER_IP, "STRANGER", timeout="5")
    assert "Association Rejected" not in res.stderr and res.returncode != 0, res.stderr
    assert _dropped(host) > before


def test_remove_device_playbook_closes_the_firewall(host):
    """playbooks/remove_device.yml on the real box: sim-cbct leaves Orthanc and its address (.22) is dropped by
    the firewall; playbooks/add_device.yml puts both back."""
    assert _echo(CBCT_IP, "SIMCBCT").returncode == 0
    res = _playbook("remove_device.yml", "-e", f"clinic={BOX}", "-e", "device_name=sim-cbct")
    assert res.returncode == 0, res.stdout[-3000:]
    before = _dropped(host)
    echo = _echo(CBCT_IP, "SIMCBCT", timeout="5")
    assert echo.returncode != 0 and "Association Rejected" not in echo.stderr, echo.stderr
    assert _dropped(host) > before
    device = {"name": "sim-cbct", "aet": "SIMCBCT", "host": CBCT_IP, "port": 11112}
    res = _playbook("add_device.yml", "-e", f"clinic={BOX}", "-e", json.dumps({"device": device, "device_echo": False}))
    assert res.returncode == 0, res.stdout[-3000:]
    assert _echo(CBCT_IP, "SIMCBCT").returncode == 0


def _tcp_from_device(ip: str, port: int) -> str:
    """A TCP connection from a device container at `ip` to the box: 'open', 'refused' or 'dropped' (no answer
    within 3 s: the firewall drops what it does not accept, it never rejects)."""
    probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{BOX_IP}/{port}' 2>/dev/null; echo rc=$?"
    res = clinicbox.device(NETWORK, ip, "bash", "-c", probe)
    return {"rc=0": "open", "rc=1": "refused", "rc=124": "dropped"}.get(res.stdout.strip(), res.stdout + res.stderr)


def _tcp_from_host(port: int) -> str:
    """The same from the Molecule host (10.213.47.1, the scenario's "MSP" and inside the clinic network)."""
    try:
        socket.create_connection((BOX_IP, port), timeout=3).close()
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "dropped"
    return "open"


def test_https_only_from_the_clinic_networks(host):
    """firewall_https_sources is 10.213.47.0/28: the host (.1) gets in, a device at .23 is dropped."""
    assert _tcp_from_host(443) == "open"
    before = _dropped(host, "https_dropped")
    assert _tcp_from_device(STRANGER_IP, 443) == "dropped"
    assert _dropped(host, "https_dropped") > before


def test_ssh_only_from_the_msp(host):
    """firewall_ssh_sources is 10.213.47.1: from the host the box answers (open, or refused when no sshd
    listens: either way the packet got through); from a device at .23 nothing comes back."""
    assert _tcp_from_host(22) in ("open", "refused")
    assert _tcp_from_device(STRANGER_IP, 22) == "dropped"


def test_firewall_ruleset_is_loaded_at_boot(host):
    unit = host.service("clinicpacs-firewall")
    assert unit.is_enabled and unit.is_running
    assert "table inet clinicpacs" in host.run("nft list tables").stdout


# ----------------------------------------------------------------------------------------------------
# HTTPS: old protocols and weak ciphers refused
# ----------------------------------------------------------------------------------------------------


def _handshake(version: ssl.TLSVersion, ciphers: str = "DEFAULT:@SECLEVEL=0") -> str:
    """The suite negotiated at exactly `version`."""
    return clinicbox.handshake(BOX_IP, version, ciphers, what="cipher")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_https_refuses_old_tls(host, version):
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(version)


# Only suites the clinic's ECDSA certificate could serve: a static-RSA suite (AES128-SHA, AES256-GCM-SHA384)
# fails whatever ssl_ciphers says, so a test of it could never fail (issue 15).
@pytest.mark.parametrize(
    "cipher",
    ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"],
)
def test_https_refuses_weak_ciphers(host, cipher):
    """CBC suites (SHA-1 and SHA-2 MACs) are refused over TLS 1.2, although the certificate could serve them."""
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(ssl.TLSVersion.TLSv1_2, f"{cipher}:@SECLEVEL=0")


def test_https_accepts_a_strong_cipher(host):
    # The positive control of the test above: the client code works, only the cipher differs.
    assert _handshake(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256") == "ECDHE-ECDSA-AES128-GCM-SHA256"


# ----------------------------------------------------------------------------------------------------
# Orthanc version gate
# ----------------------------------------------------------------------------------------------------


OLD_IMAGE = "clinicpacs/orthanc:1.12.7"


@pytest.fixture(scope="module")
def old_image() -> str:
    """Debian trixie's Orthanc 1.12.7, below the role's minimum 1.13.0, loaded into the box's engine."""
    load = [clinicbox.DOCKER, "exec", BOX, "docker", "load", "-i", "/srv/image-archives/orthanc_1.12.7.tar"]
    subprocess.run(load, check=True, capture_output=True, timeout=300)  # noqa: S603 - fixed docker command on our box
    return OLD_IMAGE


def test_version_gate_refuses_old_orthanc_without_override(old_image):
    res = _playbook("gate.yml", "-e", json.dumps({"pacs_orthanc_image": old_image}))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    for text in (
        f"image {old_image} refused: it has Orthanc 1.12.7, older than the minimum 1.13.0",
        "pacs_orthanc_allow_below_minimum",
    ):
        assert text in " ".join(out.split()), out[-3000:]


def test_version_gate_lets_it_pass_with_the_override(old_image):
    extra = {"pacs_orthanc_image": old_image, "pacs_orthanc_allow_below_minimum": True}
    res = _playbook("gate.yml", "-e", json.dumps(extra))
    assert res.returncode == 0, res.stdout[-3000:]
    warning = f"WARNING: image {old_image}: it has Orthanc 1.12.7, older than the minimum 1.13.0"
    assert warning in " ".join(res.stdout.split()), res.stdout[-3000:]


def test_version_gate_passes_the_clinic_image_without_override(host):
    """The scenario's image (Debian's Orthanc 1.13.0) with the role's own minimum and no override."""
    res = _playbook("gate.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "WARNING" not in res.stdout, res.stdout[-3000:]


def test_image_step_refuses_an_image_without_a_plugin_and_names_it(host):
    extra = {"pacs_orthanc_plugins": ["libOrthancPostgreSQLIndex.so", "libOrthancNoSuchPlugin.so"]}
    res = _playbook("gate.yml", "-e", json.dumps(extra))
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, out[-3000:]
    assert "plugin libOrthancNoSuchPlugin.so is not in the image" in out, out[-3000:]
    assert "libOrthancPostgreSQLIndex.so is not in the image" not in out, out[-3000:]


# ----------------------------------------------------------------------------------------------------
# DICOM TLS (last: converges the clinic once more with pacs_dicom_tls on)
# ----------------------------------------------------------------------------------------------------


def test_dicom_tls_device_stores_over_tls_and_plain_is_refused(host):
    devices = [
        {"name": "sim-pano", "aet": "SIMPANO", "host": PANO_IP, "port": 11112, "use_dicom_tls": True},
        {"name": "sim-cbct", "aet": "SIMCBCT", "host": CBCT_IP, "port": 11112, "use_dicom_tls": True},
    ]
    res = _playbook("converge.yml", "-e", json.dumps({"pacs_dicom_tls": True, "pacs_devices": devices}))
    assert res.returncode == 0, res.stdout[-4000:]
    conf = json.loads(host.file("/opt/clinicpacs/orthanc/orthanc.json").content_string)
    assert conf["DicomTlsEnabled"] is True and conf["DicomTlsRemoteCertificateRequired"] is True
    # The device's key and certificate (issued by the clinic CA) and the CA certificate, as the MSP copies them.
    tls_dir = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "dicom-tls"
    tls_dir.mkdir(exist_ok=True)
    for path in ("devices/sim-pano.key", "devices/sim-pano.crt", "ca/ca.crt"):
        (tls_dir / Path(path).name).write_text(host.file(f"/opt/clinicpacs/tls/{path}").content_string)
        (tls_dir / Path(path).name).chmod(0o644)
    tls = ["+tls", "/tls/sim-pano.key", "/tls/sim-pano.crt", "+cf", "/tls/ca.crt"]
    common = ["-to", "10", "-ta", "10", "-td", "10", "-aet", "SIMPANO", "-aec", "ORTHANC", BOX_IP, "4242"]
    res = _device(PANO_IP, "storescu", *tls, *common, f"/samples/{SAMPLE.name}", tls_dir=tls_dir)
    assert res.returncode == 0, res.stdout + res.stderr
    # Plain DICOM to the TLS port: no association.
    res = _store(PANO_IP, "SIMPANO")
    assert res.returncode != 0, res.stdout + res.stderr
    # TLS without a client certificate of the clinic CA: refused too.
    anonymous = ["+tla", "+cf", "/tls/ca.crt"]
    res = _device(PANO_IP, "storescu", *anonymous, *common, f"/samples/{SAMPLE.name}", tls_dir=tls_dir)
    assert res.returncode != 0, res.stdout + res.stderr
