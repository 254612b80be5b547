#!/usr/bin/env bash
# Entrypoint of the orthancteam/orthanc stand-in (written here from the behaviour of upstream's
# docker/orthanc/docker-entrypoint.sh in orthanc-server/orthanc-builder; no upstream code).
#
#   1. /etc/hostid: FORCE_HOST_ID is written to it; otherwise, unless GENERATE_HOST_ID_IF_MISSING is
#      set to something other than "true", a random one replaces a missing file or "not-generated"
#      (DCMTK's gethostid() may otherwise wait on DNS when Orthanc makes UIDs).
#   2. /startup/generate_config.py merges /etc/orthanc/*.json, /run/secrets and the environment into
#      /tmp/orthanc.json and links the enabled plugins into /usr/share/orthanc/plugins (or
#      /run/orthanc/plugins when that directory exists).
#   3. exec Orthanc with the one argument it was given (the image's CMD is /tmp/orthanc.json).
# Like upstream it runs under errexit: the first failing step ends the container.
set -o errexit

if [[ $# -ne 1 ]]; then
  echo "FATAL ERROR: $0 takes exactly one argument, the configuration file or directory" >&2
  exit 2
fi

if [[ -n $FORCE_HOST_ID ]]; then
  echo "hostid forced to $FORCE_HOST_ID"
  echo "$FORCE_HOST_ID" >/etc/hostid
elif [[ -z $GENERATE_HOST_ID_IF_MISSING || $GENERATE_HOST_ID_IF_MISSING == true ]]; then
  if [[ ! -f /etc/hostid || $(</etc/hostid) == not-generated ]]; then
    new_id=$(printf '%x' "$(shuf -n 1 -i 268435456-4294967295)")
    echo "writing a random hostid to /etc/hostid: $new_id"
    echo "$new_id" >/etc/hostid
  fi
fi

cd /startup
python3 generate_config.py

options=()
if [[ $TRACE_ENABLED == true ]]; then
  options+=(--trace)
elif [[ $VERBOSE_ENABLED == true ]]; then
  options+=(--verbose)
fi
if [[ -n $LOGDIR ]]; then
  options+=("--logdir=$LOGDIR")
elif [[ -n $LOGFILE ]]; then
  options+=("--logfile=$LOGFILE")
fi
if [[ $LOGS_THREADNAMES_IN_CONTEXT == true ]]; then
  options+=(--logs-threadnames-in-context)
fi
if [[ $NO_JOBS == true ]]; then
  options+=(--no-jobs)
fi

if [[ -n $BEFORE_ORTHANC_STARTUP_SCRIPT ]]; then
  echo "running $BEFORE_ORTHANC_STARTUP_SCRIPT before Orthanc"
  $BEFORE_ORTHANC_STARTUP_SCRIPT
fi

echo "starting: Orthanc ${options[*]:+${options[*]} }$1" >&2
exec Orthanc "${options[@]}" "$1"
