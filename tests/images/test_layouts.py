"""Self-test of the images that stand in for the upstream Orthanc distributions (tests/images/build.sh).

- clinicpacs/orthanc:1.13.0: Debian forky's Orthanc 1.13.0 with our own layout (uid 4242, as 1.12.7).
- clinicpacs/orthancteam-layout:1.13.0: the layout and entrypoint contract of orthancteam/orthanc.
- clinicpacs/orthanc-plugins-layout:1.13.0: the layout of jodogne/orthanc-plugins.

Each one's contract (paths, users, entrypoint and command, binary version), that it starts and answers
/system with the PostgreSQL index against clinicpacs/postgres:17, and the fault the orthancteam stand-in
exists to catch: under the hardening the pacs role's Compose file applies today (read-only root, uid 4242,
no capabilities, no-new-privileges, read-only /etc/orthanc) it dies before Orthanc starts, as upstream's
image does. Ports are published on 127.0.0.1 only (random ports); everything is removed afterwards.

    PATH=/usr/bin:$PATH .venv/bin/pytest tests/images/test_layouts.py
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_images import (
    POSTGRES_IMAGE,
    Containers,
    docker,
    logs,
    published_port,
    require_image,
    start_postgres,
    wait_orthanc,
)

DEBIAN_IMAGE = "clinicpacs/orthanc:1.13.0"
TEAM_IMAGE = "clinicpacs/orthancteam-layout:1.13.0"
PLUGINS_IMAGE = "clinicpacs/orthanc-plugins-layout:1.13.0"
VERSION = "1.13.0"
ROLE_UID = 4242
COMPOSE_TEMPLATE = Path(__file__).resolve().parents[2] / "roles" / "pacs" / "templates" / "docker-compose.yml.j2"
AVAILABLE = "/usr/share/orthanc/plugins-available"
ENABLED = "/usr/share/orthanc/plugins"
AUTH = ("admin", "layout-pw")

pytestmark = [pytest.mark.images, pytest.mark.integration]


@pytest.fixture(scope="module", autouse=True)
def docker_available() -> None:
    try:
        docker("info", timeout=30)
    except (OSError, AssertionError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no usable Docker engine: {exc}")


class Stack:
    """One network and one PostgreSQL (alias db) for the whole module."""

    def __init__(self, boxes: Containers) -> None:
        self.boxes = boxes
        self.network = boxes.network()
        self.password = secrets.token_urlsafe(12)
        start_postgres(boxes, self.network, self.password)
        self.databases = 0

    def database(self) -> str:
        """A fresh database for one Orthanc (each test starts from an empty index)."""
        self.databases += 1
        name = f"layout{self.databases}"
        pg = self.boxes.containers[0]
        docker("exec", pg, "psql", "-q", "-U", "orthanc", "-d", "orthanc", "-c", f"CREATE DATABASE {name}")
        return name


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_image(POSTGRES_IMAGE)
    c = Containers()
    try:
        yield Stack(c)
    finally:
        c.cleanup()


def inspect(image: str) -> dict:
    return json.loads(docker("image", "inspect", image).stdout)[0]["Config"]


def shell(image: str, script: str, *args: str, check: bool = True):
    return docker("run", "--rm", *args, "--entrypoint", "sh", image, "-c", script, check=check)


def write_dir(path: Path, files: dict[str, dict], owner: int | None = None, mode: int = 0o644) -> Path:
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    for name, content in files.items():
        target = path / name
        target.write_text(json.dumps(content, indent=2))
        target.chmod(mode)
        if owner is not None:
            os.chown(target, owner, owner)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def role_like_config(stack: Stack, database: str, plugins: list[str] | None) -> dict[str, dict]:
    """The files the pacs role writes to /etc/orthanc, in small: main settings, users, PostgreSQL apart."""
    main: dict = {
        "Name": "from-file",
        "StorageDirectory": "/var/lib/orthanc/db",
        "IndexDirectory": "/var/lib/orthanc/db",
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": True,
        "DatabaseServerIdentifier": "layouttest",
        "DicomModalitiesInDatabase": True,
    }
    if plugins is not None:
        main["Plugins"] = plugins
    return {
        "orthanc.json": main,
        "users.json": {"RegisteredUsers": dict([AUTH])},
        "postgresql.json": {
            "PostgreSQL": {
                "EnableIndex": True,
                "EnableStorage": False,
                "Host": "db",
                "Port": 5432,
                "Database": database,
                "Username": "orthanc",
                "Password": stack.password,
                "Lock": False,
            }
        },
    }


def wait_exit(name: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", name).stdout.split()
        if state[0] == "false":
            return int(state[1])
        time.sleep(0.5)
    raise AssertionError(f"{name} still running after {timeout}s:\n{logs(name)}")


def binary_version(image: str, binary: str) -> str:
    out = docker("run", "--rm", "--entrypoint", binary, image, "--version").stdout
    return out.splitlines()[0]


# --- clinicpacs/orthanc:1.13.0 (our layout on Debian forky) ---------------------------------------------


def test_debian_1_13_0_image_layout() -> None:
    require_image(DEBIAN_IMAGE)
    config = inspect(DEBIAN_IMAGE)
    assert config["User"] == "orthanc:orthanc"
    assert config["Cmd"] == ["Orthanc", "/etc/orthanc/"]
    assert not config["Entrypoint"]
    assert VERSION in binary_version(DEBIAN_IMAGE, "/usr/sbin/Orthanc")
    out = shell(DEBIAN_IMAGE, "id -u; id -g; ls /usr/share/orthanc/plugins; cat /etc/apt/apt.conf.d/*valid*")
    lines = out.stdout.split()
    assert lines[:2] == [str(ROLE_UID), str(ROLE_UID)]
    for plugin in ("libOrthancPostgreSQLIndex.so", "libOrthancDicomWeb.so", "libOrthancPython.so"):
        assert plugin in lines, lines
    assert 'Acquire::Check-Valid-Until "false";' in out.stdout


# --- clinicpacs/orthancteam-layout:1.13.0 (orthancteam/orthanc) ------------------------------------------


def test_orthancteam_layout_contract() -> None:
    require_image(TEAM_IMAGE)
    config = inspect(TEAM_IMAGE)
    assert config["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert config["Cmd"] == ["/tmp/orthanc.json"]
    assert config["User"] == ""  # root
    assert not config.get("Volumes")
    assert not config.get("ExposedPorts")
    assert VERSION in binary_version(TEAM_IMAGE, "/usr/local/bin/Orthanc")
    script = (
        "id -u; id -u orthanc; id -g orthanc; command -v Orthanc; cat /etc/hostid; "
        f"stat -c '%U:%G' {ENABLED} {AVAILABLE} /etc/hostid /var/lib/orthanc; "
        f"readlink /usr/share/orthanc/plugins-disabled; ls -A {ENABLED} | wc -l; ls -A /etc/orthanc | wc -l; "
        "command -v curl || echo no-curl; command -v python3; test -x /usr/sbin/Orthanc || echo no-sbin; "
        f"find {AVAILABLE} -maxdepth 1 -type f -name '*.so' -printf '%f\\n' | sort"
    )
    out = shell(TEAM_IMAGE, script).stdout.split()
    assert out[:5] == ["0", "999", "999", "/usr/local/bin/Orthanc", "not-generated"], out
    assert out[5:9] == ["orthanc:orthanc"] * 4, out
    assert out[9:12] == [AVAILABLE, "0", "0"], out  # plugins-disabled -> plugins-available; both dirs empty
    assert out[12:15] == ["no-curl", "/usr/bin/python3", "no-sbin"], out
    for plugin in (
        "libOrthancPostgreSQLIndex.so",
        "libOrthancPostgreSQLStorage.so",
        "libOrthancDicomWeb.so",
        "libOrthancGdcm.so",
        "libOrthancPython.so",
    ):
        assert plugin in out[15:], out


def test_orthancteam_layout_plugin_table_matches_the_image() -> None:
    """Every plugin the configurator knows is in plugins-available, and every file there is known."""
    require_image(TEAM_IMAGE)
    script = (
        "import json, os, sys; sys.path.insert(0, '/startup'); import generate_config as g; "
        "print(json.dumps([sorted(lib for spec in g.PLUGINS.values() for lib in spec['libs']), "
        f"sorted(os.listdir('{AVAILABLE}'))]))"
    )
    known, available = json.loads(docker("run", "--rm", "--entrypoint", "python3", TEAM_IMAGE, "-c", script).stdout)
    assert known == available


def run_configurator(image: str, config_dir: Path, *env: str) -> tuple[int, str, dict, list[str]]:
    """The configuration step of the entrypoint alone: its output, /tmp/orthanc.json and the links."""
    script = (
        "cd /startup && python3 generate_config.py; rc=$?; echo \"rc=$rc\"; echo '==='; "
        "cat /tmp/orthanc.json 2>/dev/null || echo '{}'; echo '==='; "
        f"for f in {ENABLED}/*.so; do [ -e \"$f\" ] && echo \"$(basename $f) $(stat -c %i $f) "
        f"$(stat -c %i {AVAILABLE}/$(basename $f))\"; done; true"
    )
    args = ["-v", f"{config_dir}:/etc/orthanc:ro"]
    for item in env:
        args += ["-e", item]
    out = shell(image, script, *args).stdout
    head, generated, links = out.split("===\n")
    rc = int(re.search(r"rc=(\d+)", head).group(1))
    return rc, head, json.loads(generated), links.split("\n")


def test_orthancteam_layout_configurator_rules(tmp_path: Path) -> None:
    require_image(TEAM_IMAGE)
    conf = tmp_path / "conf"
    conf.mkdir(mode=0o755)
    conf.chmod(0o755)
    (conf / "a.json").write_text(
        '{\n  // comments are allowed\n  "Name": "from-a", /* here too */ "DicomAet": "${LAYOUT_AET}",\n'
        '  "PostgreSQL": {"Host": "db"}\n}\n'
    )
    (conf / "b.json").write_text('{"PostgreSQL": {"Database": "pacs"}, "Url": "http://x//y"}')
    for path in conf.iterdir():
        path.chmod(0o644)
    rc, output, generated, links = run_configurator(
        TEAM_IMAGE,
        conf,
        "LAYOUT_AET=FROMENV",
        "ORTHANC__NAME=from-env",
        "ORTHANC__POSTGRESQL__PORT=5433",
        "ORTHANC__STABLE_AGE=5",
        "DICOM_WEB_PLUGIN_ENABLED=true",
        "GDCM_PLUGIN_ENABLED=false",
        "ORTHANC_PASSWORD=pw",
    )
    assert rc == 0, output
    assert "WARNING: Name was set by file /etc/orthanc/a.json" in output
    assert generated["Name"] == "from-env"  # the environment wins over files
    assert generated["DicomAet"] == "FROMENV"  # ${VAR} substituted in files
    assert generated["Url"] == "http://x//y"  # not a comment inside a string
    assert generated["StableAge"] == 5  # JSON values parsed
    pg = generated["PostgreSQL"]
    assert (pg["Host"], pg["Database"], pg["Port"]) == ("db", "pacs", 5433)  # sections merged
    assert pg["EnableIndex"] is True and pg["Username"] == "postgres"  # plugin defaults fill the gaps
    assert generated["DicomWeb"] == {"Enable": True}
    assert "Gdcm" not in generated
    assert generated["RegisteredUsers"] == {"orthanc": "pw"}
    assert generated["Plugins"] == ["/run/orthanc/plugins", ENABLED]
    assert generated["StorageDirectory"] == "/var/lib/orthanc/db"
    assert generated["RemoteAccessAllowed"] is True and generated["AuthenticationEnabled"] is True
    linked = {line.split()[0]: line.split()[1:] for line in links if line.strip()}
    assert set(linked) == {"libOrthancDicomWeb.so", "libOrthancPostgreSQLIndex.so", "libOrthancPostgreSQLStorage.so"}
    for name, (inode, source_inode) in linked.items():
        assert inode == source_inode, name  # hard links, as upstream makes them

    # Orthanc 1.13.0 refuses remote access with authentication and no user: the configurator stops first.
    rc, output, generated, links = run_configurator(TEAM_IMAGE, conf)
    assert rc == 253, output
    assert "no user is registered" in output
    assert generated == {}

    (conf / "c.json").write_text('{"Name": ')
    (conf / "c.json").chmod(0o644)
    rc, output, generated, _plugins = run_configurator(TEAM_IMAGE, conf, "ORTHANC_PASSWORD=pw")
    assert rc == 255, output
    assert "ERROR: cannot read the JSON file '/etc/orthanc/c.json'" in output
    assert generated == {}


def start_team(boxes: Containers, stack: Stack, name: str, config: Path, *args: str) -> str:
    """The stand-in with the role-like files mounted and two settings from the environment."""
    return boxes.run(
        name, "--network", stack.network, "-p", "127.0.0.1::8042",
        "-e", "ORTHANC__NAME=layouttest", "-e", "DICOM_WEB_PLUGIN_ENABLED=true",
        "-v", f"{config}:/etc/orthanc:ro", *args, TEAM_IMAGE,
    )  # fmt: skip


def url_of(container: str) -> str:
    return f"http://127.0.0.1:{published_port(container, 8042)}"


def test_orthancteam_layout_starts_the_upstream_way(boxes: Containers, stack: Stack, tmp_path: Path) -> None:
    """As upstream documents it: root, writable image, config files mounted, settings from variables."""
    require_image(TEAM_IMAGE)
    plugins = [f"{ENABLED}/libOrthancPostgreSQLIndex.so", f"{ENABLED}/libOrthancDicomWeb.so"]
    config = write_dir(tmp_path / "conf", role_like_config(stack, stack.database(), plugins), ROLE_UID, 0o600)
    container = start_team(boxes, stack, "team", config)
    url = url_of(container)
    system = wait_orthanc(container, url, AUTH)
    assert system["Version"] == VERSION
    assert system["Name"] == "layouttest"  # ORTHANC__NAME over the file's "from-file"
    assert system["DatabaseBackendPlugin"] == f"{ENABLED}/libOrthancPostgreSQLIndex.so"
    assert {"postgresql-index", "dicom-web"} <= set(requests.get(f"{url}/plugins", auth=AUTH, timeout=5).json())
    hostid = docker("exec", container, "cat", "/etc/hostid").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{8}", hostid), hostid
    generated = json.loads(docker("exec", container, "cat", "/tmp/orthanc.json").stdout)
    assert generated["Name"] == "layouttest"
    assert generated["PostgreSQL"]["Database"].startswith("layout")
    assert generated["RegisteredUsers"] == dict([AUTH])
    linked = docker("exec", container, "ls", ENABLED).stdout.split()
    assert {"libOrthancPostgreSQLIndex.so", "libOrthancDicomWeb.so", "libOrthancGdcm.so"} <= set(linked), linked
    assert docker("exec", container, "python3", "/probes/test-aliveness.py", check=False).returncode == 0
    # A restart keeps the hostid and finds its links already there.
    docker("restart", "-t", "10", container)
    wait_orthanc(container, url_of(container), AUTH)  # a random host port is chosen anew
    assert docker("exec", container, "cat", "/etc/hostid").stdout.strip() == hostid


def role_hardening(config: Path, data: Path) -> list[str]:
    """What roles/pacs/templates/docker-compose.yml.j2 gives the Orthanc container (checked below)."""
    uid = str(ROLE_UID)
    return [
        "--user", f"{uid}:{uid}",
        "--read-only",
        "--tmpfs", f"/tmp:uid={uid},gid={uid},mode=1777",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges:true",
        "-v", f"{config}:/etc/orthanc:ro",
        "-v", f"{data}:/var/lib/orthanc/db",
    ]  # fmt: skip


def test_role_compose_template_still_hardens_orthanc() -> None:
    """The negative test below copies these settings: it must follow the template when it changes."""
    text = COMPOSE_TEMPLATE.read_text()
    orthanc = text.split("\n  orthanc:\n", 1)[1].split("\n  nginx:\n", 1)[0]
    for setting in (
        'user: "{{ pacs_orthanc_uid }}:{{ pacs_orthanc_uid }}"',
        "read_only: true",
        "- /tmp:uid={{ pacs_orthanc_uid }},gid={{ pacs_orthanc_uid }},mode=1777",
        "cap_drop: [ALL]",
        'security_opt: ["no-new-privileges:true"]',
        "- {{ _pacs_config_dir }}:/etc/orthanc:ro",
        "- {{ pacs_data_dir }}/orthanc:/var/lib/orthanc/db",
    ):
        assert setting in orthanc, setting
    # /tmp is the only writable path: no /run tmpfs, and PostgreSQL's socket (pacs_postgres_unix_socket) read-only.
    assert "tmpfs:\n      - /tmp:" in orthanc and "- /run" not in orthanc
    assert [line.strip() for line in orthanc.splitlines() if "/run" in line] == [
        "- postgres-socket:/var/run/postgresql:ro"
    ]


@pytest.mark.parametrize(
    ("env", "expected_exit", "message"),
    [
        pytest.param([], 1, r"/docker-entrypoint\.sh: line \d+: /etc/hostid: Read-only file system", id="hostid"),
        pytest.param(
            ["GENERATE_HOST_ID_IF_MISSING=false"],
            255,
            re.escape(
                f"[Errno 30] Read-only file system: '{AVAILABLE}/libOrthancGdcm.so' -> '{ENABLED}/libOrthancGdcm.so'"
            ),
            id="plugin-link",
        ),
    ],
)
def test_orthancteam_layout_fails_under_role_hardening(
    env: list[str], expected_exit: int, message: str, boxes: Containers, stack: Stack, tmp_path: Path
) -> None:
    """The fault of issue 13: the upstream image under today's Compose file never reaches Orthanc."""
    require_image(TEAM_IMAGE)
    plugins = [f"{ENABLED}/libOrthancPostgreSQLIndex.so", f"{ENABLED}/libOrthancDicomWeb.so"]
    config = write_dir(tmp_path / "conf", role_like_config(stack, stack.database(), plugins), ROLE_UID, 0o600)
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, ROLE_UID, ROLE_UID)
    extra = [item for pair in (("-e", e) for e in env) for item in pair]
    container = start_team(boxes, stack, "hardened", config, *role_hardening(config, data), *extra)
    assert wait_exit(container) == expected_exit, logs(container)
    output = logs(container)
    assert re.search(message, output), output
    assert "starting: Orthanc" not in output  # it never got to Orthanc


@pytest.mark.parametrize(
    ("image", "binary", "folder"),
    [
        pytest.param(TEAM_IMAGE, "/usr/local/bin/Orthanc", AVAILABLE, id="orthancteam"),
        pytest.param(
            PLUGINS_IMAGE, "/usr/local/sbin/Orthanc", "/usr/local/share/orthanc/plugins", id="orthanc-plugins"
        ),
    ],
)
def test_layout_runs_under_role_hardening_when_the_role_owns_the_process(
    image: str, binary: str, folder: str, boxes: Containers, stack: Stack, tmp_path: Path
) -> None:
    """The fix the pacs role applies: the same hardening, the image's Orthanc binary as entrypoint with
    /etc/orthanc/, and the plugin paths the image step finds. The image's own entrypoint never runs."""
    require_image(image)
    plugins = [f"{folder}/libOrthancPostgreSQLIndex.so", f"{folder}/libOrthancDicomWeb.so"]
    config = write_dir(tmp_path / "conf", role_like_config(stack, stack.database(), plugins), ROLE_UID, 0o600)
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, ROLE_UID, ROLE_UID)
    container = boxes.run(
        f"owned-{image.split('/')[1].split(':')[0]}", "--network", stack.network, "-p", "127.0.0.1::8042",
        *role_hardening(config, data), "--entrypoint", binary, image, "/etc/orthanc/",
    )  # fmt: skip
    system = wait_orthanc(container, url_of(container), AUTH)
    assert system["Version"] == VERSION
    assert system["DatabaseBackendPlugin"] == plugins[0]
    assert docker("exec", container, "id", "-u").stdout.strip() == str(ROLE_UID)
    if image == TEAM_IMAGE:
        assert docker("exec", container, "cat", "/etc/hostid").stdout.strip() == "not-generated"


@pytest.mark.parametrize("exec_option", [True, False], ids=["exec-tmpfs", "noexec-tmpfs"])
def test_orthancteam_layout_hardened_with_a_plugins_tmpfs(
    exec_option: bool, boxes: Containers, stack: Stack, tmp_path: Path
) -> None:
    """Upstream's own way to a read-only root: no hostid write, a tmpfs on /run/orthanc/plugins (the
    plugins are copied there) and no "Plugins" paths in the config (its default lists that directory),
    the rest of the role's hardening kept. The tmpfs must be mounted exec: Docker's default noexec makes
    dlopen() of the copied plugins fail and Orthanc stop."""
    require_image(TEAM_IMAGE)
    config = write_dir(tmp_path / "conf", role_like_config(stack, stack.database(), None), ROLE_UID, 0o600)
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, ROLE_UID, ROLE_UID)
    options = f"uid={ROLE_UID},gid={ROLE_UID},mode=0755" + (",exec" if exec_option else "")
    container = start_team(
        boxes, stack, "hardened-tmpfs", config, *role_hardening(config, data),
        "--tmpfs", f"/run/orthanc/plugins:{options}", "-e", "GENERATE_HOST_ID_IF_MISSING=false",
    )  # fmt: skip
    if not exec_option:
        assert wait_exit(container) != 0
        output = logs(container)
        assert re.search(r"/run/orthanc/plugins/lib\w+\.so: failed to map segment from shared object", output), output
        return
    system = wait_orthanc(container, url_of(container), AUTH)
    assert system["DatabaseBackendPlugin"] == "/run/orthanc/plugins/libOrthancPostgreSQLIndex.so"
    assert docker("exec", container, "cat", "/etc/hostid").stdout.strip() == "not-generated"
    assert docker("exec", container, "id", "-u").stdout.strip() == str(ROLE_UID)


# --- clinicpacs/orthanc-plugins-layout:1.13.0 (jodogne/orthanc-plugins) ---------------------------------

PLUGINS_DIR = "/usr/local/share/orthanc/plugins"


def test_orthanc_plugins_layout_contract() -> None:
    require_image(PLUGINS_IMAGE)
    config = inspect(PLUGINS_IMAGE)
    assert config["Entrypoint"] == ["Orthanc"]
    assert config["Cmd"] == ["/etc/orthanc/"]
    assert config["User"] == ""
    assert config["WorkingDir"] == "/root/"  # as upstream writes it
    assert set(config["Volumes"]) == {"/var/lib/orthanc/db"}
    assert set(config["ExposedPorts"]) == {"4242/tcp", "8042/tcp"}
    assert "LC_ALL=en_US.UTF-8" in config["Env"]
    assert VERSION in binary_version(PLUGINS_IMAGE, "/usr/local/sbin/Orthanc")
    script = (
        "id -u; command -v Orthanc; id orthanc >/dev/null 2>&1 || echo no-orthanc-user; "
        "test -e /usr/share/orthanc/plugins || echo no-share-plugins; ls /etc/orthanc; "
        f"find {PLUGINS_DIR} -maxdepth 1 -type f -name '*.so' -printf '%f\\n' | sort"
    )
    out = shell(PLUGINS_IMAGE, script).stdout.split()
    assert out[:4] == ["0", "/usr/local/sbin/Orthanc", "no-orthanc-user", "no-share-plugins"], out
    assert "orthanc.json" in out
    for plugin in ("libOrthancPostgreSQLIndex.so", "libOrthancDicomWeb.so", "libOrthancGdcm.so", "libServeFolders.so"):
        assert plugin in out, out


def test_orthanc_plugins_layout_starts_with_its_own_config(boxes: Containers) -> None:
    require_image(PLUGINS_IMAGE)
    container = boxes.run("plugins-default", "-p", "127.0.0.1::8042", PLUGINS_IMAGE)
    url = f"http://127.0.0.1:{published_port(container, 8042)}"
    system = wait_orthanc(container, url, ("orthanc", "orthanc"))
    assert system["Version"] == VERSION
    assert system["Name"] == "Orthanc inside Docker"
    assert requests.get(f"{url}/system", timeout=5).status_code == 401
    loaded = set(requests.get(f"{url}/plugins", auth=("orthanc", "orthanc"), timeout=5).json())
    assert {"dicom-web", "gdcm"} <= loaded, loaded
    assert "index" in docker("exec", container, "ls", "/var/lib/orthanc/db").stdout.split()


def test_orthanc_plugins_layout_with_postgresql(boxes: Containers, stack: Stack, tmp_path: Path) -> None:
    require_image(PLUGINS_IMAGE)
    plugins = [f"{PLUGINS_DIR}/libOrthancPostgreSQLIndex.so", f"{PLUGINS_DIR}/libOrthancDicomWeb.so"]
    config = write_dir(tmp_path / "conf", role_like_config(stack, stack.database(), plugins))
    container = boxes.run(
        "plugins-pg", "--network", stack.network, "-p", "127.0.0.1::8042",
        "-v", f"{config}:/etc/orthanc:ro", PLUGINS_IMAGE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{published_port(container, 8042)}"
    system = wait_orthanc(container, url, AUTH)
    assert system["Name"] == "from-file"
    assert system["DatabaseBackendPlugin"] == f"{PLUGINS_DIR}/libOrthancPostgreSQLIndex.so"
