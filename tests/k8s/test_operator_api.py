"""psmdb-operator against the local Kubernetes API test server (no pods run here; the kubelet
stand-in's tests run them): TLS with a service-account token and RBAC from deploy/rbac.yaml
(least privilege, and enough), client-certificate auth, generated objects and Secrets, status
and events, bad CRs ending in error with one line, retention, a watch that must re-list after
410, and leader election handing over.

Run from tests/k8s: PSMDB_BIN=../../build/bin /usr/bin/python3 -m unittest -v test_operator_api
"""

import json
import os
import signal
import subprocess
import time
import unittest

import yaml  # python3-yaml comes with python3-kubernetes

from kubetest import APIServer, HERE

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("PSMDB_BIN", os.path.join(ROOT, "build", "bin"))
DEPLOY = os.path.join(ROOT, "deploy")
NS = "db"


def wait(what, fn, timeout=20, every=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def load_cr():
    with open(os.path.join(DEPLOY, "cr.yaml")) as f:
        return yaml.safe_load(f)


class Operator:
    """A psmdb-operator process with its own kubeconfig."""

    def __init__(self, srv, kubeconfig, *args, name="op"):
        self.log_path = os.path.join(srv.tmp, name + ".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "psmdb-operator"), "--kubeconfig", kubeconfig, "--namespace", NS,
             "--identity", name, "--watch-timeout", "5", *args],
            stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class OperatorAgainstApiServer(unittest.TestCase):
    def setUp(self):
        # No bookmarks: a watch resumes from the last event it saw, so that compacting the history
        # really sends the operator a 410.
        self.srv = APIServer("--bookmark-interval", "3600", tls=True, rbac=True, watch_history=50)
        self.srv.start()
        self.ops = []
        self.k = self.srv.kubectl
        self.k("apply", "-f", os.path.join(DEPLOY, "crd.yaml"))
        self.k("create", "namespace", NS)
        self.k("apply", "-n", NS, "-f", os.path.join(DEPLOY, "rbac.yaml"))

    def tearDown(self):
        for op in self.ops:
            op.stop()
        self.srv.stop()

    def sa_kubeconfig(self):
        """A kubeconfig with the operator's service-account token, as in its pod."""
        token = self.k("create", "token", "psmdb-operator", "-n", NS).stdout.strip()
        with open(self.srv.kubeconfig) as f:
            cfg = yaml.safe_load(f)
        cfg["users"][0]["user"] = {"token": token}
        path = os.path.join(self.srv.tmp, "sa-kubeconfig")
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f)
        return path

    def start(self, kubeconfig=None, name="op", *args):
        op = Operator(self.srv, kubeconfig or self.sa_kubeconfig(), *args, name=name)
        self.ops.append(op)
        return op

    def get(self, kind, name):
        p = self.k("get", kind, name, "-n", NS, "-o", "json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def apply(self, obj):
        self.k("apply", "-n", NS, "-f", "-", input=json.dumps(obj))

    def status(self, kind, name):
        o = self.get(kind, name)
        return (o or {}).get("status", {})

    def test_least_privilege_rbac_is_enough(self):
        op = self.start()
        self.k("apply", "-n", NS, "-f", os.path.join(DEPLOY, "cr.yaml"))
        # The objects and the generated Secrets, made with nothing but rbac.yaml's grants.
        sts = wait("the StatefulSet", lambda: self.get("statefulset", "my-cluster-name-rs0"))
        self.assertEqual(sts["spec"]["replicas"], 3)
        self.assertEqual(sts["metadata"]["ownerReferences"][0]["kind"], "PerconaServerMongoDB")
        self.assertTrue(self.get("service", "my-cluster-name-rs0"))
        users = wait("the users Secret", lambda: self.get("secret", "my-cluster-name-secrets"))
        self.assertIn("MONGODB_BACKUP_PASSWORD", users["data"])
        key = wait("the key Secret", lambda: self.get("secret", "my-cluster-name-mongodb-encryption-key"))
        self.assertIn("encryption-key", key["data"])
        kf = wait("the key file Secret", lambda: self.get("secret", "my-cluster-name-mongodb-keyfile"))
        self.assertEqual(len(__import__("base64").b64decode(kf["data"]["mongodb-key"])), 768)
        st = wait("cluster status", lambda: self.status("psmdb", "my-cluster-name").get("state"))
        self.assertEqual(st, "initializing")  # no pods run here
        cst = self.status("psmdb", "my-cluster-name")
        self.assertEqual(cst["replsets"]["rs0"], {"size": 3, "ready": 0, "initialized": False,
                                                  "status": "initializing"})
        self.assertEqual([(c["type"], c["status"], c["reason"]) for c in cst["conditions"]],
                         [("Ready", "False", "Initializing")])
        lease = wait("the lease", lambda: self.get("lease", "psmdb-operator-lock"))
        self.assertEqual(lease["spec"]["holderIdentity"], "op")
        self.assertNotIn("forbidden", op.text().lower())
        # What it may not do.
        sa = "--as=system:serviceaccount:%s:psmdb-operator" % NS
        for verb, res, want in [("get", "pods", "no"), ("create", "pods/exec", "no"),
                                ("delete", "statefulsets", "no"), ("update", "secrets", "no"),
                                ("delete", "secrets", "no"), ("list", "secrets", "no"),
                                ("create", "perconaservermongodbbackups", "yes"),
                                ("patch", "perconaservermongodbbackups --subresource=status", "yes")]:
            p = self.k("auth", "can-i", verb, *res.split(), "-n", NS, sa, check=False)
            self.assertEqual(p.stdout.strip(), want, (verb, res))
        p = self.k("auth", "can-i", "list", "statefulsets", "-n", "default", sa, check=False)
        self.assertEqual(p.stdout.strip(), "no")

    def test_bad_crs_end_in_error_with_the_reason(self):
        self.start()
        self.k("apply", "-n", NS, "-f", os.path.join(DEPLOY, "cr.yaml"))
        # An unknown type is refused by the API server before the operator sees it.
        bad = {"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
               "metadata": {"name": "bad-type"},
               "spec": {"clusterName": "my-cluster-name", "type": "incremental"}}
        p = self.k("apply", "-n", NS, "-f", "-", input=json.dumps(bad), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('spec.type: Unsupported value: "incremental": supported values: "logical", '
                      '"physical"', p.stderr)
        cases = {
            "no-cluster": ({"clusterName": "nope", "type": "physical"},
                           "PerconaServerMongoDB nope not found in namespace db"),
            "no-storage": ({"clusterName": "my-cluster-name", "storageName": "s3-gone"},
                           "storage 's3-gone' is not in PerconaServerMongoDB my-cluster-name "
                           "spec.backup.storages (it has fs-backups)"),
        }
        for name, (spec, _) in cases.items():
            self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
                        "metadata": {"name": name}, "spec": spec})
        self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBRestore",
                    "metadata": {"name": "r-missing"},
                    "spec": {"clusterName": "my-cluster-name", "backupName": "never-made"}})
        for name, (_, msg) in cases.items():
            st = wait(name, lambda: self.status("psmdb-backup", name).get("state") == "error"
                      and self.status("psmdb-backup", name))
            self.assertEqual(st["error"], msg)
        st = wait("restore error", lambda: self.status("psmdb-restore", "r-missing").get("state") == "error"
                  and self.status("psmdb-restore", "r-missing"))
        self.assertEqual(st["error"], "PerconaServerMongoDBBackup never-made not found in namespace db")
        # Terminal states are never re-run: the status stays as it was.
        rv = self.get("psmdb-backup", "no-cluster")["metadata"]["resourceVersion"]
        time.sleep(2)
        self.assertEqual(self.get("psmdb-backup", "no-cluster")["metadata"]["resourceVersion"], rv)
        events = self.k("get", "events", "-n", NS, "-o", "json").stdout
        self.assertIn("PerconaServerMongoDB nope not found", events)
        # A cluster CR that no schema can refuse but the operator must: its status says why.
        cr = load_cr()
        cr["metadata"]["name"] = "twice"
        cr["spec"]["replsets"].append(dict(cr["spec"]["replsets"][0]))
        self.apply(cr)
        st = wait("cluster error", lambda: self.status("psmdb", "twice").get("state") == "error"
                  and self.status("psmdb", "twice"))
        self.assertEqual(st["message"], "spec.replsets[1].name: 'rs0' is used twice")
        self.assertIsNone(self.get("statefulset", "twice-rs0"))

    def test_retention_keeps_the_newest(self):
        cr = load_cr()
        cr["spec"]["backup"]["tasks"][0]["keep"] = 2
        self.apply(cr)
        for i in range(4):
            self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
                        "metadata": {"name": "old-%d" % i,
                                     "labels": {"percona.com/cluster": "my-cluster-name",
                                                "percona.com/backup-ancestor": "daily-physical"}},
                        "spec": {"clusterName": "my-cluster-name", "storageName": "fs-backups"}})
            self.k("patch", "psmdb-backup", "old-%d" % i, "-n", NS, "--subresource=status",
                   "--type=merge", "-p", json.dumps({"status": {"state": "ready"}}))
            time.sleep(1.1)  # distinct creation times
        self.start()
        names = wait("retention", lambda: (lambda n: n if len(n) == 2 else None)(
            self.k("get", "psmdb-backup", "-n", NS, "-o", "jsonpath={.items[*].metadata.name}")
            .stdout.split()), timeout=40)
        self.assertEqual(sorted(names), ["old-2", "old-3"])

    def test_a_task_creates_backup_crs_on_schedule(self):
        cr = load_cr()
        cr["spec"]["backup"]["tasks"] = [{"name": "every-minute", "schedule": "* * * * *", "keep": 3,
                                           "storageName": "fs-backups", "type": "physical",
                                           "compressionType": "zstd", "compressionLevel": 2}]
        self.apply(cr)
        self.start()
        # The firing before the operator started is not made up for; the next minute's is.
        names = wait("a scheduled backup", lambda: self.k(
            "get", "psmdb-backup", "-n", NS, "-l", "percona.com/backup-ancestor=every-minute",
            "-o", "jsonpath={.items[*].metadata.name}").stdout.split(), timeout=100, every=1)
        self.assertEqual(len(names), 1, names)
        b = self.get("psmdb-backup", names[0])
        self.assertTrue(names[0].startswith("cron-my-cluster-name-"), names[0])
        self.assertEqual(b["metadata"]["labels"]["percona.com/cluster"], "my-cluster-name")
        self.assertEqual(b["metadata"]["labels"]["percona.com/backup-type"], "cron")
        self.assertEqual(b["spec"], {"clusterName": "my-cluster-name", "storageName": "fs-backups",
                                     "type": "physical", "compressionType": "zstd",
                                     "compressionLevel": 2})
        # No pods here: it waits for the cluster, it does not fail.
        st = wait("waiting", lambda: self.status("psmdb-backup", names[0]).get("state"))
        self.assertEqual(st, "waiting")

    def test_client_certificate_and_relist_after_410(self):
        # The admin kubeconfig authenticates with a client certificate.
        op = self.start(self.srv.kubeconfig, "certop")
        self.k("apply", "-n", NS, "-f", os.path.join(DEPLOY, "cr.yaml"))
        wait("cluster status", lambda: self.status("psmdb", "my-cluster-name").get("state"))
        # Drop the watch history: the operator's next watch gets 410 and must list again, and
        # still see a CR created afterwards.
        code, _, _ = self.srv.request("POST", "/debug/compact")
        self.assertEqual(code, 200)
        self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
                    "metadata": {"name": "after-compact"}, "spec": {"clusterName": "missing"}})
        wait("the backup after compaction", lambda: self.status("psmdb-backup", "after-compact")
             .get("state") == "error", timeout=30)
        wait("a re-list", lambda: "listing again" in op.text(), timeout=30)

    def test_leader_election_hands_over(self):
        kc = self.sa_kubeconfig()
        a = self.start(kc, "op-a")
        wait("a leads", lambda: (self.get("lease", "psmdb-operator-lock") or {}).get("spec", {})
             .get("holderIdentity") == "op-a")
        b = self.start(kc, "op-b")
        wait("b to wait", lambda: "waiting to lead" in b.text(), timeout=30)
        self.assertNotIn("leading as", b.text())
        a.stop()  # a graceful stop releases the lease (else it expires: 15 s)
        wait("b leads", lambda: "leading as op-b" in b.text(), timeout=30)
        lease = self.get("lease", "psmdb-operator-lock")
        self.assertEqual(lease["spec"]["holderIdentity"], "op-b")
        self.assertEqual(lease["spec"]["leaseTransitions"], 1)


if __name__ == "__main__":
    unittest.main()
