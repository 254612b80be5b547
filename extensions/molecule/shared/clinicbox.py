"""Helpers every Molecule verifier of the collection shares: one clinic box and the stack inside it.

The scenarios' testinfra tests import this module (Molecule puts this folder on PYTHONPATH, see
.config/molecule/config.yml). Everything here talks only to containers the scenario created itself: the box
(by its container address), throw-away device containers on the scenario's own network, and the box's
inner Docker engine through testinfra's `host`.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from pydicom import dcmread
from requests.adapters import HTTPAdapter

DOCKER = "/usr/bin/docker"
REPO = Path(__file__).resolve().parents[3]
SAMPLES_DIR = REPO / "tests/data/dicom"
# Real sample data (tests/data/dicom/README.md): 85 files; two share one SOP Instance UID.
SAMPLES = sorted(SAMPLES_DIR.rglob("*.dcm"))
# The BRAINIX MR study: 22 uncompressed instances.
BRAINIX = sorted((SAMPLES_DIR / "Brainix/Epi").glob("*.dcm"))
CONTAINERS = ("clinicpacs-postgres", "clinicpacs-orthanc", "clinicpacs-nginx")
DEVICESIM = "clinicpacs/devicesim:trixie"


def unique_instances(files=SAMPLES) -> int:
    """How many instances Orthanc stores from these files (one per SOP Instance UID)."""
    return len({str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files})


def study_uid(files) -> str:
    return str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def box_ip(box: str) -> str:
    """The box container's first address (on its scenario network, or Docker's default bridge)."""
    out = subprocess.run(  # noqa: S603 - fixed docker command on the scenario's own box
        [DOCKER, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", box],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out, f"box container {box} has no IP address"
    return out[0]


class ServerNameAdapter(HTTPAdapter):
    """Verify the certificate against the PACS name while connecting to the container's address."""

    def __init__(self, server_name: str, **kwargs):
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_hostname"] = self._server_name
        kwargs["server_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


@dataclass
class Clinic:
    """One clinic box: its inventory variables, its clinic CA on the control node and HTTPS to its nginx."""

    box: str
    vars: dict
    ca: Path

    @classmethod
    def of(cls, host, box: str) -> Clinic:
        ca = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "clinic-ca" / f"{box}-ca.crt"
        return cls(box=box, vars=host.ansible.get_variables(), ca=ca)

    @property
    def ip(self) -> str:
        """Read each time: a restarted box on Docker's default bridge may come back with another address."""
        return box_ip(self.box)

    @property
    def server_name(self) -> str:
        return self.vars["pacs_server_name"]

    @property
    def admin(self) -> tuple[str, str]:
        return (self.vars.get("pacs_admin_username", "admin"), self.vars["pacs_admin_password"])

    def request(self, method: str, path: str, auth=None, **kwargs) -> requests.Response:
        """HTTPS through the box's nginx, certificate checked against the clinic CA; admin unless `auth`."""
        session = requests.Session()
        session.mount("https://", ServerNameAdapter(self.server_name))
        # verify= on the request itself: REQUESTS_CA_BUNDLE in the environment would override the session's.
        kwargs.setdefault("timeout", 30)
        return session.request(
            method, f"https://{self.ip}{path}", auth=auth or self.admin, verify=str(self.ca), **kwargs
        )

    def get(self, path: str, auth=None) -> requests.Response:
        return self.request("GET", path, auth=auth)

    def anonymous_get(self, path: str) -> requests.Response:
        session = requests.Session()
        session.mount("https://", ServerNameAdapter(self.server_name))
        return session.get(f"https://{self.ip}{path}", timeout=15, verify=str(self.ca))

    def json(self, path: str):
        r = self.get(path)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()

    def lookup(self, uid: str, kind: str) -> list:
        """Orthanc IDs of the resources of type `kind` (Study, Instance...) with this DICOM UID."""
        r = self.request("POST", "/tools/lookup", data=uid)
        assert r.status_code == 200, r.text
        return [x["ID"] for x in r.json() if x["Type"] == kind]

    def snapshot(self) -> dict:
        """Instance count, sorted studies and every instance's attachment MD5."""
        instances = self.json("/instances")
        return {
            "count": self.json("/statistics")["CountInstances"],
            "studies": sorted(self.json("/studies")),
            "md5": {i: self.get(f"/instances/{i}/attachments/dicom/md5").text for i in instances},
        }

    def verify_md5(self, instance: str) -> requests.Response:
        return self.request("POST", f"/instances/{instance}/attachments/dicom/verify-md5")


# ----------------------------------------------------------------------------------------------------
# Ansible runs on Molecule's inventory
# ----------------------------------------------------------------------------------------------------


def playbook(name: str, *args: str, check: bool = False, timeout: int = 900) -> subprocess.CompletedProcess:
    """ansible-playbook on Molecule's inventory: `name` is a file of the scenario, else of playbooks/."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    path = scenario / name if (scenario / name).exists() else REPO / "playbooks" / name
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    cmd += [str(path), *(["--check"] if check else []), *args]
    return subprocess.run(  # noqa: S603 - the venv's ansible-playbook on Molecule's own inventory
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        check=False,
    )


def text(res: subprocess.CompletedProcess) -> str:
    """stdout and stderr with every run of whitespace as one space (Ansible wraps long messages)."""
    return " ".join((res.stdout + " " + res.stderr).split())


def recap(res: subprocess.CompletedProcess, host_name: str) -> str:
    """The PLAY RECAP line of one host."""
    lines = [line for line in res.stdout.splitlines() if line.startswith(f"{host_name} ") and "changed=" in line]
    assert lines, res.stdout[-3000:]
    return lines[-1]


def changed(res: subprocess.CompletedProcess, host_name: str) -> int:
    return int(recap(res, host_name).split("changed=")[1].split()[0])


# ----------------------------------------------------------------------------------------------------
# The stack inside the box
# ----------------------------------------------------------------------------------------------------


def wait_healthy(host, timeout: int = 240) -> None:
    """Wait until PostgreSQL, Orthanc and nginx report healthy in the box's Docker engine."""
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        res = host.run(f"docker inspect -f '{{{{.Name}}}} {{{{.State.Health.Status}}}}' {' '.join(CONTAINERS)}")
        states = res.stdout
        if res.rc == 0 and states.count(" healthy") == len(CONTAINERS):
            return
        time.sleep(2)
    raise AssertionError(f"containers not healthy after {timeout}s: {states}")


def started_at(host, name: str = "clinicpacs-orthanc") -> str:
    return host.run(f"docker inspect -f '{{{{.State.StartedAt}}}}' {name}").stdout.strip()


BROKEN_IMAGE = "clinicpacs/orthanc:broken"


def broken_image_script(source: str, tag: str = BROKEN_IMAGE) -> str:
    """Shell for a box's Docker engine that builds `tag`, a broken release of `source`: its PostgreSQL plugin
    files are emptied. Orthanc still answers `--version` (the role's version gate passes), then stops at once
    when it loads the plugin ("file too short"), whatever entrypoint or command starts it."""
    plugins = "find / -xdev -type f -name 'libOrthancPostgreSQL*.so*'"
    return (
        "set -e\n"
        f"user=$(docker image inspect -f '{{{{.Config.User}}}}' {source})\n"
        f"docker build -q -t {tag} - >/dev/null <<EOF\n"
        f"FROM {source}\n"
        "USER root\n"
        f"RUN {plugins} | grep -q . && {plugins} -exec truncate -s 0 {{}} + && ! {plugins} -size +0 | grep -q .\n"
        "USER ${user:-root}\n"
        "EOF\n"
    )


DESTRUCTIVE_IMAGE = "clinicpacs/orthanc:destructive"

# The Orthanc binary of a destructive release, in front of the real one (moved to "$0.real"). Started with a
# configuration folder, it runs the real Orthanc on copies of that configuration with other ports and no
# authentication, deletes every patient through it (database rows and storage files go), stops it and exits
# 1: a release whose migration destroys data, then fails. If it deleted nothing, it runs Orthanc as usual, so
# the upgrade succeeds and a test that expects a rollback fails: the test cannot pass without the damage.
_DESTRUCTIVE_WRAPPER = r"""#!/bin/bash
real="$0.real"
case "${1:-}" in /*) ;; *) exec "$real" "$@" ;; esac
mkdir -p /tmp/destructive
for f in "$1"/*.json; do
  sed -e 's/"HttpPort": 8042/"HttpPort": 8043/' -e 's/"DicomPort": 4242/"DicomPort": 4243/' \
      -e 's/"AuthenticationEnabled": true/"AuthenticationEnabled": false/' "$f" >"/tmp/destructive/${f##*/}"
done
"$real" /tmp/destructive/ &
pid=$!
http() {
  exec 3<>/dev/tcp/127.0.0.1/8043 || return 1
  printf '%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$1" "$2" >&3
  cat <&3
  exec 3<&-
}
for _ in $(seq 120); do http GET /system 2>/dev/null | grep -q '"Version"' && break; sleep 1; done
deleted=0
for id in $(http GET /patients | grep -o '"[0-9a-f-]\{44\}"' | tr -d '"'); do
  http DELETE "/patients/$id" >/dev/null && deleted=$((deleted + 1))
done
kill "$pid"
wait "$pid"
if [ "$deleted" -gt 0 ]; then
  echo "destructive release: deleted $deleted patients, now failing" >&2
  exit 1
fi
exec "$real" "$@"
"""


def destructive_release_script(source: str, tag: str = DESTRUCTIVE_IMAGE) -> str:
    """Shell for a box's Docker engine that builds `tag` from `source`: its Orthanc binary (the one the role's
    image step finds) is replaced by _DESTRUCTIVE_WRAPPER, so that the upgrade's rollback must restore the
    database and the storage from the backup to get every instance back."""
    return (
        "set -e\n"
        "ctx=$(mktemp -d)\n"
        f"cat >\"$ctx/Orthanc\" <<'WRAPPER'\n{_DESTRUCTIVE_WRAPPER}WRAPPER\n"
        f"user=$(docker image inspect -f '{{{{.Config.User}}}}' {source})\n"
        "cat >\"$ctx/Dockerfile\" <<EOF\n"
        f"FROM {source}\n"
        "USER root\n"
        "COPY Orthanc /tmp/Orthanc\n"
        'RUN real=\\$(command -v Orthanc) && mv \\$real \\$real.real && install -m 0755 /tmp/Orthanc \\$real '
        "&& rm /tmp/Orthanc\n"
        "USER ${user:-root}\n"
        "EOF\n"
        f"docker build -q -t {tag} \"$ctx\" >/dev/null\n"
        'rm -r "$ctx"\n'
    )


# ----------------------------------------------------------------------------------------------------
# TLS and DICOM from outside the box
# ----------------------------------------------------------------------------------------------------


def handshake(ip: str, version: ssl.TLSVersion, ciphers: str = "DEFAULT:@SECLEVEL=0", what: str = "version") -> str:
    """TLS handshake on port 443 at exactly `version`; the client allows old versions and suites (SECLEVEL=0)
    so that only the server can refuse them. Returns the protocol version, or with what="cipher" the suite."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(ciphers)
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection((ip, 443), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        return tls.cipher()[0] if what == "cipher" else tls.version()


def dcmtk(tool: str, ip: str, calling: str, files=(), timeout: int = 60) -> subprocess.CompletedProcess:
    """Debian's dcmtk on the Molecule host (the venv has pynetdicom tools of the same names) against the box."""
    cmd = [f"/usr/bin/{tool}", "-aet", calling, "-aec", "ORTHANC", "-to", "20", "-ta", "20", "-td", "20", ip, "4242"]
    return subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603


def device(network: str, ip: str, *argv: str, volumes=(), timeout: int = 90) -> subprocess.CompletedProcess:
    """Run a command in a throw-away devicesim container with the fixed address `ip` on `network`
    (a simulated device sending from its registered, or an unregistered, address)."""
    cmd = [DOCKER, "run", "--rm", "--name", f"{network}-dev-{ip.rsplit('.', 1)[1]}", "--network", network]
    cmd += ["--ip", ip]
    for source, target in volumes:
        cmd += ["-v", f"{source}:{target}:ro"]
    cmd += ["--entrypoint", argv[0], DEVICESIM, *argv[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
