"""Verify of the default scenario: the clinic box provisioned by playbooks/site.yml.

Checks run inside the box through testinfra's `host` (Ansible connection community.docker.docker) and
from the Molecule host against the box container's own address (HTTPS, HTTP, DICOM): traffic only goes
to the container this scenario created. The tests run in file order (every test takes `host`, so pytest
does not regroup them); the restart tests come last.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pydicom import dcmread
from requests.adapters import HTTPAdapter

DOCKER = "/usr/bin/docker"
BOX = "clinicpacs-molecule-default"
REPO = Path(__file__).resolve().parents[4]
# Real sample data (see tests/data/dicom/README.md): the BRAINIX MR study, 22 uncompressed instances.
STUDY_FILES = sorted((REPO / "tests/data/dicom/Brainix/Epi").glob("*.dcm"))
# Another real (uncompressed) study, sent by an AE title that is not registered: must be refused.
INTRUDER_FILES = [REPO / "tests/data/dicom/Issue154-d1.dcm"]
CONTAINERS = ("clinicpacs-postgres", "clinicpacs-orthanc", "clinicpacs-nginx")
SECRET_VARS = ("pacs_postgres_password", "pacs_api_password", "pacs_admin_password")


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
    """Inventory variables of the box (the scenario's test values) and derived facts."""
    variables = host.ansible.get_variables()
    ca = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "clinic-ca" / f"{BOX}-ca.crt"
    return {"vars": variables, "ca": ca, "server_name": variables["pacs_server_name"]}


class _ServerNameAdapter(HTTPAdapter):
    """Verify the certificate against the PACS name while connecting to the container's address."""

    def __init__(self, server_name: str, **kwargs):
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_hostname"] = self._server_name
        kwargs["server_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _https(cfg) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _ServerNameAdapter(cfg["server_name"]))
    session.verify = str(cfg["ca"])
    return session


def _get(cfg, path: str, auth=None) -> requests.Response:
    # verify= on the request itself: REQUESTS_CA_BUNDLE in the environment would override the session's.
    return _https(cfg).get(f"https://{_box_ip()}{path}", auth=auth, timeout=15, verify=str(cfg["ca"]))


def _admin(cfg):
    v = cfg["vars"]
    return (v.get("pacs_admin_username", "admin"), v["pacs_admin_password"])


def _handshake(ip: str, version: ssl.TLSVersion) -> str:
    """TLS handshake at exactly `version`; the client allows old versions (SECLEVEL=0) so that only the
    server can refuse them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection((ip, 443), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        return tls.version()


def _dcmtk(tool: str, calling: str, files=(), timeout: int = 60) -> subprocess.CompletedProcess:
    timeouts = ["-to", "20", "-ta", "20", "-td", "20"]
    cmd = [f"/usr/bin/{tool}", "-aet", calling, "-aec", "ORTHANC", *timeouts, _box_ip(), "4242"]
    # Debian's dcmtk (the venv has pynetdicom's tools of the same names), against the scenario's own box.
    return subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603


def _lookup_study(cfg, study_uid: str) -> list:
    url = f"https://{_box_ip()}/tools/lookup"
    r = _https(cfg).post(url, data=study_uid, auth=_admin(cfg), timeout=15, verify=str(cfg["ca"]))
    assert r.status_code == 200, r.text
    return [x["ID"] for x in r.json() if x["Type"] == "Study"]


def _study_uid(files) -> str:
    return str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def _wait_healthy(host, timeout: int = 240) -> None:
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        res = host.run(f"docker inspect -f '{{{{.Name}}}} {{{{.State.Health.Status}}}}' {' '.join(CONTAINERS)}")
        states = res.stdout
        if res.rc == 0 and states.count(" healthy") == len(CONTAINERS):
            return
        time.sleep(3)
    raise AssertionError(f"containers not healthy after {timeout}s: {states}")


# ----------------------------------------------------------------------------------------------------
# Check mode again on the converged box: nothing to change (the sequence's "check again", asserted)
# ----------------------------------------------------------------------------------------------------


def test_check_mode_reports_no_change(host):
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    res = subprocess.run(  # noqa: S603 - the venv's ansible-playbook on Molecule's own inventory
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--check",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(scenario / "converge.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    recap = [line for line in res.stdout.splitlines() if f"{BOX} " in line and "changed=" in line]
    assert recap and "changed=0" in recap[-1], res.stdout[-3000:]


# ----------------------------------------------------------------------------------------------------
# Docker and the containers
# ----------------------------------------------------------------------------------------------------


def test_docker_active_and_enabled(host):
    docker = host.service("docker")
    assert docker.is_running
    assert docker.is_enabled


def test_daemon_json_log_limits_and_live_restore(host):
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["live-restore"] is True
    assert daemon["log-opts"]["max-size"] and daemon["log-opts"]["max-file"]


@pytest.mark.parametrize("name", CONTAINERS)
def test_container_running_and_healthy(host, name):
    res = host.run(f"docker inspect -f '{{{{.State.Status}}}} {{{{.State.Health.Status}}}}' {name}")
    assert res.rc == 0, res.stderr
    assert res.stdout.split() == ["running", "healthy"]


@pytest.mark.parametrize("name", CONTAINERS)
def test_container_restart_policy(host, name):
    res = host.run(f"docker inspect -f '{{{{.HostConfig.RestartPolicy.Name}}}}' {name}")
    assert res.stdout.strip() == "unless-stopped"


def test_orthanc_rest_port_only_on_box_loopback(host):
    res = host.run("docker port clinicpacs-orthanc 8042/tcp")
    assert res.stdout.split() == ["127.0.0.1:8042"]


# ----------------------------------------------------------------------------------------------------
# HTTPS, TLS versions, authentication
# ----------------------------------------------------------------------------------------------------


def test_clinic_ca_fetched_to_control_node(host, cfg):
    assert cfg["ca"].is_file()
    assert "BEGIN CERTIFICATE" in cfg["ca"].read_text()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_https_negotiates_modern_tls(host, version):
    assert _handshake(_box_ip(), version) == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_https_refuses_old_tls(host, version):
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(_box_ip(), version)


def test_https_without_credentials_is_401(host, cfg):
    assert _get(cfg, "/system").status_code == 401


def test_default_orthanc_user_is_refused(host, cfg):
    assert _get(cfg, "/system", auth=("orthanc", "orthanc")).status_code == 401


def test_configured_users_log_in(host, cfg):
    v = cfg["vars"]
    assert _get(cfg, "/system", auth=_admin(cfg)).status_code == 200
    for user in v["pacs_users"]:
        assert _get(cfg, "/system", auth=(user["name"], user["password"])).status_code == 200


def test_http_redirects_to_https(host):
    r = requests.get(f"http://{_box_ip()}/app/explorer.html", allow_redirects=False, timeout=10)
    assert r.status_code in (301, 308)
    assert r.headers["Location"].startswith("https://")
    assert r.headers["Location"].endswith("/app/explorer.html")


def test_orthanc_uses_postgresql_index_and_hardened_settings(host, cfg):
    system = _get(cfg, "/system", auth=_admin(cfg)).json()
    assert "PostgreSQL" in system.get("DatabaseBackendPlugin", "")
    assert system["DicomAet"] == "ORTHANC"


# ----------------------------------------------------------------------------------------------------
# Files and secrets on the box
# ----------------------------------------------------------------------------------------------------

SECRET_FILES = {
    "/opt/clinicpacs/orthanc/orthanc.json": 4242,
    "/opt/clinicpacs/orthanc/postgresql.json": 4242,
    "/opt/clinicpacs/orthanc/users.json": 4242,
    "/opt/clinicpacs/secrets/postgres_password": 999,
    # nginx runs unprivileged as Debian's www-data (33): it owns its key and site, nobody else reads them.
    "/opt/clinicpacs/tls/server/server.key": 33,
    "/opt/clinicpacs/tls/ca/ca.key": 0,
    "/opt/clinicpacs/nginx/orthanc.conf": 33,
    "/opt/clinicpacs/docker-compose.yml": 0,
}


@pytest.mark.parametrize("path", sorted(SECRET_FILES))
def test_config_and_secret_files_are_0600(host, path):
    f = host.file(path)
    assert f.is_file
    assert f.mode == 0o600, f"{path} has mode {oct(f.mode)}"
    assert f.uid == SECRET_FILES[path]


def test_orthanc_config_follows_security_guide(host):
    conf = json.loads(host.file("/opt/clinicpacs/orthanc/orthanc.json").content_string)
    expected = {
        "AuthenticationEnabled": True,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowEcho": False,
        "DicomCheckCalledAet": True,
        "ExecuteLuaEnabled": False,
        "WebDavEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,
        "DicomModalitiesInDatabase": True,
        "StorageCompression": False,
        "DatabaseServerIdentifier": "molecule-clinic",
    }
    assert {k: conf.get(k) for k in expected} == expected
    assert conf["LimitFindResults"] > 0 and conf["LimitFindInstances"] > 0
    assert "RegisteredUsers" not in conf
    users = json.loads(host.file("/opt/clinicpacs/orthanc/users.json").content_string)["RegisteredUsers"]
    assert "orthanc" not in users


def test_no_secret_in_docker_inspect(host, cfg):
    res = host.run(f"docker inspect {' '.join(CONTAINERS)}")
    assert res.rc == 0, res.stderr
    secrets = [cfg["vars"][k] for k in SECRET_VARS] + [u["password"] for u in cfg["vars"]["pacs_users"]]
    for secret in secrets:
        assert secret not in res.stdout
    env = [e for c in json.loads(res.stdout) for e in c["Config"]["Env"]]
    assert not [e for e in env if "PASSWORD=" in e.upper()], env


# ----------------------------------------------------------------------------------------------------
# DICOM: registered and unregistered devices
# ----------------------------------------------------------------------------------------------------


def test_registered_device_c_echo(host):
    res = _dcmtk("echoscu", "SIMPANO")
    assert res.returncode == 0, res.stdout + res.stderr


def test_registered_device_c_store_real_study(cfg, host):
    assert len(STUDY_FILES) == 22
    res = _dcmtk("storescu", "SIMPANO", STUDY_FILES)
    assert res.returncode == 0, res.stdout + res.stderr
    studies = _lookup_study(cfg, _study_uid(STUDY_FILES))
    assert len(studies) == 1
    listed = _get(cfg, "/studies", auth=_admin(cfg)).json()
    assert studies[0] in listed
    instances = _get(cfg, f"/studies/{studies[0]}/instances", auth=_admin(cfg)).json()
    assert len(instances) == 22


def _psql_count(host, cfg, sql: str, **params: str) -> int:
    """Run one SELECT count(*) in the PostgreSQL container; values are psql variables (:'name'), not text."""
    user, db = cfg["vars"].get("pacs_postgres_user", "orthanc"), cfg["vars"].get("pacs_postgres_db", "orthanc")
    variables = " ".join(f"-v {name}=%s" for name in params)
    res = host.run(
        f"echo %s | docker exec -i clinicpacs-postgres psql -U %s -d %s -tA {variables}",
        sql,
        user,
        db,
        *params.values(),
    )
    assert res.rc == 0, res.stderr
    return int(res.stdout.strip())


def test_study_rows_in_postgresql(cfg, host):
    study = _lookup_study(cfg, _study_uid(STUDY_FILES))[0]
    assert _psql_count(host, cfg, "SELECT count(*) FROM resources WHERE publicid = :'study'", study=study) == 1
    # Resource type 3 = instance in Orthanc's index schema.
    assert _psql_count(host, cfg, "SELECT count(*) FROM resources WHERE resourcetype = 3") >= 22


def test_unregistered_aet_c_store_refused(host, cfg):
    res = _dcmtk("storescu", "INTRUDER", INTRUDER_FILES)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Association Rejected" in res.stderr, res.stderr
    assert _lookup_study(cfg, _study_uid(INTRUDER_FILES)) == []


def test_unregistered_aet_c_echo_refused(host):
    res = _dcmtk("echoscu", "INTRUDER")
    assert res.returncode != 0
    assert "Association Rejected" in res.stderr, res.stderr


# ----------------------------------------------------------------------------------------------------
# Persistence: study, devices and users survive a Docker restart and a reboot of the box
# ----------------------------------------------------------------------------------------------------


def _assert_state_kept(cfg) -> None:
    studies = _lookup_study(cfg, _study_uid(STUDY_FILES))
    assert len(studies) == 1
    modalities = _get(cfg, "/modalities", auth=_admin(cfg)).json()
    assert sorted(modalities) == sorted(d["name"] for d in cfg["vars"]["pacs_devices"])
    for user in cfg["vars"]["pacs_users"]:
        assert _get(cfg, "/system", auth=(user["name"], user["password"])).status_code == 200
    assert _get(cfg, "/system", auth=("orthanc", "orthanc")).status_code == 401
    assert _dcmtk("echoscu", "SIMPANO").returncode == 0


def test_state_kept_after_docker_restart(host, cfg):
    res = host.run("systemctl restart docker")
    assert res.rc == 0, res.stderr
    _wait_healthy(host)
    _assert_state_kept(cfg)


def test_state_kept_after_box_restart(host, cfg):
    subprocess.run([DOCKER, "restart", "-t", "30", BOX], check=True, capture_output=True, timeout=120)  # noqa: S603
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        res = host.run("systemctl is-active docker")
        if res.stdout.strip() == "active":
            break
        time.sleep(2)
    _wait_healthy(host)
    _assert_state_kept(cfg)
