#!/usr/bin/env bash
# /etc/orthanc/orthanc.json of the jodogne/orthanc-plugins stand-in: Orthanc's own sample configuration
# with the settings upstream's image changes (jodogne/OrthancDocker, orthanc/create-config.sh, read for
# the values only): name, storage (and so the index) in /var/lib/orthanc/db, plugins from /usr/share/orthanc/plugins
# and /usr/local/share/orthanc/plugins, remote access and authentication on with the user orthanc:orthanc
# (Orthanc 1.13.0 refuses to start without a registered user), the system CA bundle for HTTPS, and
# Orthanc Explorer 1 kept as the default UI. /etc/orthanc/advanced.json too when this Orthanc can write it.
set -euo pipefail

config=/etc/orthanc/orthanc.json
Orthanc --config="$config"
usage="$(Orthanc --help)"
if grep -q -- '--advanced-config' <<<"$usage"; then
  Orthanc --advanced-config=/etc/orthanc/advanced.json
fi

fail() {
  echo "create-config.sh: $*" >&2
  exit 1
}

# A setting the sample defines (outside comments) on one line: its value replaced, the comma kept.
set_value() {
  local key="$1" value="$2" count
  count="$(grep -cE "^[[:space:]]*\"$key\"[[:space:]]*:" "$config" || true)"
  [ "$count" = "1" ] || fail "expected one \"$key\" line in the sample, found $count"
  sed -E -i "s#^([[:space:]]*\"$key\"[[:space:]]*:[[:space:]]*)[^,]*(,?)[[:space:]]*\$#\\1$value\\2#" "$config"
}

set_value Name '"Orthanc inside Docker"'
set_value StorageDirectory '"/var/lib/orthanc/db"'
# "IndexDirectory" is only a comment in 1.13.0's sample: unset, it is StorageDirectory's value.
set_value RemoteAccessAllowed 'true'
set_value HttpsCACertificates '"/etc/ssl/certs/ca-certificates.crt"'

# Plugins: both directories first in the list.
grep -qE '^[[:space:]]*"Plugins"[[:space:]]*:[[:space:]]*\[' "$config" || fail "no \"Plugins\" list in the sample"
sed -E -i 's#^([[:space:]]*"Plugins"[[:space:]]*:[[:space:]]*\[)#\1 "/usr/share/orthanc/plugins", "/usr/local/share/orthanc/plugins"#' "$config"

# Settings the sample has only in comments go after the last one, before the closing brace.
[ "$(tail -n 1 "$config")" = "}" ] || fail "the sample does not end with a closing brace"
sed -i '$d' "$config"
cat >>"$config" <<'JSON'
  ,
  // Added for the image: authentication on, the default user, Orthanc Explorer 1 as the default UI.
  "AuthenticationEnabled" : true,
  "RegisteredUsers" : {
    "orthanc" : "orthanc"
  },
  "OrthancExplorer2" : {
    "IsDefaultOrthancUI" : false
  }
}
JSON
