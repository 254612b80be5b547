#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection. ansible-test needs the collection to sit at
# .../ansible_collections/clinicpacs/orthanc, so we copy the files git knows about (tracked and
# untracked-but-not-ignored) into .build/ and run it there, with Python 3.11 and no containers.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$here/.venv}"
dest="$here/.build/ansible_collections/clinicpacs/orthanc"
rm -rf "$dest"
mkdir -p "$dest"
(cd "$here" && git ls-files -z --cached --others --exclude-standard | \
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | \
  tar --null -T - -cf -) | tar -C "$dest" -xf -
# ansible-test bootstraps pip in its sanity virtualenvs with a script it downloads; offline we put
# an equivalent (tools/ansible-test-get-pip.py) where it caches that script.
pip_version=$("$venv/bin/python" - <<'PY'
import pathlib, re, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([\d.]+)'", src).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cp "$here/tools/ansible-test-get-pip.py" "$cache"
cd "$dest"
# ansible-test lists the files of a collection through git when it is a checkout: make it one.
git init -q . && git add -A >/dev/null
"$venv/bin/ansible-test" sanity --python 3.11 --local --color no "$@"
