"""Logical backup and restore (issue 4), as a user does them: `pbm backup` (logical is the
default type) dumps every collection with its options and indexes plus the oplog written during
the dump; `pbm restore` puts the collections back and replays that oplog to the consistent point.
"""
import datetime
import json
import os
import re
import unittest

import bson
import pymongo
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

import harness as h
from test_physical import ClusterTestBase, Writer

RAW = CodecOptions(document_class=RawBSONDocument)


def snapshot(client, dbs):
    """Every collection of `dbs`: raw BSON documents by _id, indexes and options."""
    out = {}
    for db in dbs:
        for name in sorted(client[db].list_collection_names()):
            coll = client[db].get_collection(name, codec_options=RAW)
            docs = [d.raw for d in coll.find().sort("_id", 1)]
            indexes = {k: {f: v for f, v in spec.items() if f not in ("v", "ns")}
                       for k, spec in client[db][name].index_information().items()}
            out["%s.%s" % (db, name)] = (docs, indexes, client[db][name].options())
    return out


class LogicalTest(ClusterTestBase):
    PREFIX = "logical-"

    def backup_name(self, out):
        return [t.strip("'.") for t in out.split() if re.fullmatch(r"'?20\S+Z'?\.?", t)][0]

    def test_round_trip_of_mixed_types_indexes_and_options(self):
        self.up(members=1)
        self.pbm("config", "--file", self.cfg, check=True)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        docs = [{"_id": i,
                 "nested": {"a": {"b": [i, {"c": "x" * (i % 7)}]}},
                 "arr": list(range(i % 5)),
                 "bin": bson.Binary(os.urandom(20), 0),
                 "uuid": bson.Binary(os.urandom(16), 4),
                 "date": datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=i),
                 "dec": bson.Decimal128("%d.0001" % i),
                 "oid": bson.ObjectId(),
                 "re": bson.Regex("^a.*b$", "i"),
                 "i64": bson.Int64(1 << 40),
                 "ts": bson.Timestamp(1700000000, i + 1),
                 "none": None, "f": 1.5, "t": True}
                for i in range(2000)]
        c.shop.orders.insert_many(docs)
        # A document near the 16 MiB limit.
        c.shop.blobs.insert_one({"_id": "big", "data": bson.Binary(os.urandom(16 * 1024 * 1024 - 200))})
        c.shop.orders.create_index([("oid", 1)], unique=True)
        c.shop.orders.create_index([("nested.a.b", 1), ("date", -1)], name="compound")
        c.shop.orders.create_index("date", expireAfterSeconds=3600 * 24 * 365 * 100)
        c.shop.create_collection("log", capped=True, size=1 << 20, max=500)
        c.shop.log.insert_many([{"_id": i, "m": "line %d" % i} for i in range(600)])
        c.other.things.insert_many([{"_id": bson.ObjectId(), "n": i} for i in range(100)])
        c.admin.notes.insert_one({"_id": 1, "kept": True})
        before = snapshot(c, ["shop", "other"])
        self.assertEqual(len(before["shop.log"][0]), 500)  # capped at 500

        out = self.pbm("backup", "--wait", check=True).stdout  # logical is the default type
        name = self.backup_name(out)
        desc = json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)
        self.assertEqual((desc["type"], desc["status"]), ("logical", "done"))
        lst = json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"]
        self.assertEqual([s["type"] for s in lst], ["logical"])

        # Change everything after the backup.
        c.shop.orders.delete_many({"_id": {"$lt": 500}})
        c.shop.orders.update_many({}, {"$set": {"changed": True}})
        c.shop.orders.drop_index("compound")
        c.shop.blobs.drop()
        c.other.things.insert_one({"late": True})
        c.admin.notes.delete_many({})
        r = self.pbm("restore", name, "--wait", timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.cluster.log()[-3000:])
        after = snapshot(c, ["shop", "other"])
        self.assertEqual(sorted(after), sorted(before))
        for ns in before:
            self.assertEqual(after[ns][1], before[ns][1], ns + " indexes")
            self.assertEqual(after[ns][2], before[ns][2], ns + " options")
            self.assertEqual(len(after[ns][0]), len(before[ns][0]), ns)
            self.assertTrue(after[ns][0] == before[ns][0], ns + " documents differ")
        self.assertEqual(c.admin.notes.find_one(), {"_id": 1, "kept": True})
        rname = self.backup_name(r.stdout)
        d = json.loads(self.pbm("describe-restore", rname, "--out", "json", check=True).stdout)
        self.assertEqual((d["type"], d["status"]), ("logical", "done"))
        # The control collections were neither dumped nor overwritten.
        self.assertEqual(json.loads(self.pbm("list", "--out", "json", check=True).stdout)
                         ["snapshots"][0]["name"], name)

    def test_backup_during_writes_restores_one_consistent_point(self):
        self.up()  # 3 members: the dump reads a secondary
        self.pbm("config", "--file", self.cfg, check=True)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.test.pad.insert_many([{"_id": i, "p": "x" * 500} for i in range(20000)])
        w = Writer(self.uri)
        w.thread.start()
        h.wait_until(lambda: w.acked >= 100, 60, what="writes")
        before = w.acked
        out = self.pbm("backup", "--type=logical", "--compression=lz4", "--wait", check=True).stdout
        after = w.acked
        w.stop = True
        w.thread.join(30)
        self.assertIsNone(w.error)
        name = self.backup_name(out)
        desc = json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)
        rs = desc["replsets"][0]
        self.assertNotEqual(rs["node"], c.admin.command("hello")["primary"])
        self.assertGreater((rs["last_write_ts"]["T"], rs["last_write_ts"]["I"]),
                           (rs["first_write_ts"]["T"], rs["first_write_ts"]["I"]))
        # The writes acknowledged by the consistent point are those with a ts up to it.
        point = bson.Timestamp(desc["last_write_ts"]["T"], desc["last_write_ts"]["I"])
        expected = c.local.oplog.rs.count_documents({"ns": "test.w", "op": "i", "ts": {"$lte": point}})
        c.test.w.insert_many([{"_id": -i} for i in range(1, 30)])
        r = self.pbm("restore", name, "--wait", timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ids = [d["_id"] for d in c.test.w.find({}, {"_id": 1}).sort("_id", 1)]
        self.assertEqual(ids, list(range(len(ids))), "a gap or post-backup writes")
        self.assertGreaterEqual(len(ids), before)
        self.assertLessEqual(len(ids), after)
        self.assertEqual(len(ids), expected)
        self.assertEqual(c.test.pad.count_documents({}), 20000)
        self.cluster.wait_healthy(60)

    def test_corrupted_object_refused_before_anything_changes(self):
        self.up(members=1)
        self.pbm("config", "--file", self.cfg, check=True)
        c = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=20000)
        c.a.x.insert_many([{"_id": i, "v": os.urandom(100)} for i in range(3000)])
        c.b.y.insert_many([{"_id": i} for i in range(10)])
        name = self.backup_name(self.pbm("backup", "--compression=none", "--wait", check=True).stdout)
        obj = os.path.join(self.store, name, "rs0", "a", "x.0000.bson")
        with open(obj, "r+b") as f:
            f.seek(os.path.getsize(obj) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x01]))
        c.b.y.delete_many({})
        r = self.pbm("restore", name, "--wait", timeout=300)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("%s/rs0/a/x.0000.bson" % name, r.stderr)
        self.assertIn("nothing was changed", r.stderr)
        self.assertEqual(c.b.y.count_documents({}), 0)  # not restored either
        self.assertEqual(c.a.x.count_documents({}), 3000)


if __name__ == "__main__":
    unittest.main()
