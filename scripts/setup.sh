#!/usr/bin/env bash
# Installs every Debian package the project needs (idempotent) and builds into build/.
# Usage: scripts/setup.sh                  (install + configure + build)
#        SKIP_INSTALL=1 scripts/setup.sh   (build only)
#        SKIP_BUILD=1 scripts/setup.sh     (install only)
#        SKIP_TEST_DEPS=1 scripts/setup.sh (no npm test packages; image builds)
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libwiredtiger-dev wiredtiger libmongoc-dev libbson-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libcurl4-openssl-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev libdeflate-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-pymongo python3-kubernetes zstd lz4 gzip
  iproute2 openssl util-linux
)

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# The S3 tests' npm packages (s3rver, the AWS SDK, aws4) from tests/s3/package-lock.json.
# Node comes from Debian (nodejs, npm) unless a node with npm is already on PATH. Skipped when
# node_modules already matches the lock file.
if [[ "${SKIP_INSTALL:-0}" != 1 && "${SKIP_TEST_DEPS:-0}" != 1 ]]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup: installing nodejs npm"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  lock_sum=$(sha256sum tests/s3/package-lock.json | cut -d' ' -f1)
  if [[ "$(cat tests/s3/node_modules/.pbm-lock-sha256 2>/dev/null)" != "$lock_sum" ]]; then
    echo "setup: npm ci in tests/s3"
    (cd tests/s3 && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > tests/s3/node_modules/.pbm-lock-sha256
  fi
fi

[[ "${SKIP_BUILD:-0}" == 1 ]] && exit 0
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
