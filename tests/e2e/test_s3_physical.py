"""Physical and logical backup and restore with S3 storage (s3rver on loopback): the same
cluster, pbm and agents as test_physical, with the `storage:` section pointing at the bucket;
and both through a fault proxy: at 10% faults they complete, at 100% they fail clearly."""
import json
import os

import pymongo

import harness as h
from s3faultproxy import S3FaultProxy
from s3server import S3Server
import test_physical

MiB = 1024 * 1024


class S3PhysicalTest(test_physical.ClusterTestBase):
    PREFIX = "s3-physical-"

    def setUp(self):
        super().setUp()
        self.s3 = S3Server().start()
        self.addCleanup(self.s3.stop)
        with open(self.cfg, "w") as f:  # JSON is YAML
            json.dump({"storage": self.s3.storage_config(prefix="pbm", uploadPartSize=5 * MiB)}, f)

    def test_backup_and_restore_through_s3(self):
        self.up()
        secret = self.s3.storage_config()["s3"]["credentials"]["secret-access-key"]
        for out in (self.pbm("config", "--file", self.cfg, check=True).stdout,
                    self.pbm("config", check=True).stdout,
                    self.pbm("config", "--out", "json", check=True).stdout):
            self.assertIn(self.s3.bucket, out)
            self.assertNotIn(secret, out)  # shown as ***, as PBM does
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.test.d.insert_many([{"_id": i, "pad": os.urandom(512)} for i in range(5000)])
        before = list(c.test.d.find().sort("_id", 1))
        self.pbm("backup", "--type=physical", "--compression=zstd", "--wait", check=True)
        lst = json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"]
        self.assertEqual([s["status"] for s in lst], ["done"])
        name = lst[0]["name"]
        # The backup is in the bucket under the prefix, as another S3 client sees it.
        keys = [o["key"] for o in json.loads(self.s3.sdk("list", "pbm/"))]
        self.assertIn("pbm/%s.pbm.json" % name, keys)
        self.assertTrue(any(k.startswith("pbm/%s/rs0/" % name) for k in keys), keys)
        c.test.d.delete_many({"_id": {"$lt": 100}})
        c.test.extra.insert_one({"x": 1})
        r = self.pbm("restore", name, "--wait", timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.cluster.log()[-3000:])
        self.cluster.wait_healthy(120)
        for m in self.cluster.info()["members"]:
            mc = pymongo.MongoClient(m["host"], directConnection=True,
                                     readPreference="secondaryPreferred",
                                     serverSelectionTimeoutMS=20000)
            self.assertEqual(list(mc.test.d.find().sort("_id", 1)), before, m["host"])
            self.assertNotIn("extra", mc.test.list_collection_names())

    def write_config(self, endpoint=None, **extra):
        with open(self.cfg, "w") as f:  # JSON is YAML
            json.dump({"storage": self.s3.storage_config(prefix="pbm", endpoint=endpoint,
                                                         uploadPartSize=5 * MiB, **extra)}, f)

    def test_logical_through_s3_with_faults(self):
        self.up(members=1)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.test.d.insert_many([{"_id": i, "pad": os.urandom(2048)} for i in range(6000)])  # ~12 MiB
        c.test.e.insert_many([{"_id": i} for i in range(100)])
        before = list(c.test.d.find().sort("_id", 1))
        retryer = {"numMaxRetries": 8, "minRetryDelay": "5ms", "maxRetryDelay": "50ms"}
        with S3FaultProxy(self.s3.port, rate=0.1, stall_seconds=5, seed=11) as proxy:
            self.write_config(endpoint=proxy.endpoint, stallTimeout="3s", retryer=retryer)
            self.pbm("config", "--file", self.cfg, check=True)
            out = self.pbm("backup", "--compression=zstd", "--wait", check=True).stdout
            name = [t.strip("'.") for t in out.split() if t.strip("'.").startswith("20")][0]
            keys = [o["key"] for o in json.loads(self.s3.sdk("list", "pbm/%s/" % name))]
            self.assertIn("pbm/%s/rs0/oplog.bson.zst" % name, keys)
            c.test.d.delete_many({"_id": {"$lt": 3000}})
            r = self.pbm("restore", name, "--wait", timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(list(c.test.d.find().sort("_id", 1)), before)
            self.assertTrue(json.loads(self.pbm("verify", name, "-o", "json", check=True).stdout)["ok"])
            self.assertGreater(sum(proxy.injected.values()), 0, proxy.injected)
        # Every request fails: the backup and the restore end in a clear error naming S3.
        with S3FaultProxy(self.s3.port, rate=1.0, faults=("500",)) as proxy:
            retryer = {"numMaxRetries": 2, "minRetryDelay": "5ms", "maxRetryDelay": "20ms"}
            self.write_config(endpoint=proxy.endpoint, retryer=retryer)
            with open(self.cfg) as f:
                cfg = json.load(f)
            # (pbm config checks the storage, so the broken endpoint goes in directly.)
            c.admin.pbmConfig.update_one({}, {"$set": {"storage": cfg["storage"]}})
            p = self.pbm("backup", "--wait", timeout=300)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("failed after 3 attempt(s)", p.stderr)
            self.assertIn("HTTP 500", p.stderr)
            r = self.pbm("restore", name, "--wait", timeout=300)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("failed after 3 attempt(s)", r.stderr)
        self.assertEqual(c.test.d.count_documents({}), 6000)


if __name__ == "__main__":
    import unittest
    unittest.main()
