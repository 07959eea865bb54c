"""devcluster: a replica set of Kubernetes-like pods on one machine.

The user's steps: bring a set up, lose a mongod (the supervisor restarts it), hide the entrypoint
as a physical restore does (the mongod container cannot start and the member stays down), put it
back (the member returns on the next back-off attempt), bring the set down, bring it up again on
the same data.
"""
import json
import os
import signal
import socket
import subprocess
import time
import unittest

import pymongo

from harness import BIN, WTMONGOD, TempDir, free_ports, wait_until

DEVCLUSTER = os.path.join(BIN, "devcluster")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:  # a zombie is not alive
        return f.read().split(")")[-1].split()[0] != "Z"


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def with_ports(args):
    """A new cluster's `up` gets ports claimed for this test process (harness.free_ports):
    devcluster's own choice, the kernel's port-0 ports, could be taken by another test's server
    while a member is down (a restore, a kill) and its port free."""
    args = list(args)
    new = "--dir" in args and not os.path.exists(
        os.path.join(args[args.index("--dir") + 1], "spec.json"))
    if args[:1] == ["up"] and new and "--members" in args and "--base-port" not in args:
        members = int(args[args.index("--members") + 1])
        args[1:1] = ["--base-port", str(free_ports(members)[0])]
    return args


class Cluster:
    """One devcluster directory, driven through the devcluster CLI."""

    def __init__(self, path):
        self.dir = path

    def run(self, *args, timeout=180):
        return subprocess.run([DEVCLUSTER, *with_ports(args)], capture_output=True, text=True,
                              timeout=timeout)

    def up(self, *extra):
        p = self.run("up", "--dir", self.dir, "--members", "3", "--mongod", WTMONGOD,
                     "--no-agents", "--backoff-initial-ms", "200", "--backoff-max-ms", "1000",
                     "--detach", *extra)
        if p.returncode != 0:
            raise AssertionError("devcluster up failed (%d): %s\n%s" % (p.returncode, p.stderr,
                                                                         self.log()))
        return p.stdout.strip()

    def down(self):
        return self.run("down", "--dir", self.dir)

    def info(self):
        with open(os.path.join(self.dir, "cluster.json")) as f:
            return json.load(f)

    def member(self, name):
        return next(m for m in self.info()["members"] if m["name"] == name)

    def log(self):
        try:
            with open(os.path.join(self.dir, "devcluster.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def agent_logs(self, lines=40):
        """The last lines of every member's backup-agent output, for a failure's message."""
        out = []
        try:
            members = self.info()["members"]
        except (OSError, ValueError):
            return ""
        for m in members:
            path = os.path.join(m["pod_dir"], "logs", "backup-agent.out")
            try:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            out.append("--- %s backup-agent:\n%s" % (m["name"], "".join(tail)))
        return "\n".join(out)

    def client(self):
        return pymongo.MongoClient(self.info()["uri"], serverSelectionTimeoutMS=20000)

    def direct(self, name):
        return pymongo.MongoClient(self.member(name)["host"], directConnection=True,
                                   serverSelectionTimeoutMS=5000)

    def states(self):
        """stateStr per member host, as the first member that answers sees them."""
        for m in self.info()["members"]:
            try:
                with pymongo.MongoClient(m["host"], directConnection=True,
                                         serverSelectionTimeoutMS=1000) as c:
                    st = c.admin.command("replSetGetStatus")
                return {x["name"]: x["stateStr"] for x in st["members"]}
            except pymongo.errors.PyMongoError:
                continue
        return {}

    def wait_healthy(self, timeout=90):
        members = len(self.info()["members"])

        def ok():
            s = sorted(self.states().values())
            return s == ["PRIMARY"] + ["SECONDARY"] * (members - 1)
        wait_until(ok, timeout, what="a healthy replica set (%s)" % self.states())

    def cleanup(self):
        """Stops whatever is left, even if the test failed half way."""
        try:
            self.down()
        except Exception:
            pass
        try:
            for m in self.info()["members"]:
                if m.get("mongod_pid") and alive(m["mongod_pid"]):
                    os.kill(m["mongod_pid"], signal.SIGKILL)
        except (OSError, ValueError):
            pass


class DevclusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir(prefix="devcluster-")
        self.cluster = Cluster(os.path.join(self.tmp.path, "D"))

    def tearDown(self):
        self.cluster.cleanup()
        self.tmp.__exit__(None, None, None)

    def test_pods_restart_and_a_hidden_entrypoint_keeps_a_member_down(self):
        c = self.cluster
        uri = c.up()
        info = c.info()
        self.assertTrue(info["ready"])
        self.assertEqual(info["uri"], uri)
        self.assertEqual(info["replset"], "rs0")
        self.assertEqual([m["name"] for m in info["members"]], ["rs0-0", "rs0-1", "rs0-2"])
        for m in info["members"]:
            self.assertTrue(alive(m["mongod_pid"]))
            self.assertIsNone(m["agent_pid"])
            self.assertTrue(os.access(os.path.join(m["dbpath"], "ps-entry.sh"), os.X_OK))
            self.assertTrue(os.path.exists(os.path.join(m["pod_dir"], "logs", "mongod.log")))
        c.wait_healthy()
        self.assertEqual(c.states()[info["members"][0]["host"]], "PRIMARY")  # priority 2
        with c.client() as cl:
            cl.shop.orders.insert_one({"_id": 1, "item": "pen"})
            self.assertEqual(cl.shop.orders.with_options(
                write_concern=pymongo.WriteConcern(w=3)).insert_one({"_id": 2}).acknowledged, True)

        # A crashed mongod is restarted by the supervisor.
        m1 = c.member("rs0-1")
        os.kill(m1["mongod_pid"], signal.SIGKILL)
        wait_until(lambda: c.member("rs0-1")["mongod_pid"] not in (None, m1["mongod_pid"]),
                   30, what="rs0-1 restarted")
        self.assertIn("pod rs0-1 container mongod: pid %d killed by signal 9 (KILL)"
                      % m1["mongod_pid"], c.log())
        c.wait_healthy()
        with c.direct("rs0-1") as d:
            wait_until(lambda: d.shop.orders.count_documents({}) == 2, 30, what="rs0-1 data")

        # Hide the entrypoint and stop mongod: every restart fails and the member stays down.
        entry = os.path.join(m1["dbpath"], "ps-entry.sh")
        os.rename(entry, entry + ".hidden")
        pid = c.member("rs0-1")["mongod_pid"]
        os.kill(pid, signal.SIGKILL)
        failed = ("pod rs0-1 container mongod: start failed: exec %s: "
                  "No such file or directory; back-off " % entry)
        wait_until(lambda: c.log().count(failed) >= 3, 30, what="failed restarts of rs0-1")
        m = c.member("rs0-1")
        self.assertIsNone(m["mongod_pid"])
        self.assertEqual(m["containers"]["mongod"]["state"], "back-off")
        self.assertIn("No such file or directory", m["containers"]["mongod"]["last_exit"])
        self.assertFalse(alive(pid))
        self.assertFalse(port_open(m["port"]))
        wait_until(lambda: c.states().get(m["host"]) not in ("PRIMARY", "SECONDARY"), 30,
                   what="the set to see rs0-1 down")
        with c.client() as cl:  # the rest of the set keeps working
            cl.shop.orders.insert_one({"_id": 3})

        # Put it back: the next back-off attempt brings the member back on its data.
        restarts = m["containers"]["mongod"]["restarts"]
        os.rename(entry + ".hidden", entry)
        wait_until(lambda: c.member("rs0-1")["mongod_pid"] is not None, 30, what="rs0-1 back")
        self.assertGreater(c.member("rs0-1")["containers"]["mongod"]["restarts"], restarts)
        c.wait_healthy()
        with c.direct("rs0-1") as d:
            wait_until(lambda: d.shop.orders.count_documents({}) == 3, 30, what="rs0-1 caught up")

        st = c.run("status", "--dir", c.dir)
        self.assertEqual(st.returncode, 0, st.stderr)
        status = json.loads(st.stdout)
        self.assertTrue(status["supervisor_running"])
        self.assertEqual(sorted(x["member_state"] for x in status["members"]),
                         ["PRIMARY", "SECONDARY", "SECONDARY"])
        self.assertGreaterEqual(status["members"][1]["containers"]["mongod"]["restarts"], 4)

        # down stops everything.
        pids = [x["mongod_pid"] for x in c.info()["members"]]
        d = c.down()
        self.assertEqual(d.returncode, 0, d.stderr)
        for p in pids:
            self.assertFalse(alive(p))
        for x in c.info()["members"]:
            self.assertFalse(port_open(x["port"]))
            self.assertIsNone(x["mongod_pid"])
        self.assertFalse(c.info()["ready"])
        self.assertFalse(os.path.exists(os.path.join(c.dir, "devcluster.pid")))
        self.assertIn("supervisor: all containers stopped; exiting", c.log())

    def test_up_again_reuses_the_data_and_skips_initiate(self):
        c = self.cluster
        c.up()
        c.wait_healthy()
        ports = [m["port"] for m in c.info()["members"]]
        with c.client() as cl:
            cl.shop.orders.insert_one({"_id": 1})
            cl.shop.orders.with_options(
                write_concern=pymongo.WriteConcern(w=3)).insert_one({"_id": 2})
        self.assertEqual(c.down().returncode, 0)

        # A hidden entrypoint left behind is installed again by the init step.
        entry = os.path.join(c.member("rs0-2")["dbpath"], "ps-entry.sh")
        os.rename(entry, entry + ".hidden")
        c.up()
        self.assertTrue(os.path.exists(entry))
        self.assertEqual([m["port"] for m in c.info()["members"]], ports)
        self.assertIn("replica set rs0 already initiated; skipping replSetInitiate", c.log())
        self.assertEqual(c.log().count("replSetInitiate rs0 on"), 1)
        c.wait_healthy()
        with c.client() as cl:
            self.assertEqual(sorted(d["_id"] for d in cl.shop.orders.find()), [1, 2])

        # A second supervisor on the same directory is refused.
        p = c.run("up", "--dir", c.dir, "--detach")
        self.assertEqual(p.returncode, 1)
        self.assertIn("already supervised by pid", p.stderr)
        # Members cannot move to other ports: the set's config names them by port.
        p = c.run("up", "--dir", c.dir, "--detach", "--base-port", str(ports[0] + 100))
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot move to --base-port %d" % (ports[0] + 100), p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        # Nor can the set grow or be renamed.
        p = c.run("up", "--dir", c.dir, "--detach", "--members", "5")
        self.assertEqual(p.returncode, 1)
        self.assertIn("of 3 members; it cannot become 5 members", p.stderr)
        p = c.run("up", "--dir", c.dir, "--detach", "--replset", "other")
        self.assertEqual(p.returncode, 1)
        self.assertIn("holds replica set rs0; it cannot be renamed other", p.stderr)

    def test_foreground_supervisor_stops_on_sigterm(self):
        c = self.cluster
        proc = subprocess.Popen([DEVCLUSTER, *with_ports(["up", "--dir", c.dir, "--members", "2",
                                                          "--mongod", WTMONGOD, "--no-agents",
                                                          "--block-compressor", "zstd"])],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            wait_until(lambda: os.path.exists(os.path.join(c.dir, "cluster.json"))
                       and c.info()["ready"], 90, what="cluster.json ready")
            with open(os.path.join(c.dir, "rs0-0", "mongod.conf")) as f:
                self.assertIn("blockCompressor: zstd", f.read())
            pids = [m["mongod_pid"] for m in c.info()["members"]]
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(60), 0)
            self.assertEqual(proc.stdout.read().strip(), c.info()["uri"])
            proc.stdout.close()
            for p in pids:
                self.assertFalse(alive(p))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    unittest.main()
