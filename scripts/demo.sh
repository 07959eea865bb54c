#!/usr/bin/env bash
# The main job: a 3-member wtmongod replica set with sample data, a copy taken through
# $backupCursor while writes continue, restored into a new node, and the data checked.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec /usr/bin/python3 scripts/demo_replset.py "$@"
