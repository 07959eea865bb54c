"""Physical backup and restore under faults, as a user meets them on devcluster pods:

- the agent running a backup is killed (-9): the backup ends `error` (never `done`), its lock is
  taken over once stale and the next backup succeeds; while it ran, a second operation was refused;
- an object of a backup is corrupted on the storage: the restore fails naming it, and every member
  keeps serving its current data with its entrypoint in place;
- an agent is killed (-9) in the middle of a restore's download: when it restarts, its member's
  old data and entrypoint are back, the other members roll back too, the set is healthy on the
  pre-restore data and the restore is `error` (the download goes to a staging directory, so no
  mongod stopped);
- an agent is killed (-9) while its mongod is down and the temporary mongod recovers the new data:
  the container's restarts fail meanwhile (entrypoint hidden, the supervisor's log); when the agent
  restarts, the old data and the entrypoint are back and the whole set rolls back.
"""
import hashlib
import json
import os
import signal
import subprocess
import time
import unittest

import pymongo
from bson.binary import Binary
from pymongo import WriteConcern

import harness as h
from test_devcluster import Cluster, alive
from test_physical import ClusterTestBase

PBM = os.path.join(h.BIN, "pbm")
STATE_FILE = ".pbm-restore.json"  # node_restore.h kStateFileName
STALE_SECS = 30                   # control.h kLockStaleSecs


class FaultsTest(ClusterTestBase):
    PREFIX = "physical-faults-"

    def setUp(self):
        self.started = time.time()
        super().setUp()

    def tearDown(self):
        super().tearDown()
        print("\n  %s: %.1f s" % (self.id().split(".")[-1], time.time() - self.started), flush=True)

    # ---- helpers -------------------------------------------------------------------------------

    def up(self):
        p = self.cluster.run("up", "--dir", self.cluster.dir, "--members", "3", "--mongod",
                             h.WTMONGOD, "--backoff-initial-ms", "200", "--backoff-max-ms", "1000",
                             "--detach", "--", "--syncdelay", "2")
        self.assertEqual(p.returncode, 0, p.stderr + self.cluster.log())
        self.uri = self.cluster.info()["uri"]
        h.wait_until(lambda: sum(a["ok"] for a in self.status()["cluster"]) == 3, 60,
                     what="three healthy agents in pbm status")
        self.pbm("config", "--file", self.cfg, check=True)

    def pbm(self, *args, check=False, timeout=300):
        p = subprocess.run([PBM, *args], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PBM_MONGODB_URI=self.uri))
        if check and p.returncode != 0:
            raise AssertionError("pbm %s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                               p.stdout, p.stderr))
        return p

    def status(self):
        return json.loads(self.pbm("status", "--out", "json", check=True).stdout)

    def backup_status(self, name):
        return json.loads(self.pbm("describe-backup", name, "--out", "json", check=True).stdout)

    def describe_restore(self, name):
        return json.loads(self.pbm("describe-restore", name, "-c", self.cfg, "--out", "json",
                                   check=True).stdout)

    def client(self):
        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=30000)

    def direct(self, member):
        return pymongo.MongoClient(member["host"], directConnection=True,
                                   readPreference="secondaryPreferred",
                                   serverSelectionTimeoutMS=20000)

    def members(self):
        return self.cluster.info()["members"]

    def load(self, mb, coll="big"):
        """Inserts `mb` MiB of incompressible documents (1 MiB each, w:majority); the oplog holds
        them again, so the dbpath grows by about twice that."""
        c = self.client()
        w = c.test.get_collection(coll, write_concern=WriteConcern(w="majority"))
        for i in range(0, mb, 8):
            w.insert_many([{"_id": j, "b": Binary(os.urandom(1 << 20))}
                           for j in range(i, min(i + 8, mb))])
        c.close()

    def snapshot(self, member):
        """What a user reads from one member: big's ids, and every document of the small
        collections, hashed."""
        with self.direct(member) as c:
            ids = sorted(d["_id"] for d in c.test.big.find({}, {"_id": 1}))
            small = {}
            for name in sorted(c.test.list_collection_names()):
                if name == "big":
                    continue
                docs = list(c.test[name].find({}).sort("_id", 1))
                small[name] = hashlib.sha256(repr(docs).encode()).hexdigest()
            return {"big_ids": ids, "small": small}

    def host_to_member(self, host):
        return next(m for m in self.members() if m["host"] == host)

    def roles(self):
        """host -> PRIMARY/SECONDARY from pbm status."""
        return {a["host"]: a["role"] for a in self.status()["cluster"]}

    def entrypoints_in_place(self):
        for m in self.members():
            ep = os.path.join(m["dbpath"], "ps-entry.sh")
            self.assertTrue(os.access(ep, os.X_OK), "entrypoint missing: " + ep)
            leftovers = [e for e in os.listdir(m["dbpath"]) if e.startswith(".") and "pbm" in e]
            self.assertEqual(leftovers, [], "restore leftovers in " + m["dbpath"])

    def log_since(self, mark):
        return self.cluster.log()[mark:]

    @staticmethod
    def restore_name(out):
        for tok in out.replace("'", " ").split():
            if tok.startswith("20") and tok.endswith("Z"):
                return tok
        raise AssertionError("no restore name in: " + out)

    # ---- kill -9 of the agent running a backup ---------------------------------------------------

    def test_agent_killed_mid_backup(self):
        self.up()
        small = self.pbm("backup", "--type=physical", "--wait", check=True)
        first = json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"][0]["name"]
        self.assertIn(first, small.stdout)
        self.load(160)
        # gzip of incompressible data is slow enough to be caught in the middle.
        p = self.pbm("backup", "--type=physical", "--compression=gzip", "--out", "json", check=True)
        name = json.loads(p.stdout)["name"]

        def running():
            r = [x for x in self.status()["running"] if x["type"] == "backup"]
            return r[0] if r else None
        lock = h.wait_until(running, 60, interval=0.1, what="the backup's lock in pbm status")
        self.assertFalse(lock["stale"])
        # Progress while it runs: bytes read of the bytes the backup cursor listed, a rate, an ETA.
        prog = h.wait_until(lambda: (running() or {}).get("progress", {}).get("bytes_done", 0) > 0
                            and running()["progress"], 30, interval=0.2, what="backup progress")
        self.assertEqual(running()["name"], name)
        self.assertGreater(prog["bytes_total"], 100 << 20)
        self.assertLessEqual(prog["bytes_done"], prog["bytes_total"])
        self.assertIn("progress", self.backup_status(name))
        self.assertEqual(self.backup_status(name)["status"], "running",
                         "the backup should still run (load more data?)")
        # A second operation while one runs is refused with a clear message.
        second = self.pbm("backup", "--type=physical")
        self.assertNotEqual(second.returncode, 0, second.stdout)
        self.assertIn("another operation is running", second.stderr)
        self.assertIn(lock["node"], second.stderr)
        rest = self.pbm("restore", first)
        self.assertNotEqual(rest.returncode, 0, rest.stdout)
        self.assertIn("another operation is running", rest.stderr)
        # kill -9 the agent holding the lock, while its backup runs.
        victim = self.host_to_member(lock["node"])
        old_pid = victim["agent_pid"]
        self.assertEqual(self.backup_status(name)["status"], "running",
                         "the backup ended before the kill (load more data?)")
        os.kill(old_pid, signal.SIGKILL)
        killed_at = time.time()
        # devcluster restarts the agent (a new pid); the dead one's lock stays until stale.
        h.wait_until(lambda: self.host_to_member(lock["node"])["agent_pid"] not in (None, old_pid)
                     and alive(self.host_to_member(lock["node"])["agent_pid"]), 30,
                     what="the agent restarted by devcluster")
        held = [x for x in self.status()["running"] if x["opid"] == lock["opid"]]
        self.assertEqual(len(held), 1, "the killed agent's lock vanished before it went stale")
        # The backup ends `error` with the reason, never `done`.
        seen = []

        def ended():
            s = self.backup_status(name)["status"]
            seen.append(s)
            return s in ("error", "done")
        h.wait_until(ended, STALE_SECS + 40, interval=0.5, what="the killed backup to end")
        self.assertNotIn("done", seen)
        desc = self.backup_status(name)
        self.assertEqual(desc["status"], "error")
        self.assertIn("heartbeat", desc.get("error", ""))
        self.assertGreaterEqual(time.time() - killed_at, STALE_SECS - 10,
                                "failed before the heartbeat could be stale")
        # Once the lock is stale, a new backup takes it over and completes.
        h.wait_until(lambda: all(x["stale"] for x in self.status()["running"]), 30,
                     what="the dead backup's lock to be stale")
        # The new backup runs on the same node: the other agents are frozen meanwhile. mongod
        # still holds the dead agent's backup cursor (its idle timeout is 10 minutes) and allows
        # only one; the backup must not fail because of it.
        others = [m["agent_pid"] for m in self.members() if m["host"] != lock["node"]]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            again = self.pbm("backup", "--type=physical", "--compression=zstd", "--wait",
                             "--wait-time", "180", timeout=240)
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr + self.cluster.log()[-3000:])
        snaps = {s["name"]: s for s in json.loads(self.pbm("list", "--out", "json",
                                                           check=True).stdout)["snapshots"]}
        self.assertEqual(snaps[name]["status"], "error")
        newest = max(n for n in snaps if n != name and n != first)
        self.assertEqual(snaps[newest]["status"], "done")
        self.assertEqual(self.backup_status(newest)["replsets"][0]["node"], lock["node"])
        self.assertEqual(self.status()["running"], [], "the lock was not released after the backup")
        with self.client() as c:
            logs = [d["msg"] for d in c.admin.pbmLog.find({"event": "lock"})]
        self.assertTrue(any("took over the stale lock of operation " + lock["opid"] in m for m in logs),
                        logs)
        with self.client() as c:
            logs = [d["msg"] for d in c.admin.pbmLog.find({"event": "backup", "level": "W"})]
        self.assertTrue(any("closed the backup cursor" in m and name in m for m in logs), logs)
        # The killed backup stays `error` (the dead agent's work never turns into `done`).
        self.assertEqual(self.backup_status(name)["status"], "error")
        # delete-backup removes what the dead agent left on the storage.
        partial = os.path.join(self.store, name)
        self.assertTrue(os.path.isdir(partial) and os.listdir(partial))
        self.pbm("delete-backup", name, "--yes", check=True)
        self.assertFalse(os.path.exists(partial))
        self.assertFalse(os.path.exists(partial + ".pbm.json"))
        self.assertNotIn(name, [s["name"] for s in json.loads(
            self.pbm("list", "--out", "json", check=True).stdout)["snapshots"]])

    # ---- a corrupted object ------------------------------------------------------------------

    def test_corrupted_object_refused(self):
        self.up()
        c = self.client()
        c.test.keep.insert_many([{"_id": i, "v": "x" * 100} for i in range(2000)])
        self.pbm("backup", "--type=physical", "--compression=zstd", "--wait", check=True)
        name = json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"][0]["name"]
        # The data after the backup: what every member must still serve afterwards.
        c.test.get_collection("after", write_concern=WriteConcern(w=3)).insert_many(
            [{"_id": i} for i in range(100)])
        c.close()
        before = {m["host"]: self.snapshot(m) for m in self.members()}
        self.assertIn("after", before[self.members()[0]["host"]]["small"])
        # Flip one byte in the middle of the largest data object (not the metadata).
        with open(os.path.join(self.store, name, "rs0", "filelist.pbm")) as f:
            files = json.load(f)["files"]
        victim = max(files, key=lambda x: x["stored_size"])
        obj = os.path.join(self.store, victim["object"])
        with open(obj, "r+b") as f:
            f.seek(victim["stored_size"] // 2)
            b = f.read(1)
            f.seek(victim["stored_size"] // 2)
            f.write(bytes([b[0] ^ 0x5A]))
        pids = {m["host"]: m["mongod_pid"] for m in self.members()}
        mark = len(self.cluster.log())
        r = self.pbm("restore", name, "--wait", "--wait-time", "180", timeout=240)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(victim["name"] in r.stderr or victim["object"] in r.stderr, r.stderr)
        rname = self.restore_name(r.stdout + r.stderr)
        self.assertEqual(self.describe_restore(rname)["status"], "error")
        # Every member serves its current data, unchanged, with its entrypoint in place.
        self.cluster.wait_healthy(120)
        self.entrypoints_in_place()
        for m in self.members():
            h.wait_until(lambda: self.snapshot(m) == before[m["host"]], 60,
                         what="the pre-restore data on " + m["host"])
        with self.client() as c2:
            c2.test.after2.insert_one({"ok": 1})
        # Refused before replacing data: no member's mongod was stopped or restarted.
        log = self.log_since(mark)
        self.assertNotIn("container mongod: pid", log, "a mongod exited during the refused restore")
        self.assertEqual({m["host"]: m["mongod_pid"] for m in self.members()}, pids, log)

    # ---- kill -9 of an agent during the restore's download ----------------------------------

    @staticmethod
    def restore_phase(dbpath):
        """The phase in the node's restore state file ("" without one)."""
        try:
            with open(os.path.join(dbpath, STATE_FILE)) as f:
                return json.load(f).get("phase", "")
        except (OSError, ValueError):
            return ""

    def prepare_restore(self, mb):
        """A backup, then changes after it (which the restore would remove); returns the backup's
        name and what every member serves before the restore."""
        self.up()
        if mb:
            self.load(mb)
        c = self.client()
        c.test.keep.insert_many([{"_id": i, "v": "k%d" % i} for i in range(1000)])
        self.pbm("backup", "--type=physical", "--compression=none", "--wait", check=True)
        name = json.loads(self.pbm("list", "--out", "json", check=True).stdout)["snapshots"][0]["name"]
        c.test.get_collection("after", write_concern=WriteConcern(w=3)).insert_many(
            [{"_id": i} for i in range(100)])
        c.test.get_collection("keep", write_concern=WriteConcern(w=3)).delete_many({"_id": {"$lt": 10}})
        c.close()
        return name, {m["host"]: self.snapshot(m) for m in self.members()}

    def restore_killing_agent(self, name, victim, when, what, succeeds=False):
        """Runs pbm restore --wait, kill -9s the victim's agent once `when(victim)` holds, and
        returns the restore's name once pbm has failed (or, with `succeeds`, succeeded)."""
        old_pid = victim["agent_pid"]
        proc = subprocess.Popen([PBM, "restore", name, "--wait", "--wait-time", "200"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PBM_MONGODB_URI=self.uri))
        try:
            h.wait_until(lambda: when(victim), 120, interval=0.02, what=what)
            os.kill(old_pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=220)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if succeeds:
            self.assertEqual(proc.returncode, 0, out + err)
        else:
            self.assertNotEqual(proc.returncode, 0, out + err)
            self.assertIn("failed", err)
        return self.restore_name(out + err)

    def assert_rolled_back(self, rname, victim, before):
        """Every member back on its pre-restore data with its entrypoint, the set healthy, the
        victim's agent restarted, the restore `error` with the victim's reason."""
        self.cluster.wait_healthy(120)
        self.assertNotEqual(self.host_to_member(victim["host"])["agent_pid"], victim["agent_pid"])
        self.entrypoints_in_place()
        for m in self.members():
            h.wait_until(lambda: self.snapshot(m) == before[m["host"]], 60,
                         what="the pre-restore data on " + m["host"])
        d = h.wait_until(lambda: (lambda d: d if d["status"] == "error" else None)(
            self.describe_restore(rname)), 60, what="restore status error")
        node = next(n for n in d["nodes"] if n["host"] == victim["host"])
        self.assertEqual(node["status"], "error", d)
        self.assertIn("the agent stopped", node.get("error", ""), d)
        with self.client() as c:
            c.test.get_collection("after2", write_concern=WriteConcern(w=3)).insert_one({"ok": 1})

    def test_agent_killed_mid_download(self):
        name, before = self.prepare_restore(128)
        roles = self.roles()
        victim = next(m for m in self.members() if roles[m["host"]] == "SECONDARY")
        mark = len(self.cluster.log())
        rname = self.restore_killing_agent(
            name, victim, lambda v: self.restore_phase(v["dbpath"]) in ("staging", "downloading"),
            "the download on " + victim["host"])
        self.assert_rolled_back(rname, victim, before)
        # The download comes before any mongod stops: none did.
        self.assertNotIn("container mongod: pid", self.log_since(mark))

    def test_agent_killed_while_mongod_down(self):
        """kill -9 once the member's mongod is down and its data replaced (the temporary mongod
        recovers it): the restart of the agent puts the old data and the entrypoint back."""
        name, before = self.prepare_restore(0)
        roles = self.roles()
        victim = next(m for m in self.members() if roles[m["host"]] == "SECONDARY")
        pod = victim["name"]
        mark = len(self.cluster.log())
        rname = self.restore_killing_agent(
            name, victim, lambda v: self.restore_phase(v["dbpath"]) in ("moving_in", "recovering"),
            "the recovery on " + victim["host"])
        self.assert_rolled_back(rname, victim, before)
        # While the data was out, the container's restarts failed (entrypoint hidden); then it
        # started again on the old data.
        log = self.log_since(mark)
        pod_log = [l for l in log.splitlines() if " pod %s container mongod:" % pod in l]
        failed = [i for i, l in enumerate(pod_log) if "start failed: exec" in l
                  and "No such file or directory" in l]
        self.assertTrue(failed, log[-3000:])
        self.assertTrue(any("restart #" in l for l in pod_log[failed[-1]:]), log[-3000:])

    def test_agent_killed_after_commit(self):
        """kill -9 of an agent right after its member committed (a failpoint holds the agent
        there): the restarted agent completes the commit (entrypoint back, old data dropped) and
        reports the member done, so the restore ends done, not error, and every member serves
        the backup's data. The victim is the plan's first member, the one that records the
        result in the cluster: its restarted agent records it."""
        os.environ["PBM_FAILPOINT_PAUSE_AFTER_COMMIT_SECS"] = "6"
        try:
            name, before = self.prepare_restore(0)
        finally:
            del os.environ["PBM_FAILPOINT_PAUSE_AFTER_COMMIT_SECS"]
        with self.client() as c:
            first = c.admin.command("replSetGetConfig")["config"]["members"][0]["host"]
        victim = self.host_to_member(first)
        old_pid = victim["agent_pid"]
        rname = self.restore_killing_agent(
            name, victim, lambda v: self.restore_phase(v["dbpath"]) == "committed",
            "the commit on " + victim["host"], succeeds=True)
        d = self.describe_restore(rname)
        self.assertEqual(d["status"], "done", d)
        self.assertEqual([n["status"] for n in d["nodes"]], ["done"] * 3, d)
        self.assertNotEqual(self.host_to_member(victim["host"])["agent_pid"], old_pid)
        self.cluster.wait_healthy(120)
        self.entrypoints_in_place()
        # The result is in the cluster (recorded by the victim's restarted agent).
        with self.client() as c:
            rec = h.wait_until(lambda: (lambda r: r if r and r["status"] == "done" else None)(
                c.admin.pbmRestores.find_one({"name": rname})), 30,
                what="the restore recorded done in the cluster")
            self.assertEqual(rec["backup"], name)
        # The backup's data everywhere: what came after it is gone.
        for m in self.members():
            h.wait_until(lambda: self.snapshot(m) != before[m["host"]], 60,
                         what="the restored data on " + m["host"])
            with self.direct(m) as c:
                self.assertNotIn("after", c.test.list_collection_names())
                self.assertEqual(c.test.keep.count_documents({}), 1000)


if __name__ == "__main__":
    unittest.main()
