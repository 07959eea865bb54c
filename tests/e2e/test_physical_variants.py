"""Physical backup and restore variants, as a user meets them (issue 3):
- encryption at rest (AES256-CBC, AES256-GCM): backup during a writer, restore, data 0..K with no
  gap; the metadata records encryption, cipher and the key check value, never the key;
- every backup compression (none, gzip, zstd, lz4, snappy): objects carry the codec's suffix and
  its format (checked with the system's gzip/zstd/lz4 tools where they exist), one restored;
- a cluster with zstd block and journal compressors backs up and restores;
- every compatibility mismatch (encryption off, another cipher, another key, block and journal
  compressor) is refused, naming each difference, and the target cluster keeps serving untouched.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
import unittest

import pymongo

import harness as h
from test_devcluster import Cluster
from test_physical import PBM, Writer

SUFFIX = {"none": "", "gzip": ".gz", "zstd": ".zst", "lz4": ".lz4", "snappy": ".snappy"}
# The first bytes of each format (gzip RFC 1952, zstd and lz4 frame magics, snappy framing format
# stream identifier).
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "lz4": b"\x04\x22\x4d\x18",
         "snappy": b"\xff\x06\x00\x00sNaPpY"}
DECODER = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dcq"], "lz4": ["lz4", "-dcq"]}


def key_check(key):
    """The key check value: HMAC-SHA256(key, "psmdb key check value"), first 8 bytes, hex."""
    return hmac.new(key, b"psmdb key check value", hashlib.sha256).hexdigest()[:16]


def text(b):
    """A TimeoutExpired's captured output: bytes even when the run asked for text."""
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def walk(root):
    """Every file under root, as paths relative to it."""
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


class VariantsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = h.TempDir(prefix="variants-")
        self.store = os.path.join(self.tmp.path, "store")
        self.cfg = os.path.join(self.tmp.path, "pbm.yaml")
        with open(self.cfg, "w") as f:
            f.write("storage:\n  type: filesystem\n  filesystem:\n    path: %s\n" % self.store)
        self.clusters = []

    def tearDown(self):
        for c in self.clusters:
            c.cleanup()
        self.tmp.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------------------

    def key(self, name):
        path = os.path.join(self.tmp.path, name)
        return path, h.make_keyfile(path)

    def up(self, name, *extra):
        """A 3-member devcluster with agents, storage configured; returns (cluster, uri)."""
        c = Cluster(os.path.join(self.tmp.path, name))
        self.clusters.append(c)
        p = c.run("up", "--dir", c.dir, "--members", "3", "--mongod", h.WTMONGOD,
                  "--backoff-initial-ms", "200", "--backoff-max-ms", "1000", "--detach", *extra,
                  "--", "--syncdelay", "2")
        self.assertEqual(p.returncode, 0, p.stderr + c.log())
        uri = c.info()["uri"]
        h.wait_until(lambda: sum(a["ok"] for a in json.loads(
            self.pbm(uri, "status", "--out", "json").stdout)["cluster"]) == 3,
            60, what="three healthy agents in pbm status")
        self.pbm(uri, "config", "--file", self.cfg, check=True)
        return c, uri

    def pbm(self, uri, *args, check=False, timeout=600):
        try:
            p = subprocess.run([PBM, *args], capture_output=True, text=True, timeout=timeout,
                               env=dict(os.environ, PBM_MONGODB_URI=uri))
        except subprocess.TimeoutExpired as e:
            status = subprocess.run([PBM, "status"], capture_output=True, text=True, timeout=60,
                                    env=dict(os.environ, PBM_MONGODB_URI=uri))
            raise AssertionError("pbm %s did not finish in %d s; its output: %s%s\n"
                                 "pbm status: %s%s\n%s" % (
                                     " ".join(args), timeout, text(e.stdout), text(e.stderr),
                                     status.stdout, status.stderr,
                                     "\n".join(c.agent_logs() for c in self.clusters)))
        if check and p.returncode != 0:
            raise AssertionError("pbm %s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                              p.stdout, p.stderr))
        return p

    def backup(self, uri, compression):
        p = self.pbm(uri, "backup", "--type=physical", "--compression=" + compression, "--wait",
                     check=True)
        names = [t.strip("'.") for t in p.stdout.split() if t.strip("'.").endswith("Z")
                 and t.startswith("'20")]
        self.assertTrue(names, p.stdout)
        return names[0]

    def describe(self, uri, name):
        return json.loads(self.pbm(uri, "describe-backup", name, "--out", "json", check=True).stdout)

    def backup_during_writes(self, uri, compression):
        """A backup while a w:majority writer runs; returns (name, acked before, acked after)."""
        w = Writer(uri)
        w.thread.start()
        h.wait_until(lambda: w.acked >= 100, 60, what="writes")
        before = w.acked
        name = self.backup(uri, compression)
        after = w.acked
        w.stop = True
        w.thread.join(30)
        self.assertIsNone(w.error)
        w.client.close()
        return name, before, after

    def restore_and_check(self, c, uri, name, before, after):
        """Changes the data, restores `name`, checks every member holds exactly 0..K."""
        point = self.describe(uri, name)["last_write_ts"]
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000) as mc:
            mc.test.w.insert_many([{"_id": -i} for i in range(1, 20)])
            mc.test.extra.insert_one({"x": 1})
        r = self.pbm(uri, "restore", name, "--wait", timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + c.log()[-3000:])
        c.wait_healthy(120)
        counts = []
        for m in c.info()["members"]:
            with pymongo.MongoClient(m["host"], directConnection=True,
                                     readPreference="secondaryPreferred",
                                     serverSelectionTimeoutMS=20000) as mc:
                ids = [d["_id"] for d in mc.test.w.find({}, {"_id": 1}).sort("_id", 1)]
                self.assertEqual(ids, list(range(len(ids))), "a gap or post-backup writes on " + m["host"])
                self.assertNotIn("extra", mc.test.list_collection_names())
                last = mc.local.oplog.rs.find_one({"ns": "test.w", "op": "i"}, sort=[("$natural", -1)])
                self.assertLessEqual((last["ts"].time, last["ts"].inc), (point["T"], point["I"]))
                counts.append(len(ids))
            self.assertTrue(os.path.exists(os.path.join(m["dbpath"], "ps-entry.sh")))
        self.assertEqual(len(set(counts)), 1, counts)
        self.assertGreaterEqual(counts[0], before)
        self.assertLessEqual(counts[0], after)
        # The cluster takes writes again.
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000) as mc:
            mc.test.after.insert_one({"ok": 1})

    def check_objects(self, name, codec):
        """Every file of the backup is one object named <file><suffix>, in the codec's format."""
        with open(os.path.join(self.store, name, "rs0", "filelist.pbm")) as f:
            fl = json.load(f)
        self.assertEqual(fl["codec"], codec)
        self.assertTrue(fl["files"])
        names = {e["name"] for e in fl["files"]}
        self.assertIn("storage.bson", names)
        self.assertTrue(any(n.startswith("collection-") for n in names), names)
        on_storage = walk(os.path.join(self.store, name, "rs0")) - {"filelist.pbm"}
        self.assertEqual(on_storage, {e["name"] + SUFFIX[codec] for e in fl["files"]})
        for e in fl["files"]:
            self.assertEqual(e["object"], "%s/rs0/%s%s" % (name, e["name"], SUFFIX[codec]))
            path = os.path.join(self.store, e["object"])
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(len(data), e["stored_size"], e["object"])
            if codec == "none":
                raw = data
            else:
                self.assertTrue(data.startswith(MAGIC[codec]), "%s: not %s: %r" % (e["object"], codec, data[:16]))
                if codec not in DECODER or not shutil.which(DECODER[codec][0]):
                    continue
                raw = subprocess.run(DECODER[codec] + [path], capture_output=True, check=True).stdout
            self.assertEqual(len(raw), e["size"], e["object"])
            self.assertEqual(hashlib.sha256(raw).hexdigest(), e["sha256"], e["object"])

    def check_encryption_recorded(self, uri, name, cipher, key):
        """describe-backup records encryption, cipher and key check; the key is nowhere."""
        rs = self.describe(uri, name)["replsets"][0]
        mo = rs["mongod_opts"]
        self.assertIs(mo["encryption"], True)
        self.assertEqual(mo["cipher_mode"], cipher)
        self.assertEqual(mo["key_check"], key_check(key))
        text = self.pbm(uri, "describe-backup", name, check=True).stdout
        self.assertIn("encryption: %s (key check %s)" % (cipher, key_check(key)), text)
        b64 = base64.b64encode(key)
        secrets = [b64, b64.rstrip(b"="), key, key.hex().encode()]
        for rel in sorted(walk(self.store)):
            for s in secrets[:2]:
                self.assertNotIn(s.decode(), rel)
            with open(os.path.join(self.store, rel), "rb") as f:
                data = f.read()
            for s in secrets:
                self.assertNotIn(s, data, "the key (or its encoding) is stored in " + rel)
        for s in secrets[:2] + [secrets[3]]:
            self.assertNotIn(s.decode(), text)

    # --- tests ---------------------------------------------------------------------------------

    def test_cbc_encryption_and_every_codec(self):
        """AES256-CBC cluster: a snappy backup during a writer, then none/gzip/lz4 backups, each
        checked on storage; the writer's backup restored."""
        kpath, key = self.key("cbc.key")
        c, uri = self.up("cbc", "--encryption-key-file", kpath, "--cipher", "AES256-CBC")
        name, before, after = self.backup_during_writes(uri, "snappy")
        names = {"snappy": name}
        for codec in ("none", "gzip", "lz4"):
            names[codec] = self.backup(uri, codec)
        lst = json.loads(self.pbm(uri, "list", "--out", "json", check=True).stdout)["snapshots"]
        self.assertEqual(sorted(b["name"] for b in lst), sorted(names.values()))
        for codec, n in names.items():
            d = self.describe(uri, n)
            self.assertEqual((d["status"], d["type"], d["compression"]), ("done", "physical", codec), n)
            self.assertTrue(os.path.exists(os.path.join(self.store, n + ".pbm.json")))
            self.check_objects(n, codec)
            self.check_encryption_recorded(uri, n, "AES256-CBC", key)
        # Without compression the stored bytes are the original bytes.
        d = self.describe(uri, names["none"])
        self.assertEqual(d["size"], d["size_uncompressed"])
        self.assertGreater(d["size"], 0)
        self.restore_and_check(c, uri, name, before, after)
        # After the restore the cluster still runs with the key of its spec: a new backup works.
        self.check_encryption_recorded(uri, self.backup(uri, "zstd"), "AES256-CBC", key)

    def test_gcm_zstd_cluster_then_every_mismatch_refused(self):
        """Cluster A (AES256-GCM key1, zstd block and journal compressors) backs up during a
        writer and restores; clusters B with other settings, on the same storage, refuse A's
        backup naming each difference and keep serving untouched."""
        k1path, key1 = self.key("key1")
        k2path, key2 = self.key("key2")
        a, uri_a = self.up("a", "--encryption-key-file", k1path, "--cipher", "AES256-GCM",
                           "--block-compressor", "zstd", "--journal-compressor", "zstd")
        name, before, after = self.backup_during_writes(uri_a, "zstd")
        mo = self.describe(uri_a, name)["replsets"][0]["mongod_opts"]
        self.assertEqual((mo["block_compressor"], mo["journal_compressor"]), ("zstd", "zstd"))
        self.check_objects(name, "zstd")
        self.check_encryption_recorded(uri_a, name, "AES256-GCM", key1)
        self.restore_and_check(a, uri_a, name, before, after)
        self.assertEqual(a.down().returncode, 0)

        # (cluster B's options, the differences its refusal must name, what it must not name)
        cases = [
            ("b-plain", [],
             ["encryption: the backup was taken with encryption on (AES256-GCM), this node has it off",
              "block compressor: backup zstd, node snappy",
              "journal compressor: backup zstd, node snappy"],
             ["cipher", "key check"]),
            ("b-cbc", ["--encryption-key-file", k1path, "--cipher", "AES256-CBC",
                       "--block-compressor", "zstd", "--journal-compressor", "zstd"],
             ["encryption cipher mode: backup AES256-GCM, node AES256-CBC"],
             ["key check", "compressor", "encryption: "]),
            ("b-key2", ["--encryption-key-file", k2path, "--cipher", "AES256-GCM",
                        "--block-compressor", "zstd", "--journal-compressor", "zstd"],
             ["encryption key: the backup's key check value %s differs from this node's key (%s)"
              % (key_check(key1), key_check(key2))],
             ["cipher", "compressor", "encryption: "]),
        ]
        for dirname, opts, must, must_not in cases:
            with self.subTest(cluster=dirname):
                b, uri_b = self.up(dirname, *opts)
                self.check_refused_untouched(b, uri_b, name, must, must_not)
                self.assertEqual(b.down().returncode, 0)

    def namespaces(self, host):
        """{"db.coll": number of indexes} as the member sees them."""
        out = {}
        with pymongo.MongoClient(host, directConnection=True, readPreference="secondaryPreferred",
                                 serverSelectionTimeoutMS=20000) as mc:
            for db in mc.list_database_names():
                for coll in mc[db].list_collection_names():
                    out[db + "." + coll] = len(list(mc[db][coll].list_indexes()))
        return out

    def check_refused_untouched(self, b, uri, name, must, must_not):
        # B's data: two collections, written once (w:3, so every member has applied them). The
        # files that appear with test.idle on each member are its collection and _id index files.
        members = b.info()["members"]
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000) as mc:
            mc.test.get_collection("busy", write_concern=pymongo.WriteConcern(w=3)).insert_many(
                [{"_id": i, "v": "b" * 50} for i in range(500)])
            files1 = {m["name"]: walk(m["dbpath"]) for m in members}
            mc.test.get_collection("idle", write_concern=pymongo.WriteConcern(w=3)).insert_many(
                [{"_id": i, "v": "i%d" % i} for i in range(200)])
            uuid = mc.test.command("listCollections", filter={"name": "idle"})["cursor"]["firstBatch"][0]
            # Every write is applied on every member (w:3): the primary's last applied optime
            # covers them.
            written_at = mc.admin.command("replSetGetStatus")["optimes"]["appliedOpTime"]["ts"]
        idle_files = {}
        for m in members:
            new = {f for f in walk(m["dbpath"]) - files1[m["name"]]
                   if f.startswith(("collection-", "index-"))}
            self.assertEqual(len(new), 2, new)
            idle_files[m["name"]] = sorted(new)

        def idle_bytes():
            out = {}
            for m in members:
                for rel in idle_files[m["name"]]:
                    with open(os.path.join(m["dbpath"], rel), "rb") as f:
                        out[(m["name"], rel)] = f.read()
            return out

        # A checkpoint (syncdelay 2) writes test.idle's pages once; then its files stay as they
        # are while nothing writes to it: wait until every member has a checkpoint that holds
        # the writes, then until the files are unchanged for 3 s.
        def checkpointed():
            for m in members:
                with pymongo.MongoClient(m["host"], directConnection=True,
                                         serverSelectionTimeoutMS=20000) as mc:
                    st = mc.admin.command("replSetGetStatus")
                    if st["lastStableRecoveryTimestamp"] < written_at:
                        return False
            return True
        h.wait_until(checkpointed, 60, interval=0.5, what="a checkpoint holding test.idle on every member")
        stable = {"bytes": idle_bytes(), "since": time.time()}

        def settled():
            now = idle_bytes()
            if now != stable["bytes"]:
                stable.update(bytes=now, since=time.time())
            return time.time() - stable["since"] >= 3
        h.wait_until(settled, 60, interval=0.5, what="test.idle's files written by a checkpoint")
        # `pbm config --file` resynced B's backup list from the shared storage: A's backup is there.
        lst = json.loads(self.pbm(uri, "list", "--out", "json", check=True).stdout)["snapshots"]
        self.assertIn(name, [x["name"] for x in lst])

        def snapshot():
            """Per member: file names in the dbpath, bytes of the files mongod does not rewrite
            while it runs (storage.bson, the entrypoint, test.idle's collection and index files),
            namespaces with their index counts, mongod's pid and restarts."""
            out = {}
            for m in b.info()["members"]:
                dbp = m["dbpath"]
                files = walk(dbp)
                fixed = {}
                for rel in ["storage.bson", "ps-entry.sh"] + idle_files[m["name"]]:
                    with open(os.path.join(dbp, rel), "rb") as f:
                        fixed[rel] = f.read()
                out[m["name"]] = {"files": files, "fixed": fixed, "pid": m["mongod_pid"],
                                  "ns": self.namespaces(m["host"]),
                                  "restarts": m["containers"]["mongod"]["restarts"]}
            return out

        before = snapshot()
        log_before = b.log()
        r = self.pbm(uri, "restore", name, "--wait", timeout=300)
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        for s in must:
            self.assertIn(s, out)
        # Each member refused in the pre-flight: describe-restore lists them all in error.
        rname = next(t for t in out.replace("'", " ").split() if t.startswith("20") and t.endswith("Z")
                     and t != name)
        d = json.loads(self.pbm(uri, "describe-restore", rname, "-c", self.cfg, "--out", "json",
                                check=True).stdout)
        self.assertEqual(d["status"], "error")
        self.assertEqual(len(d["nodes"]), 3)
        for n in d["nodes"]:
            self.assertEqual(n["status"], "error", n)
            self.assertIn("pre-flight", n["error"])
            self.assertIn("cannot be restored on node " + n["host"] + ": ", n["error"])
            diffs = n["error"].split("cannot be restored on node " + n["host"] + ": ", 1)[1]
            for s in must:
                self.assertIn(s, diffs)
            for s in must_not:
                self.assertNotIn(s, diffs)
        # Every member still serves, with its data, never stopped, the entrypoint never hidden.
        # (pbm's control collections replicate to the secondaries: wait until all agree.)
        h.wait_until(lambda: len({json.dumps(self.namespaces(m["host"]), sort_keys=True)
                                  for m in b.info()["members"]}) == 1, 30, what="same namespaces")
        after = snapshot()
        for m in b.info()["members"]:
            with pymongo.MongoClient(m["host"], directConnection=True,
                                     readPreference="secondaryPreferred",
                                     serverSelectionTimeoutMS=20000) as mc:
                self.assertEqual(mc.test.busy.count_documents({}), 500, m["host"])
                self.assertEqual(sorted((d["_id"], d["v"]) for d in mc.test.idle.find()),
                                 [(i, "i%d" % i) for i in range(200)], m["host"])
                self.assertEqual(mc.test.command("listCollections", filter={"name": "idle"})[
                    "cursor"]["firstBatch"][0]["info"], uuid["info"])
                self.assertFalse(mc.test.w.find_one(), "A's data reached " + m["host"])
            bm, am = before[m["name"]], after[m["name"]]
            self.assertEqual(am["pid"], bm["pid"], "mongod of %s restarted" % m["name"])
            self.assertEqual(am["restarts"], bm["restarts"])
            self.assertEqual(am["fixed"], bm["fixed"], m["name"])
            # No file is gone; the only new files are those of pbm's own control collections
            # that `pbm restore` created in admin (one collection file and one per index each).
            self.assertEqual(bm["files"] - am["files"], set(), m["name"])
            new_ns = {ns: n for ns, n in am["ns"].items() if ns not in bm["ns"]}
            self.assertTrue(all(ns.startswith("admin.pbm") for ns in new_ns), new_ns)
            self.assertEqual({ns: n for ns, n in am["ns"].items() if ns in bm["ns"]}, bm["ns"])
            added = am["files"] - bm["files"]
            self.assertEqual(len([f for f in added if f.startswith("collection-")]), len(new_ns), added)
            self.assertEqual(len([f for f in added if f.startswith("index-")]), sum(new_ns.values()), added)
            self.assertEqual(len(added), len(new_ns) + sum(new_ns.values()), added)
            self.assertFalse([f for f in os.listdir(m["dbpath"]) if f.startswith(".pbm")], m["dbpath"])
        log = b.log()
        self.assertEqual(log[:len(log_before)], log_before)
        self.assertNotIn("start failed", log)
        self.assertNotIn("restart #", log[len(log_before):])
        self.assertNotIn("killed by signal", log[len(log_before):])
        # B's agents still work: B backs itself up.
        self.backup(uri, "lz4")


if __name__ == "__main__":
    unittest.main()
