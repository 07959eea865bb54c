#!/usr/bin/env bash
# Two pbm-agent builds and `cp -r && sync`, interleaved in the same window, on the dbpath a
# `bench_physical.py --keep` run left behind: an uncompressed physical backup with each agent,
# then the copy, ROUNDS times, the page cache dropped before each (needs root).
#
#   bench/compare_agents.sh WORKDIR AGENT_A AGENT_B [ROUNDS]
#
# WORKDIR is the kept directory (it holds dc/ and store/); build the other agent from another
# checkout (cmake --build B --target pbm-agent). On this machine the disk's speed drifts by 2x
# within an hour, so only figures of one window compare. Prints one line per timed run.
set -euo pipefail
W=${1:?WORKDIR}; A=${2:?AGENT_A}; B=${3:?AGENT_B}; ROUNDS=${4:-4}
BIN=$(cd "$(dirname "$0")/../build/bin" && pwd)
D=$W/dc
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
up_with() {
  "$BIN/devcluster" down --dir "$D" > /dev/null 2>&1 || true
  "$BIN/devcluster" up --dir "$D" --members 1 --agent "$1" --detach -- --syncdelay 10 > /dev/null
  sleep 4  # the agent's first heartbeat
}
trap '"$BIN/devcluster" down --dir "$D" > /dev/null 2>&1 || true' EXIT
for r in $(seq "$ROUNDS"); do
  for agent in "$A" "$B"; do
    up_with "$agent"
    export PBM_MONGODB_URI
    PBM_MONGODB_URI=$(/usr/bin/python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['uri'])" "$D/cluster.json")
    cold
    s=$(now)
    "$BIN/pbm" backup --type=physical --compression=none --wait > /dev/null
    e=$(now)
    echo "round $r agent $agent: $(echo "$e - $s" | bc) s"
    rm -rf "$W"/store/20*
  done
  cold
  s=$(now)
  cp -r "$D/rs0-0/data" "$W/cpcopy" && sync
  e=$(now)
  echo "round $r cp -r && sync: $(echo "$e - $s" | bc) s"
  rm -rf "$W/cpcopy"
done
