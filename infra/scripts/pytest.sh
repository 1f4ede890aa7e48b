#!/usr/bin/env bash
# Runs the whole pytest suite once. pytest's exit code 5 ("no tests ran") means the suite
# collected nothing: that is a broken suite, reported as such, never a silent pass.
set -uo pipefail
uv run --frozen pytest "$@"
code=$?
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: the suite ran nothing, which is a failure" >&2
  exit 1
fi
exit "$code"
