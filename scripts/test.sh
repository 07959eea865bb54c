#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, builds, runs every test
# (GoogleTest unit tests and the Python end-to-end tests) through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export TEST_TMPDIR="${TEST_TMPDIR:-$(mktemp -d /tmp/psmdb-tests.XXXXXX)}"
# libmongoc keeps counters in /dev/shm/mongoc-<pid>; a file left by a process a test killed makes
# a later process with the same pid warn on stderr, which tests of one-line errors would see.
# (It reads this at load time, so it must be in the environment, not set by our code.)
export MONGOC_DISABLE_SHM=1
ctest --test-dir build --output-on-failure -j"${TEST_JOBS:-2}" --timeout 900 "$@"
