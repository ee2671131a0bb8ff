#!/usr/bin/env bash
# Stands in for `make` in the smoke test of benchmarks/test_suite_time.py: `install` does
# nothing, `test` prints the stage lines scripts/stage.sh would print.
[ "${@: -1}" = test ] || exit 0
for stage in lint unit execute book outputs browser; do
    scripts/stage.sh "$stage" true
done
