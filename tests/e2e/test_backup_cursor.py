"""$backupCursor / $backupCursorExtend: copying the listed files while writes continue gives the
data as of one point between the checkpoint and the extend timestamp, as Percona Server's backup
cursor does. Also the restore knobs PBM relies on: oplogTruncateAfterPoint,
recoverFromOplogAsStandalone, takeUnstableCheckpointOnShutdown and a rewritten replset config.
"""
import os
import shutil
import threading
import time
import unittest

import pymongo
from bson.timestamp import Timestamp
from pymongo import WriteConcern
from pymongo.errors import OperationFailure

import harness as h


class Writer:
    """Inserts sequential _id with w:"majority" until stopped; `acked` counts acknowledgements."""

    def __init__(self, client):
        self.coll = client.test.get_collection("w", write_concern=WriteConcern(w="majority"))
        self.acked = 0
        self.stop = False
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        try:
            while not self.stop:
                self.coll.insert_one({"_id": i, "pad": "x" * 200})
                i += 1
                self.acked = i
        except Exception as e:  # reported by the test
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(30)


def open_backup_cursor(client):
    """Returns (cursor, metadata, files): the first batch holds every document."""
    cur = client.admin.aggregate([{"$backupCursor": {}}], batchSize=100000)
    meta = cur.next()["metadata"]
    files = []
    while cur._CommandCursor__data:  # the rest of the first batch; getMore would wait
        files.append(cur.next())
    return cur, meta, files


def restore_copy(copy, truncate_at, args=()):
    """PBM's restore of a copied dbpath: truncate the oplog after the point, replay it as a
    standalone, and return the documents of test.w."""
    m = h.Mongod(copy, args=list(args)).start()
    c = m.client()
    c.local.replset.oplogTruncateAfterPoint.replace_one(
        {"_id": "oplogTruncateAfterPoint"},
        {"_id": "oplogTruncateAfterPoint", "oplogTruncateAfterPoint": truncate_at}, upsert=True)
    assert m.stop() == 0
    m = h.Mongod(copy, args=list(args) + [
        "--setParameter", "recoverFromOplogAsStandalone=true",
        "--setParameter", "takeUnstableCheckpointOnShutdown=true"]).start()
    c = m.client()
    # recoverFromOplogAsStandalone leaves the node read-only.
    try:
        c.test.other.insert_one({"x": 1})
        raise AssertionError("a write succeeded on a recoverFromOplogAsStandalone node")
    except OperationFailure as e:
        assert "read-only" in str(e), e
    assert m.stop() == 0
    m = h.Mongod(copy, args=list(args)).start()
    c = m.client()
    ids = [d["_id"] for d in c.test.w.find({}, {"_id": 1}).sort("_id", 1)]
    top = c.local.oplog.rs.find_one(sort=[("$natural", -1)])
    m.stop()
    return ids, top


class BackupCursorTest(unittest.TestCase):

    def backup_during_writes(self, tmp, args, members=3):
        rs = h.ReplSet(os.path.join(tmp, "rs"), members, args=["--syncdelay", "1"] + list(args))
        rs.start()
        try:
            client = rs.client()
            with Writer(client) as w:
                h.wait_until(lambda: w.acked >= 200, 60, what="200 writes")
                node = rs.members[-1]  # a secondary (or the only member)
                nc = node.client()
                before = w.acked
                cur, meta, files = open_backup_cursor(nc)
                self.assertEqual(meta["dbpath"], os.path.abspath(node.dbpath))
                names = [os.path.basename(f["filename"]) for f in files]
                self.assertIn("WiredTiger.backup", names)
                self.assertTrue(any(n.startswith("WiredTigerLog.") for n in names), names)
                self.assertTrue(any(n.startswith("collection-") for n in names), names)
                h.wait_until(lambda: w.acked >= before + 200, 60, what="writes during the copy")
                copy = os.path.join(tmp, "copy")
                os.makedirs(copy)
                h.copy_backup_files(files, copy, meta["dbpath"])
                shutil.copy(os.path.join(meta["dbpath"], "storage.bson"), copy)
                # Extend to the replica set's majority point, as PBM does.
                hello = rs.primary.client().admin.command("hello")
                ts = hello["lastWrite"]["majorityOpTime"]["ts"]
                ext = list(nc.admin.aggregate(
                    [{"$backupCursorExtend": {"backupId": meta["backupId"], "timestamp": ts}}]))
                self.assertTrue(ext and all("journal" in f["filename"] for f in ext), ext)
                h.copy_backup_files(ext, copy, meta["dbpath"])
                after = w.acked
                cur.close()
            self.assertIsNone(w.error)
            checkpoint = meta["checkpointTimestamp"]
            self.assertLessEqual(checkpoint, ts)
        finally:
            rs.stop()
        ids, top = restore_copy(copy, ts, args)
        k = len(ids)
        self.assertEqual(ids, list(range(k)), "the restored documents have a gap")
        self.assertGreaterEqual(k, before, "writes acknowledged before the backup are missing")
        self.assertLessEqual(k, after, "the restore holds writes acknowledged after the backup")
        self.assertEqual(top["ts"], ts, "the oplog does not end at the extend timestamp")
        self.assertGreaterEqual(top["ts"], checkpoint)

    def test_backup_consistent_point_three_members(self):
        with h.TempDir() as tmp:
            self.backup_during_writes(tmp, [])

    def test_backup_each_compressor(self):
        for comp in ("none", "snappy", "zlib", "zstd"):
            with self.subTest(compressor=comp), h.TempDir() as tmp:
                self.backup_during_writes(tmp, [
                    "--wiredTigerCollectionBlockCompressor", comp,
                    "--wiredTigerJournalCompressor", comp], members=1)

    def test_backup_encrypted(self):
        for mode in ("AES256-CBC", "AES256-GCM"):
            with self.subTest(cipher=mode), h.TempDir() as tmp:
                key = os.path.join(tmp, "key")
                h.make_keyfile(key)
                self.backup_during_writes(tmp, [
                    "--enableEncryption", "--encryptionKeyFile", key,
                    "--encryptionCipherMode", mode], members=1)

    def test_one_cursor_at_a_time_and_timeout(self):
        with h.TempDir() as tmp:
            rs = h.ReplSet(os.path.join(tmp, "rs"), 1, args=[
                "--setParameter", "cursorTimeoutMillis=5000"]).start()
            try:
                c = rs.primary.client()
                c.test.x.insert_one({"a": 1})
                cur, meta, files = open_backup_cursor(c)
                with self.assertRaises(OperationFailure) as e:
                    open_backup_cursor(c)
                self.assertEqual(e.exception.code, 50886)
                # getMore keeps it alive past the timeout (8 s of getMores 0.5 s apart).
                cid = cur.cursor_id
                for _ in range(16):
                    r = c.admin.command("getMore", cid, collection="$cmd.aggregate")
                    self.assertEqual(r["cursor"]["nextBatch"], [])
                    time.sleep(0.5)
                with self.assertRaises(OperationFailure):
                    open_backup_cursor(c)
                # killCursors releases it.
                c.admin.command("killCursors", "$cmd.aggregate", cursors=[cid])
                cur2, meta2, _ = open_backup_cursor(c)
                self.assertNotEqual(meta2["backupId"], meta["backupId"])
                # Left idle, it times out and a new one can be opened.
                h.wait_until(lambda: open_backup_cursor(c), 30, interval=0.5,
                             what="the idle backup cursor to time out")
                # A wrong backupId cannot be extended.
                with self.assertRaises(OperationFailure):
                    list(c.admin.aggregate([{"$backupCursorExtend": {
                        "backupId": meta["backupId"], "timestamp": Timestamp(1, 1)}}]))
            finally:
                rs.stop()

    def test_restored_copy_starts_as_a_new_replica_set(self):
        """The last restore step: the standalone writes a new config and the node comes up as
        PRIMARY of it with the data."""
        with h.TempDir() as tmp:
            rs = h.ReplSet(os.path.join(tmp, "rs"), 1, args=["--syncdelay", "1"]).start()
            c = rs.client()
            c.test.w.insert_many([{"_id": i} for i in range(100)])
            cur, meta, files = open_backup_cursor(rs.primary.client())
            copy = os.path.join(tmp, "copy")
            h.copy_backup_files(files, copy, meta["dbpath"])
            shutil.copy(os.path.join(meta["dbpath"], "storage.bson"), copy)
            ts = rs.primary.client().admin.command("hello")["lastWrite"]["majorityOpTime"]["ts"]
            ext = list(rs.primary.client().admin.aggregate(
                [{"$backupCursorExtend": {"backupId": meta["backupId"], "timestamp": ts}}]))
            h.copy_backup_files(ext, copy, meta["dbpath"])
            cur.close()
            rs.stop()
            ids, _ = restore_copy(copy, ts)
            self.assertEqual(ids, list(range(100)))
            m = h.Mongod(copy)
            sc = m.start().client()
            sc.local.system.replset.delete_many({})
            sc.local.system.replset.insert_one({
                "_id": "rs9", "version": 1, "term": 1, "protocolVersion": 1,
                "members": [{"_id": 0, "host": m.host}]})
            m.stop()
            m = h.Mongod(copy, port=m.port, replset="rs9").start()
            h.wait_until(lambda: m.client().admin.command("hello").get("isWritablePrimary"), 30,
                         what="the restored node to become PRIMARY")
            mc = m.client()
            self.assertEqual(mc.test.w.count_documents({}), 100)
            mc.test.w.insert_one({"_id": 100}, )
            self.assertEqual(mc.test.w.count_documents({}), 101)
            m.stop()

    def test_truncate_point_before_stable_checkpoint_refused(self):
        """Truncating below the data's stable checkpoint cannot be honoured: a clear error."""
        with h.TempDir() as tmp:
            rs = h.ReplSet(os.path.join(tmp, "rs"), 1, args=["--syncdelay", "1"]).start()
            c = rs.client()
            first = c.local.oplog.rs.find_one()["ts"]
            c.test.w.insert_many([{"_id": i} for i in range(10)])
            time.sleep(2.5)  # two checkpoints: the stable one is past `first`
            rs.stop()
            node = rs.members[0]
            m = h.Mongod(node.dbpath).start()
            m.client().local.replset.oplogTruncateAfterPoint.insert_one(
                {"_id": "oplogTruncateAfterPoint", "oplogTruncateAfterPoint": first})
            m.stop()
            code, err = h.Mongod(node.dbpath, args=[
                "--setParameter", "recoverFromOplogAsStandalone=true"]).run_to_exit()
            self.assertNotEqual(code, 0)
            self.assertIn("oplogTruncateAfterPoint", err + h.Mongod(node.dbpath).log())


if __name__ == "__main__":
    unittest.main()
