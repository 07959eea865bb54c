#!/bin/sh
# Init container of every mongod pod: installs the entrypoint on the data volume.
# While a physical restore owns the volume (its state file is there) the entrypoint is left to
# the restore, which puts it back itself when it ends; installing it here would let mongod start
# on half-restored data if the pod were recreated mid-restore.
set -eu
dbpath=/data/db
if [ -e "$dbpath/.pbm-restore.json" ]; then
  echo "install-entrypoint: a physical restore is in progress on $dbpath; entrypoint left to it"
  exit 0
fi
install -m 0755 /opt/psmdb/ps-entry.sh "$dbpath/.ps-entry.sh.new"
mv -f "$dbpath/.ps-entry.sh.new" "$dbpath/ps-entry.sh"
echo "install-entrypoint: $dbpath/ps-entry.sh installed"
