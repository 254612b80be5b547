#!/usr/bin/env bash
# make test: every quality gate, in as few minutes as two cores allow, with the time of each step.
#
#   1. venv + collections
#   2. at once: the images (mostly downloads and disk) | lint, sanity, unit (CPU), which go on beside step 3
#   3. once the images are there, at once, in lanes: integration tests, the mutation table
#      (tests/mutations/run.py), every benchmark at its smallest size (bench/run.py --quick, results under
#      .cache/test-logs/bench-results, not bench/results) and the Molecule scenarios, each lane in sequence
#      (TEST_LANES, default 2; 1 runs everything one after the other)
#   4. a table of every step's duration; the first failure fails the run (the other lanes finish first)
#
# Steps that run side by side write to logs under .cache/test-logs/ and each log is printed whole when its
# step ends, so the output stays readable.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
MAKE="${MAKE:-make}"
LANES="${TEST_LANES:-2}"
LOGS="$root/.cache/test-logs"
TIMES="$LOGS/times.tsv"
# The scenarios: the Makefile's MOLECULE_SCENARIOS (make test MOLECULE_SCENARIOS="default fleet" limits them).
SCENARIOS="${MOLECULE_SCENARIOS:?set by the Makefile: run make test}"

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$TIMES"
run_start=$SECONDS

say() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# step NAME CMD...: run CMD in the foreground, record its duration.
step() {
  local name="$1" start=$SECONDS rc=0
  shift
  say "$name"
  "$@" || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$((SECONDS - start))" "$rc" >>"$TIMES"
  say "$name: $( ((rc == 0)) && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - start)) s"
  return "$rc"
}

# quiet_step NAME CMD...: the same with the output in a log file, printed whole at the end of the step.
quiet_step() {
  local name="$1" start=$SECONDS rc=0 log="$LOGS/${1//[^a-zA-Z0-9_.-]/_}.log"
  shift
  "$@" >"$log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$((SECONDS - start))" "$rc" >>"$TIMES"
  {
    say "$name (ran alongside other steps; its whole output follows)"
    cat "$log"
    say "$name: $( ((rc == 0)) && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - start)) s"
  } | flock "$LOGS/.print" cat
  return "$rc"
}

summary() {
  local rc=$?
  [ -f "$TIMES" ] || return
  printf '%s\t%s\t%s\n' "make test (wall clock)" "$((SECONDS - run_start))" "$rc" >>"$TIMES"
  printf '\n==> Step times in seconds (%s; steps side by side overlap)\n' "$TIMES"
  awk -F'\t' '{ printf "  %-28s %6d s  %s\n", $1, $2, ($3 == 0 ? "passed" : "FAILED") }' "$TIMES"
}
trap summary EXIT

step "venv + collections" "$MAKE" --no-print-directory collections

# 2. The images, with the static gates beside them. With lanes, the lanes start as soon as the images are
#    there and the static gates go on beside them (they only need CPU, and the lanes' first minutes are mostly
#    containers starting); with one lane, everything waits for the static gates, which fail fast.
quiet_step "images" "$MAKE" --no-print-directory images &
images=$!
static_gates() {
  local rc=0 gate
  for gate in lint sanity unit; do
    if ((LANES == 1)); then
      step "$gate" "$MAKE" --no-print-directory "$gate" || rc=1
    else
      quiet_step "$gate" "$MAKE" --no-print-directory "$gate" || rc=1
    fi
  done
  return "$rc"
}
static=""
if ((LANES == 1)); then
  static_gates || {
    wait "$images" || true
    exit 1
  }
else
  static_gates &
  static=$!
fi
if ! wait "$images"; then
  [ -z "$static" ] || wait "$static" || true
  exit 1
fi

# 3. Integration, the mutation table, the benchmarks and Molecule in lanes.
declare -a lane_jobs=()
for ((i = 0; i < LANES; i++)); do lane_jobs[i]=""; done
# Each job to the lane with the least queued, longest first, by the minutes a job took in a lane on the
# 2-core machine (the fresh-clone run of 8fe31a5, 2026-12-02 17:35 UTC; integration with two workers since); a
# scenario not listed counts 8.
declare -a lane_cost=()
cost() {
  case "${1#molecule:}" in
    fleet) echo 24 ;; layouts) echo 22 ;; backup_restore) echo 9 ;; upgrade | security) echo 8 ;;
    default) echo 7 ;; integration) echo 6 ;; bench) echo 5 ;; mutations) echo 2 ;; smoke) echo 1 ;; *) echo 8 ;;
  esac
}
for ((i = 0; i < LANES; i++)); do lane_cost[i]=0; done
assign() {
  local job="$1" best=0 i
  for ((i = 1; i < LANES; i++)); do
    if ((lane_cost[i] < lane_cost[best])); then best=$i; fi
  done
  lane_jobs[best]="${lane_jobs[best]} $job"
  lane_cost[best]=$((lane_cost[best] + $(cost "$job")))
}
jobs_by_cost=$(for job in integration mutations bench $(printf 'molecule:%s ' $SCENARIOS); do
  printf '%s %s\n' "$(cost "$job")" "$job"
done | sort -rn -k1,1 -s | cut -d' ' -f2)
for job in $jobs_by_cost; do assign "$job"; done

run_job() {
  case "$1" in
    integration) "$MAKE" --no-print-directory integration-only ;;
    mutations) "$MAKE" --no-print-directory mutations-only ;;
    bench) BENCH_RESULTS="$LOGS/bench-results" "$MAKE" --no-print-directory bench-quick-only ;;
    molecule:*) "$MAKE" --no-print-directory molecule-only MOLECULE_SCENARIOS="${1#molecule:}" ;;
  esac
}

lane() {
  local job rc=0
  for job in $1; do
    if ((LANES == 1)); then
      step "$job" run_job "$job" || return 1
    else
      quiet_step "$job" run_job "$job" || rc=1
      ((rc == 0)) || return 1
    fi
  done
}

say "integration, mutations, bench and Molecule in $LANES lane(s):$(for ((i = 0; i < LANES; i++)); do printf ' [%s ]' "${lane_jobs[i]}"; done)"
declare -a pids=()
for ((i = 0; i < LANES; i++)); do
  lane "${lane_jobs[i]}" &
  pids[i]=$!
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ -z "$static" ] || wait "$static" || failed=1
exit "$failed"
