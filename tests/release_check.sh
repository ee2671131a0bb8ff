#!/usr/bin/env bash
# Release check: try the book as a new user would. Clones this repository's committed
# HEAD into a temporary directory and runs the README's two commands exactly as written,
# then the portability check of the checked outputs.
#
#   bash tests/release_check.sh            # keeps the clone on failure, prints where it is
#
# It takes as long as `make book` plus `make test` from nothing (~40-60 minutes on a
# 2-core CPU), so CI does not run it; run it before a release. Uncommitted changes are
# not included — commit first.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t flashtrade-release-XXXXXX)"
echo "== cloning $repo (HEAD $(git -C "$repo" rev-parse --short HEAD)) into $work/book"
git clone --quiet "$repo" "$work/book"
cd "$work/book"

# The two commands, as the README states them:
for cmd in "make book" "make test"; do
    grep -qF "$cmd" README.md || { echo "README.md no longer mentions '$cmd'"; exit 1; }
    echo "== $cmd"
    start=$SECONDS
    $cmd
    echo "== $cmd passed in $((SECONDS - start)) s"
done
test -f _build/html/index.html
echo "== make portability (checked outputs with ATEN_CPU_CAPABILITY=default, one thread)"
start=$SECONDS
make portability
echo "== make portability passed in $((SECONDS - start)) s"
echo "== the slow end-to-end checks: chapters 2-4 released into a clean virtualenv and run top to bottom, grading timed"
.venv/bin/python -m pytest -p no:cacheprovider -m release tests
echo "== release check passed; the fresh clone is in $work/book (delete it when done)"
