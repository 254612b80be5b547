"""tools/setup.sh: its plan (``--dry-run``) on each supported system, and its refusals.

Nothing is installed or started: the script reads a fake os-release file (SETUP_OS_RELEASE) and runs
with a PATH of fake tools only. The fake ``dpkg-query`` reports the packages listed in FAKE_INSTALLED
(``*``: all) as installed, the fake ``id`` answers FAKE_UID, the fake docker client (SETUP_DOCKER)
answers ``info`` as FAKE_ENGINE says (ok, down, denied), and ``apt-get`` and ``sudo`` only log their
calls to FAKE_LOG (a dry run must call neither). Two tests run the script for real against these
fakes: with nothing to do, and as a user with sudo who lacks two packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "setup.sh"
BASH = shutil.which("bash") or "/bin/bash"

OS_RELEASE = {
    "debian-12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
    "debian-13": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\n'
    'VERSION="13 (trixie)"\nVERSION_CODENAME=trixie\nID=debian\n',
    "ubuntu-22.04": 'PRETTY_NAME="Ubuntu 22.04.5 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
    'VERSION="22.04.5 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n',
    "ubuntu-24.04": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
    'VERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n',
}
UNSUPPORTED = {
    "fedora 40": 'NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME="Fedora Linux 40 (Workstation Edition)"\n',
    "debian 11": 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nVERSION_ID="11"\nID=debian\n',
    "ubuntu 20.04": 'PRETTY_NAME="Ubuntu 20.04.6 LTS"\nVERSION_ID="20.04"\nID=ubuntu\nID_LIKE=debian\n',
    "debian testing": 'PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\n',  # no VERSION_ID
    "linux mint 22": 'PRETTY_NAME="Linux Mint 22"\nVERSION_ID="22"\nID=linuxmint\nID_LIKE="ubuntu debian"\n',
}

DEMO = ["docker.io", "debootstrap", "debian-archive-keyring", "python3-venv", "make", "git", "curl", "openssl",
        "ca-certificates"]  # fmt: skip
TRIXIE_DEMO = ["docker.io", "docker-cli", "docker-compose", *DEMO[1:]]
EXPECTED = {
    ("debian-12", "demo"): DEMO,
    ("debian-13", "demo"): TRIXIE_DEMO,
    ("ubuntu-22.04", "demo"): DEMO,
    ("ubuntu-24.04", "demo"): DEMO,
    ("debian-12", "test"): [*DEMO, "dcmtk", "chromium"],
    ("debian-13", "test"): [*TRIXIE_DEMO, "dcmtk", "chromium"],
    ("ubuntu-22.04", "test"): [*DEMO, "dcmtk"],
    ("ubuntu-24.04", "test"): [*DEMO, "dcmtk"],
}

FAKES = {
    "dpkg-query": r"""#!/bin/sh
printf '%s\n' "dpkg-query $*" >>"$FAKE_LOG"
rc=0
for arg; do
  case "$arg" in
    -*) ;;
    *)
      case " $FAKE_INSTALLED " in
        *" $arg "* | *" * "*) echo "$arg install ok installed" ;;
        *) echo "dpkg-query: no packages found matching $arg" >&2; rc=1 ;;
      esac
      ;;
  esac
done
exit $rc
""",
    "id": r"""#!/bin/sh
printf '%s\n' "id $*" >>"$FAKE_LOG"
case "$1" in -u) echo "$FAKE_UID" ;; -un) echo tester ;; *) exit 1 ;; esac
""",
    "docker": r"""#!/bin/sh
printf '%s\n' "docker $*" >>"$FAKE_LOG"
case "$FAKE_ENGINE" in
  ok) echo "Server Version: 26.1.5" ;;
  down) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    exit 1 ;;
  denied) echo "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"
    exit 1 ;;
esac
""",
    "apt-get": r"""#!/bin/sh
printf '%s\n' "apt-get $*" >>"$FAKE_LOG"
""",
    "sudo": r"""#!/bin/sh
printf '%s\n' "sudo $*" >>"$FAKE_LOG"
[ "$1" = -p ] && shift 2
exec "$@"
""",
}


class Fake:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "fake.log"
        self.log.touch()
        for name, text in FAKES.items():
            tool = self.bin / name
            tool.write_text(text)
            tool.chmod(0o755)

    def run(self, *args, system="debian-12", os_release=None, installed="", uid=0, engine="ok", sudo=True,
            apt=True, docker=True, dry_run=True, release_file=None):  # fmt: skip
        release = release_file
        if release is None:
            release = self.tmp / "os-release"
            release.write_text(OS_RELEASE[system] if os_release is None else os_release)
        if not sudo:
            (self.bin / "sudo").unlink(missing_ok=True)
        if not apt:
            (self.bin / "apt-get").unlink(missing_ok=True)
        env = {
            "PATH": str(self.bin),
            "SETUP_OS_RELEASE": str(release),
            "SETUP_DOCKER": str(self.bin / "docker") if docker else str(self.tmp / "no-docker"),
            "FAKE_INSTALLED": installed,
            "FAKE_UID": str(uid),
            "FAKE_ENGINE": engine,
            "FAKE_LOG": str(self.log),
        }
        argv = [BASH, str(SCRIPT), *(["--dry-run"] if dry_run else []), *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def fake(tmp_path):
    return Fake(tmp_path)


def field(out: str, prefix: str) -> str:
    """The rest of the first output line that starts with ``setup: <prefix>``."""
    lines = [line for line in out.splitlines() if line.startswith(f"setup: {prefix}")]
    assert lines, f"no line 'setup: {prefix}' in:\n{out}"
    return lines[0][len(f"setup: {prefix}") :].strip()


def install_line(out: str) -> list[str]:
    """The packages of the planned ``apt-get install``."""
    lines = [line for line in out.splitlines() if line.startswith("setup: would run:") and " install " in line]
    assert len(lines) == 1, out
    return lines[0].split("--no-install-recommends", 1)[1].split()


@pytest.mark.parametrize(("system", "profile"), sorted(EXPECTED))
def test_each_system_and_profile_plans_its_packages(fake, system, profile):
    result = fake.run(profile, system=system)
    assert result.returncode == 0, result.stderr
    want = EXPECTED[(system, profile)]
    assert field(result.stdout, "profile:") == f"{profile}: {' '.join(want)}"
    assert field(result.stdout, "missing:").split() == want
    assert install_line(result.stdout) == want
    assert f"[{system}]" in field(result.stdout, "system:")
    assert field(result.stdout, "dry run:") == "nothing changed"


def test_debian_13_adds_the_client_and_compose_that_its_docker_io_lacks(fake):
    assert {"docker-cli", "docker-compose"} <= set(install_line(fake.run("demo", system="debian-13").stdout))
    for system in ("debian-12", "ubuntu-22.04", "ubuntu-24.04"):
        planned = install_line(fake.run("test", system=system).stdout)
        assert "docker-cli" not in planned and "docker-compose" not in planned, system


@pytest.mark.parametrize("system", ["ubuntu-22.04", "ubuntu-24.04"])
def test_ubuntu_gets_no_chromium_and_a_note_why(fake, system):
    result = fake.run("test", system=system)
    assert "chromium" not in install_line(result.stdout)
    assert "chromium is not installed on Ubuntu" in field(result.stdout, "note:")
    assert "skips" in field(result.stdout, "note:")


@pytest.mark.parametrize("system", ["debian-12", "debian-13"])
def test_debian_test_profile_gets_chromium_without_a_note(fake, system):
    result = fake.run("test", system=system)
    assert "chromium" in install_line(result.stdout)
    assert "note:" not in result.stdout


@pytest.mark.parametrize("system", sorted(OS_RELEASE))
def test_demo_profile_has_no_test_packages(fake, system):
    planned = install_line(fake.run("demo", system=system).stdout)
    assert "dcmtk" not in planned and "chromium" not in planned
    assert "docker.io" in planned and "debootstrap" in planned and "python3-venv" in planned


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_system_is_refused_with_the_package_lists(fake, name):
    result = fake.run("test", os_release=UNSUPPORTED[name])
    assert result.returncode == 2
    err = result.stderr
    pretty = next(line for line in UNSUPPORTED[name].splitlines() if line.startswith("PRETTY_NAME="))
    assert f"unsupported system: {pretty.split('=', 1)[1].strip(chr(34))}" in err
    for system, want in (("Debian 12", EXPECTED[("debian-12", "test")]),
                         ("Debian 13", EXPECTED[("debian-13", "test")]),
                         ("Ubuntu 22.04", EXPECTED[("ubuntu-22.04", "test")]),
                         ("Ubuntu 24.04", EXPECTED[("ubuntu-24.04", "test")])):  # fmt: skip
        line = next(line for line in err.splitlines() if line.strip().startswith(system))
        assert line.split("--no-install-recommends", 1)[1].split() == want, line
    assert "SETUP_SKIP=1" in err
    assert result.stdout == ""
    assert not [call for call in fake.calls() if not call.startswith("id")], "refused, yet it looked further"


def test_unsupported_demo_profile_lists_the_demo_packages(fake):
    result = fake.run("demo", os_release=UNSUPPORTED["fedora 40"])
    assert result.returncode == 2
    line = next(line for line in result.stderr.splitlines() if line.strip().startswith("Debian 13"))
    assert line.split("--no-install-recommends", 1)[1].split() == TRIXIE_DEMO


def test_no_os_release_is_refused(fake, tmp_path):
    absent = tmp_path / "absent"
    result = fake.run("test", release_file=absent)
    assert result.returncode == 2
    assert f"unsupported system: no {absent} to tell which system this is" in result.stderr
    assert "docker-cli" in result.stderr


def test_supported_system_without_apt_is_refused(fake):
    result = fake.run("test", system="debian-12", apt=False)
    assert result.returncode == 2
    assert "without apt-get" in result.stderr and "Debian GNU/Linux 12 (bookworm)" in result.stderr
    assert "debootstrap" in result.stderr


def test_nothing_missing_means_nothing_to_install(fake):
    result = fake.run("test", system="debian-13", installed="*")
    assert result.returncode == 0, result.stderr
    assert field(result.stdout, "missing:") == "none, nothing to install"
    assert "would run" not in result.stdout
    assert "nothing to start" in field(result.stdout, "Docker engine:")


def test_only_the_missing_packages_are_installed(fake):
    result = fake.run("test", system="debian-12", installed=" ".join(DEMO))
    assert install_line(result.stdout) == ["dcmtk", "chromium"]
    assert [line for line in result.stdout.splitlines() if "apt-get update" in line] == [
        "setup: would run: apt-get update -qq"
    ]
    assert "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends" in result.stdout


def test_a_dry_run_calls_neither_apt_get_nor_sudo(fake):
    fake.run("test", system="debian-13", uid=1000, engine="down")
    tools = {call.split()[0] for call in fake.calls()}
    assert tools == {"dpkg-query", "id", "docker"}, fake.calls()
    assert [call for call in fake.calls() if call.startswith("docker")] == ["docker info"]


def test_not_root_plans_sudo_with_a_prompt_that_says_why(fake):
    result = fake.run("test", system="debian-12", installed=" ".join(DEMO), uid=1000, engine="down")
    assert result.returncode == 0, result.stderr
    planned = [line for line in result.stdout.splitlines() if line.startswith("setup: would run:")]
    assert planned and all("sudo -p" in line for line in planned)
    prompt = "'[sudo] password for %u to install dcmtk chromium and start the Docker engine (make test needs it): '"
    assert planned[0] == f"setup: would run: sudo -p {prompt} apt-get update -qq"
    assert "sudo -p" in field(result.stdout, "Docker engine:")
    assert field(result.stdout, "not root:") == "would use sudo"


def test_not_root_without_sudo_is_refused_with_the_command_to_run_as_root(fake):
    result = fake.run("test", system="ubuntu-24.04", installed="docker.io", uid=1000, sudo=False)
    assert result.returncode == 1
    assert f"as root, run {SCRIPT} test" in result.stderr
    assert ("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
            + " ".join(EXPECTED[("ubuntu-24.04", "test")][1:])) in result.stderr  # fmt: skip


def test_not_root_without_sudo_is_fine_when_nothing_is_to_be_done(fake):
    result = fake.run("demo", system="ubuntu-22.04", installed="*", uid=1000, sudo=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


START = ("systemctl start docker", "sh -c 'setsid -f /usr/sbin/dockerd >>/var/log/dockerd.log 2>&1 </dev/null'")


def test_engine_that_answers_is_left_alone(fake):
    result = fake.run("demo", system="debian-12", installed="*", engine="ok")
    assert result.returncode == 0, result.stderr
    assert field(result.stdout, "Docker engine:") == f"answers ({fake.bin / 'docker'} info), nothing to start"


def test_engine_that_does_not_answer_is_started(fake):
    result = fake.run("demo", system="debian-12", installed="*", engine="down")
    assert result.returncode == 0, result.stderr
    plan = field(result.stdout, "Docker engine:")
    assert plan.startswith("does not answer: would start it: ") and plan.endswith(START), plan


def test_engine_without_a_client_yet_is_started_after_the_install(fake):
    result = fake.run("demo", system="debian-12", docker=False)
    assert result.returncode == 0, result.stderr
    plan = field(result.stdout, "Docker engine:")
    assert plan.startswith(f"no {fake.tmp / 'no-docker'} yet: would start it after the install: "), plan
    assert plan.endswith(START), plan


def test_engine_this_user_may_not_use_is_refused_with_the_docker_group_advice(fake):
    result = fake.run("demo", system="debian-12", installed="*", engine="denied", uid=1000)
    assert result.returncode == 1
    assert "runs but user tester may not use it" in result.stderr
    assert "usermod -aG docker" in result.stderr


def test_real_run_with_nothing_to_do_only_looks(fake):
    result = fake.run("test", system="debian-13", installed="*", dry_run=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("setup: nothing to do (Debian 13 (trixie): the 13 packages of make test")
    assert {call.split()[0] for call in fake.calls()} == {"dpkg-query", "id", "docker"}


def test_real_run_not_root_says_what_it_installs_before_sudo(fake):
    env_tool = shutil.which("env")
    assert env_tool
    (fake.bin / "env").symlink_to(env_tool)
    result = fake.run("test", system="debian-12", installed=" ".join(DEMO), uid=1000, dry_run=False)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("setup: installing with sudo: dcmtk chromium (make test needs it")
    sudo_and_apt = [call for call in fake.calls() if call.split()[0] in ("sudo", "apt-get")]
    prompt = "[sudo] password for %u to install dcmtk chromium (make test needs it): "
    assert sudo_and_apt == [
        f"sudo -p {prompt} apt-get update -qq",
        "apt-get update -qq",
        f"sudo -p {prompt} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dcmtk "
        "chromium",
        "apt-get install -y -qq --no-install-recommends dcmtk chromium",
    ]


def test_bad_arguments(fake):
    for args in ((), ("demo", "test"), ("prod",)):
        result = fake.run(*args)
        assert result.returncode == 2, args
        assert "usage:" in result.stderr


def test_no_client_although_everything_is_installed_fails_instead_of_starting_anything(fake):
    planned = fake.run("demo", system="debian-12", installed="*", docker=False)
    assert planned.returncode == 1
    assert "no package to install brings it: would fail" in field(planned.stdout, "Docker engine:")
    result = fake.run("demo", system="debian-12", installed="*", docker=False, dry_run=False)
    assert result.returncode == 1
    assert "reinstall docker.io (or docker-cli)" in result.stderr
    assert {call.split()[0] for call in fake.calls()} == {"dpkg-query", "id"}


def test_real_run_refuses_an_engine_this_user_may_not_use(fake):
    result = fake.run("test", system="debian-12", installed="*", engine="denied", uid=1000, dry_run=False)
    assert result.returncode == 1
    assert "usermod -aG docker" in result.stderr
    assert {call.split()[0] for call in fake.calls()} == {"dpkg-query", "id", "docker"}
