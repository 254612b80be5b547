#!/usr/bin/env bash
# Install the collections listed in requirements.yml into $1 (default .collections).
# With Ansible Galaxy reachable, this is `ansible-galaxy collection install -r requirements.yml`.
# Without it (air-gapped control nodes, our CI), the same collections are taken out of the
# `ansible` package on PyPI, which bundles them, and installed offline.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$here/.collections}"
venv="${VENV:-$here/.venv}"
galaxy="$venv/bin/ansible-galaxy"
ansible_bundle="${ANSIBLE_BUNDLE_VERSION:-12.3.0}"
mkdir -p "$dest/ansible_collections/clinicpacs"
# The collection under test, importable as ansible_collections.clinicpacs.orthanc.
ln -sfn "$here" "$dest/ansible_collections/clinicpacs/orthanc"

wanted=$("$venv/bin/python" - "$here/requirements.yml" <<'PY'
import sys, yaml
for c in yaml.safe_load(open(sys.argv[1]))["collections"]:
    print(c["name"])
PY
)
missing=""
for c in $wanted; do
  [ -f "$dest/ansible_collections/${c/.//}/MANIFEST.json" ] || missing="$missing $c"
done
if [ -z "$missing" ]; then
  echo "collections: all present in $dest"
  exit 0
fi
echo "collections: installing$missing"
if [ "${GALAXY:-auto}" != "offline" ] && \
   timeout 120 "$galaxy" collection install -r "$here/requirements.yml" -p "$dest" >/tmp/galaxy-install.log 2>&1; then
  echo "collections: installed from Galaxy"
  exit 0
fi
echo "collections: Galaxy unreachable, installing offline from the PyPI package ansible==$ansible_bundle"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/pip" download --quiet --no-deps -d "$work/wheel" "ansible==$ansible_bundle"
"$venv/bin/python" -m zipfile -e "$work"/wheel/ansible-*.whl "$work/unzipped"
for c in $missing; do
  ns="${c%%.*}"; name="${c#*.}"
  src="$work/unzipped/ansible_collections/$ns/$name"
  [ -f "$src/MANIFEST.json" ] || { echo "collections: $c is not in ansible==$ansible_bundle" >&2; exit 1; }
  # The wheel holds installed collections (MANIFEST.json and all): a copy is an installation.
  rm -rf "${dest:?}/ansible_collections/$ns/$name"
  mkdir -p "$dest/ansible_collections/$ns"
  cp -a "$src" "$dest/ansible_collections/$ns/$name"
  echo "collections: $c $("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' "$src/MANIFEST.json")"
done
