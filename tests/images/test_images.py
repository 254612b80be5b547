"""Self-test of the images made by tests/images/build.sh, against the real Docker engine.

PostgreSQL + Orthanc with the PostgreSQL index, authentication and a DatabaseServerIdentifier:
/system answers and names the PostgreSQL backend, and a modality registered over REST survives a
recreated Orthanc container. Every container and network is removed afterwards, also on failure;
ports are published on 127.0.0.1 only, on random ports.

    PATH=/usr/bin:$PATH .venv/bin/pytest tests/images -m images
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
POSTGRES_IMAGE = "clinicpacs/postgres:17"
ORTHANC_IMAGES = ["clinicpacs/orthanc:1.12.7", "clinicpacs/orthanc:1.10.1", "clinicpacs/orthanc:1.13.0"]
NGINX_IMAGE = "clinicpacs/nginx:1.26"
DEVICESIM_IMAGE = "clinicpacs/devicesim:trixie"
PLUGIN_DIR = "/usr/share/orthanc/plugins"

pytestmark = [pytest.mark.images, pytest.mark.integration]


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def require_image(image: str) -> None:
    if docker("image", "inspect", image, check=False).returncode != 0:
        pytest.fail(f"image {image} is missing: run `bash tests/images/build.sh` first")


@pytest.fixture(scope="module", autouse=True)
def docker_available() -> None:
    try:
        docker("info", timeout=30)
    except (OSError, AssertionError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no usable Docker engine at {DOCKER}: {exc}")


class Containers:
    """Names what a test starts and removes all of it at the end."""

    def __init__(self) -> None:
        self.prefix = f"cpimgtest-{secrets.token_hex(4)}"
        self.containers: list[str] = []
        self.networks: list[str] = []

    def network(self) -> str:
        name = f"{self.prefix}-net"
        docker("network", "create", name)
        self.networks.append(name)
        return name

    def run(self, name: str, *args: str) -> str:
        full = f"{self.prefix}-{name}"
        self.containers.append(full)
        docker("run", "-d", "--name", full, *args)
        return full

    def remove(self, name: str) -> None:
        docker("rm", "-f", "-v", name, check=False)

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            self.remove(name)
        for name in self.networks:
            docker("network", "rm", name, check=False)


def logs(name: str) -> str:
    result = docker("logs", "--tail", "60", name, check=False)
    return result.stdout + result.stderr


def wait_postgres(name: str, user: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # TCP on 127.0.0.1: the temporary server of the first init listens on the unix socket only.
        if docker("exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", user, check=False).returncode == 0:
            return
        if docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip() != "true":
            break
        time.sleep(1)
    raise AssertionError(f"PostgreSQL in {name} not ready after {timeout}s:\n{logs(name)}")


def published_port(name: str, port: int) -> int:
    out = docker("port", name, f"{port}/tcp").stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def wait_orthanc(name: str, url: str, auth: tuple[str, str], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{url}/system", auth=auth, timeout=5)
            if response.status_code == 200:
                return response.json()
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = str(exc)
        if docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip() != "true":
            break
        time.sleep(1)
    raise AssertionError(f"Orthanc in {name} not answering ({last}):\n{logs(name)}")


def start_postgres(boxes: Containers, network: str, password: str) -> str:
    require_image(POSTGRES_IMAGE)
    pg = boxes.run(
        "pg",
        "--network", network,
        "--network-alias", "db",
        "-e", "POSTGRES_USER=orthanc",
        "-e", f"POSTGRES_PASSWORD={password}",
        "-e", "POSTGRES_DB=orthanc",
        POSTGRES_IMAGE,
    )  # fmt: skip
    wait_postgres(pg, "orthanc")
    return pg


def orthanc_config(directory: Path, password: str) -> Path:
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    config = {
        "Name": "imgtest",
        "StorageDirectory": "/var/lib/orthanc/db",
        "IndexDirectory": "/var/lib/orthanc/db",
        "Plugins": [f"{PLUGIN_DIR}/libOrthancPostgreSQLIndex.so", f"{PLUGIN_DIR}/libOrthancDicomWeb.so"],
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {"admin": "imgtest-pw"},
        "DatabaseServerIdentifier": "imgtest",
        "DicomModalitiesInDatabase": True,
        "PostgreSQL": {
            "EnableIndex": True,
            "EnableStorage": False,
            "Host": "db",
            "Port": 5432,
            "Database": "orthanc",
            "Username": "orthanc",
            "Password": password,
            "Lock": False,
        },
    }
    path = directory / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o644)
    return directory


@pytest.mark.parametrize("image", ORTHANC_IMAGES)
def test_orthanc_with_postgresql_index_keeps_modalities(image: str, boxes: Containers, tmp_path: Path) -> None:
    require_image(image)
    network = boxes.network()
    password = secrets.token_urlsafe(12)
    start_postgres(boxes, network, password)
    config = orthanc_config(tmp_path / "orthanc", password)
    auth = ("admin", "imgtest-pw")

    def start(name: str) -> tuple[str, str]:
        container = boxes.run(
            name, "--network", network, "-p", "127.0.0.1::8042", "-v", f"{config}:/etc/orthanc:ro", image
        )
        return container, f"http://127.0.0.1:{published_port(container, 8042)}"

    first, url = start("orthanc1")
    system = wait_orthanc(first, url, auth)
    assert system["Version"] == image.rsplit(":", 1)[1]
    assert "PostgreSQL" in str(system.get("DatabaseBackendPlugin")), system
    assert requests.get(f"{url}/system", timeout=5).status_code == 401
    assert requests.get(f"{url}/system", auth=("admin", "wrong"), timeout=5).status_code == 401
    plugins = requests.get(f"{url}/plugins", auth=auth, timeout=5).json()
    assert {"postgresql-index", "dicom-web"} <= set(plugins), plugins

    modality = {"AET": "IMGTEST", "Host": "192.0.2.10", "Port": 104}
    response = requests.put(f"{url}/modalities/x", auth=auth, json=modality, timeout=10)
    assert response.status_code == 200, response.text

    boxes.remove(first)
    second, url = start("orthanc2")
    wait_orthanc(second, url, auth)
    saved = requests.get(f"{url}/modalities/x/configuration", auth=auth, timeout=10)
    assert saved.status_code == 200, saved.text
    assert saved.json()["AET"] == "IMGTEST"
    assert saved.json()["Port"] == 104


def test_orthanc_image_layout() -> None:
    for image in ORTHANC_IMAGES:
        require_image(image)
        script = (
            "id -u; id -g; command -v Orthanc; ls /usr/share/orthanc/plugins; "
            "stat -c %U /var/lib/orthanc/db; curl --version | head -n 1"
        )
        out = docker("run", "--rm", "--entrypoint", "sh", image, "-c", script).stdout.split()
        assert out[:3] == ["4242", "4242", "/usr/sbin/Orthanc"], out
        for plugin in ("libOrthancPostgreSQLIndex.so", "libOrthancDicomWeb.so", "libOrthancPython.so"):
            assert plugin in out, (image, out)
        assert "orthanc" in out


def test_postgres_refuses_to_init_without_password(boxes: Containers) -> None:
    require_image(POSTGRES_IMAGE)
    result = docker("run", "--rm", POSTGRES_IMAGE, check=False, timeout=60)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_postgres_password_file_and_init_scripts(boxes: Containers, tmp_path: Path) -> None:
    require_image(POSTGRES_IMAGE)
    init = tmp_path / "init"
    init.mkdir(mode=0o755)
    init.chmod(0o755)
    (init / "01-table.sql").write_text("CREATE TABLE marker (id int); INSERT INTO marker VALUES (42);\n")
    (init / "02-role.sh").write_text(
        'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "CREATE ROLE ro"\n'
    )
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    for path in init.iterdir():
        path.chmod(0o644)
    secret.chmod(0o644)
    network = boxes.network()
    pg = boxes.run(
        "pg",
        "--network", network,
        "-e", "POSTGRES_USER=clinic",
        "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/pw",
        "-e", "POSTGRES_DB=pacs",
        "-v", f"{secret}:/run/secrets/pw:ro",
        "-v", f"{init}:/docker-entrypoint-initdb.d:ro",
        POSTGRES_IMAGE,
    )  # fmt: skip
    wait_postgres(pg, "clinic")
    assert docker("exec", pg, "id", "-u", "postgres").stdout.strip() == "999"
    assert docker("exec", pg, "sh", "-c", "ps -o user= -p 1").stdout.strip() == "postgres"
    # Over TCP with the password from the file (scram-sha-256), from another container.
    query = "SELECT id FROM marker UNION ALL SELECT count(*) FROM pg_roles WHERE rolname = 'ro'"
    result = docker(
        "run", "--rm", "--network", network, "-e", "PGPASSWORD=from-a-file", POSTGRES_IMAGE,
        "psql", "-h", pg, "-U", "clinic", "-d", "pacs", "-tA", "-c", query,
    )  # fmt: skip
    assert result.stdout.split() == ["42", "1"]
    wrong = docker(
        "run", "--rm", "--network", network, "-e", "PGPASSWORD=wrong", POSTGRES_IMAGE,
        "psql", "-h", pg, "-U", "clinic", "-d", "pacs", "-c", "SELECT 1",
        check=False,
    )  # fmt: skip
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr
    # docker stop reaches the server (exec'd as PID 1): a clean, fast shutdown.
    started = time.monotonic()
    docker("stop", "-t", "30", pg)
    assert time.monotonic() - started < 15
    assert docker("inspect", "-f", "{{.State.ExitCode}}", pg).stdout.strip() == "0"


DICOM_SAMPLES = Path(__file__).resolve().parents[1] / "data" / "dicom" / "Beaufix"


def test_devicesim_talks_to_orthanc(boxes: Containers, tmp_path: Path) -> None:
    require_image(ORTHANC_IMAGES[0])
    require_image(DEVICESIM_IMAGE)
    if not DICOM_SAMPLES.is_dir():
        pytest.skip(f"no sample DICOM files in {DICOM_SAMPLES}")
    network = boxes.network()
    config = tmp_path / "orthanc"
    config.mkdir(mode=0o755)
    config.chmod(0o755)
    (config / "orthanc.json").write_text(
        json.dumps(
            {
                "StorageDirectory": "/var/lib/orthanc/db",
                "IndexDirectory": "/var/lib/orthanc/db",
                "RemoteAccessAllowed": True,
                "AuthenticationEnabled": True,
                "RegisteredUsers": {"admin": "imgtest-pw"},
                "DicomAlwaysAllowFind": True,
                "DicomModalities": {"scanner": ["DEVICE", "device", 11112]},
            }
        )
    )
    (config / "orthanc.json").chmod(0o644)
    orthanc = boxes.run(
        "orthanc", "--network", network, "--network-alias", "pacs", "-p", "127.0.0.1::8042",
        "-v", f"{config}:/etc/orthanc:ro", ORTHANC_IMAGES[0],
    )  # fmt: skip
    url = f"http://127.0.0.1:{published_port(orthanc, 8042)}"
    auth = ("admin", "imgtest-pw")
    wait_orthanc(orthanc, url, auth)

    def device(*args: str) -> subprocess.CompletedProcess[str]:
        return docker(
            "run", "--rm", "--network", network, "-e", "PACS_HOST=pacs", "-v", f"{DICOM_SAMPLES}:/samples:ro",
            DEVICESIM_IMAGE, *args,
        )  # fmt: skip

    assert json.loads(device("device", "echo").stdout) == {"echo": "ok", "status": 0}
    assert json.loads(device("device", "store", "/samples").stdout) == {"sent": 2, "failed": 0}
    assert len(requests.get(f"{url}/instances", auth=auth, timeout=10).json()) == 2
    studies = [json.loads(line) for line in device("device", "find", "--level", "STUDY").stdout.splitlines()]
    assert len(studies) == 1 and studies[0]["StudyInstanceUID"]
    device("echoscu", "-aet", "DEVICE", "-aec", "ORTHANC", "pacs", "4242")
    # The other way round: Orthanc reaches a device that serves C-ECHO/C-STORE.
    boxes.run("device", "--network", network, "--network-alias", "device", DEVICESIM_IMAGE, "device", "serve")
    deadline = time.monotonic() + 30
    while True:
        echo = requests.post(f"{url}/modalities/scanner/echo", auth=auth, json={}, timeout=30)
        if echo.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert echo.status_code == 200, echo.text


def test_nginx_and_devicesim_images() -> None:
    require_image(NGINX_IMAGE)
    require_image(DEVICESIM_IMAGE)
    docker("run", "--rm", NGINX_IMAGE, "nginx", "-t")
    docker("run", "--rm", NGINX_IMAGE, "openssl", "version")
    out = docker("run", "--rm", DEVICESIM_IMAGE, "device", "--help").stdout
    for command in ("echo", "store", "find", "serve"):
        assert command in out
    docker("run", "--rm", DEVICESIM_IMAGE, "echoscu", "--version")
