"""Tests of the local Kubernetes API test server, through raw HTTP and kubectl.

Run from tests/k8s: /usr/bin/python3 -m unittest -v test_apiserver
"""

import itertools
import json
import os
import threading
import time
import unittest

from kubetest import APIServer, HERE

FIX = os.path.join(HERE, "fixtures")
CRD = os.path.join(FIX, "crd-psmdb-backup.yaml")
B1 = os.path.join(FIX, "backup-b1.yaml")
BAD = os.path.join(FIX, "backup-bad-type.yaml")
BACKUPS = "/apis/psmdb.percona.com/v1/namespaces/{ns}/perconaservermongodbbackups"
_n = itertools.count(1)

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: rs0
spec:
  serviceName: rs0
  replicas: 3
  selector:
    matchLabels: {app: mongo}
  template:
    metadata:
      labels: {app: mongo}
    spec:
      containers:
      - name: mongod
        image: percona/percona-server-mongodb:7.0
        ports: [{containerPort: 27017, name: mongodb}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        volumeMounts: [{name: data, mountPath: /data/db}]
      - name: backup-agent
        image: percona/pbm:2
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def read(path):
    with open(path) as f:
        return f.read()


def fresh_ns(srv):
    ns = f"t{next(_n)}"
    code, body, _ = srv.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    assert code == 201, body
    return ns


def install_crd(srv):
    srv.kubectl("apply", "-f", CRD)
    srv.kubectl("wait", "--for=condition=established", "--timeout=10s",
                "crd/perconaservermongodbbackups.psmdb.percona.com")


def backup(name, **spec):
    spec.setdefault("clusterName", "c1")
    return {"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup",
            "metadata": {"name": name}, "spec": spec}


_shared = None


def tearDownModule():
    if _shared is not None:
        _shared.stop()


class Shared(unittest.TestCase):
    """One server (AlwaysAllow, plain HTTP), started once for all the tests that need nothing special;
    each test works in a namespace of its own."""

    @classmethod
    def setUpClass(cls):
        global _shared
        if _shared is None:
            _shared = APIServer()
            _shared.start()
            install_crd(_shared)
        cls.srv = _shared

    def setUp(self):
        self.ns = fresh_ns(self.srv)

    def req(self, method, path, body=None, **kw):
        return self.srv.request(method, path.format(ns=self.ns), body, **kw)

    def k(self, *args, **kw):
        return self.srv.kubectl("-n", self.ns, *args, **kw)


class TestDiscovery(Shared):
    def test_version_and_core_discovery(self):
        code, v, _ = self.req("GET", "/version")
        self.assertEqual((code, v["major"], v["minor"]), (200, "1", "32"))
        code, api, _ = self.req("GET", "/api")
        self.assertEqual(api["versions"], ["v1"])
        code, res, _ = self.req("GET", "/api/v1")
        names = {r["name"]: r for r in res["resources"]}
        self.assertIn("pods/status", names)
        self.assertEqual(names["pods"]["shortNames"], ["po"])
        self.assertTrue(names["secrets"]["namespaced"])
        self.assertFalse(names["namespaces"]["namespaced"])

    def test_groups_include_crd_with_names(self):
        code, groups, _ = self.req("GET", "/apis")
        byname = {g["name"]: g for g in groups["groups"]}
        for g in ("apps", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io",
                  "apiextensions.k8s.io", "psmdb.percona.com"):
            self.assertIn(g, byname)
        self.assertEqual(byname["psmdb.percona.com"]["preferredVersion"]["version"], "v1")
        code, res, _ = self.req("GET", "/apis/psmdb.percona.com/v1")
        r = {x["name"]: x for x in res["resources"]}
        self.assertEqual(r["perconaservermongodbbackups"]["shortNames"], ["psmdb-backup"])
        self.assertEqual(r["perconaservermongodbbackups"]["categories"], ["psmdb"])
        self.assertIn("perconaservermongodbbackups/status", r)

    def test_kubectl_api_resources_and_openapi(self):
        out = self.k("api-resources", "--api-group=psmdb.percona.com").stdout
        self.assertRegex(out, r"perconaservermongodbbackups\s+psmdb-backup\s+psmdb.percona.com/v1\s+true\s+"
                              r"PerconaServerMongoDBBackup")
        code, root, _ = self.req("GET", "/openapi/v3")
        self.assertIn("apis/psmdb.percona.com/v1", root["paths"])
        url = root["paths"]["apis/psmdb.percona.com/v1"]["serverRelativeURL"]
        code, doc, _ = self.req("GET", url)
        self.assertEqual(code, 200)
        self.assertIn("com.percona.psmdb.v1.PerconaServerMongoDBBackup", doc["components"]["schemas"])

    def test_unknown_resource_is_404_and_wrong_method_405(self):
        code, st, _ = self.req("GET", "/api/v1/namespaces/{ns}/widgets")
        self.assertEqual((code, st["reason"]), (404, "NotFound"))
        for method, path in (("PUT", "/api/v1/namespaces/{ns}/configmaps"), ("DELETE", "/api/v1/namespaces"),
                             ("POST", "/api/v1/namespaces/{ns}/configmaps/x")):
            code, st, _ = self.req(method, path, {"metadata": {"name": "x"}})
            self.assertEqual((code, st["reason"]), (405, "MethodNotAllowed"), (method, path))


class TestCRD(Shared):
    def test_crd_established_and_cr_served(self):
        code, crd, _ = self.req("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                       "perconaservermongodbbackups.psmdb.percona.com")
        conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        self.assertEqual(conds["Established"], "True")
        self.assertEqual(conds["NamesAccepted"], "True")
        self.assertEqual(crd["status"]["acceptedNames"]["shortNames"], ["psmdb-backup"])
        self.assertIn("customresourcecleanup.apiextensions.k8s.io", crd["metadata"]["finalizers"])
        code, b, _ = self.req("POST", BACKUPS, backup("x1"))
        self.assertEqual(code, 201, b)
        self.assertEqual(b["metadata"]["generation"], 1)
        self.assertEqual(b["spec"]["type"], "logical")  # defaulted
        self.assertEqual(b["spec"]["compression"], "gzip")

    def test_non_structural_crd_refused(self):
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "widgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"kind": "Widget", "plural": "widgets"},
                        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                            "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                                "type": "object", "properties": {"foo": {"description": "no type"},
                                                                 "ok": {"x-kubernetes-int-or-string": True},
                                                                 "any": {"x-kubernetes-preserve-unknown-fields":
                                                                         True}}}}}}}]}}
        code, st, _ = self.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertEqual((code, st["reason"]), (422, "Invalid"))
        self.assertEqual(st["message"],
                         'CustomResourceDefinition.apiextensions.k8s.io "widgets.example.com" is invalid: '
                         'spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[foo].type: '
                         'Required value: must not be empty for specified object fields')

    def test_invalid_default_refused(self):
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "gadgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"kind": "Gadget", "plural": "gadgets"},
                        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                            "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                                "type": "object", "properties": {"mode": {
                                    "type": "string", "enum": ["a", "b"], "default": "c"}}}}}}}]}}
        code, st, _ = self.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertEqual(code, 422)
        self.assertIn('spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[mode].default: '
                      'Unsupported value: "c": supported values: "a", "b"', st["message"])

    def test_validation_messages(self):
        code, st, _ = self.req("POST", BACKUPS, backup("bad", type="incremental"))
        self.assertEqual((code, st["reason"]), (422, "Invalid"))
        self.assertEqual(st["message"], 'PerconaServerMongoDBBackup.psmdb.percona.com "bad" is invalid: '
                                        'spec.type: Unsupported value: "incremental": supported values: '
                                        '"logical", "physical"')
        self.assertEqual(st["details"]["causes"][0],
                         {"reason": "FieldValueNotSupported", "field": "spec.type",
                          "message": 'Unsupported value: "incremental": supported values: "logical", "physical"'})
        code, st, _ = self.req("POST", BACKUPS, {"apiVersion": "psmdb.percona.com/v1",
                                                 "kind": "PerconaServerMongoDBBackup",
                                                 "metadata": {"name": "bad2"},
                                                 "spec": {"compressionLevel": "high", "retries": True}})
        self.assertEqual(code, 422)
        self.assertIn('spec.clusterName: Required value', st["message"])
        self.assertIn('spec.compressionLevel: Invalid value: "string": spec.compressionLevel in body must be of '
                      'type integer: "string"', st["message"])
        code, st, _ = self.req("POST", BACKUPS, backup("bad3", compressionLevel=12, clusterName=""))
        self.assertIn("spec.compressionLevel: Invalid value: 12: spec.compressionLevel in body should be less "
                      "than or equal to 9", st["message"])
        self.assertIn('spec.clusterName: Invalid value: "": spec.clusterName in body should be at least 1 chars '
                      'long', st["message"])
        code, ok, _ = self.req("POST", BACKUPS, backup("good", compressionLevel=None, retries="3",
                                                       labels={"a": "b"}, options={"any": {"thing": 1}}))
        self.assertEqual(code, 201, ok)
        self.assertEqual(ok["spec"]["options"], {"any": {"thing": 1}})

    def test_schema_may_restrict_name(self):
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "things.example.com"},
               "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Thing", "plural": "things"},
                        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                            "openAPIV3Schema": {"type": "object", "properties": {
                                "metadata": {"type": "object", "properties": {"name": {"type": "string",
                                                                                       "maxLength": 5}}}}}}}]}}
        code, st, _ = self.req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertEqual(code, 201, st)
        thing = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "toolong"}}
        code, st, _ = self.req("POST", "/apis/example.com/v1/things", thing)
        self.assertEqual((code, st["message"]), (422, 'Thing.example.com "toolong" is invalid: metadata.name: Too '
                                                      'long: may not be more than 5 bytes'))
        thing["metadata"]["name"] = "ok"
        self.assertEqual(self.req("POST", "/apis/example.com/v1/things", thing)[0], 201)

    def test_field_validation_and_pruning(self):
        body = backup("fv", foo=1)
        body["spec"]["labels"] = {"x": "y"}
        code, st, _ = self.req("POST", BACKUPS + "?fieldValidation=Strict", body)
        self.assertEqual((code, st["reason"]), (400, "BadRequest"))
        self.assertEqual(st["message"], 'PerconaServerMongoDBBackup in version "v1" cannot be handled as a '
                                        'PerconaServerMongoDBBackup: strict decoding error: unknown field "spec.foo"')
        code, b, h = self.req("POST", BACKUPS + "?fieldValidation=Warn", body)
        self.assertEqual(code, 201)
        self.assertEqual(h["Warning"], '299 - "unknown field \\"spec.foo\\""')
        self.assertNotIn("foo", b["spec"])
        body["metadata"]["name"] = "fv2"
        code, b, h = self.req("POST", BACKUPS + "?fieldValidation=Ignore", body)
        self.assertEqual(code, 201)
        self.assertIsNone(h["Warning"])
        self.assertNotIn("foo", b["spec"])

    def test_status_subresource_and_generation(self):
        code, b, _ = self.req("POST", BACKUPS, dict(backup("s1"), status={"state": "ready"}))
        self.assertNotIn("status", b)  # dropped on create
        rv = b["metadata"]["resourceVersion"]
        code, b, _ = self.req("PATCH", BACKUPS + "/s1/status", {"status": {"state": "running"},
                                                               "spec": {"storageName": "ignored"}})
        self.assertEqual(code, 200, b)
        self.assertEqual(b["status"]["state"], "running")
        self.assertNotIn("storageName", b["spec"])
        self.assertEqual(b["metadata"]["generation"], 1)
        self.assertNotEqual(b["metadata"]["resourceVersion"], rv)
        code, b, _ = self.req("PATCH", BACKUPS + "/s1", {"spec": {"storageName": "s3"},
                                                        "status": {"state": "ignored"}})
        self.assertEqual((b["spec"]["storageName"], b["status"]["state"]), ("s3", "running"))
        self.assertEqual(b["metadata"]["generation"], 2)
        code, b, _ = self.req("PATCH", BACKUPS + "/s1", {"metadata": {"labels": {"l": "v"}}})
        self.assertEqual(b["metadata"]["generation"], 2)
        b["status"] = {"state": "ready", "size": "1GiB"}
        code, b2, _ = self.req("PUT", BACKUPS + "/s1/status", b)
        self.assertEqual((code, b2["status"]["state"], b2["metadata"]["generation"]), (200, "ready", 2))
        code, st, _ = self.req("PUT", BACKUPS + "/s1/status", dict(b, status={"state": 5}))
        self.assertEqual(code, 409)  # stale resourceVersion applies to status writes too
        code, st, _ = self.req("PATCH", BACKUPS + "/s1/status?fieldValidation=Strict", {"status": {"sise": "1"}})
        self.assertEqual((code, st["message"]), (400, 'PerconaServerMongoDBBackup in version "v1" cannot be handled '
                                                      'as a PerconaServerMongoDBBackup: strict decoding error: '
                                                      'unknown field "status.sise"'))
        code, st, _ = self.req("PATCH", BACKUPS + "/s1/status", {"status": {"completed": "yesterday"}})
        self.assertEqual(code, 422)
        self.assertIn('status.completed: Invalid value: "yesterday": status.completed in body must be of type '
                      'date-time: "yesterday"', st["message"])


class TestKubectl(Shared):
    def test_apply_cr_create_reapply_get_columns_jsonpath(self):
        self.assertIn("perconaservermongodbbackup.psmdb.percona.com/b1 created", self.k("apply", "-f", B1).stdout)
        self.assertIn("unchanged", self.k("apply", "-f", B1).stdout)
        self.req("PATCH", BACKUPS + "/b1/status", {"status": {"state": "ready", "type": "physical", "size": "3.1GiB"}})
        out = self.k("get", "psmdb-backup").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAME", "STATUS", "TYPE", "SIZE", "AGE"])
        self.assertRegex(out[1], r"^b1\s+ready\s+physical\s+3\.1GiB\s+\d+s$")
        out = self.k("get", "psmdb-backup", "b1", "-o", "jsonpath={.spec.type}/{.status.size}").stdout
        self.assertEqual(out, "physical/3.1GiB")
        self.assertIn("b1", self.k("get", "psmdb").stdout)  # category
        self.assertIn("configured", self.k("apply", "-f", "-", input=read(B1).replace(
            "s3-us-west", "s3-eu")).stdout)
        self.assertEqual(self.k("get", "psmdb-backup", "b1", "-o", "jsonpath={.spec.storageName} "
                                "{.metadata.generation}").stdout, "s3-eu 2")

    def test_apply_builtins_and_strategic_merge(self):
        manifests = STS + """---
apiVersion: v1
kind: Secret
metadata: {name: s1}
stringData: {user: root}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c1}
data: {a: "1", b: "2"}
"""
        out = self.k("apply", "-f", "-", input=manifests).stdout
        self.assertIn("statefulset.apps/rs0 created", out)
        self.assertIn("secret/s1 created", out)
        out = self.k("apply", "-f", "-", input=manifests).stdout
        self.assertIn("configmap/c1 unchanged", out)
        changed = (manifests.replace('value: "2"', 'value: "3"').replace('b: "2"', 'c: "3"')
                   .replace("      - name: backup-agent\n        image: percona/pbm:2\n", ""))
        out = self.k("apply", "-f", "-", input=changed).stdout
        self.assertIn("statefulset.apps/rs0 configured", out)
        self.assertIn("configmap/c1 configured", out)
        code, sts, _ = self.req("GET", "/apis/apps/v1/namespaces/{ns}/statefulsets/rs0")
        cs = sts["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in cs], ["mongod"])
        self.assertEqual(cs[0]["env"], [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
        self.assertEqual(cs[0]["imagePullPolicy"], "IfNotPresent")
        self.assertEqual(sts["metadata"]["generation"], 2)
        code, cm, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps/c1")
        self.assertEqual(cm["data"], {"a": "1", "c": "3"})
        out = self.k("get", "sts").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAME", "READY", "AGE"])
        self.assertRegex(out[1], r"^rs0\s+0/3\s+\d+s$")
        code, sec, _ = self.req("GET", "/api/v1/namespaces/{ns}/secrets/s1")
        self.assertEqual(sec["data"], {"user": "cm9vdA=="})
        bad = STS.replace("volumeClaimTemplates:", "volumeClaimTemplates:\n  - metadata: {name: logs}\n"
                                                   "    spec: {accessModes: [ReadWriteOnce], resources: "
                                                   "{requests: {storage: 1Gi}}}")
        p = self.k("apply", "-f", "-", input=bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("spec: Forbidden: updates to statefulset spec for fields other than 'replicas'", p.stderr)

    def test_unknown_fields_of_builtin_kinds(self):
        bad = STS.replace("        image: percona/pbm:2", "        image: percona/pbm:2\n        imagePullPolicyy: Always")
        bad = bad.replace("  serviceName: rs0", "  serviceName: rs0\n  foo: 1")
        p = self.k("apply", "-f", "-", input=bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('StatefulSet in version "v1" cannot be handled as a StatefulSet: strict decoding error: '
                      'unknown field "spec.foo", unknown field "spec.template.spec.containers[1].imagePullPolicyy"',
                      p.stderr)
        p = self.k("apply", "-f", "-", input=STS.replace('value: "1"', "value: 1"), check=False)
        self.assertIn('StatefulSet in version "v1" cannot be handled as a StatefulSet: json: cannot unmarshal number '
                      'into Go struct field EnvVar.spec.template.spec.containers.env.value of type string', p.stderr)
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/services?fieldValidation=Ignore", {
            "metadata": {"name": "s"}, "spec": {"ports": [{"port": "80"}]}})
        self.assertEqual((code, st["message"]), (400, 'Service in version "v1" cannot be handled as a Service: json: '
                                                      'cannot unmarshal string into Go struct field '
                                                      'ServicePort.spec.ports.port of type int32'))
        code, cm, h = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "u"}, "dta": {}})
        self.assertEqual((code, h["Warning"]), (201, '299 - "unknown field \\"dta\\""'))

    def test_typed_kubectl_commands(self):
        # kubectl's typed commands send protobuf bodies
        self.k("create", "secret", "generic", "pw", "--from-literal=password=s3")
        self.k("create", "configmap", "cfg", "--from-literal=k=v")
        self.k("create", "serviceaccount", "op")
        self.k("create", "role", "r", "--verb=get", "--resource=pods")
        self.k("create", "rolebinding", "rb", "--role=r", f"--serviceaccount={self.ns}:op")
        self.assertEqual(self.k("get", "secret", "pw", "-o", "jsonpath={.data.password}").stdout, "czM=")
        self.assertEqual(self.k("get", "rolebinding", "rb", "-o", "jsonpath={.subjects[0].name}").stdout, "op")
        self.assertTrue(self.k("create", "token", "op").stdout.strip())
        self.assertEqual(self.k("auth", "can-i", "get", "pods").stdout.strip(), "yes")

    def test_kubectl_refuses_invalid_cr(self):
        p = self.k("apply", "-f", BAD, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('The PerconaServerMongoDBBackup "bad" is invalid: spec.type: Unsupported value: '
                      '"incremental": supported values: "logical", "physical"', p.stderr)
        p = self.k("apply", "-f", "-", input=read(B1).replace("  type: physical", "  type: physical\n"
                                                                      "  bogus: 1"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('strict decoding error: unknown field "spec.bogus"', p.stderr)

    def test_apply_of_a_kind_without_crd(self):
        p = self.k("apply", "-f", "-", input="apiVersion: example.org/v1\nkind: Nope\nmetadata: {name: x}\n",
                   check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('no matches for kind "Nope" in version "example.org/v1"', p.stderr)
        self.assertIn("ensure CRDs are installed first", p.stderr)

    def test_wait_for_status_written_later(self):
        self.k("apply", "-f", B1)

        def later():
            time.sleep(0.7)
            self.req("PATCH", BACKUPS + "/b1/status", {"status": {"state": "running"}})
            time.sleep(0.3)
            self.req("PATCH", BACKUPS + "/b1/status", {"status": {"state": "ready"}})

        t = threading.Thread(target=later)
        t0 = time.monotonic()
        t.start()
        out = self.k("wait", "--for=jsonpath={.status.state}=ready", "psmdb-backup/b1", "--timeout=15s").stdout
        t.join()
        self.assertIn("condition met", out)
        self.assertGreater(time.monotonic() - t0, 0.9)

    def test_delete(self):
        self.k("apply", "-f", B1)
        self.assertIn('perconaservermongodbbackup.psmdb.percona.com "b1" deleted',
                      self.k("delete", "psmdb-backup", "b1").stdout)
        code, st, _ = self.req("GET", BACKUPS + "/b1")
        self.assertEqual((code, st["reason"], st["message"]),
                         (404, "NotFound", 'perconaservermongodbbackups.psmdb.percona.com "b1" not found'))
        p = self.k("delete", "psmdb-backup", "b1", check=False)
        self.assertIn('Error from server (NotFound): perconaservermongodbbackups.psmdb.percona.com "b1" not found',
                      p.stderr)

    def test_delete_waits_for_finalizer(self):
        self.req("POST", BACKUPS, dict(backup("f1"), metadata={"name": "f1", "finalizers": ["test/hold"]}))

        def release():
            time.sleep(0.8)
            self.req("PATCH", BACKUPS + "/f1", {"metadata": {"finalizers": None}})

        t = threading.Thread(target=release)
        t.start()
        t0 = time.monotonic()
        self.k("delete", "psmdb-backup", "f1", "--timeout=10s")
        t.join()
        self.assertGreater(time.monotonic() - t0, 0.7)
        self.assertEqual(self.req("GET", BACKUPS + "/f1")[0], 404)

    def test_pods_table(self):
        pod = {"metadata": {"name": "p1"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        code, p, _ = self.req("POST", "/api/v1/namespaces/{ns}/pods", pod)
        self.assertEqual(code, 201, p)
        self.req("PATCH", "/api/v1/namespaces/{ns}/pods/p1/status", {"status": {
            "phase": "Running", "containerStatuses": [{"name": "c", "ready": True, "restartCount": 2,
                                                       "image": "busybox", "imageID": "", "state": {
                                                           "running": {}}}]}})
        out = self.k("get", "pods").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
        self.assertRegex(out[1], r"^p1\s+1/1\s+Running\s+2\s+\d+s$")
        code, t, h = self.req("GET", "/api/v1/namespaces/{ns}/pods",
                              headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertEqual(t["kind"], "Table")
        self.assertEqual(t["rows"][0]["object"]["kind"], "PartialObjectMetadata")


class TestSemantics(Shared):
    def test_create_errors_and_generate_name(self):
        cm = {"metadata": {"name": "a"}, "data": {"k": "v"}}
        self.assertEqual(self.req("POST", "/api/v1/namespaces/{ns}/configmaps", cm)[0], 201)
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", cm)
        self.assertEqual((code, st["reason"], st["message"]), (409, "AlreadyExists", 'configmaps "a" already exists'))
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"namespace": "other",
                                                                                         "name": "b"}})
        self.assertEqual((code, st["message"]), (400, "the namespace of the provided object does not match the "
                                                      "namespace sent on the request"))
        code, st, _ = self.req("POST", "/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "b"}})
        self.assertEqual((code, st["message"]), (404, 'namespaces "nope" not found'))
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {}})
        self.assertEqual(st["message"], 'ConfigMap "" is invalid: metadata.name: Required value: name or '
                                        'generateName is required')
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "Bad_Name"}})
        self.assertEqual(code, 422)
        self.assertIn('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain', st["message"])
        code, g, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"generateName": "gen-"}})
        self.assertRegex(g["metadata"]["name"], r"^gen-[a-z0-9]{5}$")
        for k in ("uid", "creationTimestamp", "resourceVersion"):
            self.assertIn(k, g["metadata"])
        code, st, _ = self.req("PUT", "/api/v1/namespaces/{ns}/configmaps/a", {"metadata": {"name": "zzz"}})
        self.assertEqual((code, st["message"]), (400, "the name of the object (zzz) does not match the name on "
                                                      "the URL (a)"))

    def test_secret_and_configmap_rules(self):
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "tls"},
                                                                          "type": "kubernetes.io/tls",
                                                                          "data": {"tls.crt": "eA=="}})
        self.assertEqual((code, st["message"]), (422, 'Secret "tls" is invalid: data[tls.key]: Required value'))
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "b64"},
                                                                          "data": {"k": "not base64!"}})
        self.assertEqual((code, st["reason"]), (400, "BadRequest"))
        self.assertIn("illegal base64 data at input byte 3", st["message"])
        code, st, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "big"},
                                                                             "data": {"k": "x" * (1 << 20)}})
        self.assertEqual(code, 422)
        code, cm, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "imm"},
                                                                             "data": {"k": "v"}, "immutable": True})
        code, st, _ = self.req("PATCH", "/api/v1/namespaces/{ns}/configmaps/imm", {"data": {"k": "w"}})
        self.assertEqual((code, st["message"]), (422, 'ConfigMap "imm" is invalid: data: Forbidden: field is '
                                                      'immutable when `immutable` is set'))

    def test_conflict_on_stale_update(self):
        code, cm, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "c"},
                                                                             "data": {"v": "1"}})
        stale = json.loads(json.dumps(cm))
        cm["data"]["v"] = "2"
        code, cm2, _ = self.req("PUT", "/api/v1/namespaces/{ns}/configmaps/c", cm)
        self.assertEqual(code, 200)
        self.assertGreater(int(cm2["metadata"]["resourceVersion"]), int(cm["metadata"]["resourceVersion"]))
        stale["data"]["v"] = "3"
        code, st, _ = self.req("PUT", "/api/v1/namespaces/{ns}/configmaps/c", stale)
        self.assertEqual((code, st["reason"]), (409, "Conflict"))
        self.assertEqual(st["message"], 'Operation cannot be fulfilled on configmaps "c": the object has been '
                                        'modified; please apply your changes to the latest version and try again')
        code, st, _ = self.req("PUT", BACKUPS + "/nothere", backup("nothere"))
        self.assertEqual(code, 404)
        del stale["metadata"]["resourceVersion"]  # unconditional update
        code, cm3, _ = self.req("PUT", "/api/v1/namespaces/{ns}/configmaps/c", stale)
        self.assertEqual((code, cm3["data"]["v"]), (200, "3"))
        self.req("POST", BACKUPS, backup("cf"))
        code, b, _ = self.req("GET", BACKUPS + "/cf")
        self.req("PATCH", BACKUPS + "/cf", {"spec": {"storageName": "x"}})
        code, st, _ = self.req("PUT", BACKUPS + "/cf", b)
        self.assertEqual(st["message"], 'Operation cannot be fulfilled on perconaservermongodbbackups.psmdb.percona'
                                        '.com "cf": the object has been modified; please apply your changes to '
                                        'the latest version and try again')
        del b["metadata"]["resourceVersion"]  # custom resources allow no unconditional update
        code, st, _ = self.req("PUT", BACKUPS + "/cf", b)
        self.assertEqual((code, st["message"]), (422, 'perconaservermongodbbackups.psmdb.percona.com "cf" is invalid: '
                                                      'metadata.resourceVersion: Invalid value: 0x0: must be '
                                                      'specified for an update'))

    def test_patch_types(self):
        dep = {"metadata": {"name": "d", "labels": {"a": "1"}},
               "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
                   "metadata": {"labels": {"app": "d"}},
                   "spec": {"containers": [{"name": "one", "image": "i:1", "env": [{"name": "X", "value": "1"}]},
                                           {"name": "two", "image": "i:2"}]}}}}
        path = "/apis/apps/v1/namespaces/{ns}/deployments/d"
        self.assertEqual(self.req("POST", "/apis/apps/v1/namespaces/{ns}/deployments", dep)[0], 201)
        smp = {"spec": {"template": {"spec": {"containers": [{"name": "two", "image": "i:3"},
                                                             {"name": "one", "env": [{"name": "Y", "value": "2"}]}]}}}}
        code, d, _ = self.req("PATCH", path, smp, ctype="application/strategic-merge-patch+json")
        self.assertEqual(code, 200, d)
        cs = {c["name"]: c for c in d["spec"]["template"]["spec"]["containers"]}
        self.assertEqual((cs["one"]["image"], cs["two"]["image"]), ("i:1", "i:3"))
        self.assertEqual([e["name"] for e in cs["one"]["env"]], ["X", "Y"])
        code, d, _ = self.req("PATCH", path, {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "one"}],
            "containers": [{"$patch": "delete", "name": "two"}]}}}}, ctype="application/strategic-merge-patch+json")
        self.assertEqual([c["name"] for c in d["spec"]["template"]["spec"]["containers"]], ["one"])
        code, d, _ = self.req("PATCH", path, {"metadata": {"labels": {"a": None, "b": "2"}}})  # merge patch
        self.assertEqual(d["metadata"]["labels"], {"b": "2"})
        code, d, _ = self.req("PATCH", path, [{"op": "replace", "path": "/spec/replicas", "value": 4},
                                              {"op": "add", "path": "/metadata/labels/c", "value": "3"}],
                              ctype="application/json-patch+json")
        self.assertEqual((d["spec"]["replicas"], d["metadata"]["labels"]["c"]), (4, "3"))
        code, st, _ = self.req("PATCH", path, [{"op": "test", "path": "/spec/replicas", "value": 1}],
                               ctype="application/json-patch+json")
        self.assertEqual(code, 422)
        code, st, _ = self.req("PATCH", path, {"metadata": {"resourceVersion": "1"}})
        self.assertEqual((code, st["reason"]), (409, "Conflict"))
        self.req("POST", BACKUPS, backup("pt"))
        code, st, _ = self.req("PATCH", BACKUPS + "/pt", {"spec": {}}, ctype="application/strategic-merge-patch+json")
        self.assertEqual((code, st["reason"]), (415, "UnsupportedMediaType"))
        code, st, _ = self.req("PATCH", "/api/v1/namespaces/{ns}/configmaps/none", {"data": {}})
        self.assertEqual((code, st["message"]), (404, 'configmaps "none" not found'))

    def test_label_and_field_selectors(self):
        for name, labels in (("a", {"app": "x", "tier": "db"}), ("b", {"app": "y", "tier": "db"}),
                             ("c", {"app": "z"}), ("d", {"app": "x", "env": "prod"})):
            self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": name, "labels": labels}})

        def names(sel, field=None):
            import urllib.parse
            q = "labelSelector=" + urllib.parse.quote(sel)
            if field:
                q += "&fieldSelector=" + urllib.parse.quote(field)
            code, lst, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps?" + q)
            self.assertEqual(code, 200, lst)
            return sorted(i["metadata"]["name"] for i in lst["items"])

        self.assertEqual(names("app=x"), ["a", "d"])
        self.assertEqual(names("app==x,tier!=db"), ["d"])
        self.assertEqual(names("app in (x,y),!env"), ["a", "b"])
        self.assertEqual(names("app notin (x),tier"), ["b"])
        self.assertEqual(names("tier", "metadata.name!=a"), ["b"])
        self.assertEqual(names("", f"metadata.namespace={self.ns},metadata.name=c"), ["c"])
        code, lst, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps?limit=2")
        self.assertEqual(len(lst["items"]), 2)
        self.assertTrue(lst["metadata"]["continue"])
        code, rest, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps?limit=10&continue=" +
                                 lst["metadata"]["continue"])
        self.assertEqual(len(lst["items"]) + len(rest["items"]), 5)  # + kube-root-ca.crt
        out = self.k("get", "cm", "-l", "app in (x,z)", "-o", "name").stdout.split()
        self.assertEqual(out, ["configmap/a", "configmap/c", "configmap/d"])
        code, st, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps?fieldSelector=data.x%3D1")
        self.assertEqual(code, 400)

    def test_finalizers_and_deletion_timestamp(self):
        path = "/api/v1/namespaces/{ns}/configmaps/f"
        code, cm, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps",
                               {"metadata": {"name": "f", "finalizers": ["a.example.com/x", "b.example.com/y"]}})
        code, cm, _ = self.req("DELETE", path)
        self.assertEqual(code, 200)
        self.assertIn("deletionTimestamp", cm["metadata"])
        code, again, _ = self.req("DELETE", path)  # already deleting: no-op
        self.assertEqual((code, again["metadata"]["resourceVersion"]), (200, cm["metadata"]["resourceVersion"]))
        code, st, _ = self.req("PATCH", path, {"metadata": {"finalizers": ["a.example.com/x", "b.example.com/y",
                                                                          "c.example.com/z"]}})
        self.assertEqual((code, st["reason"]), (422, "Invalid"))
        self.assertEqual(st["message"], 'ConfigMap "f" is invalid: metadata.finalizers: Forbidden: no new '
                                        'finalizers can be added if the object is being deleted, found new '
                                        'finalizers []string{"c.example.com/z"}')
        code, cm, _ = self.req("PATCH", path, [{"op": "remove", "path": "/metadata/finalizers/0"}],
                               ctype="application/json-patch+json")
        self.assertEqual(cm["metadata"]["finalizers"], ["b.example.com/y"])
        rv = cm["metadata"]["resourceVersion"]
        conn, resp = self.srv.watch(f"/api/v1/namespaces/{self.ns}/configmaps?watch=true&resourceVersion={rv}")
        code, cm, _ = self.req("PATCH", path, {"metadata": {"finalizers": None}})
        self.assertEqual(code, 200)
        ev = self.srv.next_event(resp)
        while ev["type"] == "MODIFIED":
            ev = self.srv.next_event(resp)
        conn.close()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("DELETED", "f"))
        self.assertEqual(self.req("GET", path)[0], 404)

    def test_owner_reference_garbage_collection(self):
        code, owner, _ = self.req("POST", BACKUPS, backup("owner"))
        ref = {"apiVersion": "psmdb.percona.com/v1", "kind": "PerconaServerMongoDBBackup", "name": "owner",
               "uid": owner["metadata"]["uid"], "controller": True}
        code, other, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "other"}})
        oref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other["metadata"]["uid"]}
        self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "dep", "ownerReferences": [ref]}})
        self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "two-owners",
                                                                             "ownerReferences": [ref, oref]}})
        code, sec2, _ = self.req("POST", "/api/v1/namespaces/{ns}/secrets",
                                 {"metadata": {"name": "grandchild", "ownerReferences": [
                                     {"apiVersion": "v1", "kind": "Secret", "name": "dep",
                                      "uid": self.req("GET", "/api/v1/namespaces/{ns}/secrets/dep")[1]["metadata"]
                                      ["uid"]}]}})
        self.req("DELETE", BACKUPS + "/owner")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.req("GET", "/api/v1/namespaces/{ns}/secrets/grandchild")[0] != 404:
            time.sleep(0.05)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/{ns}/secrets/dep")[0], 404)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/{ns}/secrets/grandchild")[0], 404)
        code, two, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps/two-owners")
        self.assertEqual(code, 200)
        self.assertEqual([r["name"] for r in two["metadata"]["ownerReferences"]], ["other"])

    def test_watch_events(self):
        code, lst, _ = self.req("GET", "/api/v1/namespaces/{ns}/secrets")
        rv = lst["metadata"]["resourceVersion"]
        conn, resp = self.srv.watch(f"/api/v1/namespaces/{self.ns}/secrets?watch=true&resourceVersion={rv}"
                                    f"&labelSelector=w%3D1")
        self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "n", "labels": {"w": "0"}}})
        self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "w", "labels": {"w": "1"}}})
        self.req("PATCH", "/api/v1/namespaces/{ns}/secrets/w", {"data": {"k": "dg=="}})
        self.req("PATCH", "/api/v1/namespaces/{ns}/secrets/n", {"metadata": {"labels": {"w": "1"}}})
        self.req("PATCH", "/api/v1/namespaces/{ns}/secrets/n", {"metadata": {"labels": {"w": "2"}}})
        self.req("DELETE", "/api/v1/namespaces/{ns}/secrets/w")
        seen = [(e["type"], e["object"]["metadata"]["name"]) for e in
                (self.srv.next_event(resp) for _ in range(5))]
        conn.close()
        self.assertEqual(seen, [("ADDED", "w"), ("MODIFIED", "w"), ("ADDED", "n"), ("DELETED", "n"),
                                ("DELETED", "w")])
        # From "0": the current state as ADDED events, then changes.
        conn, resp = self.srv.watch(f"/api/v1/namespaces/{self.ns}/secrets?watch=1&resourceVersion=0"
                                    f"&timeoutSeconds=1")
        ev = self.srv.next_event(resp)
        self.assertEqual((ev["type"], ev["object"]["kind"], ev["object"]["metadata"]["name"]),
                         ("ADDED", "Secret", "n"))
        t0 = time.monotonic()
        self.assertIsNone(self.srv.next_event(resp))  # timeoutSeconds ends the stream
        self.assertLess(time.monotonic() - t0, 3)
        conn.close()

    def test_watch_gone_after_compaction(self):
        code, cm, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "g"}})
        rv = cm["metadata"]["resourceVersion"]
        self.req("PATCH", "/api/v1/namespaces/{ns}/configmaps/g", {"data": {"a": "1"}})
        code, res, _ = self.req("POST", "/debug/compact")
        self.assertEqual(code, 200)
        conn, resp = self.srv.watch(f"/api/v1/namespaces/{self.ns}/configmaps?watch=true&resourceVersion={rv}")
        self.assertEqual(resp.status, 200)
        ev = self.srv.next_event(resp)
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual((ev["object"]["code"], ev["object"]["reason"]), (410, "Expired"))
        self.assertRegex(ev["object"]["message"], r"^too old resource version: \d+ \(\d+\)$")
        self.assertIsNone(self.srv.next_event(resp))
        conn.close()
        code, lst, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps")
        conn, resp = self.srv.watch(f"/api/v1/namespaces/{self.ns}/configmaps?watch=true&resourceVersion="
                                    f"{lst['metadata']['resourceVersion']}")
        self.req("PATCH", "/api/v1/namespaces/{ns}/configmaps/g", {"data": {"a": "2"}})
        self.assertEqual(self.srv.next_event(resp)["type"], "MODIFIED")
        conn.close()

    def test_namespace_deletion_removes_content(self):
        ns = fresh_ns(self.srv)
        self.srv.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "x"}})
        self.srv.request("POST", BACKUPS.format(ns=ns), backup("y"))
        self.srv.request("POST", f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "held",
                                                                                   "finalizers": ["t/x"]}})
        code, n, _ = self.srv.request("DELETE", f"/api/v1/namespaces/{ns}")
        self.assertEqual((code, n["status"]["phase"]), (200, "Terminating"))
        code, st, _ = self.srv.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "z"}})
        self.assertEqual((code, st["reason"]), (403, "Forbidden"))
        self.assertIn(f"unable to create new content in namespace {ns} because it is being terminated",
                      st["message"])
        self.assertEqual(self.srv.request("GET", f"/api/v1/namespaces/{ns}/configmaps/x")[0], 404)
        self.srv.request("PATCH", f"/api/v1/namespaces/{ns}/secrets/held", {"metadata": {"finalizers": None}})
        self.assertEqual(self.srv.request("GET", f"/api/v1/namespaces/{ns}")[0], 404)
        code, st, _ = self.srv.request("DELETE", "/api/v1/namespaces/default")
        self.assertEqual(code, 403)

    def test_namespace_deletion_with_owners_and_crs(self):
        ns = fresh_ns(self.srv)
        code, owner, _ = self.srv.request("POST", BACKUPS.format(ns=ns), backup("o"))
        for i in range(3):
            self.srv.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {
                "name": f"d{i}", "ownerReferences": [{"apiVersion": "psmdb.percona.com/v1",
                                                      "kind": "PerconaServerMongoDBBackup", "name": "o",
                                                      "uid": owner["metadata"]["uid"]}]}})
            self.srv.request("POST", BACKUPS.format(ns=ns), backup(f"b{i}"))
        self.assertEqual(self.srv.request("DELETE", f"/api/v1/namespaces/{ns}")[0], 200)
        self.assertEqual(self.srv.request("GET", f"/api/v1/namespaces/{ns}")[0], 404)

    def test_cascading_policies(self):
        code, owner, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "own"}})
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "own", "uid": owner["metadata"]["uid"]}
        self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "kid", "ownerReferences": [ref]}})
        code, o, _ = self.req("DELETE", "/api/v1/namespaces/{ns}/configmaps/own?propagationPolicy=Orphan")
        self.assertEqual(self.req("GET", "/api/v1/namespaces/{ns}/configmaps/own")[0], 404)
        code, kid, _ = self.req("GET", "/api/v1/namespaces/{ns}/secrets/kid")
        self.assertEqual((code, kid["metadata"].get("ownerReferences")), (200, None))
        code, owner, _ = self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "own2"}})
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "own2", "uid": owner["metadata"]["uid"]}
        self.req("POST", "/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "kid2", "ownerReferences": [ref],
                                                                        "finalizers": ["t/hold"]}})
        code, o, _ = self.req("DELETE", "/api/v1/namespaces/{ns}/configmaps/own2",
                              {"propagationPolicy": "Foreground"}, ctype="application/json")
        self.assertEqual(o["metadata"]["finalizers"], ["foregroundDeletion"])
        self.assertEqual(self.req("GET", "/api/v1/namespaces/{ns}/configmaps/own2")[0], 200)  # waits for kid2
        self.req("PATCH", "/api/v1/namespaces/{ns}/secrets/kid2", {"metadata": {"finalizers": None}})
        self.assertEqual(self.req("GET", "/api/v1/namespaces/{ns}/secrets/kid2")[0], 404)
        self.assertEqual(self.req("GET", "/api/v1/namespaces/{ns}/configmaps/own2")[0], 404)

    def test_scale_and_service_defaults(self):
        self.k("apply", "-f", "-", input=STS)
        self.k("scale", "sts/rs0", "--replicas=5")
        code, sc, _ = self.req("GET", "/apis/apps/v1/namespaces/{ns}/statefulsets/rs0/scale")
        self.assertEqual((sc["kind"], sc["spec"]["replicas"], sc["status"]["selector"]), ("Scale", 5, "app=mongo"))
        code, svc, _ = self.req("POST", "/api/v1/namespaces/{ns}/services", {
            "metadata": {"name": "db"}, "spec": {"selector": {"app": "mongo"}, "ports": [{"port": 27017}]}})
        self.assertRegex(svc["spec"]["clusterIP"], r"^10\.96\.\d+\.\d+$")
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], 27017)
        code, svc, _ = self.req("POST", "/api/v1/namespaces/{ns}/services", {
            "metadata": {"name": "db-headless"}, "spec": {"clusterIP": "None", "selector": {"app": "mongo"}}})
        self.assertEqual(svc["spec"]["clusterIP"], "None")

    def test_pod_binding_and_graceful_deletion(self):
        pods = "/api/v1/namespaces/{ns}/pods"
        spec = {"containers": [{"name": "c", "image": "i:1", "resources": {"requests": {"cpu": "1"}}}]}
        code, p, _ = self.req("POST", pods, {"metadata": {"name": "p"}, "spec": spec})
        self.assertEqual((p["status"]["phase"], p["status"]["qosClass"]), ("Pending", "Burstable"))
        code, st, _ = self.req("PATCH", pods + "/p", {"spec": {"nodeName": "n1"}})
        self.assertEqual(code, 422)  # pod spec is immutable; a scheduler binds instead
        code, st, _ = self.req("POST", pods + "/p/binding", {"apiVersion": "v1", "kind": "Binding",
                                                             "metadata": {"name": "p"},
                                                             "target": {"kind": "Node", "name": "n1"}})
        self.assertEqual(code, 201, st)
        code, p, _ = self.req("GET", pods + "/p")
        self.assertEqual(p["spec"]["nodeName"], "n1")
        self.assertEqual([c["type"] for c in p["status"]["conditions"]], ["PodScheduled"])
        code, st, _ = self.req("POST", pods + "/p/binding", {"target": {"kind": "Node", "name": "n2"}})
        self.assertEqual((code, st["message"]), (409, 'Operation cannot be fulfilled on pods "p": pod p is already '
                                                      'assigned to node "n1"'))
        code, p, _ = self.req("DELETE", pods + "/p")  # on a node: graceful, waits for the kubelet
        self.assertEqual((code, p["metadata"]["deletionGracePeriodSeconds"]), (200, 30))
        self.assertEqual(self.req("GET", pods + "/p")[0], 200)
        code, p, _ = self.req("DELETE", pods + "/p?gracePeriodSeconds=0")
        self.assertEqual(self.req("GET", pods + "/p")[0], 404)
        code, p, _ = self.req("POST", pods, {"metadata": {"name": "q"}, "spec": spec})
        self.assertEqual(self.req("DELETE", pods + "/q")[0], 200)  # unscheduled: at once
        self.assertEqual(self.req("GET", pods + "/q")[0], 404)
        code, st, _ = self.req("POST", pods, {"metadata": {"name": "r"}, "spec": dict(spec, serviceAccountName="x")})
        self.assertEqual((code, st["message"]), (403, 'pods "r" is forbidden: error looking up service account '
                                                      f'{self.ns}/x: serviceaccount "x" not found'))

    def test_events_share_storage(self):
        ev = {"metadata": {"name": "e1"}, "regarding": {"kind": "Pod", "name": "p", "namespace": self.ns},
              "reason": "Started", "note": "hello", "type": "Normal", "action": "Start",
              "reportingController": "test", "reportingInstance": "test-1", "eventTime": "2025-01-01T00:00:00.000000Z"}
        code, e, _ = self.req("POST", "/apis/events.k8s.io/v1/namespaces/{ns}/events", ev)
        self.assertEqual(code, 201, e)
        code, core, _ = self.req("GET", "/api/v1/namespaces/{ns}/events/e1")
        self.assertEqual((core["message"], core["involvedObject"]["name"]), ("hello", "p"))
        code, lst, _ = self.req("GET", "/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dp")
        self.assertEqual(len(lst["items"]), 1)


class TestCRDLifecycle(unittest.TestCase):
    def test_crd_deletion_removes_resources_then_itself(self):
        with APIServer() as srv:
            install_crd(srv)
            path = BACKUPS.format(ns="default")
            for i in range(3):
                srv.request("POST", path, backup(f"b{i}"))
            srv.request("POST", path, dict(backup("held"), metadata={"name": "held", "finalizers": ["t/x"]}))
            out = srv.kubectl("delete", "crd", "perconaservermongodbbackups.psmdb.percona.com", "--wait=false").stdout
            self.assertIn("deleted", out)
            code, crd, _ = srv.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                              "perconaservermongodbbackups.psmdb.percona.com")
            self.assertEqual(code, 200)
            self.assertIn("Terminating", [c["type"] for c in crd["status"]["conditions"]])
            code, lst, _ = srv.request("GET", path)
            self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["held"])
            code, st, _ = srv.request("POST", path, backup("new"))
            self.assertEqual((code, st["reason"]), (405, "MethodNotAllowed"))
            srv.request("PATCH", path + "/held", {"metadata": {"finalizers": None}})
            self.assertEqual(srv.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                                "perconaservermongodbbackups.psmdb.percona.com")[0], 404)
            code, groups, _ = srv.request("GET", "/apis")
            self.assertNotIn("psmdb.percona.com", [g["name"] for g in groups["groups"]])
            self.assertEqual(srv.request("GET", path)[0], 404)
            # and it can come back
            install_crd(srv)
            self.assertEqual(srv.request("POST", path, backup("again"))[0], 201)
            self.assertIn("unchanged", srv.kubectl("apply", "-f", CRD).stdout)


class TestTransport(Shared):
    def test_keep_alive_across_errors_and_watches(self):
        conn = self.srv.connection()
        try:
            for method, path, body, want in (
                    ("GET", f"/api/v1/namespaces/{self.ns}/configmaps/none", None, 404),
                    ("POST", f"/api/v1/namespaces/{self.ns}/configmaps", {"metadata": {"name": "k"}}, 201),
                    ("POST", f"/api/v1/namespaces/{self.ns}/configmaps", {"metadata": {"name": "k"}}, 409),
                    ("GET", f"/api/v1/namespaces/{self.ns}/configmaps?watch=1&timeoutSeconds=1", None, 200),
                    ("GET", "/version", None, 200)):
                conn.request(method, path, body=json.dumps(body) if body else None,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()  # a watch ends after timeoutSeconds with the last chunk
                self.assertEqual(resp.status, want, data)
                self.assertFalse(resp.will_close)
        finally:
            conn.close()

    def test_concurrent_writers_and_watchers_see_one_order(self):
        code, lst, _ = self.req("GET", "/api/v1/namespaces/{ns}/configmaps")
        rv0 = lst["metadata"]["resourceVersion"]
        seen = [[], []]

        def watch(i):
            conn, resp = self.srv.watch(f"/api/v1/namespaces/{self.ns}/configmaps?watch=1&resourceVersion={rv0}",
                                        timeout=20)
            while len(seen[i]) < 4 * 20 * 2:
                e = self.srv.next_event(resp)
                if e is None:
                    break
                seen[i].append((e["type"], e["object"]["metadata"]["name"],
                                int(e["object"]["metadata"]["resourceVersion"])))
            conn.close()

        def write(t):
            for i in range(20):
                self.req("POST", "/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": f"c{t}-{i}"}})
                self.req("PATCH", f"/api/v1/namespaces/{{ns}}/configmaps/c{t}-{i}", {"data": {"v": "1"}})

        ws = [threading.Thread(target=watch, args=(i,)) for i in range(2)]
        wr = [threading.Thread(target=write, args=(t,)) for t in range(4)]
        for t in ws + wr:
            t.start()
        for t in ws + wr:
            t.join(30)
        self.assertEqual(len(seen[0]), 160)
        self.assertEqual(seen[0], seen[1])
        rvs = [e[2] for e in seen[0]]
        self.assertEqual(rvs, sorted(set(rvs)))


class TestSecurity(unittest.TestCase):
    def test_tls_client_cert_and_401(self):
        with APIServer(tls=True) as srv:
            out = srv.kubectl("get", "ns", "default", "-o", "jsonpath={.metadata.name}").stdout
            self.assertEqual(out, "default")
            code, who, _ = srv.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
            self.assertEqual(who["status"]["userInfo"]["username"], "admin")
            self.assertIn("system:masters", who["status"]["userInfo"]["groups"])
            code, st, _ = srv.request("GET", "/api/v1/namespaces", client_cert=False)
            self.assertEqual((code, st["reason"], st["message"]), (401, "Unauthorized", "Unauthorized"))
            from kubeapi import pki
            crt, key = pki.make_client_cert(srv.cert_dir, "alice", ["dev", "ops"])
            code, who, _ = srv.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {},
                                       cert=crt, key=key)
            self.assertEqual(who["status"]["userInfo"]["username"], "alice")
            self.assertEqual(who["status"]["userInfo"]["groups"], ["dev", "ops", "system:authenticated"])

    def test_token_auth(self):
        # kubectl (client-go) sends bearer tokens only over TLS.
        with APIServer(token="s3cret", tls=True) as srv:
            self.assertIn("default", srv.kubectl("get", "ns").stdout)
            code, st, _ = srv.request("GET", "/api/v1/namespaces", token=False)
            self.assertEqual((code, st["kind"], st["reason"]), (401, "Status", "Unauthorized"))
            code, st, _ = srv.request("GET", "/api/v1/namespaces", token="wrong")
            self.assertEqual(code, 401)
            kc = os.path.join(srv.tmp, "bad-kubeconfig")
            with open(srv.kubeconfig) as f:
                cfg = json.load(f)
            cfg["users"][0]["user"]["token"] = "wrong"
            with open(kc, "w") as f:
                json.dump(cfg, f)
            p = srv.kubectl("get", "ns", kubeconfig=kc, check=False)
            self.assertIn("You must be logged in to the server (Unauthorized)", p.stderr)

    def test_rbac(self):
        lines = ['admintoken,kube-admin,1,"system:masters"',
                 "optoken,system:serviceaccount:ops:operator,2,\"system:serviceaccounts,system:serviceaccounts:ops\"",
                 "nobody,jane,3"]
        role = """
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator, namespace: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: operator, namespace: ops}
rules:
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [only-this]
  verbs: [get, list, watch]
- apiGroups: [psmdb.percona.com]
  resources: [perconaservermongodbbackups, perconaservermongodbbackups/status]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operator, namespace: ops}
subjects: [{kind: ServiceAccount, name: operator}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: operator}
"""
        with APIServer(token_file_lines=lines, rbac=True, tls=True) as srv:
            install_crd(srv)
            srv.kubectl("apply", "-f", "-", input=role)
            op = "optoken"
            ok = lambda p: srv.request("GET", p, token=op)[0]  # noqa: E731
            self.assertEqual(ok("/apis/apps/v1/namespaces/ops/statefulsets"), 200)
            self.assertEqual(ok("/api/v1/namespaces/ops/secrets/only-this"), 404)  # allowed, absent
            self.assertEqual(ok("/api"), 200)  # discovery for every authenticated user
            self.assertEqual(ok("/api/v1/namespaces/ops/secrets?fieldSelector=metadata.name%3Donly-this"), 200)
            self.assertEqual(ok("/api/v1/namespaces/ops/secrets"), 403)
            code, st, _ = srv.request("GET", "/apis/apps/v1/namespaces/default/statefulsets", token=op)
            self.assertEqual((code, st["reason"]), (403, "Forbidden"))
            self.assertEqual(st["message"], 'statefulsets.apps is forbidden: User "system:serviceaccount:ops:operator"'
                                            ' cannot list resource "statefulsets" in API group "apps" in the '
                                            'namespace "default"')
            self.assertEqual(st["details"], {"group": "apps", "kind": "statefulsets"})
            code, st, _ = srv.request("GET", "/api/v1/namespaces/ops/secrets/other", token=op)
            self.assertEqual(st["message"], 'secrets "other" is forbidden: User "system:serviceaccount:ops:operator" '
                                            'cannot get resource "secrets" in API group "" in the namespace "ops"')
            code, st, _ = srv.request("DELETE", "/apis/apps/v1/namespaces/ops/statefulsets/x", token=op)
            self.assertEqual(code, 403)
            code, b, _ = srv.request("POST", BACKUPS.format(ns="ops"), backup("rb"), token=op)
            self.assertEqual(code, 201, b)
            code, b, _ = srv.request("PATCH", BACKUPS.format(ns="ops") + "/rb/status", {"status": {"state": "ready"}},
                                     token=op)
            self.assertEqual(code, 200, b)
            code, st, _ = srv.request("GET", "/api/v1/namespaces", token="nobody")
            self.assertEqual(st["message"], 'namespaces is forbidden: User "jane" cannot list resource "namespaces" in '
                                            'API group "" at the cluster scope')
            # kubectl as the service account: impersonation and a minted token
            p = srv.kubectl("auth", "can-i", "list", "statefulsets", "-n", "ops",
                            "--as=system:serviceaccount:ops:operator", check=False)
            self.assertEqual(p.stdout.strip(), "yes")
            p = srv.kubectl("auth", "can-i", "delete", "statefulsets", "-n", "ops",
                            "--as=system:serviceaccount:ops:operator", check=False)
            self.assertEqual(p.stdout.strip(), "no")
            tok = srv.kubectl("create", "token", "operator", "-n", "ops").stdout.strip()
            p = srv.kubectl("--token", tok, "get", "sts", "-n", "kube-system", check=False)
            self.assertIn('Error from server (Forbidden): statefulsets.apps is forbidden: User '
                          '"system:serviceaccount:ops:operator" cannot list resource "statefulsets" in API group '
                          '"apps" in the namespace "kube-system"', p.stderr)
            self.assertEqual(srv.kubectl("--token", tok, "get", "psmdb-backup", "-n", "ops", "-o", "name").stdout,
                             "perconaservermongodbbackup.psmdb.percona.com/rb\n")
            crb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "jane-view"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                  "kind": "ClusterRole", "name": "missing"},
                   "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]}
            srv.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", crb, token="admintoken")
            code, st, _ = srv.request("GET", "/api/v1/namespaces", token="nobody")
            self.assertTrue(st["message"].endswith(': RBAC: clusterrole.rbac.authorization.k8s.io "missing" not '
                                                   'found'), st["message"])

    def test_watch_history_limit(self):
        with APIServer(watch_history=3) as srv:
            code, cm, _ = srv.request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "h"}})
            rv = cm["metadata"]["resourceVersion"]
            for i in range(5):
                srv.request("PATCH", "/api/v1/namespaces/default/configmaps/h", {"data": {"i": str(i)}})
            conn, resp = srv.watch(f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
            ev = srv.next_event(resp)
            conn.close()
            self.assertEqual((ev["type"], ev["object"]["code"]), ("ERROR", 410))
            p = srv.kubectl("get", "--raw", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
            self.assertIn('"reason":"Expired"', p.stdout.replace(" ", ""))


if __name__ == "__main__":
    unittest.main()
