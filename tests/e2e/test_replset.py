"""pymongo against a 3-member wtmongod replica set: CRUD, cursors, indexes, replication, restarts."""
import signal
import socket
import struct
import unittest

import bson
import pymongo
from pymongo import ReturnDocument, WriteConcern
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from harness import ReplSet, TempDir, wait_until

W_ALL = WriteConcern(w=3, wtimeout=30000)


def raw_command(port, db, cmd):
    """Sends one OP_MSG without $readPreference (so secondaryOk is not set) and returns the reply."""
    body = dict(cmd)
    body["$db"] = db
    payload = struct.pack("<I", 0) + b"\x00" + bson.encode(body)
    msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(msg)
        hdr = b""
        while len(hdr) < 16:
            chunk = s.recv(16 - len(hdr))
            if not chunk:
                raise ConnectionError("connection closed")
            hdr += chunk
        length = struct.unpack("<i", hdr[:4])[0]
        rest = b""
        while len(rest) < length - 16:
            chunk = s.recv(length - 16 - len(rest))
            if not chunk:
                raise ConnectionError("connection closed")
            rest += chunk
    # flagBits (4) + section kind 0 (1) + document
    return bson.decode(rest[5:])


def secondary_client(m, **kw):
    kw.setdefault("serverSelectionTimeoutMS", 10000)
    return pymongo.MongoClient(m.host, directConnection=True,
                               readPreference="secondaryPreferred", **kw)


class ReplSetCrudTest(unittest.TestCase):
    """Everything that keeps the set running; one set for the class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.rs = ReplSet(cls.tmp.__enter__()).start()
        cls.client = cls.rs.client()
        cls.secondaries = [secondary_client(m) for m in cls.rs.members[1:]]

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        for c in cls.secondaries:
            c.close()
        cls.rs.stop()
        cls.tmp.__exit__(None, None, None)

    def test_insert_and_find(self):
        c = self.client.crud.find1
        self.assertEqual(c.insert_one({"_id": 1, "a": 1, "s": {"x": 10}, "t": [1, 2]}).inserted_id, 1)
        r = c.insert_many([{"_id": i, "a": i, "s": {"x": i * 10}} for i in range(2, 11)])
        self.assertEqual(r.inserted_ids, list(range(2, 11)))
        c.insert_one({"_id": 11, "b": "no a"})
        self.assertEqual(c.count_documents({}), 11)
        self.assertEqual(sorted(d["_id"] for d in c.find({"a": {"$gt": 7}})), [8, 9, 10])
        self.assertEqual(sorted(d["_id"] for d in c.find({"a": {"$in": [2, 4, 99]}})), [2, 4])
        self.assertEqual([d["_id"] for d in c.find({"a": {"$exists": False}})], [11])
        self.assertEqual([d["_id"] for d in c.find({"s.x": 30})], [3])
        self.assertEqual([d["_id"] for d in c.find({"s.x": {"$gte": 80}}).sort("s.x", -1)], [10, 9, 8])
        self.assertEqual([d["_id"] for d in c.find({"a": {"$exists": True}}).sort("a", 1).skip(2).limit(3)],
                         [3, 4, 5])
        self.assertEqual(list(c.find({"_id": 2}, {"a": 1, "_id": 0})), [{"a": 2}])
        self.assertEqual(list(c.find({"_id": 2}, {"s": 0, "a": 0})), [{"_id": 2}])
        self.assertEqual(c.find_one({"_id": 1}, {"s.x": 1}), {"_id": 1, "s": {"x": 10}})
        self.assertEqual(c.count_documents({"a": {"$lte": 5}}), 5)
        self.assertEqual(sorted(c.distinct("s.x", {"a": {"$lt": 4}})), [10, 20, 30])

    def test_insert_many_duplicate_ordered(self):
        c = self.client.crud.dup_ordered
        with self.assertRaises(BulkWriteError) as cm:
            c.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}], ordered=True)
        d = cm.exception.details
        self.assertEqual(d["nInserted"], 2)
        self.assertEqual(len(d["writeErrors"]), 1)
        self.assertEqual(d["writeErrors"][0]["index"], 2)
        self.assertEqual(d["writeErrors"][0]["code"], 11000)
        self.assertEqual(sorted(x["_id"] for x in c.find()), [1, 2])

    def test_insert_many_duplicate_unordered(self):
        c = self.client.crud.dup_unordered
        with self.assertRaises(BulkWriteError) as cm:
            c.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}], ordered=False)
        d = cm.exception.details
        self.assertEqual(d["nInserted"], 3)
        self.assertEqual([(e["index"], e["code"]) for e in d["writeErrors"]], [(2, 11000)])
        self.assertEqual(sorted(x["_id"] for x in c.find()), [1, 2, 3])

    def test_updates_and_deletes(self):
        c = self.client.crud.upd
        c.insert_many([{"_id": i, "n": i, "g": i % 2, "gone": True} for i in range(6)])
        r = c.update_one({"_id": 1}, {"$set": {"name": "one"}, "$inc": {"n": 10}, "$unset": {"gone": ""}})
        self.assertEqual((r.matched_count, r.modified_count), (1, 1))
        self.assertEqual(c.find_one({"_id": 1}), {"_id": 1, "n": 11, "g": 1, "name": "one"})
        r = c.update_many({"g": 0}, {"$inc": {"n": 100}})
        self.assertEqual((r.matched_count, r.modified_count), (3, 3))
        self.assertEqual(sorted(d["n"] for d in c.find({"g": 0})), [100, 102, 104])
        r = c.update_one({"_id": 50}, {"$set": {"n": 50}}, upsert=True)
        self.assertEqual(r.upserted_id, 50)
        self.assertEqual(c.find_one({"_id": 50}), {"_id": 50, "n": 50})
        r = c.replace_one({"_id": 2}, {"only": "this"})
        self.assertEqual(r.modified_count, 1)
        self.assertEqual(c.find_one({"_id": 2}), {"_id": 2, "only": "this"})
        doc = c.find_one_and_update({"_id": 3}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER)
        self.assertEqual(doc["n"], 4)
        doc = c.find_one_and_update({"_id": 3}, {"$inc": {"n": 1}})
        self.assertEqual(doc["n"], 4)
        self.assertEqual(c.find_one({"_id": 3})["n"], 5)
        self.assertEqual(c.delete_one({"g": 1}).deleted_count, 1)
        # _id 2 lost its "g" field to replace_one.
        self.assertEqual(c.delete_many({"g": {"$exists": True}}).deleted_count, 4)
        self.assertEqual(sorted(d["_id"] for d in c.find()), [2, 50])

    def test_aggregate(self):
        c = self.client.crud.agg
        c.insert_many([{"_id": i, "k": "abc"[i % 3], "v": i} for i in range(30)])
        out = list(c.aggregate([{"$match": {"v": {"$gte": 10}}}, {"$sort": {"v": -1}}, {"$limit": 3},
                                {"$project": {"_id": 0, "v": 1}}]))
        self.assertEqual(out, [{"v": 29}, {"v": 28}, {"v": 27}])
        out = list(c.aggregate([{"$group": {"_id": "$k", "total": {"$sum": "$v"}, "n": {"$sum": 1}}},
                                {"$sort": {"_id": 1}}]))
        self.assertEqual(out, [{"_id": "a", "total": sum(range(0, 30, 3)), "n": 10},
                               {"_id": "b", "total": sum(range(1, 30, 3)), "n": 10},
                               {"_id": "c", "total": sum(range(2, 30, 3)), "n": 10}])
        out = list(c.aggregate([{"$match": {"k": "a"}}, {"$count": "howmany"}]))
        self.assertEqual(out, [{"howmany": 10}])

    def test_drop_and_listing(self):
        db = self.client.droptest
        db.one.insert_one({"x": 1})
        db.two.insert_one({"x": 2})
        self.assertIn("droptest", self.client.list_database_names())
        self.assertEqual(sorted(db.list_collection_names()), ["one", "two"])
        db.one.drop()
        self.assertEqual(db.list_collection_names(), ["two"])
        self.assertEqual(db.one.count_documents({}), 0)
        self.client.drop_database("droptest")
        self.assertNotIn("droptest", self.client.list_database_names())
        self.assertEqual(db.two.count_documents({}), 0)

    def test_capped_rolls_off(self):
        db = self.client.crud
        c = db.create_collection("capped1", capped=True, size=100000, max=5)
        self.assertTrue(c.options().get("capped"))
        for i in range(12):
            c.insert_one({"_id": i})
        self.assertEqual([d["_id"] for d in c.find()], list(range(7, 12)))

    def test_cursor_batches(self):
        c = self.client.crud.big
        c.insert_many([{"_id": i, "pad": "x" * 50} for i in range(5000)])
        seen = [d["_id"] for d in c.find({}, batch_size=100)]
        self.assertEqual(len(seen), 5000)
        self.assertEqual(sorted(seen), list(range(5000)))

    def test_kill_cursor_then_getmore(self):
        db = self.client.crud
        db.kc.insert_many([{"_id": i} for i in range(50)])
        cur = db.kc.find().batch_size(5)
        next(cur)
        cid = cur.cursor_id
        self.assertTrue(cid)
        addr = cur.address
        cur.close()
        # getMore must go to the same server (the primary) that owned the cursor.
        self.assertEqual(addr, self.client.primary)
        with self.assertRaises(OperationFailure) as cm:
            db.command("getMore", cid, collection="kc")
        self.assertEqual(cm.exception.code, 43)  # CursorNotFound

    def test_tailable_cursor_sees_later_insert(self):
        db = self.client.crud
        c = db.create_collection("tail", capped=True, size=100000)
        c.insert_one({"_id": 0})
        cur = c.find(cursor_type=pymongo.CursorType.TAILABLE)
        self.assertEqual(next(cur)["_id"], 0)
        self.assertEqual(list(cur), [])
        self.assertTrue(cur.alive)
        c.insert_one({"_id": 1})
        got = wait_until(lambda: [d["_id"] for d in cur], 10, what="tailable cursor sees new doc")
        self.assertEqual(got, [1])
        cur.close()

    def test_indexes(self):
        c = self.client.idx.c
        c.insert_many([{"_id": i, "a": i, "b": -i, "c": i % 3} for i in range(10)])
        self.assertEqual(c.create_index("a", unique=True), "a_1")
        self.assertEqual(c.create_index([("b", 1), ("c", -1)]), "b_1_c_-1")
        self.assertEqual(c.create_index([("c", pymongo.DESCENDING)]), "c_-1")
        info = {i["name"]: i for i in c.list_indexes()}
        self.assertEqual(sorted(info), ["_id_", "a_1", "b_1_c_-1", "c_-1"])
        self.assertTrue(info["a_1"].get("unique"))
        self.assertEqual(dict(info["b_1_c_-1"]["key"]), {"b": 1, "c": -1})
        with self.assertRaises(DuplicateKeyError) as cm:
            c.insert_one({"_id": 100, "a": 3})
        self.assertEqual(cm.exception.code, 11000)
        self.assertIn("E11000 duplicate key error collection: idx.c index: a_1 dup key: { a: 3 }",
                      str(cm.exception))
        u = self.client.idx.u
        u.create_index([("name", 1), ("n", -1)], unique=True)
        u.insert_one({"name": "x", "n": 1})
        with self.assertRaises(DuplicateKeyError) as cm:
            u.insert_one({"name": "x", "n": 1})
        self.assertIn('collection: idx.u index: name_1_n_-1 dup key: { name: "x", n: 1 }', str(cm.exception))
        # Sorting on the descending index and filtering on the compound one return correct results.
        self.assertEqual([d["_id"] for d in c.find({"c": 2}).sort("c", -1)], [2, 5, 8])
        self.assertEqual([d["_id"] for d in c.find({"b": {"$lt": -7}}).sort("b", 1)], [9, 8])
        # A write with w:3 is applied after the index builds on every secondary (oplog order).
        c.with_options(write_concern=W_ALL).insert_one({"_id": 200, "a": 200})
        for s in self.secondaries:
            names = sorted(i["name"] for i in s.idx.c.list_indexes())
            self.assertEqual(names, ["_id_", "a_1", "b_1_c_-1", "c_-1"])
        c.drop_index("c_-1")
        self.assertEqual(sorted(i["name"] for i in c.list_indexes()), ["_id_", "a_1", "b_1_c_-1"])
        c.with_options(write_concern=W_ALL).insert_one({"_id": 201, "a": 201})
        for s in self.secondaries:
            self.assertEqual(sorted(i["name"] for i in s.idx.c.list_indexes()), ["_id_", "a_1", "b_1_c_-1"])
        # The unique index is enforced after the drop of another index too.
        with self.assertRaises(DuplicateKeyError):
            c.insert_one({"_id": 101, "a": 200})

    def test_majority_write_visible_on_secondaries(self):
        c = self.client.vis.c.with_options(write_concern=WriteConcern("majority"))
        for i in range(20):
            c.insert_one({"_id": i})
            # A majority (primary + at least one secondary) has the write when it returns.
            seen = [s.vis.c.find_one({"_id": i}) is not None for s in self.secondaries]
            self.assertTrue(any(seen), "doc %d on no secondary right after a majority ack" % i)
        # With w:3 every secondary has it at once.
        c.with_options(write_concern=W_ALL).insert_one({"_id": "all"})
        for s in self.secondaries:
            self.assertEqual(s.vis.c.find_one({"_id": "all"}), {"_id": "all"})
            self.assertEqual(s.vis.c.count_documents({}), 21)

    def test_hello_and_status(self):
        hosts = sorted(m.host for m in self.rs.members)
        p = self.rs.primary.client()
        h = p.admin.command("hello")
        self.assertEqual(h["setName"], "rs0")
        self.assertEqual(sorted(h["hosts"]), hosts)
        self.assertEqual(h["primary"], self.rs.primary.host)
        self.assertIs(h["isWritablePrimary"], True)
        self.assertIs(h["secondary"], False)
        self.assertEqual(h["me"], self.rs.primary.host)
        self.assertIn("opTime", h["lastWrite"])
        self.assertIn("majorityOpTime", h["lastWrite"])
        self.assertIsInstance(h["lastWrite"]["opTime"]["ts"], bson.Timestamp)
        for m, s in zip(self.rs.members[1:], self.secondaries):
            h = s.admin.command("hello")
            self.assertEqual(h["setName"], "rs0")
            self.assertIs(h["isWritablePrimary"], False)
            self.assertIs(h["secondary"], True)
            self.assertEqual(h["primary"], self.rs.primary.host)
            self.assertEqual(h["me"], m.host)
        st = p.admin.command("replSetGetStatus")
        self.assertEqual(st["set"], "rs0")
        self.assertEqual(st["myState"], 1)
        self.assertEqual(sorted(x["name"] for x in st["members"]), hosts)
        by_name = {x["name"]: x for x in st["members"]}
        self.assertEqual(by_name[self.rs.primary.host]["stateStr"], "PRIMARY")
        self.assertTrue(by_name[self.rs.primary.host].get("self"))
        for m in self.rs.members[1:]:
            self.assertEqual(by_name[m.host]["stateStr"], "SECONDARY")
            self.assertEqual(by_name[m.host]["state"], 2)
            self.assertEqual(by_name[m.host]["health"], 1)
        self.assertIn("optimes", st)
        p.close()

    def test_secondary_rejects_write_and_unflagged_read(self):
        s = self.secondaries[0]
        with self.assertRaises(PyMongoError) as cm:
            s.sec.c.insert_one({"x": 1})
        self.assertEqual(cm.exception.details["code"], 10107)
        reply = raw_command(self.rs.members[1].port, "sec", {"find": "c", "filter": {}})
        self.assertEqual(reply.get("ok"), 0)
        self.assertEqual(reply.get("code"), 13435, reply)
        # With a read preference that permits secondaries the same read works.
        reply = raw_command(self.rs.members[1].port, "sec",
                            {"find": "c", "filter": {}, "$readPreference": {"mode": "secondaryPreferred"}})
        self.assertEqual(reply.get("ok"), 1, reply)
        # The primary itself accepts a read without a read preference.
        reply = raw_command(self.rs.primary.port, "sec", {"find": "c", "filter": {}})
        self.assertEqual(reply.get("ok"), 1, reply)


def member_ids(m, db, coll):
    with secondary_client(m) as c:
        return sorted(d["_id"] for d in c[db][coll].find({}, {"_id": 1}))


class ReplSetRestartTest(unittest.TestCase):
    """Restarts and a killed primary; a fresh set per test."""

    def setUp(self):
        self.tmp = TempDir()
        self.rs = ReplSet(self.tmp.__enter__()).start()

    def tearDown(self):
        self.rs.kill()
        self.tmp.__exit__(None, None, None)

    def test_restart_every_member(self):
        with self.rs.client() as c:
            coll = c.rr.c.with_options(write_concern=W_ALL)
            coll.insert_many([{"_id": i, "v": "x" * 100} for i in range(500)])
            coll.create_index("v")
        expected = list(range(500))
        for m in self.rs.members[1:] + [self.rs.primary]:
            self.assertEqual(m.stop(), 0, "exit code of a SIGTERM shutdown")
            m.start()
            self.rs.wait_healthy()
        for m in self.rs.members:
            self.assertEqual(member_ids(m, "rr", "c"), expected, m.host)
            with secondary_client(m) as sc:
                self.assertIn("v_1", [i["name"] for i in sc.rr.c.list_indexes()])
        with self.rs.client() as c:
            c.rr.c.with_options(write_concern=W_ALL).insert_one({"_id": 1000})
        for m in self.rs.members[1:]:
            with secondary_client(m) as sc:
                self.assertEqual(sc.rr.c.find_one({"_id": 1000}), {"_id": 1000})

    def test_primary_killed(self):
        with self.rs.client() as c:
            c.pk.c.with_options(write_concern=W_ALL).insert_one({"_id": 1})
        p = self.rs.primary
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait()
        secs = [secondary_client(m) for m in self.rs.members[1:]]
        try:
            for s in secs:
                def unhealthy():
                    st = s.admin.command("replSetGetStatus")
                    me = [x for x in st["members"] if x["name"] == p.host][0]
                    return me if me["health"] == 0 else None
                me = wait_until(unhealthy, 30, what="killed primary reported unhealthy")
                self.assertEqual(me["stateStr"], "(not reachable/healthy)")
                wait_until(lambda: "primary" not in s.admin.command("hello"), 30,
                           what="hello without a primary")
                h = s.admin.command("hello")
                self.assertNotIn("primary", h)
                self.assertIs(h["isWritablePrimary"], False)
            p.start()
            self.rs.wait_healthy()
            with p.client() as pc:
                self.assertTrue(pc.admin.command("hello")["isWritablePrimary"])
            for s in secs:
                wait_until(lambda: s.admin.command("hello").get("primary") == p.host, 30,
                           what="secondary sees the primary again")
            with self.rs.client() as c:
                c.pk.c.with_options(write_concern=W_ALL).insert_one({"_id": 2})
            for m in self.rs.members:
                self.assertEqual(member_ids(m, "pk", "c"), [1, 2])
        finally:
            for s in secs:
                s.close()


if __name__ == "__main__":
    unittest.main()
