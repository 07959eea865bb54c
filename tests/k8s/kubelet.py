#!/usr/bin/python3
"""A kubelet and StatefulSet controller stand-in for tests/k8s/apiserver.py.

    kubelet.py --kubeconfig KC --root DIR [--images IMAGES.json] [--hosts-file F]
               [--pod-cidr 10.88.0.0/24] [--instance kl0] [--node-name node-1]

It plays, against the API test server, the parts of a cluster that make workloads run:
- the StatefulSet controller: Pods <sts>-<i> (Parallel; OnDelete: never replaced because the
  template changed), PVCs <claim>-<sts>-<i>, StatefulSet status;
- a scheduler: every unbound Pod is bound to this node (pods/binding);
- a PVC binder: every Pending PVC gets a host directory and is Bound;
- the kubelet: each Pod gets a sandbox (network namespace, veth on a bridge, an IP from
  --pod-cidr, lo up, hostname = the pod's name), its volumes (PVC, secret, configMap,
  emptyDir, hostPath) and its containers as processes, each in the pod's network and UTS
  namespaces and in a mount namespace of its own whose root is a tmpfs shadow of the host
  (nothing is created on the host) with the volumeMounts, the image's mounts and /etc/hosts
  bound in; init containers in order, then containers, restartPolicy with a back-off of
  1 s doubling to 10 s, reset after 10 s of running; readiness probes (tcpSocket, exec);
  Pod status through /status; graceful deletion (SIGTERM, SIGKILL after the grace period,
  capped by --grace-cap, then DELETE with gracePeriodSeconds=0).

DNS: no cluster DNS. Each pod's /etc/hosts (bind-mounted in its containers) lists localhost,
the pod itself and every pod with a subdomain as <pod>.<subdomain>.<ns>.svc.cluster.local
(also .svc, .<ns> and <pod>.<subdomain>). --hosts-file F keeps the same entries, after F's
original content, in F, rewritten in place (same inode), so that a test can bind-mount F over
/etc/hosts in a private mount namespace (unshare --mount) and resolve pods from the host
without touching the machine's /etc/hosts (localkube.py does that).

Images: there is no image store. --images maps an image name (exact; "*" as a fallback) to
    {"mounts": {"/opt/psmdb": "/repo/deploy/images/mongod"},   # bind mounts (host dirs/files)
     "bin": {"mongod": "/repo/build/bin/wtmongod"},             # put in a dir prepended to PATH
     "path": ["/extra/bin"], "env": {"K": "V"},
     "command": [...], "args": [...], "workingDir": "/"}        # the image's ENTRYPOINT/CMD/WORKDIR
An unknown image leaves the container waiting with reason ErrImagePull.

Files in --root: kubelet.log (one line per container start, exit, failed start, with the
back-off, in devcluster's format), pods/<ns>_<pod>/<container>.log (stdout+stderr),
pods/<ns>_<pod>/hosts, volumes/ (PVC directories), state.json.

SIGTERM/SIGINT: every container is stopped, every netns/veth/bridge removed. At start the
leftovers of an earlier run that died (state files under /run/kubelet-standin/) are removed.
"""

import argparse
import base64
import faulthandler
import ctypes
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.parse

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

STATE_DIR = "/run/kubelet-standin"


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def c_unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def c_setns(fd, nstype):
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def c_mount(src, target, fstype, flags, data=None):
    _check(_libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {src} on {target}")


def c_sethostname(name):
    b = name.encode()
    _check(_libc.sethostname(b, ctypes.c_size_t(len(b))), "sethostname")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_ts():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def fmt_duration(sec):
    ms = int(round(sec * 1000))
    if ms < 1000:
        return f"{ms}ms"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms / 1000:.3f}".rstrip("0") + "s"


SIGNAMES = {getattr(signal, n): n[3:] for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_")
            and isinstance(getattr(signal, n), int)}


# ---------------------------------------------------------------------------------------------
# API client


class Kube:
    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            text = f.read()
        try:
            cfg = json.loads(text)
        except ValueError:
            import yaml
            cfg = yaml.safe_load(text)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {})
        u = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.https = u.scheme == "https"
        self.token = user.get("token")
        self.ctx = None
        if self.https:
            self.tmp = tempfile.mkdtemp(prefix="kubelet-kc-")
            ctx = ssl.create_default_context()
            if cluster.get("certificate-authority-data"):
                ctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
            elif cluster.get("certificate-authority"):
                ctx.load_verify_locations(cluster["certificate-authority"])
            if user.get("client-certificate-data"):
                cp, kp = os.path.join(self.tmp, "c.crt"), os.path.join(self.tmp, "c.key")
                with open(cp, "wb") as f:
                    f.write(base64.b64decode(user["client-certificate-data"]))
                with open(kp, "wb") as f:
                    f.write(base64.b64decode(user["client-key-data"]))
                ctx.load_cert_chain(cp, kp)
            self.ctx = ctx
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.https:
                c = http.client.HTTPSConnection(self.host, self.port, timeout=30, context=self.ctx)
            else:
                c = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, ctype="application/json"):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        for attempt in range(3):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                try:
                    return r.status, json.loads(raw) if raw else {}
                except ValueError:
                    return r.status, {"message": raw.decode(errors="replace")}
            except (OSError, http.client.HTTPException):
                c.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def get(self, path):
        code, body = self.request("GET", path)
        return body if code == 200 else None

    def items(self, path):
        code, body = self.request("GET", path)
        if code != 200:
            raise RuntimeError(f"GET {path}: {code} {body.get('message')}")
        return body.get("items") or []


# ---------------------------------------------------------------------------------------------
# Host networking


def sh(*argv, check=True):
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip() or p.stdout.strip()}")
    return p


class Network:
    """A bridge with the gateway address on the host and one netns + veth per pod."""

    def __init__(self, instance, cidr):
        self.instance = instance
        self.net = ipaddress.ip_network(cidr)
        self.bridge = f"{instance}br"
        self.gw = str(next(self.net.hosts()))
        self.by_key = {}          # pod key -> ip (kept for the run: a recreated pod gets its old IP)
        self.used = set()
        self.seq = 0
        self.lock = threading.Lock()

    def setup(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.gw}/{self.net.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def ip_for(self, key):
        with self.lock:
            if key in self.by_key:
                return self.by_key[key]
            for h in self.net.hosts():
                s = str(h)
                if s != self.gw and s not in self.used:
                    self.used.add(s)
                    self.by_key[key] = s
                    return s
        raise RuntimeError("pod CIDR exhausted")

    def add_sandbox(self, key):
        ip = self.ip_for(key)
        with self.lock:
            self.seq += 1
            n = self.seq
        ns = f"{self.instance}-p{n}"
        veth = f"{self.instance}v{n}"
        sh("ip", "netns", "add", ns)
        try:
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/{self.net.prefixlen}", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", self.gw)
        except Exception:
            self.del_sandbox(ns, veth)
            raise
        return ns, veth, ip

    @staticmethod
    def del_sandbox(ns, veth):
        sh("ip", "link", "del", veth, check=False)
        sh("ip", "netns", "del", ns, check=False)

    def teardown(self):
        sh("ip", "link", "del", self.bridge, check=False)

    @staticmethod
    def kill_netns_pids(name):
        """Containers a dead kubelet.py left running in a pod's netns."""
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    @staticmethod
    def cleanup_instance(instance):
        """Everything an instance of that name made: netns <instance>-p*, veths <instance>v*, bridge."""
        for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"{instance}-p"):
                Network.kill_netns_pids(name)
                sh("ip", "netns", "del", name, check=False)
        if os.path.isdir("/run/netns"):
            for name in os.listdir("/run/netns"):
                if name.startswith(f"{instance}-p"):
                    sh("ip", "netns", "del", name, check=False)
        for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
            m = re.match(r"\d+: ([^:@]+)", line)
            if m and (m.group(1).startswith(f"{instance}v") or m.group(1) == f"{instance}br"):
                sh("ip", "link", "del", m.group(1), check=False)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cleanup_leftovers(instance):
    """Remove what earlier kubelet.py runs that died left behind (their pid is gone)."""
    os.makedirs(STATE_DIR, exist_ok=True)
    for f in os.listdir(STATE_DIR):
        path = os.path.join(STATE_DIR, f)
        try:
            with open(path) as fh:
                st = json.load(fh)
        except (OSError, ValueError):
            continue
        if st.get("instance") == instance or not pid_alive(int(st.get("pid", 0))):
            if st.get("instance") == instance and pid_alive(int(st.get("pid", 0))) and st["pid"] != os.getpid():
                raise SystemExit(f"kubelet.py: instance {instance} is running as pid {st['pid']}")
            Network.cleanup_instance(st["instance"])
            os.unlink(path)
    Network.cleanup_instance(instance)


# ---------------------------------------------------------------------------------------------
# Containers


def write_in_place(path, text):
    """Rewrite a file keeping its inode (bind mounts of it see the change)."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def mount_plan(targets, newroot, hidden):
    """Operations that make `newroot` a view of the host's / with `targets` (container path ->
    (host source, read-only)) bound in, without creating anything on the host: every ancestor of
    a target (and of `hidden`, which stays out) becomes a directory on the tmpfs whose entries are
    bind mounts of the host's."""
    ops = [("tmpfs", newroot)]
    tpaths = sorted(targets)
    ancestors = set()
    for p in tpaths + [hidden]:
        a = os.path.dirname(p)
        while True:
            ancestors.add(a)
            if a == "/":
                break
            a = os.path.dirname(a)

    def walk(hdir):
        try:
            names = sorted(os.listdir(hdir))
        except OSError:
            names = []
        for name in names:
            hp = os.path.join(hdir, name)
            np_ = newroot + hp
            if hp in targets or hp == hidden:
                continue
            if hp in ancestors and not os.path.islink(hp):
                ops.append(("mkdir", np_, 0o755))
                walk(hp)
            elif os.path.islink(hp):
                ops.append(("symlink", os.readlink(hp), np_))
            elif os.path.isdir(hp):
                ops.append(("mkdir", np_, 0o755))
                ops.append(("rbind", hp, np_))
            else:
                ops.append(("touch", np_))
                ops.append(("rbind", hp, np_))
        for a in sorted(ancestors):
            if os.path.dirname(a) == hdir and a != hdir and os.path.basename(a) not in names:
                ops.append(("mkdir", newroot + a, 0o755))
                walk(a)

    walk("/")
    for p in tpaths:
        src, ro = targets[p]
        ops.append(("mountpoint", newroot + p, os.path.isdir(src)))
        ops.append(("rbind", src, newroot + p))
        if ro:
            ops.append(("ro", newroot + p))
    return ops


def run_plan(ops):
    for op in ops:
        kind = op[0]
        if kind == "tmpfs":
            c_mount("tmpfs", op[1], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        elif kind == "mkdir":
            if not os.path.isdir(op[1]):
                os.mkdir(op[1], op[2])
        elif kind == "symlink":
            os.symlink(op[1], op[2])
        elif kind == "touch":
            if not os.path.exists(op[1]):
                os.close(os.open(op[1], os.O_CREAT | os.O_WRONLY, 0o644))
        elif kind == "mountpoint":
            if op[2]:
                os.makedirs(op[1], exist_ok=True)
            elif not os.path.exists(op[1]):
                os.makedirs(os.path.dirname(op[1]), exist_ok=True)
                os.close(os.open(op[1], os.O_CREAT | os.O_WRONLY, 0o644))
        elif kind == "rbind":
            c_mount(op[1], op[2], None, MS_BIND | MS_REC)
        elif kind == "ro":
            c_mount(None, op[1], None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)


class Launch:
    """What the child does between fork and exec (preexec_fn): join the pod's netns, make its own
    mount and UTS namespaces, build the root, chroot, chdir. A failure is written to errfd."""

    def __init__(self, netns_fd, hostname, ops, newroot, workdir, errfd):
        self.netns_fd, self.hostname, self.ops = netns_fd, hostname, ops
        self.newroot, self.workdir, self.errfd = newroot, workdir, errfd

    def __call__(self):
        try:
            c_setns(self.netns_fd, CLONE_NEWNET)
            c_unshare(CLONE_NEWNS | CLONE_NEWUTS)
            c_mount(None, "/", None, MS_REC | MS_PRIVATE)
            c_sethostname(self.hostname)
            run_plan(self.ops)
            os.chroot(self.newroot)
            wd = self.workdir or "/"
            try:
                os.chdir(wd)
            except FileNotFoundError:
                os.makedirs(wd, exist_ok=True)
                os.chdir(wd)
        except BaseException as e:
            try:
                os.write(self.errfd, f"{type(e).__name__}: {e}".encode())
            except OSError:
                pass
            raise


class BackOff:
    def __init__(self, initial, maximum, reset):
        self.initial, self.max, self.reset = initial, maximum, reset
        self.cur = 0.0

    def next(self, ran):
        if ran >= self.reset:
            self.cur = 0.0
        self.cur = min(self.initial, self.max) if self.cur == 0 else min(self.cur * 2, self.max)
        return self.cur


def expand(s, env):
    """Kubernetes $(VAR) expansion: defined names are replaced, $$ escapes, others stay."""
    out = []
    i = 0
    while i < len(s):
        if s[i] == "$" and i + 1 < len(s):
            if s[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if s[i + 1] == "(":
                j = s.find(")", i + 2)
                if j > 0:
                    name = s[i + 2:j]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(s[i:j + 1])
                    i = j + 1
                    continue
        out.append(s[i])
        i += 1
    return "".join(out)


class ConfigError(Exception):
    """CreateContainerConfigError: the container cannot be made yet (a missing secret key...)."""


class Container:
    def __init__(self, pod, spec, init):
        self.pod, self.spec, self.init = pod, spec, init
        self.name = spec["name"]
        self.proc = None
        self.started_at = None       # monotonic
        self.started_wall = None
        self.starts = 0
        self.restarts = 0
        self.next_start = 0.0
        b = pod.kl.args
        self.backoff = BackOff(b.backoff_initial, b.backoff_max, b.backoff_reset)
        self.state = {"waiting": {"reason": "PodInitializing" if not init else "ContainerCreating"}}
        self.last_state = {}
        self.ready = False
        self.done = False             # an init container that succeeded / a container not restarted
        self.probe_ok = 0
        self.probe_fail = 0
        self.next_probe = 0.0
        self.exit_code = None
        self.pgid = None

    @property
    def who(self):
        return f"pod {self.pod.key} container {self.name}"

    def log(self, msg):
        self.pod.kl.log(f"{self.who}: {msg}")


class PodWorker(threading.Thread):
    def __init__(self, kl, pod):
        super().__init__(daemon=True, name="pod-" + pod["metadata"]["name"])
        self.kl = kl
        self.obj = pod
        md = pod["metadata"]
        self.ns, self.name, self.uid = md["namespace"], md["name"], md["uid"]
        self.key = f"{self.ns}/{self.name}"
        self.dir = os.path.join(kl.root, "pods", f"{self.ns}_{self.name}")
        self.stop_req = None          # None | "delete" (then remove the object) | "stop"
        self.finished = threading.Event()
        self.netns = self.veth = self.ip = None
        self.netns_fd = None
        self.hosts_path = os.path.join(self.dir, "hosts")
        # The pod's hostname (UTS namespace): its name, or its FQDN with setHostnameAsFQDN (the pod
        # field, or --set-hostname-as-fqdn for every pod); the kernel takes at most 64 bytes.
        pspec = pod.get("spec") or {}
        self.hostname = pspec.get("hostname") or self.name
        if pspec.get("subdomain") and (pspec.get("setHostnameAsFQDN") or kl.args.set_hostname_as_fqdn):
            fq = f"{self.hostname}.{pspec['subdomain']}.{self.ns}.svc.{kl.args.cluster_domain}"
            if len(fq) <= 64:
                self.hostname = fq
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.inits = [Container(self, c, True) for c in spec.get("initContainers") or []]
        self.ctrs = [Container(self, c, False) for c in spec.get("containers") or []]
        self.volumes = {}             # name -> (host dir, read-only by nature)
        self.sandbox_error = None
        self.phase = "Pending"
        self.start_time = now_rfc3339()
        self.last_status = None
        self.init_done = not self.inits
        self.lock = threading.Lock()

    # ---- sandbox and volumes ----

    def setup_sandbox(self):
        os.makedirs(self.dir, exist_ok=True)
        self.netns, self.veth, self.ip = self.kl.net.add_sandbox(self.key)
        self.netns_fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        self.kl.log(f"pod {self.key}: sandbox netns {self.netns} ip {self.ip}")
        self.kl.write_hosts()

    def setup_volumes(self):
        """Returns None when every volume is there, else a message (retried)."""
        spec = self.obj.get("spec") or {}
        for v in spec.get("volumes") or []:
            name = v["name"]
            if name in self.volumes and "secret" not in v and "configMap" not in v:
                continue
            vdir = os.path.join(self.dir, "volumes", name)
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                path = self.kl.pvc_dir(self.ns, claim)
                if not path:
                    return f'persistentvolumeclaim "{claim}" not bound'
                self.volumes[name] = (path, bool(v["persistentVolumeClaim"].get("readOnly")))
            elif "emptyDir" in v:
                os.makedirs(vdir, exist_ok=True)
                self.volumes[name] = (vdir, False)
            elif "hostPath" in v:
                hp = v["hostPath"]["path"]
                if v["hostPath"].get("type") in ("DirectoryOrCreate",):
                    os.makedirs(hp, exist_ok=True)
                self.volumes[name] = (hp, False)
            elif "secret" in v or "configMap" in v:
                is_secret = "secret" in v
                src = v["secret"] if is_secret else v["configMap"]
                oname = src.get("secretName") if is_secret else src.get("name")
                kind = "secrets" if is_secret else "configmaps"
                obj = self.kl.kube.get(f"/api/v1/namespaces/{self.ns}/{kind}/{oname}")
                if obj is None and not src.get("optional"):
                    return f'{kind[:-1]} "{oname}" not found'
                data = {}
                if obj:
                    if is_secret:
                        data = {k: base64.b64decode(val) for k, val in (obj.get("data") or {}).items()}
                    else:
                        data = {k: val.encode() for k, val in (obj.get("data") or {}).items()}
                        data.update({k: base64.b64decode(val) for k, val in (obj.get("binaryData") or {}).items()})
                mode = src.get("defaultMode", 0o644)
                files = []
                if src.get("items"):
                    for it in src["items"]:
                        if it["key"] in data:
                            files.append((it["path"], data[it["key"]], it.get("mode", mode)))
                        elif not src.get("optional"):
                            return f'couldn\'t find key {it["key"]} in {kind[:-1]} {self.ns}/{oname}'
                else:
                    files = [(k, val, mode) for k, val in data.items()]
                if name not in self.volumes:
                    shutil.rmtree(vdir, ignore_errors=True)
                    os.makedirs(vdir, exist_ok=True)
                for rel, content, m in files:
                    p = os.path.join(vdir, rel)
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    cur = None
                    try:
                        with open(p, "rb") as f:
                            cur = f.read()
                    except OSError:
                        pass
                    if cur != content:
                        tmp = p + ".tmp"
                        with open(tmp, "wb") as f:
                            f.write(content)
                        os.chmod(tmp, m)
                        os.replace(tmp, p)
                    else:
                        os.chmod(p, m)
                self.volumes[name] = (vdir, True)
            else:
                os.makedirs(vdir, exist_ok=True)
                self.volumes[name] = (vdir, False)
        return None

    # ---- starting a container ----

    def env_of(self, c, image):
        env = {"PATH": image["PATH"], "HOSTNAME": self.hostname, "HOME": "/root"}
        env.update(image.get("env") or {})
        for e in c.spec.get("env") or []:
            n = e["name"]
            if "value" in e:
                env[n] = expand(e.get("value") or "", env)
            elif "valueFrom" in e:
                vf = e["valueFrom"]
                if "secretKeyRef" in vf or "configMapKeyRef" in vf:
                    is_secret = "secretKeyRef" in vf
                    ref = vf["secretKeyRef" if is_secret else "configMapKeyRef"]
                    kind = "secrets" if is_secret else "configmaps"
                    obj = self.kl.kube.get(f"/api/v1/namespaces/{self.ns}/{kind}/{ref['name']}")
                    if obj is None:
                        if ref.get("optional"):
                            continue
                        raise ConfigError(f'{kind[:-1]} "{ref["name"]}" not found')
                    if is_secret:
                        d = obj.get("data") or {}
                        if ref["key"] not in d:
                            if ref.get("optional"):
                                continue
                            raise ConfigError(f"couldn't find key {ref['key']} in Secret {self.ns}/{ref['name']}")
                        env[n] = base64.b64decode(d[ref["key"]]).decode(errors="replace")
                    else:
                        d = obj.get("data") or {}
                        if ref["key"] not in d:
                            if ref.get("optional"):
                                continue
                            raise ConfigError(f"couldn't find key {ref['key']} in ConfigMap {self.ns}/{ref['name']}")
                        env[n] = d[ref["key"]]
                elif "fieldRef" in vf:
                    fp = vf["fieldRef"]["fieldPath"]
                    md = self.obj["metadata"]
                    m = re.match(r"metadata\.(labels|annotations)\['(.*)'\]$", fp)
                    vals = {"metadata.name": self.name, "metadata.namespace": self.ns, "metadata.uid": self.uid,
                            "status.podIP": self.ip or "", "status.podIPs": self.ip or "",
                            "status.hostIP": self.kl.net.gw, "spec.nodeName": self.kl.args.node_name,
                            "spec.serviceAccountName": (self.obj.get("spec") or {}).get("serviceAccountName",
                                                                                        "default")}
                    if m:
                        env[n] = (md.get(m.group(1)) or {}).get(m.group(2), "")
                    elif fp in vals:
                        env[n] = vals[fp]
                    else:
                        raise ConfigError(f"unsupported fieldPath {fp}")
                else:
                    raise ConfigError(f"unsupported valueFrom in env {n}")
        return env

    def waiting(self, c, reason, message, retry):
        if c.state.get("waiting", {}).get("message") != message:
            self.kl.log(f"{c.who}: {reason}: {message}")
        c.state = {"waiting": {"reason": reason, "message": message}}
        c.next_start = time.monotonic() + retry

    def start_container(self, c):
        spec = c.spec
        image = self.kl.image(spec.get("image", ""))
        if image is None:
            self.waiting(c, "ErrImagePull", f'failed to pull image "{spec.get("image")}": not in the images file', 5)
            return
        try:
            env = self.env_of(c, image)
        except ConfigError as e:
            self.waiting(c, "CreateContainerConfigError", str(e), 1)
            return
        cmd = spec.get("command") or image.get("command") or []
        args = spec.get("args") if spec.get("command") or spec.get("args") else image.get("args") or []
        argv = [expand(a, env) for a in list(cmd) + list(args or [])]
        who = c.who
        if not argv:
            c.state = {"waiting": {"reason": "CreateContainerError", "message": "no command specified"}}
            c.next_start = time.monotonic() + 5
            return
        targets = {}
        for hp, src in (image.get("mounts") or {}).items():
            targets[hp] = (src, False)
        for vm in spec.get("volumeMounts") or []:
            if vm["name"] not in self.volumes:
                c.state = {"waiting": {"reason": "CreateContainerConfigError",
                                       "message": f'volume "{vm["name"]}" not found'}}
                c.next_start = time.monotonic() + 1
                return
            src, ro = self.volumes[vm["name"]]
            if vm.get("subPath"):
                src = os.path.join(src, vm["subPath"])
                os.makedirs(src, exist_ok=True)
            targets[os.path.normpath(vm["mountPath"])] = (src, ro or bool(vm.get("readOnly")))
        targets.setdefault("/etc/hosts", (self.hosts_path, False))
        newroot = os.path.join(self.kl.rootfs, f"{self.ns}_{self.name}_{c.name}")
        os.makedirs(newroot, exist_ok=True)
        ops = mount_plan(targets, newroot, self.kl.rootfs)
        os.makedirs(self.dir, exist_ok=True)
        out = open(os.path.join(self.dir, f"{c.name}.log"), "ab")
        r, w = os.pipe()
        restart = c.starts > 0
        c.starts += 1
        failure = None
        try:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True,
                                    preexec_fn=Launch(self.netns_fd, self.hostname, ops, newroot,
                                                      spec.get("workingDir") or image.get("workingDir"), w))
        except OSError as e:
            failure = f"exec {argv[0]}: {e.strerror}"
        except subprocess.SubprocessError:
            os.close(w)
            w = None
            failure = "container setup: " + os.read(r, 4096).decode(errors="replace")
        finally:
            out.close()
            if w is not None:
                os.close(w)
            os.close(r)
        if restart:
            c.restarts += 1
        if failure:
            delay = c.backoff.next(0)
            c.last_state = {"terminated": {"exitCode": 128, "reason": "StartError", "message": failure,
                                           "startedAt": None, "finishedAt": now_rfc3339()}}
            c.state = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                   f"back-off {fmt_duration(delay)} restarting failed container={c.name} "
                                   f"pod={self.name}_{self.ns}({self.uid})"}}
            c.next_start = time.monotonic() + delay
            c.ready = False
            self.kl.log(f"{who}: start failed: {failure}; back-off {fmt_duration(delay)}")
            return
        c.proc = proc
        c.pgid = proc.pid
        c.started_at = time.monotonic()
        c.started_wall = now_rfc3339()
        c.state = {"running": {"startedAt": c.started_wall}}
        c.probe_ok = c.probe_fail = 0
        probe = spec.get("readinessProbe")
        c.ready = probe is None and not c.init
        if probe:
            c.next_probe = time.monotonic() + probe.get("initialDelaySeconds", 0)
        cmdline = " ".join(argv)
        self.kl.log(f"{who}: {'restart #%d' % c.restarts if restart else 'start'} pid {proc.pid}: {cmdline}")

    def reap(self, c, stopping=False):
        rc = c.proc.poll()
        if rc is None:
            return False
        pid = c.proc.pid
        ran = time.monotonic() - c.started_at
        try:
            os.killpg(pid, signal.SIGKILL)   # a container ends with its main process, as a cgroup would
        except (ProcessLookupError, PermissionError):
            pass
        if rc < 0:
            how = f"killed by signal {-rc} ({SIGNAMES.get(-rc, '?')})"
            code, sig = 128 - rc, -rc
        else:
            how = f"exited with code {rc}"
            code, sig = rc, None
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": c.started_wall, "finishedAt": now_rfc3339(), "containerID": f"kubelet://{pid}"}
        if sig:
            term["signal"] = sig
        c.proc = None
        c.ready = False
        c.exit_code = code
        restart = not stopping and (self.restart_policy == "Always" or
                                    (self.restart_policy == "OnFailure" and code != 0) or
                                    (c.init and code != 0 and self.restart_policy != "Never"))
        if c.init and code == 0:
            restart = False
        if restart:
            delay = c.backoff.next(ran)
            c.last_state = {"terminated": term}
            c.state = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                   f"back-off {fmt_duration(delay)} restarting failed container={c.name} "
                                   f"pod={self.name}_{self.ns}({self.uid})"}}
            c.next_start = time.monotonic() + delay
            self.kl.log(f"{c.who}: pid {pid} {how} after {fmt_duration(ran)}; back-off {fmt_duration(delay)}")
        else:
            c.state = {"terminated": term}
            c.done = True
            self.kl.log(f"{c.who}: pid {pid} {how} after {fmt_duration(ran)}"
                        + (" (stopped)" if stopping else ""))
        return True

    def probe(self, c):
        p = c.spec.get("readinessProbe")
        if not p or c.proc is None:
            return
        t = time.monotonic()
        if t < c.next_probe:
            return
        c.next_probe = t + p.get("periodSeconds", 10)
        ok = False
        timeout = p.get("timeoutSeconds", 1)
        if "tcpSocket" in p:
            port = p["tcpSocket"].get("port")
            if isinstance(port, str) and not port.isdigit():
                port = next((cp["containerPort"] for cp in c.spec.get("ports") or [] if cp.get("name") == port), 0)
            host = p["tcpSocket"].get("host") or self.ip
            try:
                with socket.create_connection((host, int(port)), timeout=timeout):
                    ok = True
            except OSError:
                ok = False
        elif "exec" in p:
            ok = self.exec_probe(c, p["exec"].get("command") or [], timeout)
        elif "httpGet" in p:
            hg = p["httpGet"]
            try:
                conn = http.client.HTTPConnection(hg.get("host") or self.ip, int(hg.get("port")), timeout=timeout)
                conn.request("GET", hg.get("path", "/"))
                ok = 200 <= conn.getresponse().status < 400
                conn.close()
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
        else:
            ok = True
        if ok:
            c.probe_fail = 0
            c.probe_ok += 1
            if c.probe_ok >= p.get("successThreshold", 1):
                c.ready = True
        else:
            c.probe_ok = 0
            c.probe_fail += 1
            if c.probe_fail >= p.get("failureThreshold", 3) or not c.ready:
                c.ready = False

    def exec_probe(self, c, argv, timeout):
        image = self.kl.image(c.spec.get("image", "")) or {"PATH": os.environ.get("PATH", "")}
        targets = {}
        for hp, src in (image.get("mounts") or {}).items():
            targets[hp] = (src, False)
        for vm in c.spec.get("volumeMounts") or []:
            if vm["name"] in self.volumes:
                src, ro = self.volumes[vm["name"]]
                targets[os.path.normpath(vm["mountPath"])] = (src, ro or bool(vm.get("readOnly")))
        targets.setdefault("/etc/hosts", (self.hosts_path, False))
        newroot = os.path.join(self.kl.rootfs, f"{self.ns}_{self.name}_{c.name}_probe")
        os.makedirs(newroot, exist_ok=True)
        r, w = os.pipe()
        try:
            p = subprocess.run(argv, env={"PATH": image["PATH"]}, capture_output=True, timeout=timeout,
                               preexec_fn=Launch(self.netns_fd, self.hostname, mount_plan(targets, newroot, self.kl.rootfs),
                                                 newroot, c.spec.get("workingDir"), w))
            return p.returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
        finally:
            os.close(r)
            os.close(w)

    # ---- status ----

    def container_status(self, c):
        st = {"name": c.name, "image": c.spec.get("image", ""), "imageID": "", "ready": bool(c.ready),
              "restartCount": c.restarts, "state": c.state, "lastState": c.last_state,
              "started": c.proc is not None}
        if c.proc is not None:
            st["containerID"] = f"kubelet://{c.proc.pid}"
        return st

    def status(self):
        conds = []
        t = now_rfc3339()
        init_done = self.init_done
        all_ready = bool(self.ctrs) and all(c.ready for c in self.ctrs)
        prev = {x["type"]: x for x in ((self.last_status or {}).get("conditions") or [])}

        def cond(typ, ok, reason=None):
            old = prev.get(typ)
            s = "True" if ok else "False"
            d = {"type": typ, "status": s, "lastProbeTime": None,
                 "lastTransitionTime": old["lastTransitionTime"] if old and old["status"] == s else t}
            if reason and not ok:
                d["reason"] = reason
            conds.append(d)
        cond("PodReadyToStartContainers", self.ip is not None)
        cond("Initialized", init_done, "ContainersNotInitialized")
        cond("Ready", all_ready and init_done, "ContainersNotReady")
        cond("ContainersReady", all_ready and init_done, "ContainersNotReady")
        cond("PodScheduled", True)
        st = {"phase": self.phase, "conditions": conds, "hostIP": self.kl.net.gw,
              "hostIPs": [{"ip": self.kl.net.gw}], "startTime": self.start_time,
              "qosClass": (self.obj.get("status") or {}).get("qosClass", "BestEffort"),
              "containerStatuses": [self.container_status(c) for c in self.ctrs]}
        if self.ip:
            st["podIP"] = self.ip
            st["podIPs"] = [{"ip": self.ip}]
        if self.inits:
            st["initContainerStatuses"] = [self.container_status(c) for c in self.inits]
        if self.sandbox_error:
            st["message"] = self.sandbox_error
        return st

    def push_status(self, force=False):
        st = self.status()
        if st == self.last_status and not force:
            return
        code, body = self.kl.kube.request("PATCH", f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status",
                                          {"metadata": {"uid": self.uid}, "status": st},
                                          "application/merge-patch+json")
        if code == 200:
            self.last_status = st
        elif code == 404:
            pass
        else:
            self.kl.debug(f"pod {self.key}: status write: {code} {body.get('message')}")

    # ---- the loop ----

    def run(self):
        try:
            self._run()
        except Exception:
            self.kl.log(f"pod {self.key}: worker failed: {traceback.format_exc()}")
        finally:
            self.finished.set()

    def _run(self):
        while self.stop_req is None:
            try:
                self.setup_sandbox()
                break
            except Exception as e:
                self.sandbox_error = f"sandbox: {e}"
                self.kl.log(f"pod {self.key}: sandbox failed: {e}")
                self.push_status()
                time.sleep(2)
        self.sandbox_error = None
        while self.stop_req is None:
            msg = self.setup_volumes()
            if msg is None:
                self.sandbox_error = None
                break
            self.sandbox_error = f"volumes: {msg}"
            for c in self.inits + self.ctrs:
                c.state = {"waiting": {"reason": "ContainerCreating", "message": msg}}
            self.push_status()
            time.sleep(1)
        last_volume_refresh = time.monotonic()
        while self.stop_req is None:
            now = time.monotonic()
            if now - last_volume_refresh > 5:
                last_volume_refresh = now
                try:
                    self.setup_volumes()
                except Exception:
                    pass
            if not self.init_done:
                for c in self.inits:
                    if c.done:
                        continue
                    if c.proc is not None:
                        if self.reap(c) and c.done and c.exit_code != 0:
                            self.phase = "Failed"
                    elif now >= c.next_start:
                        self.start_container(c)
                    break
                else:
                    self.init_done = True
                for c in self.ctrs:
                    if not c.state.get("terminated"):
                        c.state = {"waiting": {"reason": "PodInitializing"}}
            if self.init_done and self.phase != "Failed":
                for c in self.ctrs:
                    if c.proc is not None:
                        self.reap(c)
                    elif not c.done and now >= c.next_start:
                        self.start_container(c)
                    if c.proc is not None:
                        self.probe(c)
                if any(c.starts for c in self.ctrs):
                    if all(c.done for c in self.ctrs):
                        self.phase = "Succeeded" if all(c.exit_code == 0 for c in self.ctrs) else "Failed"
                    else:
                        self.phase = "Running"
            self.push_status()
            time.sleep(0.1)
        self.shutdown()

    def shutdown(self):
        grace = (self.obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        dg = (self.obj.get("metadata") or {}).get("deletionGracePeriodSeconds")
        if dg is not None:
            grace = dg
        grace = min(grace, self.kl.args.grace_cap)
        running = [c for c in self.inits + self.ctrs if c.proc is not None]
        for c in running:
            try:
                os.killpg(c.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(c.proc is not None and c.proc.poll() is None for c in running):
            time.sleep(0.05)
        for c in running:
            if c.proc is not None and c.proc.poll() is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for c in running:
            if c.proc is not None:
                c.proc.wait()
                self.reap(c, stopping=True)
        # whatever else is left in the containers' sessions (children that outlived the main process)
        for c in self.inits + self.ctrs:
            if c.pgid:
                try:
                    os.killpg(c.pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.netns:
            Network.del_sandbox(self.netns, self.veth)
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None
        if self.stop_req == "delete":
            self.kl.log(f"pod {self.key}: stopped; deleting the pod object")
            self.kl.kube.request("DELETE", f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
                                 {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                  "preconditions": {"uid": self.uid}})
        self.kl.forget_pod(self)


# ---------------------------------------------------------------------------------------------
# The node


def template_hash(tpl):
    return hashlib.sha256(json.dumps(tpl, sort_keys=True).encode()).hexdigest()[:10]


class Kubelet:
    def __init__(self, args):
        self.args = args
        self.root = os.path.abspath(args.root)
        os.makedirs(self.root, exist_ok=True)
        self.rootfs = os.path.join(self.root, "rootfs")
        os.makedirs(self.rootfs, exist_ok=True)
        os.makedirs(os.path.join(self.root, "volumes"), exist_ok=True)
        self.kube = Kube(args.kubeconfig)
        self.net = Network(args.instance, args.pod_cidr)
        self.logf = open(os.path.join(self.root, "kubelet.log"), "a", buffering=1)
        self.loglock = threading.Lock()
        self.workers = {}          # uid -> PodWorker
        self.wlock = threading.Lock()
        self.pvcs = {}             # (ns, name) -> host dir
        self.images = {}
        self.hosts_base = None
        self.stopping = False
        self.dns_dirty = threading.Event()
        self.hosts_lock = threading.Lock()
        if args.images:
            with open(args.images) as f:
                self.images = json.load(f)
        if args.hosts_file:
            with open(args.hosts_file) as f:
                self.hosts_base = f.read()
            if not self.hosts_base.endswith("\n"):
                self.hosts_base += "\n"
        self.image_dirs = {}
        # Pod workers are threads; two may ask for the same image at once.
        self.image_lock = threading.Lock()

    # ---- small services ----

    def log(self, msg):
        with self.loglock:
            self.logf.write(f"{log_ts()} {msg}\n")

    def debug(self, msg):
        if self.args.verbose:
            self.log(msg)

    def image(self, name):
        img = self.images[name] if name in self.images else self.images.get("*")
        if img is None:
            return None
        with self.image_lock:
            if name not in self.image_dirs:
                self.image_dirs[name] = self._image_path(name, img)
        out = dict(img)
        out["PATH"] = self.image_dirs[name]
        out["env"] = {k: v for k, v in (img.get("env") or {}).items() if k != "PATH"}
        return out

    def _image_path(self, name, img):
        """Builds the image's bin directory of symlinks; returns its PATH."""
        paths = list(img.get("path") or [])
        if img.get("bin"):
            d = os.path.join(self.root, "images", re.sub(r"[^A-Za-z0-9_.-]", "_", name), "bin")
            os.makedirs(d, exist_ok=True)
            for b, target in img["bin"].items():
                p = os.path.join(d, b)
                if os.path.lexists(p):
                    os.unlink(p)
                os.symlink(os.path.abspath(target), p)
            paths.insert(0, d)
        base = img.get("env", {}).get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return ":".join(paths + [base])

    def pvc_dir(self, ns, name):
        return self.pvcs.get((ns, name))

    def forget_pod(self, w):
        with self.wlock:
            if self.workers.get(w.uid) is w:
                del self.workers[w.uid]
        self.dns_changed()

    def dns_changed(self):
        self.dns_dirty.set()

    def write_hosts(self):
        with self.hosts_lock:
            self._write_hosts()

    def _write_hosts(self):
        with self.wlock:
            workers = list(self.workers.values())
        entries = []
        for w in sorted(workers, key=lambda w: (w.ns, w.name)):
            spec = w.obj.get("spec") or {}
            if not w.ip:
                continue
            hn = spec.get("hostname") or w.name
            sub = spec.get("subdomain")
            if sub:
                fq = f"{hn}.{sub}.{w.ns}.svc.{self.args.cluster_domain}"
                entries.append((w, f"{w.ip}\t{fq} {hn}.{sub}.{w.ns}.svc {hn}.{sub}.{w.ns} {hn}.{sub}"))
            else:
                entries.append((w, None))
        cluster = "".join(f"{e}\n" for _, e in entries if e)
        if self.args.hosts_file:
            # on the host, also each pod's bare hostname (the first pod of that name wins)
            seen, extra = set(), []
            for w, e in entries:
                hn = (w.obj.get("spec") or {}).get("hostname") or w.name
                if hn not in seen:
                    seen.add(hn)
                    extra.append(f"{w.ip}\t{hn}\n")
            write_in_place(self.args.hosts_file, self.hosts_base + "# kubelet.py pods\n" + cluster + "".join(extra))
        for w, _ in entries:
            spec = w.obj.get("spec") or {}
            hn = spec.get("hostname") or w.name
            sub = spec.get("subdomain")
            own = f"{w.ip}\t{hn}.{sub}.{w.ns}.svc.{self.args.cluster_domain} {hn}" if sub else f"{w.ip}\t{hn}"
            text = ("# Kubernetes-managed hosts file (kubelet.py).\n127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n" + own + "\n" + cluster)
            try:
                write_in_place(w.hosts_path, text)
            except OSError:
                pass

    # ---- controllers ----

    def reconcile_pvcs(self, pvcs):
        seen = set()
        for pvc in pvcs:
            md = pvc["metadata"]
            key = (md["namespace"], md["name"])
            seen.add(key)
            d = os.path.join(self.root, "volumes", f"{md['namespace']}_{md['name']}_{md['uid'][:8]}")
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
            self.pvcs[key] = d
            if (pvc.get("status") or {}).get("phase") != "Bound" and not md.get("deletionTimestamp"):
                spec = pvc.get("spec") or {}
                st = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                      "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get(
                          "storage", "1Gi")}}
                self.kube.request("PATCH", f"/api/v1/namespaces/{md['namespace']}/persistentvolumeclaims/"
                                  f"{md['name']}/status", {"status": st}, "application/merge-patch+json")
        for key in list(self.pvcs):
            if key not in seen:
                del self.pvcs[key]

    def reconcile_statefulsets(self, stss, pods, pvcs):
        pods_by = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        pvc_names = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pvcs}
        for sts in stss:
            md, spec = sts["metadata"], sts.get("spec") or {}
            ns, name = md["namespace"], md["name"]
            if md.get("deletionTimestamp"):
                continue
            replicas = spec.get("replicas", 1)
            tpl = spec.get("template") or {}
            rev = f"{name}-{template_hash(tpl)}"
            owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name, "uid": md["uid"],
                     "controller": True, "blockOwnerDeletion": True}
            sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
            for i in range(replicas):
                pname = f"{name}-{i}"
                for vct in spec.get("volumeClaimTemplates") or []:
                    cname = f"{vct['metadata']['name']}-{pname}"
                    if (ns, cname) in pvc_names:
                        continue
                    labels = dict(sel)
                    labels.update((vct.get("metadata") or {}).get("labels") or {})
                    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": cname, "namespace": ns, "labels": labels},
                            "spec": vct.get("spec") or {}}
                    code, resp = self.kube.request("POST", f"/api/v1/namespaces/{ns}/persistentvolumeclaims", body)
                    if code not in (201, 409):
                        self.log(f"statefulset {ns}/{name}: create pvc {cname}: {code} {resp.get('message')}")
                    pvc_names.add((ns, cname))
                if (ns, pname) in pods_by:
                    continue
                pmd = json.loads(json.dumps(tpl.get("metadata") or {}))
                pmd.update({"name": pname, "namespace": ns, "ownerReferences": [owner]})
                labels = pmd.setdefault("labels", {})
                labels.update({"statefulset.kubernetes.io/pod-name": pname, "apps.kubernetes.io/pod-index": str(i),
                               "controller-revision-hash": rev})
                pspec = json.loads(json.dumps(tpl.get("spec") or {}))
                pspec["hostname"] = pname
                if spec.get("serviceName"):
                    pspec["subdomain"] = spec["serviceName"]
                vols = pspec.setdefault("volumes", [])
                for vct in spec.get("volumeClaimTemplates") or []:
                    vn = vct["metadata"]["name"]
                    if not any(v["name"] == vn for v in vols):
                        vols.append({"name": vn, "persistentVolumeClaim": {"claimName": f"{vn}-{pname}"}})
                body = {"apiVersion": "v1", "kind": "Pod", "metadata": pmd, "spec": pspec}
                code, resp = self.kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body)
                if code == 201:
                    self.log(f"statefulset {ns}/{name}: created pod {pname}")
                    pods_by[(ns, pname)] = resp
                elif code != 409:
                    self.log(f"statefulset {ns}/{name}: create pod {pname}: {code} {resp.get('message')}")
            # scale down: pods with an index >= replicas go
            mine = []
            for (pns, pname), p in list(pods_by.items()):
                if pns != ns:
                    continue
                if not any(o.get("uid") == md["uid"] for o in p["metadata"].get("ownerReferences") or []):
                    continue
                m = re.fullmatch(re.escape(name) + r"-(\d+)", pname)
                if not m:
                    continue
                if int(m.group(1)) >= replicas:
                    if not p["metadata"].get("deletionTimestamp"):
                        self.kube.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{pname}")
                    continue
                mine.append(p)
            ready = sum(1 for p in mine if not p["metadata"].get("deletionTimestamp") and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []))
            updated = sum(1 for p in mine if p["metadata"].get("labels", {}).get("controller-revision-hash") == rev)
            st = {"observedGeneration": md.get("generation", 1), "replicas": len(mine), "readyReplicas": ready,
                  "currentReplicas": len(mine), "updatedReplicas": updated, "availableReplicas": ready,
                  "currentRevision": rev, "updateRevision": rev, "collisionCount": 0}
            old = sts.get("status") or {}
            if any(old.get(k) != v for k, v in st.items()):
                code, resp = self.kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/statefulsets/{name}/status",
                                               {"status": st}, "application/merge-patch+json")
                if code != 200:
                    self.debug(f"statefulset {ns}/{name}: status: {code} {resp.get('message')}")

    def schedule(self, pods):
        for p in pods:
            md, spec = p["metadata"], p.get("spec") or {}
            if spec.get("nodeName") or md.get("deletionTimestamp"):
                continue
            body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.args.node_name}}
            code, resp = self.kube.request("POST", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/binding",
                                           body)
            if code not in (200, 201, 409):
                self.log(f"pod {md['namespace']}/{md['name']}: bind: {code} {resp.get('message')}")

    def sync_pods(self, pods):
        live = {}
        for p in pods:
            md = p["metadata"]
            if (p.get("spec") or {}).get("nodeName") != self.args.node_name:
                continue
            live[md["uid"]] = p
        with self.wlock:
            workers = dict(self.workers)
        for uid, w in workers.items():
            p = live.get(uid)
            if p is None:
                if w.stop_req is None:
                    w.stop_req = "stop"
            else:
                w.obj = p
                if p["metadata"].get("deletionTimestamp") and w.stop_req is None:
                    w.stop_req = "delete"
        for uid, p in live.items():
            if uid in workers:
                continue
            if p["metadata"].get("deletionTimestamp"):
                # not ours any more (a kubelet restart): let it go
                self.kube.request("DELETE", f"/api/v1/namespaces/{p['metadata']['namespace']}/pods/"
                                  f"{p['metadata']['name']}?gracePeriodSeconds=0")
                continue
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            # a pod of the same name still terminating keeps its IP and netns: wait for it
            if any(w.ns == p["metadata"]["namespace"] and w.name == p["metadata"]["name"] for w in workers.values()):
                continue
            w = PodWorker(self, p)
            with self.wlock:
                self.workers[uid] = w
            w.start()

    def register_node(self):
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.args.node_name, "labels": {"kubernetes.io/hostname": self.args.node_name}},
                "spec": {"podCIDR": str(self.net.net)}}
        code, _ = self.kube.request("POST", "/api/v1/nodes", body)
        st = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                              "message": "kubelet.py is posting ready status", "lastHeartbeatTime": now_rfc3339(),
                              "lastTransitionTime": now_rfc3339()}],
              "addresses": [{"type": "InternalIP", "address": self.net.gw},
                            {"type": "Hostname", "address": self.args.node_name}],
              "nodeInfo": {"kubeletVersion": "v1.32.0-kubelet.py", "containerRuntimeVersion": "kubelet.py://0",
                           "operatingSystem": "linux", "architecture": "amd64"}}
        self.kube.request("PATCH", f"/api/v1/nodes/{self.args.node_name}/status", {"status": st},
                          "application/merge-patch+json")

    def run(self):
        cleanup_leftovers(self.args.instance)
        with open(os.path.join(STATE_DIR, f"{self.args.instance}.json"), "w") as f:
            json.dump({"pid": os.getpid(), "instance": self.args.instance, "root": self.root}, f)
        self.net.setup()
        self.log(f"kubelet.py: node {self.args.node_name}, bridge {self.net.bridge} {self.net.gw}/"
                 f"{self.net.net.prefixlen}")
        try:
            self.register_node()
        except Exception as e:
            self.log(f"node registration: {e}")
        if self.args.ready_file:
            with open(self.args.ready_file, "w") as f:
                f.write(str(os.getpid()))
        while not self.stopping:
            try:
                stss = self.kube.items("/apis/apps/v1/statefulsets")
                pvcs = self.kube.items("/api/v1/persistentvolumeclaims")
                pods = self.kube.items("/api/v1/pods")
                self.reconcile_pvcs(pvcs)
                self.reconcile_statefulsets(stss, pods, pvcs)
                self.schedule(pods)
                pods = self.kube.items("/api/v1/pods")
                self.sync_pods(pods)
                if self.dns_dirty.is_set():
                    self.dns_dirty.clear()
                    self.write_hosts()
            except Exception:
                self.log("loop: " + traceback.format_exc().strip().replace("\n", " | "))
            deadline = time.monotonic() + self.args.sync_period
            while time.monotonic() < deadline and not self.stopping:
                if self.dns_dirty.is_set():
                    self.dns_dirty.clear()
                    self.write_hosts()
                time.sleep(0.05)
        self.shutdown()

    def shutdown(self):
        with self.wlock:
            workers = list(self.workers.values())
        for w in workers:
            if w.stop_req is None:
                w.stop_req = "stop"
        for w in workers:
            w.finished.wait(self.args.grace_cap + 10)
        Network.cleanup_instance(self.args.instance)
        self.net.teardown()
        try:
            os.unlink(os.path.join(STATE_DIR, f"{self.args.instance}.json"))
        except OSError:
            pass
        if self.args.hosts_file and self.hosts_base is not None:
            write_in_place(self.args.hosts_file, self.hosts_base)
        self.log("kubelet.py: stopped")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--root", required=True, help="state: logs, pod dirs, volumes")
    ap.add_argument("--images", help="JSON: image name -> mounts, bin, path, env, command")
    ap.add_argument("--hosts-file", help="a hosts file to keep the pods' names in (rewritten in place)")
    ap.add_argument("--pod-cidr", default="10.88.0.0/24")
    ap.add_argument("--instance", default="kl0", help="prefix of netns, veth and bridge names (<= 6 chars)")
    ap.add_argument("--node-name", default="node-1")
    ap.add_argument("--cluster-domain", default="cluster.local")
    ap.add_argument("--set-hostname-as-fqdn", action="store_true",
                    help="every pod with a subdomain gets its FQDN as hostname (as spec.setHostnameAsFQDN)")
    ap.add_argument("--backoff-initial", type=float, default=1.0)
    ap.add_argument("--backoff-max", type=float, default=10.0)
    ap.add_argument("--backoff-reset", type=float, default=10.0)
    ap.add_argument("--grace-cap", type=float, default=5.0, help="the most terminationGracePeriodSeconds used")
    ap.add_argument("--sync-period", type=float, default=0.3)
    ap.add_argument("--ready-file", help="written once the node is set up")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if len(args.instance) > 6 or not re.fullmatch(r"[a-z][a-z0-9]*", args.instance):
        ap.error("--instance: up to 6 lowercase letters and digits")
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    kl = Kubelet(args)

    def on_signal(signum, frame):
        kl.stopping = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    kl.run()


if __name__ == "__main__":
    main()
