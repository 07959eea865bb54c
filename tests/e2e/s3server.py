"""S3 on loopback for the e2e tests: s3rver (npm, tests/s3) in a temp directory, and the AWS SDK
v3 client script (tests/s3/sdk_client.js) as an independent reader/writer.

    with S3Server() as s3:                      # starts s3rver and creates the bucket
        storage = s3.storage_config(prefix="p")  # a `storage:` section for pbm/s3tool

s3rver accepts the access key S3RVER (any secret: it does not verify SigV4 signatures).
Run scripts/setup.sh first (it installs node and tests/s3/node_modules).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile

from harness import BIN, ROOT, free_port, wait_until

S3_DIR = os.path.join(ROOT, "tests", "s3")
S3RVER = os.path.join(S3_DIR, "node_modules", "s3rver", "bin", "s3rver.js")
SDK_CLIENT = os.path.join(S3_DIR, "sdk_client.js")
S3TOOL = os.path.join(BIN, "s3tool")
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"


def node_available():
    return shutil.which("node") is not None and os.path.exists(S3RVER)


class S3Server:
    def __init__(self, bucket="pbm-test", tls=False):
        self.bucket = bucket
        self.tls = tls  # https with a fresh self-signed certificate for 127.0.0.1
        self.port = None
        self.proc = None
        self.dir = None

    @property
    def endpoint(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def start(self):
        if not node_available():
            raise RuntimeError("node or tests/s3/node_modules missing: run scripts/setup.sh")
        self.dir = tempfile.mkdtemp(prefix="s3rver-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "s3rver.log"), "wb")
        tls_args = []
        if self.tls:
            key, cert = os.path.join(self.dir, "key.pem"), os.path.join(self.dir, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            tls_args = ["--key", key, "--cert", cert]
        quiet = [] if os.environ.get("S3RVER_VERBOSE") else ["--silent"]  # verbose: keep the log
        # --openssl-legacy-provider: s3rver encrypts continuation tokens with DES.
        # --service-endpoint localhost: <bucket>.s3.localhost is virtual-hosted addressing.
        self.proc = subprocess.Popen(
            ["node", "--openssl-legacy-provider", S3RVER, "--directory",
             os.path.join(self.dir, "data"), "--address", "127.0.0.1", "--port", str(self.port),
             "--service-endpoint", "localhost", "--configure-bucket", self.bucket]
            + quiet + tls_args,
            stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("s3rver exited: see %s" % self.log.name)
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(up, timeout=30, what="s3rver on port %d" % self.port)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
        if self.dir:
            (None if os.environ.get("S3RVER_VERBOSE") else shutil.rmtree(self.dir, ignore_errors=True))
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def storage_config(self, prefix="", endpoint=None, **extra):
        """A `storage:` section for this server; `extra` goes into the s3 mapping."""
        s3 = {
            "region": "us-east-1",
            "bucket": self.bucket,
            "endpointUrl": endpoint or self.endpoint,
            "forcePathStyle": True,
            "credentials": {"access-key-id": ACCESS_KEY, "secret-access-key": SECRET_KEY},
            "retryer": {"numMaxRetries": 3, "minRetryDelay": "10ms", "maxRetryDelay": "200ms"},
        }
        if prefix:
            s3["prefix"] = prefix
        s3.update(extra)
        return {"type": "s3", "s3": s3}

    def sdk(self, *args, input=None, check=True):
        """Runs tests/s3/sdk_client.js (AWS SDK v3) against this server; returns stdout."""
        env = dict(os.environ, S3_ENDPOINT=self.endpoint, S3_BUCKET=self.bucket,
                   AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_REGION="us-east-1")
        p = subprocess.run(["node", SDK_CLIENT] + list(args), input=input, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("sdk_client.js %s failed: %s" % (args, p.stderr.decode()))
        return p.stdout


class S3Tool:
    """Drives the C++ storage driver through build/bin/s3tool with a storage config."""

    def __init__(self, storage_config, workdir):
        self.config_path = os.path.join(workdir, "storage-%d.json" % id(self))
        with open(self.config_path, "w") as f:
            json.dump(storage_config, f)

    def run(self, *args, input=None, check=True, timeout=120):
        p = subprocess.run([S3TOOL, self.config_path] + [str(a) for a in args], input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("s3tool %s failed (%d): %s"
                                 % (args, p.returncode, p.stderr.decode()))
        return p

    def put(self, name, data):
        self.run("put", name, input=data)

    def get(self, name):
        return self.run("get", name).stdout

    def list(self, prefix=""):
        out = self.run("list", prefix).stdout.decode()
        return [(l.split("\t")[0], int(l.split("\t")[1])) for l in out.splitlines()]
