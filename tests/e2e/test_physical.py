"""Physical backup and restore of a replica set, end to end, as a user does it: devcluster pods
(mongod whose command is <dbpath>/ps-entry.sh, a pbm-agent beside it), the pbm CLI, a writer."""
import json
import os
import subprocess
import threading
import time
import unittest

import pymongo
from bson.timestamp import Timestamp
from pymongo import WriteConcern

import harness as h
from test_devcluster import Cluster

PBM = os.path.join(h.BIN, "pbm")


class Writer:
    """Inserts sequential _id with w:"majority"; `acked` is the count acknowledged so far."""

    def __init__(self, uri):
        self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000)
        self.coll = self.client.test.get_collection("w", write_concern=WriteConcern(w="majority"))
        self.acked = 0
        self.stop = False
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            while not self.stop:
                self.coll.insert_one({"_id": self.acked, "pad": "p" * 300})
                self.acked += 1
        except Exception as e:
            self.error = e


class ClusterTestBase(unittest.TestCase):
    """A scratch directory with a devcluster dir, a filesystem storage and its pbm.yaml."""
    PREFIX = "physical-"

    def setUp(self):
        self.tmp = h.TempDir(prefix=self.PREFIX)
        self.cluster = Cluster(os.path.join(self.tmp.path, "dc"))
        self.store = os.path.join(self.tmp.path, "store")
        self.cfg = os.path.join(self.tmp.path, "pbm.yaml")
        with open(self.cfg, "w") as f:
            f.write("storage:\n  type: filesystem\n  filesystem:\n    path: %s\n" % self.store)

    def tearDown(self):
        self.cluster.cleanup()
        self.tmp.__exit__(None, None, None)

    def up(self, *extra, members=3, mongod_args=()):
        p = self.cluster.run("up", "--dir", self.cluster.dir, "--members", str(members), "--mongod",
                             h.WTMONGOD, "--backoff-initial-ms", "200", "--backoff-max-ms", "1000",
                             "--detach", *extra, "--", "--syncdelay", "2", *mongod_args)
        self.assertEqual(p.returncode, 0, p.stderr + self.cluster.log())
        self.uri = self.cluster.info()["uri"]
        # Every agent reports in before anything is asked of them.
        h.wait_until(lambda: len(json.loads(self.pbm("status", "--out", "json").stdout)["cluster"]) == members,
                     60, what="%d agents in pbm status" % members)

    def pbm(self, *args, check=False, timeout=600):
        p = subprocess.run([PBM, *args], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PBM_MONGODB_URI=self.uri))
        if check and p.returncode != 0:
            raise AssertionError("pbm %s failed (%d): %s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p


class PhysicalTest(ClusterTestBase):

    def member_hosts(self):
        return [m["host"] for m in self.cluster.info()["members"]]

    def test_backup_during_writes_then_restore(self):
        self.up()
        self.pbm("config", "--file", self.cfg, check=True)
        w = Writer(self.uri)
        w.thread.start()
        h.wait_until(lambda: w.acked >= 100, 60, what="writes")
        before = w.acked
        p = self.pbm("backup", "--type=physical", "--compression=zstd", "--wait", check=True)
        after = w.acked
        w.stop = True
        w.thread.join(30)
        self.assertIsNone(w.error)
        lst = json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"]
        self.assertEqual(len(lst), 1)
        name = lst[0]["name"]
        self.assertIn(name, p.stdout)
        self.assertEqual(lst[0]["status"], "done")
        self.assertEqual(lst[0]["type"], "physical")
        desc = json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)
        point = desc["last_write_ts"]
        rs = desc["replsets"][0]
        self.assertIn(rs["node"], self.member_hosts())
        self.assertNotIn("progress", desc)  # only while running
        self.assertEqual(rs["progress_bytes"], rs["progress_total"])
        self.assertEqual(rs["progress_bytes"], rs["size_uncompressed"])
        self.assertEqual(rs["mongod_opts"]["block_compressor"], "snappy")
        self.assertTrue(os.path.exists(os.path.join(self.store, name + ".pbm.json")))
        # Change the data after the backup.
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.test.w.insert_many([{"_id": -i} for i in range(1, 50)])
        c.test.extra.insert_one({"x": 1})
        restore_started = time.time()
        r = self.pbm("restore", name, "--wait", timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.cluster.log())
        self.cluster.wait_healthy(120)
        # Every member holds exactly 0..K, K within what was acknowledged around the backup.
        counts = []
        for m in self.cluster.info()["members"]:
            mc = pymongo.MongoClient(m["host"], directConnection=True,
                                     readPreference="secondaryPreferred", serverSelectionTimeoutMS=20000)
            ids = [d["_id"] for d in mc.test.w.find({}, {"_id": 1}).sort("_id", 1)]
            self.assertEqual(ids, list(range(len(ids))), "a gap or post-backup writes on " + m["host"])
            self.assertNotIn("extra", mc.test.list_collection_names())
            counts.append(len(ids))
            # The consistent point of describe-backup: the oplog holds writes up to it and none after.
            last = mc.local.oplog.rs.find_one({"ns": "test.w", "op": "i"}, sort=[("$natural", -1)])
            self.assertLessEqual((last["ts"].time, last["ts"].inc), (point["T"], point["I"]))
            self.assertIsNotNone(mc.local.oplog.rs.find_one(
                {"ts": Timestamp(point["T"], point["I"])}))
            self.assertTrue(os.path.exists(os.path.join(m["dbpath"], "ps-entry.sh")))
        self.assertEqual(len(set(counts)), 1, counts)
        self.assertGreaterEqual(counts[0], before)
        self.assertLessEqual(counts[0], after)
        # While the data was replaced, restarts of the mongod containers failed: the entrypoint
        # was hidden (the supervisor's log), then came back.
        log = self.cluster.log()
        hidden = [l for l in log.splitlines() if "container mongod: start failed: exec" in l
                  and "No such file or directory" in l]
        self.assertGreaterEqual(len({l.split(" pod ")[1].split()[0] for l in hidden}), 3, log[-3000:])
        d = json.loads(self.pbm("describe-restore", self.restore_name(r.stdout), "-c", self.cfg,
                                "--out", "json", check=True).stdout)
        self.assertEqual(d["status"], "done")
        self.assertEqual(sorted(n["host"] for n in d["nodes"]), sorted(self.member_hosts()))
        # Each member's heartbeat carried its download's progress: all of the backup's files.
        total = desc["replsets"][0]["size_uncompressed"]
        for n in d["nodes"]:
            self.assertEqual(n["download"], {"bytes_done": total, "bytes_total": total}, n)
        # Every member downloaded the whole backup (phase "staged") before any mongod stopped
        # (phase "down"): the downtime excludes the download.
        rdir = os.path.join(self.store, ".pbm.restore", self.restore_name(r.stdout))
        phase_mtime = {}
        for root, _, files in os.walk(rdir):
            for fn in files:
                for ph in ("staged", "down"):
                    if fn.endswith("." + ph):
                        phase_mtime.setdefault(ph, []).append(os.stat(os.path.join(root, fn)).st_mtime_ns)
        self.assertEqual(len(phase_mtime.get("staged", [])), 3, phase_mtime)
        self.assertEqual(len(phase_mtime.get("down", [])), 3, phase_mtime)
        self.assertLess(max(phase_mtime["staged"]), min(phase_mtime["down"]))
        # The cluster works again, and the backup list was resynced from the storage.
        c.test.after.insert_one({"ok": 1})
        self.assertEqual(json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"][0]["status"], "done")
        # The restored data held the backup as "running" (its list of the backup's time): no
        # agent took that for a dead backup.
        self.assertEqual(c.admin.pbmLog.count_documents({"msg": {"$regex": "no heartbeat"}}), 0)
        # mongod came back on the restored data without replaying its oplog: the restore left
        # an unstable checkpoint and a minvalid document without appliedThrough, as PBM does.
        for m in self.cluster.info()["members"]:
            with open(os.path.join(m["pod_dir"], "logs", "mongod.log")) as f:
                starts = f.read().split('"MongoDB starting"')
            self.assertIn("appliedThrough is null", starts[-1], m["host"])

    def test_backup_priority(self):
        self.up()
        self.pbm("config", "--file", self.cfg, check=True)
        primary = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000).admin.command("hello")["primary"]

        def backup_node():
            out = self.pbm("backup", "--type=physical", "--compression=lz4", "--wait", check=True).stdout
            name = [t for t in out.replace("'", " ").split() if t.startswith("20") and t.endswith("Z")][0]
            desc = json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)
            return desc["replsets"][0]["node"]

        # By default a secondary makes the backup (PBM: hidden 2.0, secondary 1.0, primary 0.5).
        self.assertNotEqual(backup_node(), primary)
        # A configured priority wins; the members not listed get 1.0.
        with open(self.cfg, "a") as f:
            f.write('backup:\n  priority:\n    "%s": 3.0\n' % primary)
        self.pbm("config", "--file", self.cfg, check=True)
        self.assertEqual(backup_node(), primary)
        # A priority that cannot work is refused with its reason.
        bad = os.path.join(self.tmp.path, "bad.yaml")
        with open(bad, "w") as f:
            f.write(open(self.cfg).read().replace(": 3.0", ": 0"))
        p = self.pbm("config", "--file", bad)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("backup.priority of %s must be a number greater than 0" % primary, p.stderr)

    def restore_name(self, out):
        for tok in out.replace("'", " ").split():
            if tok.startswith("20") and tok.endswith("Z"):
                return tok
        raise AssertionError("no restore name in: " + out)


if __name__ == "__main__":
    unittest.main()
