"""The backup lifecycle (issue 4): delete-backup (by name, --older-than, confirmation),
cancel-backup, logs with filters, config --set / <key> / --force-resync, and verify, which must
report every planted corruption object by object."""
import json
import os
import time
import unittest

import pymongo
from bson.binary import Binary
from pymongo import WriteConcern

import harness as h
from test_physical import ClusterTestBase


class LifecycleTest(ClusterTestBase):
    PREFIX = "lifecycle-"

    def setUp(self):
        super().setUp()
        self.up(members=1)
        self.pbm("config", "--file", self.cfg, check=True)
        self.client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        self.addCleanup(self.client.close)

    def backup(self, *args):
        out = self.pbm("backup", *args, "--wait", check=True).stdout
        return [t.strip("'.") for t in out.split() if t.strip("'.").startswith("20")
                and t.strip("'.").endswith("Z")][0]

    def names(self):
        return [s["name"] for s in json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"]]

    def objects(self, name):
        out = []
        for d, _, files in os.walk(os.path.join(self.store, name)):
            out += [os.path.relpath(os.path.join(d, f), self.store) for f in files]
        return sorted(out)

    def test_delete_backup(self):
        self.client.t.c.insert_many([{"_id": i} for i in range(100)])
        first = self.backup("--type=physical")
        time.sleep(1.1)  # backup names are seconds
        second = self.backup()  # logical
        self.assertEqual(sorted(self.names()), sorted([first, second]))
        # Not on a terminal and no --yes: refused, nothing deleted.
        p = self.pbm("delete-backup", first)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("pass --yes", p.stderr)
        self.assertTrue(self.objects(first))
        # A running backup is refused (a fresh heartbeat in the cluster's list).
        self.client.admin.pbmBackups.insert_one({"name": "2030-01-01T00:00:00Z", "type": "logical",
                                                 "status": "running", "hb": int(time.time()),
                                                 "start_ts": int(time.time())})
        p = self.pbm("delete-backup", "2030-01-01T00:00:00Z", "--yes")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("still running", p.stderr)
        self.client.admin.pbmBackups.delete_one({"name": "2030-01-01T00:00:00Z"})
        # --older-than the second backup's start: only the first goes.
        p = self.pbm("delete-backup", "--older-than", second, "--yes", "--out", "json", check=True)
        self.assertEqual(json.loads(p.stdout)["deleted"], [first])
        self.assertEqual(self.objects(first), [])
        self.assertFalse(os.path.exists(os.path.join(self.store, first + ".pbm.json")))
        self.assertEqual(self.names(), [second])
        self.pbm("delete-backup", second, "-y", check=True)
        self.assertEqual(self.names(), [])
        self.assertEqual(os.listdir(self.store), [])
        p = self.pbm("delete-backup", second, "-y")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not found", p.stderr)
        p = self.pbm("delete-backup", "--older-than", "yesterday", "-y")
        self.assertIn("neither a time", p.stderr)

    def test_cancel_backup_and_logs(self):
        w = self.client.t.get_collection("big", write_concern=WriteConcern(w="majority"))
        for i in range(0, 160, 8):
            w.insert_many([{"_id": j, "b": Binary(os.urandom(1 << 20))} for j in range(i, i + 8)])
        p = self.pbm("backup", "--type=physical", "--compression=gzip", "--out", "json", check=True)
        name = json.loads(p.stdout)["name"]
        h.wait_until(lambda: json.loads(self.pbm("describe-backup", name, "--out", "json").stdout)
                     ["status"] == "running", 30, interval=0.1, what="the backup to run")
        c = self.pbm("cancel-backup", check=True)
        self.assertIn(name, c.stdout)
        h.wait_until(lambda: json.loads(self.pbm("describe-backup", name, "--out", "json").stdout)
                     ["status"] == "canceled", 60, interval=0.2, what="the backup to be canceled")
        h.wait_until(lambda: not json.loads(self.pbm("status", "--out", "json").stdout)["running"],
                     30, what="the lock released")
        self.assertEqual(self.objects(name), [])
        p = self.pbm("cancel-backup")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no backup is running", p.stderr)
        # Logs: the start and the cancellation, filtered by event, node, severity, opid.
        host = self.cluster.info()["members"][0]["host"]
        entries = json.loads(self.pbm("logs", "-e", "backup/" + name, "-o", "json", check=True).stdout)
        msgs = [e["msg"] for e in entries]
        self.assertTrue(any("started" in m for m in msgs), msgs)
        self.assertTrue(any("canceled" in m for m in msgs), msgs)
        opid = entries[0]["opid"]
        self.assertTrue(all(e["opid"] == opid for e in json.loads(self.pbm(
            "logs", "-i", opid, "-t", "0", "-o", "json", check=True).stdout)))
        self.assertEqual(json.loads(self.pbm("logs", "-s", "E", "-o", "json", check=True).stdout), [])
        self.assertEqual(json.loads(self.pbm("logs", "-n", "rs9", "-o", "json", check=True).stdout), [])
        self.assertTrue(json.loads(self.pbm("logs", "-n", "rs0/" + host, "-o", "json", check=True).stdout))
        text = self.pbm("logs", "-x", "-t", "1", check=True).stdout.strip().splitlines()
        self.assertEqual(len(text), 1)
        self.assertIn("[rs0/%s] [backup/%s]" % (host, opid), text[0])
        self.assertIn("one of D, I, W, E, F", self.pbm("logs", "-s", "X").stderr)

    def test_config_set_get_and_force_resync(self):
        self.pbm("config", "--set", "backup.compression=lz4", "--set", "backup.compressionLevel=5",
                 check=True)
        self.assertEqual(self.pbm("config", "backup.compression", check=True).stdout.strip(), "lz4")
        self.assertEqual(self.pbm("config", "backup.compressionLevel", check=True).stdout.strip(), "5")
        self.assertEqual(self.pbm("config", "storage.type", check=True).stdout.strip(), "filesystem")
        p = self.pbm("config", "--set", "backup.bogus=1")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("unknown key backup.bogus", p.stderr)
        p = self.pbm("config", "--set", "backup.compression=rar")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(self.pbm("config", "backup.compression", check=True).stdout.strip(), "lz4")
        self.assertIn("has no backup.nothing", self.pbm("config", "backup.nothing").stderr)
        self.client.t.c.insert_one({"x": 1})
        a = self.backup()
        # The config's compression is the default of pbm backup, as in PBM.
        desc = json.loads(self.pbm("describe-backup", a, "--out", "json", check=True).stdout)
        self.assertEqual((desc["compression"], desc["compression_level"]), ("lz4", 5))
        time.sleep(1.1)
        b = self.backup("--type=physical")
        # The cluster forgets both; one also vanishes from the storage.
        self.client.admin.pbmBackups.delete_many({})
        os.remove(os.path.join(self.store, a + ".pbm.json"))
        self.assertEqual(self.names(), [])
        out = json.loads(self.pbm("config", "--force-resync", "-o", "json", check=True).stdout)
        self.assertEqual(out["backups"], 1)
        self.assertEqual(self.names(), [b])

    def test_verify_reports_every_corruption(self):
        self.client.t.c.insert_many([{"_id": i, "v": os.urandom(200)} for i in range(3000)])
        for coll in "defg":  # enough objects in a logical backup too
            self.client.u[coll].insert_many([{"_id": i, "c": coll} for i in range(50)])
        for args in (("--type=physical", "--compression=zstd"), ("--type=logical", "--compression=none")):
            name = self.backup(*args)
            ok = self.pbm("verify", name, "-o", "json", check=True)
            self.assertTrue(json.loads(ok.stdout)["ok"])
            objs = [o for o in self.objects(name) if not o.endswith(".pbm")
                    and not o.endswith("namespaces.pbm.json")]
            big = sorted(objs, key=lambda o: -os.path.getsize(os.path.join(self.store, o)))
            flipped, truncated, deleted = big[0:3], big[3], big[4]
            for o in flipped:  # one byte each, in the middle
                path = os.path.join(self.store, o)
                with open(path, "r+b") as f:
                    f.seek(os.path.getsize(path) // 2)
                    byte = f.read(1)
                    f.seek(-1, os.SEEK_CUR)
                    f.write(bytes([byte[0] ^ 0x40]))
            with open(os.path.join(self.store, truncated), "r+b") as f:
                f.truncate(max(0, os.path.getsize(os.path.join(self.store, truncated)) - 3))
            os.remove(os.path.join(self.store, deleted))
            extra = os.path.join(self.store, name, "rs0", "stray.bin")
            with open(extra, "wb") as f:
                f.write(b"x")
            p = self.pbm("verify", name, "-o", "json")
            self.assertNotEqual(p.returncode, 0, args)
            report = json.loads(p.stdout)
            bad = {x["object"] for x in report["problems"]}
            for o in flipped + [truncated, deleted]:
                self.assertIn(o, bad, (args, report))
            self.assertIn("%s/rs0/stray.bin" % name, bad)
            self.assertEqual(len(bad), 6, report)
            text = self.pbm("verify", name).stdout
            self.assertIn("6 problem(s)", text)
            self.assertIn(deleted + ": missing", text)


if __name__ == "__main__":
    unittest.main()
