"""A local "cluster" for tests: apiserver.py + kubelet.py, and pod names resolvable from here.

    with LocalKube(images={...}) as kube:
        kube.kubectl("apply", "-f", "sts.yaml")
        kube.wait_for(lambda: kube.pod_ready("default", "web-0"), 30)
        socket.gethostbyname("web-0.web.default.svc.cluster.local")

DNS: the first LocalKube of a process moves the process (its main thread, and so every process
it starts afterwards: kubectl, the operator, kubelet.py) into a private mount namespace
(unshare(CLONE_NEWNS), / made rprivate) and bind-mounts a test hosts file over /etc/hosts
there; kubelet.py keeps the pods' names in that file, rewritten in place. The machine's
/etc/hosts is never written. Create the LocalKube from the main thread, before starting other
threads that must resolve pod names.
"""

import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from kubetest import APIServer, PYTHON  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
_private_ns = False


def _mount(src, target, fstype, flags):
    if _libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                   ctypes.c_ulong(flags), None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} {target}: {os.strerror(e)}")


def enter_private_mount_ns():
    global _private_ns
    if _private_ns:
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("enter_private_mount_ns: call it from the main thread")
    if _libc.unshare(ctypes.c_int(CLONE_NEWNS)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare(CLONE_NEWNS): {os.strerror(e)}")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _private_ns = True


def bind_hosts(path):
    enter_private_mount_ns()
    _mount(path, "/etc/hosts", None, MS_BIND)


def unbind_hosts():
    _libc.umount2(b"/etc/hosts", ctypes.c_int(MNT_DETACH))


def _free_subnet():
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(100):
        x = random.randint(100, 250)
        if f"10.88.{x}." not in used:
            return f"10.88.{x}.0/24"
    raise RuntimeError("no free 10.88.x.0/24")


class LocalKube:
    def __init__(self, images=None, kubelet_args=(), keep=False):
        self.images = images or {"*": {}}
        self.kubelet_args = list(kubelet_args)
        self.keep = keep or bool(os.environ.get("LOCALKUBE_KEEP"))
        self.api = None
        self.kubelet = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="localkube-")
        self.root = os.path.join(self.tmp, "node")
        os.makedirs(self.root)
        self.hosts = os.path.join(self.tmp, "hosts")
        with open("/etc/hosts") as f:
            base = f.read()
        with open(self.hosts, "w") as f:
            f.write(base)
        bind_hosts(self.hosts)
        self.api = APIServer()
        self.api.start()
        self.kubeconfig = self.api.kubeconfig
        self.images_file = os.path.join(self.tmp, "images.json")
        with open(self.images_file, "w") as f:
            json.dump(self.images, f, indent=2)
        self.instance = "k%04x" % random.randrange(0x10000)
        self.cidr = _free_subnet()
        ready = os.path.join(self.tmp, "kubelet.ready")
        self.kubelet_log = open(os.path.join(self.tmp, "kubelet.stderr"), "w")
        self.kubelet = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "kubelet.py"), "--kubeconfig", self.kubeconfig, "--root", self.root,
             "--images", self.images_file, "--hosts-file", self.hosts, "--instance", self.instance,
             "--pod-cidr", self.cidr, "--ready-file", ready, *self.kubelet_args],
            stdout=self.kubelet_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(ready):
            if self.kubelet.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kubelet.py did not start:\n" + self.read("kubelet.stderr") +
                                   self.read("node/kubelet.log"))
            time.sleep(0.05)

    def read(self, rel):
        try:
            with open(os.path.join(self.tmp, rel)) as f:
                return f.read()
        except OSError:
            return ""

    def kubelet_log_text(self):
        return self.read("node/kubelet.log")

    def container_log(self, ns, pod, container):
        return self.read(f"node/pods/{ns}_{pod}/{container}.log")

    def stop(self):
        if self.kubelet and self.kubelet.poll() is None:
            self.kubelet.send_signal(signal.SIGTERM)
            try:
                self.kubelet.wait(60)
            except subprocess.TimeoutExpired:
                self.kubelet.kill()
                self.kubelet.wait()
        if getattr(self, "kubelet_log", None):
            self.kubelet_log.close()
        if self.api:
            self.api.stop()
        unbind_hosts()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ----

    def kubectl(self, *args, **kw):
        return self.api.kubectl(*args, **kw)

    def request(self, *args, **kw):
        return self.api.request(*args, **kw)

    def get(self, path):
        code, body, _ = self.api.request("GET", path)
        return body if code == 200 else None

    def pod(self, ns, name):
        return self.get(f"/api/v1/namespaces/{ns}/pods/{name}")

    def pod_ready(self, ns, name):
        p = self.pod(ns, name)
        return bool(p) and any(c["type"] == "Ready" and c["status"] == "True"
                               for c in (p.get("status") or {}).get("conditions") or [])

    @staticmethod
    def wait_for(fn, timeout, what="condition", interval=0.1):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def netns_left(self):
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.instance + "-")]

    def links_left(self):
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
                if line.split(":")[1].strip().startswith(self.instance)]
