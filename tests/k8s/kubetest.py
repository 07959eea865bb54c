"""Helpers for tests that need a Kubernetes API: start apiserver.py in a
subprocess, talk to it over HTTP(S), and run kubectl against it.

    with APIServer() as srv:
        srv.kubectl("apply", "-f", "x.yaml")
        code, body, headers = srv.request("GET", "/api/v1/namespaces")
"""

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


class APIServer:
    def __init__(self, *args, tls=False, token=None, token_file_lines=None, rbac=False, watch_history=None):
        self.tmp = tempfile.mkdtemp(prefix="k8s-apiserver-test-")
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig")
        self.cache_dir = os.path.join(self.tmp, "kube-cache")
        self.cert_dir = os.path.join(self.tmp, "pki")
        self.tls = tls
        self.token = token
        argv = [PYTHON, os.path.join(HERE, "apiserver.py"), "--port", "0",
                "--port-file", os.path.join(self.tmp, "port"), "--kubeconfig-out", self.kubeconfig]
        if tls:
            argv += ["--tls", "--cert-dir", self.cert_dir]
        if token:
            argv += ["--token", token]
        if token_file_lines:
            path = os.path.join(self.tmp, "tokens.csv")
            with open(path, "w") as f:
                f.write("\n".join(token_file_lines) + "\n")
            argv += ["--token-auth-file", path]
        if rbac:
            argv += ["--authorization-mode", "RBAC"]
        if watch_history is not None:
            argv += ["--watch-history", str(watch_history)]
        self.argv = argv + list(args)
        self.proc = None
        self.port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.log = open(os.path.join(self.tmp, "apiserver.log"), "w")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)
        port_file = os.path.join(self.tmp, "port")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    self.port = int(f.read())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.log.close()
        with open(os.path.join(self.tmp, "apiserver.log")) as f:
            text = f.read()
        self.stop()
        raise RuntimeError("apiserver did not start: " + text)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- raw HTTP ----

    def ssl_context(self, cert=None, key=None, client_cert=True):
        ctx = ssl.create_default_context(cafile=os.path.join(self.cert_dir, "ca.crt"))
        if cert:
            ctx.load_cert_chain(cert, key)
        elif client_cert:
            ctx.load_cert_chain(os.path.join(self.cert_dir, "admin.crt"), os.path.join(self.cert_dir, "admin.key"))
        return ctx

    def connection(self, timeout=10, **tls):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context(**tls))
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=True, ctype=None, **tls):
        """(status, decoded JSON body or text, headers)."""
        h = {"Accept": "application/json"}
        if token is True and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        elif isinstance(token, str):
            h["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is not None:
            h["Content-Type"] = ctype or ("application/merge-patch+json" if method == "PATCH" else
                                          "application/json")
        h.update(headers or {})
        if "Authorization" in h or self.token:
            tls.setdefault("client_cert", False)  # a certificate would authenticate before the token
        conn = self.connection(**tls)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            try:
                out = json.loads(data)
            except ValueError:
                out = data.decode(errors="replace")
            return resp.status, out, resp.headers
        finally:
            conn.close()

    def watch(self, path, timeout=10, token=True):
        """Open a watch; returns (connection, response); read events with next_event()."""
        h = {"Accept": "application/json"}
        if token is True and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        conn = self.connection(timeout=timeout, **({"client_cert": False} if "Authorization" in h else {}))
        conn.request("GET", path, headers=h)
        return conn, conn.getresponse()

    @staticmethod
    def next_event(resp):
        line = resp.readline()
        return json.loads(line) if line.strip() else None

    # ---- kubectl ----

    def kubectl(self, *args, check=True, input=None, timeout=30, kubeconfig=None):
        argv = [KUBECTL, "--kubeconfig", kubeconfig or self.kubeconfig, "--cache-dir", self.cache_dir, *args]
        p = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        return p
