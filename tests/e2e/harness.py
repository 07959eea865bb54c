"""Test harness: start and stop wtmongod processes and replica sets on loopback.

Used by the end-to-end tests (Debian's python3 with python3-pymongo). Binaries come from
$PSMDB_BIN (set by CTest) or build/bin of this checkout.
"""
import base64
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pymongo

# See scripts/test.sh: no libmongoc shared-memory counters in the processes the tests start.
os.environ.setdefault("MONGOC_DISABLE_SHM", "1")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("PSMDB_BIN", os.path.join(ROOT, "build", "bin"))
WTMONGOD = os.path.join(BIN, "wtmongod")


_PORTS_HANDED_OUT = set()
# Ports claimed by any test process on this machine: one flock-ed file per port, held until the
# claiming process exits (ctest runs two test processes at once, each with its own
# _PORTS_HANDED_OUT; a port one of them freed for a moment, to restart its server on it, must
# not be handed to the other).
_PORT_DIR = os.path.join(tempfile.gettempdir(), "psmdb-test-ports")
_PORT_LOCKS = []
_REGISTRY_WARNED = []


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _registry_fd(port):
    """An fd of the port's registry file (every user may lock it: flock needs no write access),
    or None if this machine's registry cannot be used (then ports are only unique within this
    process)."""
    try:
        if not os.path.isdir(_PORT_DIR):
            os.makedirs(_PORT_DIR, exist_ok=True)
            os.chmod(_PORT_DIR, 0o1777)
        path = os.path.join(_PORT_DIR, str(port))
        fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
        return fd
    except OSError as e:
        if not _REGISTRY_WARNED:
            _REGISTRY_WARNED.append(True)
            print("harness: port registry %s unusable (%s); ports are unique within this "
                  "process only" % (_PORT_DIR, e), file=sys.stderr)
        return None


def _claim(port):
    """True if `port` is now this process's: not handed out before, not claimed by another
    test process, and bindable."""
    if port in _PORTS_HANDED_OUT:
        return False
    fd = _registry_fd(port)
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            if fd is not None:
                os.close(fd)
            return False
    if fd is not None:
        _PORT_LOCKS.append(fd)
    _PORTS_HANDED_OUT.add(port)
    return True


def free_ports(n):
    """n consecutive loopback ports nothing listens on, claimed for this process (see _claim)
    so that no other test process gets them while this one runs. Taken at random below the
    kernel's ephemeral range, where the kernel picks outgoing connections' ports and port-0
    binds (two port-0 binds in a row may get the same port: a replica set once got two members
    on one)."""
    lo, hi = 20000, min(32000, _ephemeral_low() - 1)
    if hi - lo < 1000:  # an ephemeral range reaching down here: no range is safe from it
        lo, hi = 20000, 32000
    for _ in range(2000):
        base = random.randint(lo, hi - n + 1)
        claimed = []
        for port in range(base, base + n):
            if not _claim(port):
                break
            claimed.append(port)
        if len(claimed) == n:
            return claimed
        # A partial block stays claimed (a few ports lost): simpler than giving them back.
    raise RuntimeError("no %d free consecutive loopback ports in %d-%d" % (n, lo, hi))


def free_port():
    """One loopback port, as free_ports."""
    return free_ports(1)[0]


def make_keyfile(path, key=None, mode=0o600):
    """Writes a Percona-style key file (base64 of 32 bytes) and returns the key bytes."""
    key = key if key is not None else os.urandom(32)
    with open(path, "wb") as f:
        f.write(base64.b64encode(key) + b"\n")
    os.chmod(path, mode)
    return key


def wait_until(pred, timeout=30, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the node may still be starting
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last error: %s)" % (what, last))


class Mongod:
    """One wtmongod process."""

    def __init__(self, dbpath, port=None, replset=None, args=(), logpath=None):
        self.dbpath = dbpath
        self.port = port or free_port()
        self.replset = replset
        self.args = list(args)
        self.logpath = logpath or dbpath.rstrip("/") + ".log"
        self.proc = None
        os.makedirs(dbpath, exist_ok=True)

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def argv(self):
        a = [WTMONGOD, "--dbpath", self.dbpath, "--port", str(self.port),
             "--bind_ip", "127.0.0.1", "--logpath", self.logpath, "--logappend"]
        if self.replset:
            a += ["--replSet", self.replset]
        return a + self.args

    def start(self, wait=True):
        self.stderr_path = self.dbpath.rstrip("/") + ".stderr"
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=err)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("wtmongod exited with %s: %s" % (self.proc.returncode, self.stderr()))
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        try:
            wait_until(up, timeout, what="wtmongod on port %d" % self.port)
        except AssertionError:
            if self.proc.poll() is not None:
                raise AssertionError("wtmongod exited with %s: %s" % (self.proc.returncode, self.stderr()))
            raise

    def run_to_exit(self, timeout=60):
        """Starts and waits for exit (for startup-failure tests); returns (code, stderr)."""
        p = subprocess.run(self.argv(), capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stderr

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except (AttributeError, FileNotFoundError):
            return ""

    def client(self, **kw):
        kw.setdefault("serverSelectionTimeoutMS", 10000)
        return pymongo.MongoClient(self.host, directConnection=True,
                                   readPreference="primaryPreferred", **kw)

    def stop(self, timeout=60):
        """SIGTERM and wait: a clean shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("wtmongod did not stop within %ss" % timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.logpath) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class ReplSet:
    """A replica set of wtmongod members on loopback."""

    def __init__(self, basedir, n=3, name="rs0", args=()):
        self.name = name
        self.members = [Mongod(os.path.join(basedir, "m%d" % i), replset=name, args=args)
                        for i in range(n)]

    def start(self, initiate=True):
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_ready()
        if initiate:
            cfg = {"_id": self.name,
                   "members": [{"_id": i, "host": m.host} for i, m in enumerate(self.members)]}
            self.members[0].client().admin.command("replSetInitiate", cfg)
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=60):
        def ok():
            st = self.members[0].client().admin.command("replSetGetStatus")
            states = [m["stateStr"] for m in st["members"]]
            return states.count("PRIMARY") == 1 and states.count("SECONDARY") == len(states) - 1
        wait_until(ok, timeout, what="a healthy replica set")

    def uri(self):
        return "mongodb://%s/?replicaSet=%s" % (",".join(m.host for m in self.members), self.name)

    def client(self, **kw):
        kw.setdefault("serverSelectionTimeoutMS", 10000)
        return pymongo.MongoClient(self.uri(), **kw)

    @property
    def primary(self):
        return self.members[0]

    def stop(self):
        for m in reversed(self.members):
            m.stop()

    def kill(self):
        for m in self.members:
            m.kill()


class TempDir:
    """A scratch directory removed at the end unless KEEP_TMP is set."""

    def __init__(self, prefix="wtm-"):
        self.path = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TEST_TMPDIR"))

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.path, ignore_errors=True)


def copy_backup_files(files, dest_dbpath, src_dbpath):
    """Copies the first fileSize bytes of each {filename, fileSize} into dest, keeping paths."""
    for f in files:
        rel = os.path.relpath(f["filename"], src_dbpath)
        out = os.path.join(dest_dbpath, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        remaining = f["fileSize"]
        with open(f["filename"], "rb") as src, open(out, "wb") as dst:
            while remaining > 0:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                remaining -= len(chunk)
