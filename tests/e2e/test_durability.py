"""Durability: kill -9 mid-write (replica set and standalone), the lock file, clean shutdown paths."""
import os
import signal
import threading
import unittest

import pymongo
from pymongo import WriteConcern
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure

from harness import Mongod, ReplSet, TempDir, wait_until


class Writer(threading.Thread):
    """Inserts {_id: 0, 1, 2, ...} one by one; remembers every acknowledged _id; stops at the first error."""

    def __init__(self, coll):
        super().__init__(daemon=True)
        self.coll = coll
        self.acked = []
        self.error = None
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.coll.insert_one({"_id": i, "pad": "p" * 200})
            except Exception as e:  # the servers are being killed
                self.error = e
                return
            self.acked.append(i)
            i += 1


def lock_content(dbpath):
    with open(os.path.join(dbpath, "mongod.lock")) as f:
        return f.read()


def ids_on(m, db, coll):
    with pymongo.MongoClient(m.host, directConnection=True, readPreference="secondaryPreferred",
                             serverSelectionTimeoutMS=10000) as c:
        return set(d["_id"] for d in c[db][coll].find({}, {"_id": 1}))


class ReplSetKillTest(unittest.TestCase):
    def test_kill_all_members_mid_stream(self):
        with TempDir() as tmp:
            rs = ReplSet(tmp).start()
            try:
                client = rs.client(retryWrites=False, socketTimeoutMS=20000)
                w = Writer(client.dur.c.with_options(write_concern=WriteConcern("majority")))
                w.start()
                wait_until(lambda: len(w.acked) >= 300, 90, what="300 majority-acknowledged inserts")
                for m in rs.members:  # SIGKILL all at once, while writes are in flight
                    m.proc.send_signal(signal.SIGKILL)
                for m in rs.members:
                    m.proc.wait()
                w.join(30)
                self.assertFalse(w.is_alive())
                self.assertIsNotNone(w.error, "the writer should have seen the servers die")
                acked = set(w.acked)
                client.close()
                for m in rs.members:
                    m.start(wait=False)
                for m in rs.members:
                    m.wait_ready()
                rs.wait_healthy(90)
                for m in rs.members:
                    # The member that was not part of the majority may still be catching up.
                    wait_until(lambda: acked <= ids_on(m, "dur", "c"), 60,
                               what="every acknowledged _id on %s" % m.host)
                    missing = acked - ids_on(m, "dur", "c")
                    self.assertEqual(missing, set(), "acknowledged writes lost on %s" % m.host)
                    self.assertIn("Detected unclean shutdown", m.log())
                # The set takes new majority writes after the crash.
                with rs.client() as c:
                    c.dur.c.with_options(write_concern=WriteConcern(w=3, wtimeout=30000)).insert_one(
                        {"_id": "after"})
                for m in rs.members:
                    self.assertIn("after", ids_on(m, "dur", "c"))
            finally:
                rs.kill()


class StandaloneTest(unittest.TestCase):
    def test_kill9_standalone_mid_write(self):
        with TempDir() as tmp:
            m = Mongod(os.path.join(tmp, "db")).start()
            try:
                self.assertEqual(lock_content(m.dbpath).strip(), str(m.proc.pid))
                client = m.client(retryWrites=False)
                w = Writer(client.dur.c.with_options(write_concern=WriteConcern(w=1, j=True)))
                w.start()
                wait_until(lambda: len(w.acked) >= 500, 60, what="500 journaled inserts")
                m.proc.send_signal(signal.SIGKILL)
                m.proc.wait()
                w.join(30)
                self.assertFalse(w.is_alive())
                acked = set(w.acked)
                client.close()
                # A SIGKILLed process leaves its pid in the lock file.
                self.assertEqual(lock_content(m.dbpath).strip(), str(m.proc.pid))
                self.assertNotIn("Detected unclean shutdown", m.log())
                m.start()
                self.assertIn("Detected unclean shutdown", m.log())
                self.assertEqual(lock_content(m.dbpath).strip(), str(m.proc.pid))
                present = ids_on(m, "dur", "c")
                self.assertEqual(acked - present, set(), "acknowledged j:true writes lost")
                # Clean shutdown empties the lock file, and the next start is not reported unclean.
                self.assertEqual(m.stop(), 0)
                self.assertEqual(lock_content(m.dbpath), "")
                n_unclean = m.log().count("Detected unclean shutdown")
                m.start()
                self.assertEqual(ids_on(m, "dur", "c"), present)
                self.assertEqual(m.stop(), 0)
                self.assertEqual(m.log().count("Detected unclean shutdown"), n_unclean)
            finally:
                m.kill()

    def _shutdown_cmd(self, client, **kw):
        try:
            client.admin.command("shutdown", **kw)
        except (AutoReconnect, ConnectionFailure):
            pass  # the server closes the connection as it goes down

    def test_shutdown_command_standalone(self):
        with TempDir() as tmp:
            m = Mongod(os.path.join(tmp, "db")).start()
            try:
                with m.client() as c:
                    c.t.c.insert_one({"_id": 1})
                    with self.assertRaises(OperationFailure):
                        c.t.command("shutdown")  # only on admin
                    self.assertIsNone(m.proc.poll())
                    self._shutdown_cmd(c)
                self.assertEqual(m.proc.wait(30), 0)
                self.assertEqual(lock_content(m.dbpath), "")
                self.assertIn("Terminating via shutdown command", m.log())
                m.start()
                self.assertEqual(ids_on(m, "t", "c"), {1})
            finally:
                m.kill()

    def test_sigint(self):
        with TempDir() as tmp:
            m = Mongod(os.path.join(tmp, "db")).start()
            try:
                with m.client() as c:
                    c.t.c.insert_one({"_id": 1})
                m.proc.send_signal(signal.SIGINT)
                self.assertEqual(m.proc.wait(30), 0)
                self.assertEqual(lock_content(m.dbpath), "")
                m.start()
                self.assertNotIn("Detected unclean shutdown", m.log())
                self.assertEqual(ids_on(m, "t", "c"), {1})
            finally:
                m.kill()

    def test_shutdown_force_on_primary_with_secondaries_down(self):
        with TempDir() as tmp:
            rs = ReplSet(tmp).start()
            try:
                with rs.client() as c:
                    c.t.c.with_options(write_concern=WriteConcern(w=3, wtimeout=30000)).insert_one({"_id": 1})
                for m in rs.members[1:]:
                    self.assertEqual(m.stop(), 0)
                p = rs.primary
                with p.client() as c:
                    self._shutdown_cmd(c, force=True)
                self.assertEqual(p.proc.wait(30), 0)
                self.assertEqual(lock_content(p.dbpath), "")
                # Everything comes back.
                for m in rs.members:
                    m.start(wait=False)
                for m in rs.members:
                    m.wait_ready()
                rs.wait_healthy()
                for m in rs.members:
                    self.assertEqual(ids_on(m, "t", "c"), {1})
                # A non-forced shutdown of a healthy primary also exits 0 (secondaries are caught up).
                with p.client() as c:
                    self._shutdown_cmd(c)
                self.assertEqual(p.proc.wait(30), 0)
            finally:
                rs.kill()


if __name__ == "__main__":
    unittest.main()
