#!/usr/bin/env bash
# The main job: a 3-member replica set of pods (mongod + pbm-agent), sample data, a physical
# backup with pbm during writes, a change to the data, a physical restore, and a check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec /usr/bin/python3 scripts/demo_physical.py "$@"
