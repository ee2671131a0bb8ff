#!/usr/bin/env bash
# The whole GPU check in one call (install, tests/test_gpu.py, the GPU benchmark, one summary).
#
#   bash benchmarks/gpu_check.sh OUT_DIR             # on a GPU machine: <= 7 minutes on an H100
#   bash benchmarks/gpu_check.sh --dry-run OUT_DIR   # every stage on the CPU at tiny sizes (CI)
#
# Stage estimates (reasoned, not yet measured on a GPU) / budgets, in seconds (the one source is
# BUDGETS and ESTIMATES in gpu_check.py):
#   preflight 5 / 20 · install 15 / 40 · tests 120 / 140 · benchmark 170 / 200  = 400 s budget
# Uses the machine's own Python (PYTHON, default python3) with its torch and triton; installs this
# checkout with --no-deps into OUT_DIR/site, so nothing on the machine is changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
exec "$PYTHON" "$here/gpu_check.py" --python "$PYTHON" "$@"
