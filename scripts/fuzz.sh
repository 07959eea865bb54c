#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan) into build-fuzz/ and runs each for
# FUZZ_SECONDS (default 60). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_BUILD=1 scripts/setup.sh
if ! command -v clang++ >/dev/null || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev
fi
cmake -S . -B build-fuzz -G Ninja -DPSMDB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz --target message_fuzz
mkdir -p build-fuzz/corpus/message
build-fuzz/bin/message_fuzz build-fuzz/corpus/message -max_total_time="${FUZZ_SECONDS:-60}" \
  -max_len=65536
