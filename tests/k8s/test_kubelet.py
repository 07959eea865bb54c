"""Tests of kubelet.py (the StatefulSet controller and kubelet stand-in) through localkube.py:
pods of a StatefulSet really run, in their own network namespaces, with their volumes, env,
DNS names, readiness, restarts with back-off, graceful deletion and a clean teardown.

    cd tests/k8s && /usr/bin/python3 -m unittest -v test_kubelet     # as root
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from localkube import LocalKube  # noqa: E402

NS = "default"

STS = """
apiVersion: v1
kind: Secret
metadata: {name: web-secret}
stringData: {password: hunter2, token: t0k3n}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: Parallel
  updateStrategy: {type: OnDelete}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 3
      initContainers:
      - name: init
        image: busybox
        command: ["/bin/sh", "-c", "echo init-$(POD_NAME) >> /data/init.txt"]
        env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
        volumeMounts: [{name: data, mountPath: /data}]
      containers:
      - name: main
        image: busybox
        workingDir: /data
        command: ["/bin/sh", "-c"]
        args:
        - >-
          echo "greeting=$(GREETING) pass=$PASS lit=$LIT ns=$NS ip=$IP node=$NODE opt=${OPT-unset}";
          echo "hostname=$(hostname) pwd=$(pwd)";
          ls -ln /etc/web-secret | sed 's/^/secret: /';
          (echo x > /etc/web-secret/new) 2>&1 | sed 's/^/rofs: /';
          exec python3 -m http.server --bind 0.0.0.0 8080
        env:
        - {name: NAME, value: world}
        - {name: GREETING, value: "hello-$(NAME)"}
        - {name: LIT, value: "$(NOPE)/$$(NAME)/$(NAME)"}
        - {name: PASS, valueFrom: {secretKeyRef: {name: web-secret, key: password}}}
        - {name: OPT, valueFrom: {secretKeyRef: {name: no-such-secret, key: x, optional: true}}}
        - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: http}, periodSeconds: 1}
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: sec, mountPath: /etc/web-secret, readOnly: true}
      - name: checker
        image: busybox
        command: ["/bin/sh", "-c"]
        args:
        - >-
          while true; do
            for p in web-0 web-1; do
              python3 -c "import socket,sys; a=socket.gethostbyname(sys.argv[1]); socket.create_connection((a, 8080), 2).close(); print('reach', sys.argv[1], a, flush=True)" $p.web.default.svc.cluster.local 2>/dev/null;
            done;
            python3 -c "import socket; socket.create_connection(('localhost', 8080), 2).close(); print('localhost-ok', flush=True)" 2>/dev/null;
            sleep 1;
          done
      volumes:
      - {name: sec, secret: {secretName: web-secret, defaultMode: 256}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def pod_yaml(name, command, image="busybox", extra=""):
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "c", "image": image, "command": command, **(json.loads(extra) if extra else {})}]}})


def cond(pod, typ):
    return next((c["status"] for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == typ), None)


class KubeletTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kube = LocalKube(images={"busybox": {}})
        cls.kube.start()
        cls.kube.kubectl("apply", "-f", "-", input=STS)
        try:
            cls.kube.wait_for(lambda: cls.kube.pod_ready(NS, "web-0") and cls.kube.pod_ready(NS, "web-1"), 30,
                              "the StatefulSet's pods to be ready")
        except AssertionError:
            print(cls.kube.kubelet_log_text(), file=sys.stderr)
            cls.kube.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.kube.stop()

    def log(self):
        return self.kube.kubelet_log_text()

    def test_pods_pvcs_and_status(self):
        k = self.kube
        sts = k.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/web")
        k.wait_for(lambda: (k.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/web")["status"]
                            .get("readyReplicas") == 2), 10, "readyReplicas 2")
        st = k.get(f"/apis/apps/v1/namespaces/{NS}/statefulsets/web")["status"]
        self.assertEqual((st["replicas"], st["currentReplicas"], st["availableReplicas"], st["observedGeneration"]),
                         (2, 2, 2, sts["metadata"]["generation"]))
        ips = set()
        for i in range(2):
            p = k.pod(NS, f"web-{i}")
            ref = p["metadata"]["ownerReferences"][0]
            self.assertEqual((ref["kind"], ref["name"], ref["uid"], ref["controller"]),
                             ("StatefulSet", "web", sts["metadata"]["uid"], True))
            self.assertEqual(p["spec"]["nodeName"], "node-1")
            self.assertEqual((p["spec"]["hostname"], p["spec"]["subdomain"]), (f"web-{i}", "web"))
            s = p["status"]
            self.assertEqual(s["phase"], "Running")
            self.assertTrue(s["podIP"].startswith(k.cidr.rsplit(".", 1)[0] + "."), s["podIP"])
            ips.add(s["podIP"])
            self.assertEqual(s["hostIP"], k.cidr.rsplit(".", 1)[0] + ".1")
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
                self.assertEqual(cond(p, t), "True", t)
            init = s["initContainerStatuses"][0]
            self.assertEqual(init["state"]["terminated"]["reason"], "Completed")
            main = next(c for c in s["containerStatuses"] if c["name"] == "main")
            self.assertTrue(main["ready"])
            self.assertIn("running", main["state"])
            pvc = k.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data-web-{i}")
            self.assertEqual(pvc["status"]["phase"], "Bound")
            vol = next(v for v in p["spec"]["volumes"] if v["name"] == "data")
            self.assertEqual(vol["persistentVolumeClaim"]["claimName"], f"data-web-{i}")
        self.assertEqual(len(ips), 2)
        out = k.kubectl("get", "pods", "-l", "app=web").stdout
        self.assertRegex(out, r"web-0\s+2/2\s+Running")

    def test_dns_and_network(self):
        k = self.kube
        for i in range(2):
            ip = k.pod(NS, f"web-{i}")["status"]["podIP"]
            # from the host (this process), through the test hosts file
            self.assertEqual(socket.gethostbyname(f"web-{i}.web.default.svc.cluster.local"), ip)
            socket.create_connection((f"web-{i}.web.default.svc.cluster.local", 8080), 2).close()
            self.assertEqual(socket.gethostbyname(f"web-{i}"), ip)   # the bare hostname, on the host
        # between pods, and localhost inside a pod is the pod (nothing listens on 8080 here)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", 8080), 1).close()

        def seen():
            t = k.container_log(NS, "web-0", "checker")
            return "reach web-1.web.default.svc.cluster.local" in t and "localhost-ok" in t and t
        t = k.wait_for(seen, 10, "web-0 reaching web-1 by name and itself on localhost")
        ip1 = k.pod(NS, "web-1")["status"]["podIP"]
        self.assertIn(f"reach web-1.web.default.svc.cluster.local {ip1}", t)
        with open("/etc/hosts") as f:
            self.assertIn("web-1.web.default.svc.cluster.local", f.read())

    def test_env_mounts_and_workdir(self):
        k = self.kube
        t = k.wait_for(lambda: "rofs:" in k.container_log(NS, "web-0", "main") and
                       k.container_log(NS, "web-0", "main"), 10, "main's output")
        ip = k.pod(NS, "web-0")["status"]["podIP"]
        self.assertIn(f"greeting=hello-world pass=hunter2 lit=$(NOPE)/$(NAME)/world ns=default ip={ip} node=node-1 opt=unset", t)
        self.assertIn("hostname=web-0 pwd=/data", t)
        self.assertRegex(t, r"secret: -r-------- +1 0 +0 +7 .* password")
        self.assertIn("Read-only file system", t)
        # the PVC's host directory got what the init container wrote
        d = os.path.join(k.root, "volumes")
        vol = next(x for x in os.listdir(d) if x.startswith("default_data-web-0_"))
        with open(os.path.join(d, vol, "init.txt")) as f:
            self.assertIn("init-web-0", f.read())
        # nothing was created on the host
        self.assertFalse(os.path.exists("/data/init.txt"))
        self.assertFalse(os.path.exists("/etc/web-secret"))

    def test_readiness_probe(self):
        k = self.kube
        k.kubectl("apply", "-f", "-", input=pod_yaml(
            "slow", ["/bin/sh", "-c", "sleep 2; exec python3 -m http.server 9090"],
            extra=json.dumps({"readinessProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1}})))
        p = k.wait_for(lambda: (k.pod(NS, "slow") or {}).get("status", {}).get("phase") == "Running" and
                       k.pod(NS, "slow"), 10, "slow running")
        self.assertEqual(cond(p, "Ready"), "False")
        self.assertFalse(p["status"]["containerStatuses"][0]["ready"])
        k.wait_for(lambda: k.pod_ready(NS, "slow"), 10, "slow ready")
        k.kubectl("delete", "pod", "slow", "--wait=false")

    def test_restarts_with_back_off(self):
        k = self.kube
        k.kubectl("apply", "-f", "-", input=pod_yaml("crash", ["/bin/sh", "-c", "echo ran; exit 3"]))
        k.wait_for(lambda: "pod default/crash container c: pid" in self.log() and "back-off 2s" in
                   "".join(l for l in self.log().splitlines(True) if "default/crash " in l), 10, "two back-offs")
        lines = [l for l in self.log().splitlines() if "pod default/crash container c:" in l]
        self.assertRegex(lines[0], r"start pid \d+: /bin/sh -c echo ran; exit 3$")
        self.assertRegex(lines[1], r"pid \d+ exited with code 3 after \d+ms; back-off 1s$")
        self.assertRegex(lines[2], r"restart #1 pid \d+")
        self.assertRegex(lines[3], r"exited with code 3 after .*; back-off 2s$")
        ts = [time.mktime(time.strptime(l[:19], "%Y-%m-%dT%H:%M:%S")) + float(l[19:23]) for l in lines[:3]]
        self.assertGreaterEqual(ts[2] - ts[1], 0.95)
        c = k.wait_for(lambda: (k.pod(NS, "crash")["status"]["containerStatuses"][0]
                                if k.pod(NS, "crash")["status"]["containerStatuses"][0]["restartCount"] >= 1 else None),
                       5, "restartCount")
        self.assertEqual(k.container_log(NS, "crash", "c").count("ran"), len([l for l in lines if "pid" in l and
                                                                              "start" in l or "restart" in l]))
        self.assertEqual(c["lastState"]["terminated"]["exitCode"], 3)
        out = k.kubectl("get", "pod", "crash").stdout
        self.assertRegex(out, r"crash\s+0/1\s+(CrashLoopBackOff|Error|Running)")
        k.kubectl("delete", "pod", "crash", "--wait=false")

    def test_start_failure_logged(self):
        k = self.kube
        k.kubectl("apply", "-f", "-", input=pod_yaml("nofile", ["/data/db/ps-entry.sh", "--port=1"]))
        k.wait_for(lambda: "pod default/nofile container c: start failed: exec /data/db/ps-entry.sh: "
                   "No such file or directory; back-off 1s" in self.log(), 10, "start failure")
        k.wait_for(lambda: "pod default/nofile container c: start failed: exec /data/db/ps-entry.sh: "
                   "No such file or directory; back-off 2s" in self.log(), 10, "second start failure")
        c = k.wait_for(lambda: [c for c in k.pod(NS, "nofile")["status"]["containerStatuses"] if c["restartCount"]],
                       5, "restartCount 1")[0]
        self.assertEqual(c["lastState"]["terminated"]["reason"], "StartError")
        self.assertIn("exec /data/db/ps-entry.sh: No such file or directory", c["lastState"]["terminated"]["message"])
        self.assertEqual(c["state"]["waiting"]["reason"], "CrashLoopBackOff")
        self.assertGreaterEqual(c["restartCount"], 1)
        k.kubectl("delete", "pod", "nofile", "--wait=false")

    def test_unknown_image(self):
        k = self.kube
        k.kubectl("apply", "-f", "-", input=pod_yaml("noimage", ["/bin/true"], image="nowhere/nothing:1"))
        w = k.wait_for(lambda: (k.pod(NS, "noimage")["status"].get("containerStatuses") or [{}])[0]
                       .get("state", {}).get("waiting", {}).get("reason") == "ErrImagePull" and
                       k.pod(NS, "noimage")["status"]["containerStatuses"][0]["state"]["waiting"], 10, "ErrImagePull")
        self.assertIn("nowhere/nothing:1", w["message"])
        k.kubectl("delete", "pod", "noimage", "--wait=false")

    def test_hostname_as_fqdn(self):
        k = self.kube
        k.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fq"},
            "spec": {"hostname": "fq", "subdomain": "web", "setHostnameAsFQDN": True,
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox",
                                     "command": ["/bin/sh", "-c", "echo host=$(hostname) env=$HOSTNAME; sleep 60"]}]}}))
        k.wait_for(lambda: "host=" in k.container_log(NS, "fq", "c"), 10, "fq's output")
        self.assertIn("host=fq.web.default.svc.cluster.local env=fq.web.default.svc.cluster.local",
                      k.container_log(NS, "fq", "c"))
        self.assertEqual(socket.gethostbyname("fq.web.default.svc.cluster.local"), k.pod(NS, "fq")["status"]["podIP"])
        k.kubectl("delete", "pod", "fq", "--wait=false")

    def test_z_deleted_pod_is_recreated(self):
        k = self.kube
        old = k.pod(NS, "web-1")
        k.kubectl("delete", "pod", "web-1", timeout=30)
        k.wait_for(lambda: (k.pod(NS, "web-1") or {}).get("metadata", {}).get("uid") not in
                   (None, old["metadata"]["uid"]), 15, "a new web-1")
        k.wait_for(lambda: k.pod_ready(NS, "web-1"), 20, "the new web-1 ready")
        self.assertRegex(self.log(), r"pod default/web-1 container main: pid \d+ killed by signal 15 \(TERM\) "
                                     r"after .* \(stopped\)")
        d = os.path.join(k.root, "volumes")
        vol = next(x for x in os.listdir(d) if x.startswith("default_data-web-1_"))
        with open(os.path.join(d, vol, "init.txt")) as f:
            self.assertEqual(f.read().split(), ["init-web-1", "init-web-1"])   # the same volume, kept
        ip = k.pod(NS, "web-1")["status"]["podIP"]
        self.assertEqual(socket.gethostbyname("web-1.web.default.svc.cluster.local"), ip)


class TeardownTest(unittest.TestCase):
    def test_clean_teardown_and_leftovers(self):
        kube = LocalKube(images={"busybox": {}})
        kube.start()
        try:
            kube.kubectl("apply", "-f", "-", input=STS.replace("replicas: 2", "replicas: 1"))
            kube.wait_for(lambda: kube.pod_ready(NS, "web-0"), 30, "web-0 ready")
            self.assertEqual(len(kube.netns_left()), 1)
            pid = int(kube.container_log(NS, "web-0", "main") and
                      kube.pod(NS, "web-0")["status"]["containerStatuses"][0]["containerID"].split("//")[1])
            # a kubelet that dies leaves its pods; the next one of the same instance clears them
            kube.kubelet.send_signal(signal.SIGKILL)
            kube.kubelet.wait()
            self.assertTrue(kube.netns_left())
            os.kill(pid, 0)
            args = list(kube.kubelet.args)
            args[args.index("--ready-file") + 1] = os.path.join(kube.tmp, "ready2")
            kube.kubelet = subprocess.Popen(args, stdout=kube.kubelet_log, stderr=subprocess.STDOUT)
            kube.wait_for(lambda: os.path.exists(os.path.join(kube.tmp, "ready2")), 20, "the second kubelet")
            kube.wait_for(lambda: not _alive(pid), 5, "the orphan container killed")
            kube.wait_for(lambda: kube.pod_ready(NS, "web-0"), 30, "web-0 ready again")
        finally:
            kube.stop()
        self.assertEqual(kube.netns_left(), [])
        self.assertEqual(kube.links_left(), [])
        self.assertFalse(os.path.exists(f"/run/kubelet-standin/{kube.instance}.json"))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[1].split()[0] != "Z"


if __name__ == "__main__":
    unittest.main()
