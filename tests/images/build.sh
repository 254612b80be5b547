#!/usr/bin/env bash
# Build every container image the tests and the demo need, from Debian packages, without a registry.
#
#   bash tests/images/build.sh              # all images
#   bash tests/images/build.sh orthanc postgres   # only the images whose folder is named
#   bash tests/images/build.sh bases        # only the Debian base images
#
# Bases: clinicpacs/debian:trixie, :bookworm and :forky are made with debootstrap (default mirror) and
# `docker import` when no registry answers. When `docker pull debian:<suite>-slim` works
# (REGISTRY=1 forces it, REGISTRY=0 never tries), the same Dockerfiles start FROM that image instead.
#
# The images of each Debian suite are built in order after its base; the suites are built side by side.
#
# Caching: each image carries the label org.clinicpacs.build-hash, a hash of its build folder, its
# build arguments and the id of its base image. An image whose label matches is skipped.
# Archives: the stack images are also written with `docker save` to $IMAGES_CACHE_DIR/<name>_<tag>.tar
# (default .cache/images at the repository root) with a .hash sidecar; rewritten only when it changes.
#
# Python packages an image needs from PyPI (a requirements.txt in its folder, exact pins) are
# downloaded here with PIP (default .venv/bin/pip) and copied into the build: no network in builds
# other than Debian's mirror.
#
# Environment: DOCKER (default /usr/bin/docker), REGISTRY (auto|0|1), IMAGES_CACHE_DIR, NO_ARCHIVES=1,
# FORCE=1 (rebuild everything, bases included), PIP.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DOCKER="${DOCKER:-/usr/bin/docker}"
REGISTRY="${REGISTRY:-auto}"
CACHE_DIR="${IMAGES_CACHE_DIR:-$root/.cache/images}"
FORCE="${FORCE:-0}"
if [ -z "${PIP:-}" ]; then
  if [ -x "$root/.venv/bin/pip" ]; then PIP="$root/.venv/bin/pip"; else PIP="python3 -m pip"; fi
fi
LABEL="org.clinicpacs.build-hash"
# Bump when the way the bases are made changes: it is part of every hash.
BASE_RECIPE="debootstrap-minbase-v1"

# Suites that an older debootstrap (Debian 12's) has no script for, and the script that makes them.
declare -A SUITE_SCRIPT=([forky]=sid)

# image reference | build folder | Debian suite | build arguments (comma separated) | archive (yes/no)
IMAGES=(
  "clinicpacs/orthanc:1.13.0|orthanc|forky|ORTHANC_VERSION=1.13.0|yes"
  "clinicpacs/orthanc:1.12.7|orthanc|trixie|ORTHANC_VERSION=1.12.7|yes"
  "clinicpacs/orthanc:1.10.1|orthanc|bookworm|ORTHANC_VERSION=1.10.1|yes"
  "clinicpacs/orthancteam-layout:1.13.0|orthancteam-layout|forky|ORTHANC_VERSION=1.13.0|yes"
  "clinicpacs/orthanc-plugins-layout:1.13.0|orthanc-plugins-layout|forky|ORTHANC_VERSION=1.13.0|yes"
  "clinicpacs/postgres:17|postgres|trixie|PG_MAJOR=17|yes"
  "clinicpacs/nginx:1.26|nginx|trixie|NGINX_VERSION=1.26|yes"
  "clinicpacs/box:trixie|box|trixie||no"
  "clinicpacs/box:trixie-docker|box|trixie|WITH_DOCKER=1|no"
  "clinicpacs/devicesim:trixie|devicesim|trixie||yes"
  "clinicpacs/mspbackup:trixie|mspbackup|trixie||no"
)

log() { printf '%s\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

[ -x "$DOCKER" ] || die "docker client '$DOCKER' not found (set DOCKER=/path/to/docker)"
"$DOCKER" info >/dev/null 2>&1 || die "docker engine not reachable with '$DOCKER' (is dockerd running?)"

declare -A BASE_REF=()

# Make (or find) the base image of a Debian suite; sets BASE_REF[suite].
ensure_base() {
  local suite="$1" tag="clinicpacs/debian:$1" start rootfs
  local -a bootstrap=(debootstrap --variant=minbase "$suite")
  [ -n "${BASE_REF[$suite]:-}" ] && return 0
  start=$SECONDS
  if [ "$REGISTRY" != "0" ]; then
    if timeout 120 "$DOCKER" pull -q "debian:$suite-slim" >/dev/null 2>&1; then
      BASE_REF[$suite]="debian:$suite-slim"
      log "base  debian:$suite-slim  pulled  $((SECONDS - start))s"
      return 0
    fi
    [ "$REGISTRY" = "1" ] && die "REGISTRY=1 but 'docker pull debian:$suite-slim' failed"
  fi
  if [ "$FORCE" != "1" ] && "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    BASE_REF[$suite]="$tag"
    log "base  $tag  cached  0s"
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      log "base  installing debootstrap (apt-get)"
      apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq debootstrap >/dev/null; } ||
        die "could not install debootstrap with apt-get"
    else
      die "debootstrap missing: apt-get install -y debootstrap"
    fi
  fi
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/clinicpacs-rootfs-$suite.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs'" EXIT
  bootstrap+=("$rootfs")
  if [ -n "${SUITE_SCRIPT[$suite]:-}" ] && [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then
    # An empty mirror argument means debootstrap's own default mirror; the script comes after it.
    bootstrap+=("" "${SUITE_SCRIPT[$suite]}")
  fi
  if ! "${bootstrap[@]}" >"$rootfs.log" 2>&1; then
    tail -n 30 "$rootfs.log" >&2
    die "debootstrap $suite failed (full log: $rootfs.log)"
  fi
  rm -f "$rootfs.log"
  # What the official slim images do: no docs/man/locales from later installs, apt cleans after
  # itself, services are not started by package scripts during image builds.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/clinicpacs-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/clinicpacs-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
Acquire::Languages "none";
EOF
  if [ "$suite" = "forky" ]; then
    cat >"$rootfs/etc/apt/apt.conf.d/clinicpacs-valid-until" <<'EOF'
// forky is Debian testing. The mirror's forky Release file was seen past its Valid-Until date
// (2026-12, "invalid since 24d"), and apt then refuses `apt-get update`. Test images only: the
// stable suites (bookworm, trixie) keep the check.
Acquire::Check-Valid-Until "false";
EOF
  fi
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/tmp/* "$rootfs"/var/tmp/*
  : >"$rootfs/etc/machine-id"
  tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import \
    -c "LABEL $LABEL=$BASE_RECIPE-$suite" -c 'CMD ["/bin/bash"]' \
    -c 'ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive' - "$tag" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  BASE_REF[$suite]="$tag"
  log "base  $tag  built  $((SECONDS - start))s"
}

# Hash of a build folder (paths, modes and contents), its arguments and its base image id.
build_hash() {
  local folder="$1" args="$2" base_id="$3"
  {
    printf '%s\n%s\n%s\n' "$BASE_RECIPE" "$args" "$base_id"
    # shellcheck disable=SC2016 # $f is expanded by the inner sh
    (cd "$here/$folder" && find . -type f -print0 | LC_ALL=C sort -z |
      xargs -0 -r sh -c 'for f; do stat -c "%n %a" "$f"; sha256sum "$f"; done' _)
  } | sha256sum | cut -c1-16
}

archive() {
  local ref="$1" hash="$2" file tmp
  [ "${NO_ARCHIVES:-0}" = "1" ] && return 0
  mkdir -p "$CACHE_DIR"
  file="$CACHE_DIR/$(printf '%s' "${ref#*/}" | tr ':/' '__').tar"
  if [ -f "$file" ] && [ "$(cat "$file.hash" 2>/dev/null)" = "$hash" ]; then
    return 0
  fi
  tmp="$(mktemp "$file.XXXXXX")"
  "$DOCKER" save -o "$tmp" "$ref"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$file"
  printf '%s\n' "$hash" >"$file.hash"
  log "      archive $file ($(du -m "$file" | cut -f1) MB)"
}

build_image() {
  local ref="$1" folder="$2" suite="$3" args="$4" want_archive="$5"
  local start=$SECONDS base base_id hash current arg
  local -a build_args=()
  ensure_base "$suite"
  base="${BASE_REF[$suite]}"
  base_id="$("$DOCKER" image inspect -f '{{.Id}}' "$base")"
  hash="$(build_hash "$folder" "$args" "$base_id")"
  current="$("$DOCKER" image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$ref" 2>/dev/null || true)"
  if [ "$FORCE" != "1" ] && [ "$current" = "$hash" ]; then
    log "image $ref  cached  $((SECONDS - start))s"
  else
    build_args=(--build-arg "BASE=$base" --build-arg "SUITE=$suite")
    IFS=',' read -r -a extra <<<"$args"
    for arg in "${extra[@]}"; do
      [ -n "$arg" ] && build_args+=(--build-arg "$arg")
    done
    local logfile context
    logfile="$(mktemp "${TMPDIR:-/tmp}/clinicpacs-build.XXXXXX")"
    context="$(mktemp -d "${TMPDIR:-/tmp}/clinicpacs-context.XXXXXX")"
    cp -a "$here/$folder/." "$context/"
    mkdir -p "$context/wheels"
    if [ -f "$context/requirements.txt" ]; then
      # Python packages from PyPI are fetched here, with the control node's pip (and its trust
      # settings), and installed in the image from these files only (pip --no-index).
      # shellcheck disable=SC2086
      if ! $PIP download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
        -r "$context/requirements.txt" -d "$context/wheels" >"$logfile" 2>&1; then
        cat "$logfile" >&2
        die "pip download for $ref failed ($PIP; requirements in $here/$folder/requirements.txt)"
      fi
    fi
    if ! DOCKER_BUILDKIT=0 "$DOCKER" build --pull=false --rm --force-rm "${build_args[@]}" \
      --label "$LABEL=$hash" -t "$ref" "$context" >"$logfile" 2>&1; then
      tail -n 40 "$logfile" >&2
      rm -rf "$context"
      die "building $ref failed (full log: $logfile)"
    fi
    rm -rf "$context" "$logfile"
    log "image $ref  built  $((SECONDS - start))s"
  fi
  if [ "$want_archive" = "yes" ]; then
    archive "$ref" "$hash"
  fi
}

wanted=("$@")
selected() {
  local folder="$1" w
  [ ${#wanted[@]} -eq 0 ] && return 0
  for w in "${wanted[@]}"; do
    [ "$w" = "$folder" ] && return 0
  done
  return 1
}

known=" bases "
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r _ folder _ <<<"$entry"
  case "$known" in *" $folder "*) ;; *) known="$known$folder " ;; esac
done
for w in "${wanted[@]}"; do
  case "$known" in
    *" $w "*) ;;
    *) die "unknown image '$w': choose from$known" ;;
  esac
done

total=$SECONDS
if [ "${1:-}" = "bases" ]; then
  ensure_base trixie
  ensure_base bookworm
  ensure_base forky
  exit 0
fi
# One chain per Debian suite: its base, then its images in the order above. The chains run side by side
# (debootstrap and apt are mostly waiting for the mirror); a failed chain fails the whole build.
build_suite() {
  local want="$1" entry ref folder suite args want_archive
  for entry in "${IMAGES[@]}"; do
    IFS='|' read -r ref folder suite args want_archive <<<"$entry"
    [ "$suite" = "$want" ] || continue
    selected "$folder" || continue
    build_image "$ref" "$folder" "$suite" "$args" "$want_archive"
  done
}
declare -A chains=()
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r _ folder suite _ <<<"$entry"
  if selected "$folder" && [ -z "${chains[$suite]:-}" ]; then
    build_suite "$suite" &
    chains[$suite]=$!
  fi
done
failed=""
for suite in "${!chains[@]}"; do
  wait "${chains[$suite]}" || failed="$failed $suite"
done
[ -z "$failed" ] || die "the images of$failed failed (see above)"
# Replaced images of ours only take space. Older than 30 minutes: never the intermediate layers of
# a build that another run of this script may have under way.
"$DOCKER" image prune -f --filter "label=$LABEL" --filter "until=30m" >/dev/null 2>&1 || true
log "images: done in $((SECONDS - total))s"
