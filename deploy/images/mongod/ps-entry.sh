#!/bin/sh
# The mongod container's entrypoint. The init container installs it on the data volume as
# /data/db/ps-entry.sh and the container's command is that file, so that a physical restore can
# keep mongod down by hiding it (ADR-physical-backup, option A): while it is hidden the
# container's restarts fail, and the restore runs its own temporary mongod meanwhile.
set -e
exec mongod "$@"
