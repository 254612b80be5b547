"""Verify of the default scenario: the clinic box provisioned by playbooks/site.yml.

Checks run inside the box through testinfra's `host` (Ansible connection community.docker.docker) and
from the Molecule host against the box container's own address (HTTPS, HTTP, DICOM): traffic only goes
to the container this scenario created. The tests run in file order (every test takes `host`, so pytest
does not regroup them); the restart tests come last.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time

import clinicbox
import pytest
import requests

BOX = "clinicpacs-molecule-default"
STUDY_FILES = clinicbox.BRAINIX
# Another real (uncompressed) study, sent by an AE title that is not registered: must be refused.
INTRUDER_FILES = [clinicbox.SAMPLES_DIR / "Issue154-d1.dcm"]
CONTAINERS = clinicbox.CONTAINERS
SECRET_VARS = ("pacs_postgres_password", "pacs_api_password", "pacs_admin_password")


@pytest.fixture(scope="module")
def clinic(host) -> clinicbox.Clinic:
    return clinicbox.Clinic.of(host, BOX)


def _dcmtk(clinic, tool: str, calling: str, files=()) -> subprocess.CompletedProcess:
    return clinicbox.dcmtk(tool, clinic.ip, calling, files)


def _lookup_study(clinic, files) -> list:
    return clinic.lookup(clinicbox.study_uid(files), "Study")


# ----------------------------------------------------------------------------------------------------
# Check mode again on the converged box: nothing to change (the sequence's "check again", asserted)
# ----------------------------------------------------------------------------------------------------


def test_check_mode_reports_no_change(host):
    res = clinicbox.playbook("converge.yml", check=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert clinicbox.changed(res, BOX) == 0, res.stdout[-3000:]


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


def test_clinic_ca_fetched_to_control_node(host, clinic):
    assert clinic.ca.is_file()
    assert "BEGIN CERTIFICATE" in clinic.ca.read_text()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_https_negotiates_modern_tls(host, clinic, version):
    assert clinicbox.handshake(clinic.ip, version) == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_https_refuses_old_tls(host, clinic, version):
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        clinicbox.handshake(clinic.ip, version)


def test_https_without_credentials_is_401(host, clinic):
    assert clinic.anonymous_get("/system").status_code == 401


def test_default_orthanc_user_is_refused(host, clinic):
    assert clinic.get("/system", auth=("orthanc", "orthanc")).status_code == 401


def test_configured_users_log_in(host, clinic):
    assert clinic.get("/system").status_code == 200
    for user in clinic.vars["pacs_users"]:
        assert clinic.get("/system", auth=(user["name"], user["password"])).status_code == 200


def test_http_redirects_to_https(host, clinic):
    r = requests.get(f"http://{clinic.ip}/app/explorer.html", allow_redirects=False, timeout=10)
    assert r.status_code in (301, 308)
    assert r.headers["Location"].startswith("https://")
    assert r.headers["Location"].endswith("/app/explorer.html")


def test_orthanc_uses_postgresql_index_and_hardened_settings(host, clinic):
    system = clinic.json("/system")
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


def test_no_secret_in_docker_inspect(host, clinic):
    res = host.run(f"docker inspect {' '.join(CONTAINERS)}")
    assert res.rc == 0, res.stderr
    secrets = [clinic.vars[k] for k in SECRET_VARS] + [u["password"] for u in clinic.vars["pacs_users"]]
    for secret in secrets:
        assert secret not in res.stdout
    env = [e for c in json.loads(res.stdout) for e in c["Config"]["Env"]]
    assert not [e for e in env if "PASSWORD=" in e.upper()], env


# ----------------------------------------------------------------------------------------------------
# DICOM: registered and unregistered devices
# ----------------------------------------------------------------------------------------------------


def test_registered_device_c_echo(host, clinic):
    res = _dcmtk(clinic, "echoscu", "SIMPANO")
    assert res.returncode == 0, res.stdout + res.stderr


def test_registered_device_c_store_real_study(clinic, host):
    assert len(STUDY_FILES) == 22
    res = _dcmtk(clinic, "storescu", "SIMPANO", STUDY_FILES)
    assert res.returncode == 0, res.stdout + res.stderr
    studies = _lookup_study(clinic, STUDY_FILES)
    assert len(studies) == 1
    assert studies[0] in clinic.json("/studies")
    assert len(clinic.json(f"/studies/{studies[0]}/instances")) == 22


def _psql_count(host, clinic, sql: str, **params: str) -> int:
    """Run one SELECT count(*) in the PostgreSQL container; values are psql variables (:'name'), not text."""
    user, db = clinic.vars.get("pacs_postgres_user", "orthanc"), clinic.vars.get("pacs_postgres_db", "orthanc")
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


def test_study_rows_in_postgresql(clinic, host):
    study = _lookup_study(clinic, STUDY_FILES)[0]
    assert _psql_count(host, clinic, "SELECT count(*) FROM resources WHERE publicid = :'study'", study=study) == 1
    # Resource type 3 = instance in Orthanc's index schema.
    assert _psql_count(host, clinic, "SELECT count(*) FROM resources WHERE resourcetype = 3") >= 22


def test_unregistered_aet_c_store_refused(host, clinic):
    res = _dcmtk(clinic, "storescu", "INTRUDER", INTRUDER_FILES)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Association Rejected" in res.stderr, res.stderr
    assert _lookup_study(clinic, INTRUDER_FILES) == []


def test_unregistered_aet_c_echo_refused(host, clinic):
    res = _dcmtk(clinic, "echoscu", "INTRUDER")
    assert res.returncode != 0
    assert "Association Rejected" in res.stderr, res.stderr


# ----------------------------------------------------------------------------------------------------
# Persistence: study, devices and users survive a Docker restart and a reboot of the box
# ----------------------------------------------------------------------------------------------------


def _assert_state_kept(clinic) -> None:
    assert len(_lookup_study(clinic, STUDY_FILES)) == 1
    modalities = clinic.json("/modalities")
    assert sorted(modalities) == sorted(d["name"] for d in clinic.vars["pacs_devices"])
    for user in clinic.vars["pacs_users"]:
        assert clinic.get("/system", auth=(user["name"], user["password"])).status_code == 200
    assert clinic.get("/system", auth=("orthanc", "orthanc")).status_code == 401
    assert _dcmtk(clinic, "echoscu", "SIMPANO").returncode == 0


def test_state_kept_after_docker_restart(host, clinic):
    res = host.run("systemctl restart docker")
    assert res.rc == 0, res.stderr
    clinicbox.wait_healthy(host)
    _assert_state_kept(clinic)


def test_state_kept_after_box_restart(host, clinic):
    subprocess.run([clinicbox.DOCKER, "restart", "-t", "30", BOX], check=True, capture_output=True, timeout=120)  # noqa: S603
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        res = host.run("systemctl is-active docker")
        if res.stdout.strip() == "active":
            break
        time.sleep(2)
    clinicbox.wait_healthy(host)
    _assert_state_kept(clinic)
