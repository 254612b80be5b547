#!/usr/bin/env bash
# Install the packages this machine lacks and start the Docker engine: what `make demo` and
# `make test` need on a fresh machine (both run it first; so does .ci/run).
#
#   tools/setup.sh demo            # make demo: Docker engine + client, debootstrap, python3-venv, ...
#   tools/setup.sh test            # make test: the demo's packages plus dcmtk and chromium
#   tools/setup.sh --dry-run test  # print the plan (system, missing packages, commands), change nothing
#
# Supported: Debian 12 (bookworm), Debian 13 (trixie), Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble).
# Anything else is refused (exit 2) with the package list, so a person can install the equivalents.
# Only missing packages are installed (apt-get update once, only then). Not root: sudo, after a line
# saying what it is for. Nothing to do: returns in a fraction of a second.
#
# Exit status: 0 done (or nothing to do), 1 failed or refused (no sudo, engine not reachable),
# 2 unsupported system or bad arguments.
# Environment: SETUP_SKIP=1 skips everything (a machine set up by hand). For the tests:
# SETUP_OS_RELEASE (default /etc/os-release), SETUP_DOCKER (default /usr/bin/docker).
set -euo pipefail

# The one list of packages. Each line: package, profile (demo: `make demo` needs it; the test profile
# installs the demo's packages too), systems it is installed on ("all" or system keys as below).
PACKAGES=(
  "docker.io               demo all"                  # Docker engine; on Debian 12 and Ubuntu its client too
  "docker-cli              demo debian-13"            # Debian 13's docker.io no longer brings the client
  "docker-compose          demo debian-13"            # Compose v2, split out with the client on Debian 13
  "debootstrap             demo all"                  # the Debian base images, without a registry
  "debian-archive-keyring  demo all"                  # Ubuntu's debootstrap needs it for Debian suites
  "python3-venv            demo all"                  # make venv
  "make                    demo all"
  "git                     demo all"
  "curl                    demo all"
  "openssl                 demo all"
  "ca-certificates         demo all"
  "dcmtk                   test all"                  # DICOM clients (storescu, echoscu, ...) of the tests
  "chromium                test debian-12 debian-13"  # fleet report rendered headless; Ubuntu: a snap only
)
# Supported systems: key (ID-VERSION_ID of os-release) and name.
SYSTEMS=(
  "debian-12     Debian 12 (bookworm)"
  "debian-13     Debian 13 (trixie)"
  "ubuntu-22.04  Ubuntu 22.04 (jammy)"
  "ubuntu-24.04  Ubuntu 24.04 (noble)"
)

DOCKER="${SETUP_DOCKER:-/usr/bin/docker}" # Debian's client: an older one may come first on PATH
DOCKERD_LOG=/var/log/dockerd.log
OS_RELEASE="${SETUP_OS_RELEASE:-/etc/os-release}"

self="${BASH_SOURCE[0]}"
case "$self" in /*) ;; *) self="$PWD/$self" ;; esac

say() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: %s\n' "$*" >&2; }
usage() {
  printf 'usage: %s [--dry-run] demo|test\n' "${0##*/}" >&2
  exit 2
}

dry_run=0
profile=""
for arg in "$@"; do
  case "$arg" in
    --dry-run | -n) dry_run=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
    demo | test) [ -z "$profile" ] || usage; profile="$arg" ;;
    *) warn "unknown argument '$arg'"; usage ;;
  esac
done
[ -n "$profile" ] || usage

if [ "${SETUP_SKIP:-0}" = "1" ]; then
  say "skipped (SETUP_SKIP=1): the packages and the Docker engine are up to you"
  exit 0
fi

# packages_for SYSTEM PROFILE: sets `needed` to the packages of PROFILE on SYSTEM, in table order.
packages_for() {
  local system="$1" want="$2" line name pkg_profile systems
  needed=()
  for line in "${PACKAGES[@]}"; do
    read -r name pkg_profile systems <<<"$line"
    [ "$pkg_profile" = demo ] || [ "$want" = test ] || continue
    case " $systems " in *" all "* | *" $system "*) needed+=("$name") ;; esac
  done
}

# notes_for SYSTEM PROFILE: sets `notes` to what PROFILE leaves out on SYSTEM, and why.
notes_for() {
  notes=()
  case "$1:$2" in
    ubuntu-*:test)
      notes+=("chromium is not installed on Ubuntu (its package only installs the snap): the test that renders the")
      notes[-1]+=" fleet report in headless chromium skips unless a chromium that is not a snap is on PATH"
      ;;
  esac
}

# os_release_value KEY: the value of KEY in $OS_RELEASE, without quotes (empty when absent).
os_release_value() {
  local line value
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "$1="*)
        value="${line#*=}"
        value="${value#[\"\']}"
        value="${value%[\"\']}"
        printf '%s' "$value"
        return 0
        ;;
    esac
  done <"$OS_RELEASE"
}

# refuse_unsupported WHAT: exit 2 naming the system found and every supported system's package list.
refuse_unsupported() {
  local entry key name names="" note
  for entry in "${SYSTEMS[@]}"; do
    read -r _ name <<<"$entry"
    names+="${names:+, }$name"
  done
  {
    printf 'setup: unsupported system: %s\n' "$1"
    printf 'setup: supported are %s. There, make %s needs these packages:\n' "$names" "$profile"
    for entry in "${SYSTEMS[@]}"; do
      read -r key name <<<"$entry"
      packages_for "$key" "$profile"
      notes_for "$key" "$profile"
      printf '  %-21s apt-get install --no-install-recommends %s\n' "$name:" "${needed[*]}"
      for note in "${notes[@]}"; do printf '  %-21s note: %s\n' "" "$note"; done
    done
    printf 'setup: install their equivalents here and start the Docker engine yourself, then run make with\n'
    printf 'setup: SETUP_SKIP=1 (for example: make %s SETUP_SKIP=1) to skip this step.\n' "$profile"
  } >&2
  exit 2
}

# --- The system ---------------------------------------------------------------------------------
[ -r "$OS_RELEASE" ] || refuse_unsupported "no $OS_RELEASE to tell which system this is"
os_id="$(os_release_value ID)"
os_version="$(os_release_value VERSION_ID)"
os_pretty="$(os_release_value PRETTY_NAME)"
found="${os_pretty:-${os_id:-unknown}} (ID=${os_id:-none} VERSION_ID=${os_version:-none})"
system=""
for entry in "${SYSTEMS[@]}"; do
  read -r key name <<<"$entry"
  if [ "$key" = "$os_id-$os_version" ]; then
    system="$key"
    system_name="$name"
  fi
done
[ -n "$system" ] || refuse_unsupported "$found"
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  refuse_unsupported "$found without apt-get and dpkg-query"
fi

# --- What is missing ----------------------------------------------------------------------------
packages_for "$system" "$profile"
notes_for "$system" "$profile"
installed=" "
while read -r pkg want flag status; do
  [ "$want $flag $status" = "install ok installed" ] && installed+="$pkg "
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${needed[@]}" 2>/dev/null || true)
missing=()
for pkg in "${needed[@]}"; do
  case "$installed" in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
done

# The Docker engine: ok (answers), denied (runs, but this user may not use it), down, or noclient.
engine_state() {
  local out
  [ -x "$DOCKER" ] || { echo noclient; return; }
  if out="$("$DOCKER" info 2>&1)"; then
    echo ok
  else
    case "$out" in *"permission denied"*) echo denied ;; *) echo down ;; esac
  fi
}
engine="$(engine_state)"

init=""
read -r init </proc/1/comm 2>/dev/null || true
if [ "$init" = systemd ]; then
  start_engine=(systemctl start docker)
  start_text="${start_engine[*]}"
else # detached from this shell (and from make's pipes), logging to $DOCKERD_LOG
  start_engine=(sh -c "setsid -f /usr/sbin/dockerd >>$DOCKERD_LOG 2>&1 </dev/null")
  start_text="sh -c '${start_engine[2]}'"
fi

# --- Root or sudo -------------------------------------------------------------------------------
uid="$(id -u)"
why="make $profile needs it"
todo=()
[ "${#missing[@]}" -eq 0 ] || todo+=("install ${missing[*]}")
case "$engine" in down | noclient) todo+=("start the Docker engine") ;; esac
as_root=()
refusal=""
if [ "$uid" != 0 ] && [ "${#todo[@]}" -gt 0 ]; then
  if command -v sudo >/dev/null; then
    purpose="${todo[0]}"
    [ "${#todo[@]}" -eq 1 ] || purpose+=" and ${todo[1]}"
    as_root=(sudo -p "[sudo] password for %u to $purpose ($why): ")
  else
    refusal="not root and no sudo here: as root, run $self $profile"
    [ "${#missing[@]}" -eq 0 ] || refusal+="
setup: (or by hand, as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]})"
  fi
fi
apt_install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}")

group_advice() {
  warn "the Docker engine runs but user $(id -un 2>/dev/null || echo "$uid") may not use it ($DOCKER info: permission denied)."
  warn "Join the docker group (as powerful as root), then log in again: sudo usermod -aG docker \"\$USER\""
}

# --- Dry run: the plan ----------------------------------------------------------------------------
if [ "$dry_run" = 1 ]; then
  quoted() { # the words as a shell would read them back, for people: plain, or in single quotes
    local word words=""
    for word; do
      case "$word" in
        "" | *[!A-Za-z0-9_./=:%+@,-]*) word="'${word//\'/\'\\\'\'}'" ;;
      esac
      words+="${words:+ }$word"
    done
    printf '%s' "$words"
  }
  say "system: $system_name [$system], from $OS_RELEASE"
  say "profile: $profile: ${needed[*]}"
  if [ "${#missing[@]}" -eq 0 ]; then
    say "missing: none, nothing to install"
  else
    say "missing: ${missing[*]}"
    say "would run: $(quoted "${as_root[@]}" apt-get update -qq)"
    say "would run: $(quoted "${as_root[@]}" "${apt_install[@]}")"
  fi
  case "$engine" in
    ok) say "Docker engine: answers ($DOCKER info), nothing to start" ;;
    denied) say "Docker engine: runs, but this user may not use it (would refuse, see below)" ;;
    down) say "Docker engine: does not answer: would start it: ${as_root:+$(quoted "${as_root[@]}") }$start_text" ;;
    noclient)
      if [ "${#missing[@]}" -eq 0 ]; then
        say "Docker engine: no $DOCKER, and no package to install brings it: would fail"
      else
        say "Docker engine: no $DOCKER yet: would start it after the install: ${as_root:+$(quoted "${as_root[@]}") }$start_text"
      fi
      ;;
  esac
  [ "$uid" = 0 ] || [ "${#todo[@]}" -eq 0 ] || [ -n "$refusal" ] || say "not root: would use sudo"
  for note in "${notes[@]}"; do say "note: $note"; done
  say "dry run: nothing changed"
  if [ -n "$refusal" ]; then warn "would refuse: $refusal"; exit 1; fi
  if [ "$engine" = denied ]; then group_advice; exit 1; fi
  if [ "$engine" = noclient ] && [ "${#missing[@]}" -eq 0 ]; then exit 1; fi
  exit 0
fi

# --- Do it --------------------------------------------------------------------------------------
[ -z "$refusal" ] || { warn "$refusal"; exit 1; }
for note in "${notes[@]}"; do say "note: $note"; done

if [ "${#missing[@]}" -gt 0 ]; then
  say "installing${as_root:+ with sudo}: ${missing[*]} ($why; $system_name packages, apt-get update first)"
  "${as_root[@]}" apt-get update -qq || { warn "apt-get update failed (see above)"; exit 1; }
  "${as_root[@]}" "${apt_install[@]}" >/dev/null || { warn "apt-get install failed (see above)"; exit 1; }
  engine="$(engine_state)"
fi
if [ "$engine" = noclient ]; then
  warn "no Docker client $DOCKER, although ${needed[*]} are installed: reinstall docker.io (or docker-cli)"
  exit 1
fi

engine_failed() {
  warn "$1. The engine's last log lines:"
  if [ "$init" = systemd ]; then
    "${as_root[@]}" journalctl -u docker --no-pager -n 20 >&2 || true
  else
    tail -n 20 "$DOCKERD_LOG" >&2 || true
  fi
  exit 1
}
if [ "$engine" = down ]; then
  say "starting the Docker engine${as_root:+ with sudo} ($why): $start_text"
  "${as_root[@]}" "${start_engine[@]}" || engine_failed "could not start the Docker engine ($start_text)"
  for _ in $(seq 60); do
    engine="$(engine_state)"
    [ "$engine" = down ] || break
    sleep 1
  done
  [ "$engine" != down ] || engine_failed "the Docker engine did not answer within 60 s ($DOCKER info)"
fi
if [ "$engine" = denied ]; then
  group_advice
  exit 1
fi

if [ "${#missing[@]}" -eq 0 ] && [ "${#todo[@]}" -eq 0 ]; then
  say "nothing to do ($system_name: the ${#needed[@]} packages of make $profile are installed, the Docker engine answers)"
else
  say "done: $system_name has the packages of make $profile, the Docker engine answers"
fi
