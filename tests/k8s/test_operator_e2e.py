"""psmdb-operator end to end, as a user drives it with kubectl: apiserver.py + kubelet.py run the
operator's StatefulSets as pods (wtmongod and pbm-agent processes in network and mount
namespaces), the operator runs on the host with --kubeconfig and reaches the pods by their DNS
names. A physical backup and a physical restore through the CRs, then CRs that must fail.

    cd tests/k8s && PSMDB_BIN=../../build/bin /usr/bin/python3 -m unittest -v test_operator_e2e   # as root

Set LOCALKUBE_KEEP=1 to keep the temporary directory (kubelet.log, pods/*/<container>.log,
operator.log) for a look afterwards.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

import yaml  # python3-yaml comes with python3-kubernetes

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from localkube import LocalKube  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.path.abspath(os.environ.get("PSMDB_BIN", os.path.join(ROOT, "build", "bin")))
DEPLOY = os.path.join(ROOT, "deploy")
OPERATOR = os.environ.get("PSMDB_OPERATOR", os.path.join(BIN, "psmdb-operator"))  # another build, to try a fix
NS = "default"
CLUSTER = "my-cluster-name"  # as deploy/cr.yaml
STS = f"{CLUSTER}-rs0"
SIZE = 3


def host(i, sts=STS):
    return f"{sts}-{i}.{sts}.{NS}.svc.cluster.local"


def images():
    return {
        "psmdb-backup/mongod:0.1.0": {
            "mounts": {"/opt/psmdb": os.path.join(DEPLOY, "images", "mongod")},
            "bin": {"mongod": os.path.join(BIN, "wtmongod")}},
        "psmdb-backup/backup-agent:0.1.0": {
            "bin": {"pbm": os.path.join(BIN, "pbm"), "pbm-agent": os.path.join(BIN, "pbm-agent"),
                    "mongod": os.path.join(BIN, "wtmongod")}},
    }


def cluster_cr(backups, name=CLUSTER, size=SIZE, cipher="AES256-GCM"):
    """deploy/cr.yaml with `size` members, the filesystem storage on a host directory that every
    backup-agent mounts at the same path (a hostPath volume, as NFS would be), no schedule."""
    with open(os.path.join(DEPLOY, "cr.yaml")) as f:
        cr = yaml.safe_load(f)
    cr["metadata"]["name"] = name
    spec = cr["spec"]
    spec["secrets"] = {"users": f"{name}-secrets", "encryptionKey": f"{name}-mongodb-encryption-key"}
    spec["mongod"]["security"]["encryptionCipherMode"] = cipher
    rs = spec["replsets"][0]
    rs["size"] = size
    rs["sidecarVolumes"] = [{"name": "backups", "hostPath": {"path": backups, "type": "DirectoryOrCreate"}}]
    b = spec["backup"]
    b["storages"] = {"fs-backups": {"type": "filesystem", "filesystem": {"path": backups}}}
    b["volumeMounts"] = [{"name": "backups", "mountPath": backups}]
    b["tasks"] = []
    return cr


class OperatorE2E(unittest.TestCase):
    """One cluster for the whole class: the tests run in name order (test_1..., test_2...)."""

    @classmethod
    def setUpClass(cls):
        for b in ("wtmongod", "pbm", "pbm-agent", "psmdb-operator"):
            if not os.access(os.path.join(BIN, b), os.X_OK):
                raise unittest.SkipTest(f"{BIN}/{b} is not built")
        # Pods keep their short hostnames, as on Kubernetes: a member finds itself in the replset
        # config by the address its DNS name resolves to.
        cls.kube = LocalKube(images=images())
        cls.kube.start()
        cls.backups = os.path.join(cls.kube.tmp, "backups")
        os.makedirs(cls.backups)
        cls.k = cls.kube.kubectl
        cls.k("apply", "-f", os.path.join(DEPLOY, "crd.yaml"))
        cls.op_log = open(os.path.join(cls.kube.tmp, "operator.log"), "w")
        cls.op = subprocess.Popen([OPERATOR, "--kubeconfig", cls.kube.kubeconfig,
                                   "--namespace", NS, "--identity", "e2e", "--watch-timeout", "5"],
                                  stdout=cls.op_log, stderr=subprocess.STDOUT)
        cls.started = time.monotonic()

    @classmethod
    def tearDownClass(cls):
        if cls.op.poll() is None:
            cls.op.send_signal(signal.SIGTERM)
            try:
                cls.op.wait(10)
            except subprocess.TimeoutExpired:
                cls.op.kill()
                cls.op.wait()
        cls.op_log.close()
        if os.environ.get("E2E_DUMP"):
            print(cls.kube.read("operator.log")[-5000:], file=sys.stderr)
            print(cls.kube.kubelet_log_text()[-5000:], file=sys.stderr)
        cls.kube.stop()

    def setUp(self):
        name = self.id().rsplit(".", 1)[1]
        if not name.startswith("test_1_") and not getattr(type(self), "cluster_ok", False):
            self.skipTest("the cluster never got ready (test_1)")

    # ---- helpers ----

    def wait(self, what, fn, timeout=60, every=0.5):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            if self.op.poll() is not None:
                self.fail(f"the operator exited ({self.op.returncode}) while waiting for {what}:\n" +
                          self.kube.read("operator.log")[-3000:])
            time.sleep(every)
        self.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n--- operator.log:\n" +
                  self.kube.read("operator.log")[-3000:] + "\n--- kubelet.log:\n" +
                  self.kube.kubelet_log_text()[-3000:])

    def getj(self, *args):
        p = self.k("get", *args, "-o", "json", check=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def state(self, kind, name):
        o = self.getj(kind, name)
        return ((o or {}).get("status") or {}).get("state")

    def apply(self, obj):
        return self.k("apply", "-f", "-", input=json.dumps(obj), check=False)

    def mongo(self, i, sts=STS, **kw):
        import pymongo
        creds = self.creds(sts.rsplit("-", 1)[0])
        return pymongo.MongoClient(host(i, sts), 27017, directConnection=True, serverSelectionTimeoutMS=5000,
                                   **creds, **kw)

    def rs_client(self):
        import pymongo
        return pymongo.MongoClient(",".join(f"{host(i)}:27017" for i in range(SIZE)), replicaSet="rs0",
                                   serverSelectionTimeoutMS=15000, **self.creds(CLUSTER))

    def creds(self, cluster):
        """Credentials of the cluster admin from the users Secret, when the server wants them."""
        if getattr(self, "_auth_checked", None) is None:
            type(self)._auth_checked = {}
        if cluster in self._auth_checked:
            return self._auth_checked[cluster]
        import base64
        import pymongo
        s = self.getj("secret", f"{cluster}-secrets")
        out = {}
        try:
            c = pymongo.MongoClient(host(0, f"{cluster}-rs0"), 27017, directConnection=True,
                                    serverSelectionTimeoutMS=5000)
            c.admin.command("listDatabases")
            c.close()
        except pymongo.errors.OperationFailure:
            d = s["data"]
            for u, p in (("MONGODB_DATABASE_ADMIN_USER", "MONGODB_DATABASE_ADMIN_PASSWORD"),
                         ("MONGODB_CLUSTER_ADMIN_USER", "MONGODB_CLUSTER_ADMIN_PASSWORD")):
                if u in d:
                    out = {"username": base64.b64decode(d[u]).decode(), "password": base64.b64decode(d[p]).decode()}
                    break
        self._auth_checked[cluster] = out
        return out

    def uids(self):
        pods = self.getj("pods", "-l", f"app.kubernetes.io/instance={CLUSTER}")["items"]
        sts = self.getj("sts", STS)
        return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}, sts["metadata"]["uid"]

    def docs(self, client, coll="orders"):
        return sorted((d["_id"], d["v"]) for d in client.shop[coll].find({}, {"v": 1}))

    # ---- the story ----

    def test_1_cluster_ready(self):
        with open(os.path.join(self.kube.tmp, "cr.json"), "w") as f:
            json.dump(cluster_cr(self.backups), f)
        self.k("apply", "-f", os.path.join(self.kube.tmp, "cr.json"))
        self.wait("psmdb ready", lambda: self.state("psmdb", CLUSTER) == "ready", timeout=120)
        type(self).cluster_ok = True
        out = self.k("get", "psmdb", CLUSTER).stdout
        self.assertIn("ready", out)
        out = self.k("get", "pods", "-l", f"app.kubernetes.io/instance={CLUSTER}").stdout
        self.assertEqual(len(re.findall(r"2/2\s+Running", out)), SIZE, out)
        type(self).uids_before = self.uids()
        c = self.rs_client()
        c.shop.orders.insert_many([{"_id": i, "v": f"orig-{i}"} for i in range(200)])
        c.shop.customers.insert_many([{"_id": i, "v": i * i} for i in range(50)])
        type(self).data_at_backup = self.docs(c)
        self.assertEqual(len(self.data_at_backup), 200)
        # every member has it before the backup starts
        for i in range(SIZE):
            self.wait(f"member {i} replicated",
                      lambda i=i: self.docs(self.mongo(i, readPreference="secondaryPreferred")) == self.data_at_backup,
                      timeout=30)

    def test_2_physical_backup(self):
        with open(os.path.join(DEPLOY, "backup.yaml")) as f:
            b = yaml.safe_load(f)
        self.assertEqual(b["metadata"]["name"], "backup1")
        b["spec"]["clusterName"] = CLUSTER
        r = self.apply(b)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait("psmdb-backup backup1 ready", lambda: self.state("psmdb-backup", "backup1") in ("ready", "error"),
                  timeout=180)
        o = self.getj("psmdb-backup", "backup1")
        self.assertEqual(o["status"]["state"], "ready", o["status"])
        out = self.k("get", "psmdb-backup", "backup1").stdout
        print("\n" + out, file=sys.stderr)
        self.assertIn("physical", out)
        self.assertRegex(out, r"ready")
        st = o["status"]
        self.assertEqual(st.get("type"), "physical", st)
        self.assertTrue(st.get("size"), st)
        self.assertTrue(os.listdir(self.backups))

    def test_3_physical_restore(self):
        self.assertEqual(self.state("psmdb-backup", "backup1"), "ready")
        c = self.rs_client()
        c.shop.orders.update_many({}, {"$set": {"v": "changed"}})
        c.shop.orders.insert_many([{"_id": 1000 + i, "v": "new"} for i in range(10)])
        c.shop.customers.drop()
        self.assertNotEqual(self.docs(c), self.data_at_backup)
        c.close()
        log_before = len(self.kube.kubelet_log_text())
        with open(os.path.join(DEPLOY, "restore.yaml")) as f:
            r = yaml.safe_load(f)
        r["spec"]["clusterName"] = CLUSTER
        res = self.apply(r)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.wait("psmdb-restore restore1 done",
                  lambda: self.state("psmdb-restore", "restore1") in ("ready", "error"), timeout=300)
        o = self.getj("psmdb-restore", "restore1")
        print("\n" + self.k("get", "psmdb-restore", "restore1").stdout, file=sys.stderr)
        self.assertEqual(o["status"]["state"], "ready", o["status"])
        self.wait("psmdb ready after the restore", lambda: self.state("psmdb", CLUSTER) == "ready", timeout=120)
        for i in range(SIZE):
            self.wait(f"member {i} has the backup's data", lambda i=i: self._member_data(i) == self.data_at_backup,
                      timeout=60)
            m = self.mongo(i, readPreference="secondaryPreferred")
            self.assertEqual(m.shop.customers.count_documents({}), 50)
        self.assertEqual(self.uids(), self.uids_before, "a Pod or the StatefulSet was replaced")
        log = self.kube.kubelet_log_text()[log_before:]
        for i in range(SIZE):
            self.assertRegex(log, rf"pod {NS}/{STS}-{i} container mongod: start failed: exec /data/db/ps-entry.sh: "
                                  r"No such file or directory; back-off")
        for i in range(SIZE):
            d = self.kube.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/mongod-data-{STS}-{i}")
            vol = next(x for x in os.listdir(os.path.join(self.kube.root, "volumes"))
                       if x.startswith(f"{NS}_mongod-data-{STS}-{i}_"))
            self.assertTrue(d)
            self.assertTrue(os.access(os.path.join(self.kube.root, "volumes", vol, "ps-entry.sh"), os.X_OK))

    def _member_data(self, i):
        try:
            return self.docs(self.mongo(i, readPreference="secondaryPreferred"))
        except Exception as e:  # noqa: BLE001 - the member may still be starting
            return repr(e)

    def test_4_bad_type_refused_by_the_api(self):
        b = {"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
             "metadata": {"name": "bad-type"},
             "spec": {"clusterName": CLUSTER, "storageName": "fs-backups", "type": "incremental"}}
        r = self.apply(b)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('spec.type: Unsupported value: "incremental": supported values: "logical", "physical"', r.stderr)
        self.assertIsNone(self.getj("psmdb-backup", "bad-type"))

    def test_5_bad_backups_end_in_error(self):
        uids = self.uids()
        cases = {"no-storage": {"clusterName": CLUSTER, "storageName": "nope", "type": "physical"},
                 "no-cluster": {"clusterName": "no-such-cluster", "storageName": "fs-backups", "type": "physical"}}
        for name, spec in cases.items():
            r = self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
                            "metadata": {"name": name}, "spec": spec})
            self.assertEqual(r.returncode, 0, r.stderr)
        for name in cases:
            self.wait(f"{name} in error", lambda n=name: self.state("psmdb-backup", n) == "error", timeout=30)
        print("\n" + self.k("get", "psmdb-backup").stdout, file=sys.stderr)
        st = self.getj("psmdb-backup", "no-storage")["status"]
        self.assertIn("nope", st.get("error", ""), st)
        st = self.getj("psmdb-backup", "no-cluster")["status"]
        self.assertIn("no-such-cluster", st.get("error", ""), st)
        self.assertEqual(self.state("psmdb", CLUSTER), "ready")
        self.assertEqual(self.uids(), uids)

    def test_6_restore_with_other_encryption_refused(self):
        """A one-member cluster with AES256-CBC backs up to the same storage; restoring that backup
        into the AES256-GCM cluster is refused before anything is touched."""
        c = self.rs_client()
        before = self.docs(c)
        c.close()
        uids = self.uids()
        log_before = len(self.kube.kubelet_log_text())
        self.k("apply", "-f", "-", input=json.dumps(cluster_cr(self.backups, name="other", size=1,
                                                                cipher="AES256-CBC")))
        self.wait("psmdb other ready", lambda: self.state("psmdb", "other") == "ready", timeout=180)
        self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
                    "metadata": {"name": "backup-other"},
                    "spec": {"clusterName": "other", "storageName": "fs-backups", "type": "physical"}})
        self.wait("backup-other done", lambda: self.state("psmdb-backup", "backup-other") in ("ready", "error"),
                  timeout=180)
        bo = self.getj("psmdb-backup", "backup-other")["status"]
        self.assertEqual(bo["state"], "ready", bo)
        dest = bo.get("destination") or os.path.join(self.backups, bo["pbmName"])
        r = self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBRestore",
                        "metadata": {"name": "restore-other"},
                        "spec": {"clusterName": CLUSTER, "storageName": "fs-backups",
                                 "backupSource": {"type": "physical", "destination": dest}}})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait("restore-other in error", lambda: self.state("psmdb-restore", "restore-other") in ("error", "ready"),
                  timeout=180)
        st = self.getj("psmdb-restore", "restore-other")["status"]
        print(f"\nrestore-other: {st}", file=sys.stderr)
        self.assertEqual(st["state"], "error", st)
        self.assertRegex(st.get("error", ""), r"(?i)cipher|encryption", st)
        self.assertEqual(self.uids(), uids)
        log = self.kube.kubelet_log_text()[log_before:]
        self.assertNotRegex(log, rf"pod {NS}/{STS}-\d container mongod: (start failed|pid)")
        self.wait("psmdb ready", lambda: self.state("psmdb", CLUSTER) == "ready", timeout=30)
        self.assertEqual(self.docs(self.rs_client()), before)

    def test_7_restore_after_key_change_refused(self):
        """The cluster's encryption key Secret changes (the agents see the new key file; the running
        mongods keep the old key): restoring backup1, made with the old key, is refused before
        anything is touched."""
        import base64
        c = self.rs_client()
        c.shop.marker.insert_one({"_id": "after-restore"})
        before = self.docs(c) + [("marker", c.shop.marker.count_documents({}))]
        c.close()
        uids = self.uids()
        name = f"{CLUSTER}-mongodb-encryption-key"
        sec = self.getj("secret", name)
        key = next(iter(sec["data"]))
        old = sec["data"][key]
        new_key = base64.b64encode(os.urandom(32))
        self.k("patch", "secret", name, "--type=merge", "-p",
               json.dumps({"data": {key: base64.b64encode(new_key).decode()}}))
        try:
            path = os.path.join(self.kube.root, "pods", f"{NS}_{STS}-0", "volumes", "encryption-key", key)
            self.wait("the new key in the pods", lambda: _read(path).strip() == new_key, timeout=20)
            log_before = len(self.kube.kubelet_log_text())
            r = self.apply({"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBRestore",
                            "metadata": {"name": "restore-newkey"},
                            "spec": {"clusterName": CLUSTER, "backupName": "backup1"}})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.wait("restore-newkey done", lambda: self.state("psmdb-restore", "restore-newkey") in ("error", "ready"),
                      timeout=180)
            st = self.getj("psmdb-restore", "restore-newkey")["status"]
            print(f"\nrestore-newkey: {st}", file=sys.stderr)
            self.assertEqual(st["state"], "error", st)
            self.assertRegex(st.get("error", ""), r"(?i)key|encryption", st)
            self.assertEqual(self.uids(), uids)
            log = self.kube.kubelet_log_text()[log_before:]
            self.assertNotRegex(log, rf"pod {NS}/{STS}-\d container mongod: (start failed|pid)")
            c = self.rs_client()
            self.assertEqual(self.docs(c) + [("marker", c.shop.marker.count_documents({}))], before)
        finally:
            self.k("patch", "secret", name, "--type=merge", "-p", json.dumps({"data": {key: old}}))


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


if __name__ == "__main__":
    unittest.main()
