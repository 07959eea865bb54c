"""Client-side encryption of backup objects (issue 4), physical and logical: with backup.encryption in the config,
every object on the storage is AES-256-GCM ciphertext (a stolen bucket yields no data), the
metadata records the algorithm and the key check value (never the key), a restore with the
right key brings the data back, and one with another key or none is refused before anything is
touched."""
import base64
import json
import os
import unittest

import pymongo

import harness as h
from test_physical import ClusterTestBase
from test_physical_variants import key_check, walk

MARKER = b"plaintext-marker-7f3a"


class ClientEncryptionTest(ClusterTestBase):
    PREFIX = "client-enc-"

    def config(self, key_file=None, key_env=None):
        with open(self.cfg, "w") as f:
            f.write("storage:\n  type: filesystem\n  filesystem:\n    path: %s\n" % self.store)
            if key_file:
                f.write("backup:\n  encryption:\n    keyFile: %s\n" % key_file)
            if key_env:
                f.write("backup:\n  encryption:\n    keyEnv: %s\n" % key_env)
        return self.pbm("config", "--file", self.cfg)

    def test_encrypted_backup_and_restore(self):
        key_path = os.path.join(self.tmp.path, "backup.key")
        key = h.make_keyfile(key_path)
        # The agents (started by devcluster) inherit this environment: the key by keyEnv too.
        os.environ["PBM_TEST_BACKUP_KEY"] = base64.b64encode(key).decode()
        self.addCleanup(os.environ.pop, "PBM_TEST_BACKUP_KEY", None)
        # No block compression, so the marker is visible in the node's own data files.
        self.up(members=1, mongod_args=("--wiredTigerCollectionBlockCompressor", "none"))
        self.assertEqual(self.config(key_file=key_path).returncode, 0)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.test.docs.insert_many([{"_id": i, "s": MARKER.decode() * 20} for i in range(2000)])
        out = self.pbm("backup", "--type=physical", "--compression=none", "--wait", check=True).stdout
        name = [t.strip("'.") for t in out.split() if t.strip("'.").startswith("20")
                and t.strip("'.").endswith("Z")][0]
        dbpath = self.cluster.info()["members"][0]["dbpath"]
        self.assertTrue(any(MARKER in open(os.path.join(dbpath, f), "rb").read()
                            for f in os.listdir(dbpath) if f.endswith(".wt")),
                        "the marker should be in the node's files (else this test proves nothing)")
        objects = [f for f in walk(os.path.join(self.store, name))]
        self.assertTrue(objects)
        for f in objects:
            data = open(os.path.join(self.store, name, f), "rb").read()
            if f.endswith("filelist.pbm"):
                continue
            self.assertTrue(data.startswith(b"PBMENC1\n"), f)
            self.assertNotIn(MARKER, data, f)
        desc = json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)
        self.assertEqual(desc["encryption"], {"algorithm": "AES256-GCM", "key_check": key_check(key)})
        meta = open(os.path.join(self.store, name + ".pbm.json"), "rb").read()
        self.assertNotIn(base64.b64encode(key), meta)

        c.test.docs.delete_many({"_id": {"$gte": 1000}})
        c.test.extra.insert_one({"x": 1})
        files_before = {f: os.stat(os.path.join(dbpath, f)).st_mtime_ns for f in os.listdir(dbpath)}

        # Another key: refused before anything is touched, naming both check values.
        other = os.path.join(self.tmp.path, "other.key")
        other_key = h.make_keyfile(other)
        self.assertEqual(self.config(key_file=other).returncode, 0)
        r = self.pbm("restore", name, "--wait", timeout=300)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("was encrypted with another key (key check %s)" % key_check(key), r.stderr)
        self.assertIn(key_check(other_key), r.stderr)
        # No key configured: refused, naming what to configure.
        self.assertEqual(self.config().returncode, 0)
        r = self.pbm("restore", name, "--wait", timeout=300)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("is encrypted (AES256-GCM", r.stderr)
        self.assertIn("backup.encryption", r.stderr)
        self.assertEqual(c.test.docs.count_documents({}), 1000)
        self.assertIn("extra", c.test.list_collection_names())
        for f, m in files_before.items():
            if f.endswith(".wt") and not f.startswith("WiredTiger"):
                self.assertTrue(os.path.exists(os.path.join(dbpath, f)), f)

        # A variable the agents do not have: refused, naming it.
        self.assertEqual(self.config(key_env="PBM_TEST_UNSET_KEY").returncode, 0)
        r = self.pbm("restore", name, "--wait", timeout=300)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PBM_TEST_UNSET_KEY, which is not set", r.stderr)
        # The right key, from the agents' environment this time: the data of the backup is back.
        self.assertEqual(self.config(key_env="PBM_TEST_BACKUP_KEY").returncode, 0)
        r = self.pbm("restore", name, "--wait", timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.cluster.log())
        self.cluster.wait_healthy(120)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        self.assertEqual(c.test.docs.count_documents({}), 2000)
        self.assertNotIn("extra", c.test.list_collection_names())

    def test_encrypted_logical_backup_and_restore(self):
        key_path = os.path.join(self.tmp.path, "backup.key")
        key = h.make_keyfile(key_path)
        self.up(members=1)
        self.assertEqual(self.config(key_file=key_path).returncode, 0)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.test.docs.insert_many([{"_id": i, "s": MARKER.decode() * 20} for i in range(2000)])
        out = self.pbm("backup", "--type=logical", "--compression=none", "--wait", check=True).stdout
        name = [t.strip("'.") for t in out.split() if t.strip("'.").startswith("20")
                and t.strip("'.").endswith("Z")][0]
        data = [f for f in walk(os.path.join(self.store, name)) if f.endswith(".bson")]
        self.assertIn(os.path.join("rs0", "test", "docs.0000.bson"), data)
        for f in data:  # documents and oplog: ciphertext, not BSON
            blob = open(os.path.join(self.store, name, f), "rb").read()
            self.assertTrue(blob.startswith(b"PBMENC1\n"), f)
            self.assertNotIn(MARKER, blob, f)
        desc = json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)
        self.assertEqual(desc["encryption"], {"algorithm": "AES256-GCM", "key_check": key_check(key)})
        c.test.docs.delete_many({"_id": {"$lt": 1000}})
        # Another key: refused before anything changes.
        other = os.path.join(self.tmp.path, "other.key")
        h.make_keyfile(other)
        self.assertEqual(self.config(key_file=other).returncode, 0)
        r = self.pbm("restore", name, "--wait", timeout=300)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("was encrypted with another key (key check %s)" % key_check(key), r.stderr)
        self.assertEqual(c.test.docs.count_documents({}), 1000)
        # verify with the other key says so; with the right key the backup verifies and restores.
        self.assertIn("another key", self.pbm("verify", name).stderr)
        self.assertEqual(self.config(key_file=key_path).returncode, 0)
        self.assertTrue(json.loads(self.pbm("verify", name, "-o", "json", check=True).stdout)["ok"])
        r = self.pbm("restore", name, "--wait", timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(c.test.docs.count_documents({}), 2000)

    def test_bad_encryption_config_is_refused(self):
        self.up(members=1)
        for body, msg in [("keyFile: ''", "backup.encryption.keyFile must be a non-empty string"),
                          ("keyfile: /k", "unknown key 'keyfile'"),
                          ("keyFile: /a\n    keyEnv: B", "not both")]:
            with open(self.cfg, "w") as f:
                f.write("storage:\n  type: filesystem\n  filesystem:\n    path: %s\n"
                        "backup:\n  encryption:\n    %s\n" % (self.store, body))
            p = self.pbm("config", "--file", self.cfg)
            self.assertNotEqual(p.returncode, 0, body)
            self.assertIn(msg, p.stderr)


if __name__ == "__main__":
    unittest.main()
