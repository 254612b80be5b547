#!/usr/bin/env bash
# Entrypoint of clinicpacs/postgres, written for this project. It honours the interface of the
# official postgres image:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, POSTGRES_DB
#   (default: the user name), PGDATA, POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default
#   scram-sha-256), and *.sh / *.sql / *.sql.gz in /docker-entrypoint-initdb.d run once, on first init.
# initdb runs only when PGDATA holds no cluster. The server runs as postgres (uid 999) in the foreground,
# exec'd, so that `docker stop` reaches it.
set -Eeuo pipefail

err() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
info() { printf 'docker-entrypoint: %s\n' "$*"; }

# VAR or VAR_FILE (a secret file), never both.
file_env() {
  local var="$1" file_var="${1}_FILE" default="${2:-}" value
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    err "both $var and $file_var are set; set only one of them"
    exit 1
  fi
  value="$default"
  if [ -n "${!var:-}" ]; then
    value="${!var}"
  elif [ -n "${!file_var:-}" ]; then
    if [ ! -r "${!file_var}" ]; then
      err "$file_var='${!file_var}' is not a readable file"
      exit 1
    fi
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

run_as_postgres() {
  # Prepare directories as root, then run this script again as postgres.
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" || true
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || true
  mkdir -p /var/run/postgresql
  chown postgres:postgres /var/run/postgresql
  chmod 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
}

psql_init() {
  psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER" "$@"
}

init_cluster() {
  file_env POSTGRES_PASSWORD
  local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" pwfile f
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != "trust" ]; then
    err "the database is not initialised and no superuser password is set."
    err "Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty password."
    err "POSTGRES_HOST_AUTH_METHOD=trust would allow connections without one (never do that outside tests)."
    exit 1
  fi
  info "initialising a new cluster in $PGDATA for user '$POSTGRES_USER'"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
    ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  printf '\n# clinicpacs: any address, password checked\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  printf "\n# clinicpacs\nlisten_addresses = '*'\npassword_encryption = scram-sha-256\n" \
    >>"$PGDATA/postgresql.conf"

  # A temporary server on the unix socket only, for the database and the init scripts.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w -t 60 start >/dev/null
  if [ "$POSTGRES_DB" != "postgres" ]; then
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
  fi
  export PGPASSWORD="$POSTGRES_PASSWORD"
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    # shellcheck disable=SC1090 # the scripts are the user's, sourced like the official image does
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then info "running $f"; "$f"; else info "sourcing $f"; . "$f"; fi ;;
      *.sql) info "running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" >/dev/null ;;
      *.sql.gz) info "running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" >/dev/null ;;
      *) info "ignoring $f" ;;
    esac
  done
  unset PGPASSWORD
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  info "init done"
}

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = 'postgres' ]; then
  export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
  if [ "$(id -u)" = '0' ]; then
    run_as_postgres "$@"
  fi
  export POSTGRES_USER="${POSTGRES_USER:-postgres}"
  export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_cluster
  fi
  unset POSTGRES_PASSWORD
  exec "$@"
fi

exec "$@"
