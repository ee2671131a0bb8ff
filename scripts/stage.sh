#!/usr/bin/env bash
# One stage of `make test`: scripts/stage.sh NAME COMMAND [ARGS...]
#
# The unit tests and the book run side by side (two cores, two stages), so each line a
# stage prints is prefixed with its name, and its end is one line with its status and wall
# time: "== stage unit passed in 312.4 s". benchmarks/test_suite_time.py records those lines.
set -uo pipefail
name=$1
shift
start=${EPOCHREALTIME/,/.}
"$@" 2>&1 | sed -u "s/^/[$name] /"
status=$?
verdict=$([ "$status" -eq 0 ] && echo passed || echo "FAILED (exit $status)")
awk -v name="$name" -v verdict="$verdict" -v start="$start" -v end="${EPOCHREALTIME/,/.}" \
    'BEGIN { printf "== stage %s %s in %.1f s\n", name, verdict, end - start }'
exit "$status"
