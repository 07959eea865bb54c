#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, builds, runs every test
# (GoogleTest unit tests and the Python end-to-end tests) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export TEST_TMPDIR="${TEST_TMPDIR:-$(mktemp -d /tmp/psmdb-tests.XXXXXX)}"
ctest --test-dir build --output-on-failure -j"${TEST_JOBS:-2}" --timeout 900 "$@"
