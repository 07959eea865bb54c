#!/usr/bin/python3
"""A local, in-memory Kubernetes API server for tests. See README.md.

/usr/bin/python3 tests/k8s/apiserver.py --port 0 --port-file F --kubeconfig-out KC [--tls]
    [--token T | --token-auth-file CSV] [--authorization-mode AlwaysAllow|RBAC] [--watch-history N]
"""

import argparse
import base64
import csv
import json
import os
import signal
import ssl
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubeapi import pki  # noqa: E402
from kubeapi.server import Config, make_server  # noqa: E402


def read_token_file(path):
    """kube-apiserver --token-auth-file: token,user,uid,"group1,group2"."""
    tokens = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3:
                raise SystemExit(f"{path}: a line needs at least token,user,uid: {row}")
            groups = [g for g in (row[3].split(",") if len(row) > 3 else []) if g]
            tokens[row[0]] = (row[1], row[2], groups)
    return tokens


def write_kubeconfig(path, server, ca_pem=None, token=None, cert=None, key=None):
    cluster = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
    user = {}
    if token:
        user["token"] = token
    if cert:
        with open(cert, "rb") as f:
            user["client-certificate-data"] = base64.b64encode(f.read()).decode()
        with open(key, "rb") as f:
            user["client-key-data"] = base64.b64encode(f.read()).decode()
    cfg = {"apiVersion": "v1", "kind": "Config", "preferences": {},
           "clusters": [{"name": "test", "cluster": cluster}],
           "users": [{"name": "test-admin", "user": user}],
           "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test-admin",
                                                     "namespace": "default"}}],
           "current-context": "test"}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind-address", default="127.0.0.1")
    ap.add_argument("--port-file")
    ap.add_argument("--kubeconfig-out")
    ap.add_argument("--tls", action="store_true", help="serve HTTPS; certificates are made with openssl")
    ap.add_argument("--cert-dir", help="where --tls keeps its CA and certificates (default: a temporary dir)")
    ap.add_argument("--token", help="a bearer token for user admin in group system:masters")
    ap.add_argument("--token-auth-file", help='CSV lines: token,user,uid,"group1,group2"')
    ap.add_argument("--authorization-mode", default="AlwaysAllow", choices=["AlwaysAllow", "RBAC"])
    ap.add_argument("--watch-history", type=int, default=1000, help="watch events kept for resuming watches")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    tokens = {}
    kc_token = None
    if args.token:
        tokens[args.token] = ("admin", "admin", ["system:masters"])
        kc_token = args.token
    if args.token_auth_file:
        ft = read_token_file(args.token_auth_file)
        tokens.update(ft)
        if not kc_token and ft:
            masters = [t for t, (_, _, g) in ft.items() if "system:masters" in g]
            kc_token = masters[0] if masters else next(iter(ft))

    ctx = None
    ca_pem = ""
    cert = key = None
    if args.tls:
        d = args.cert_dir or tempfile.mkdtemp(prefix="apiserver-pki-")
        ca_crt, _ = pki.make_ca(d)
        srv_crt, srv_key = pki.make_server_cert(d)
        cert, key = pki.make_client_cert(d, "admin", ["system:masters"])
        with open(ca_crt) as f:
            ca_pem = f.read()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(srv_crt, srv_key)
        ctx.load_verify_locations(ca_crt)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])

    config = Config(tokens=tokens, anonymous_admin=not (tokens or args.tls), authz=args.authorization_mode,
                    bookmark_interval=args.bookmark_interval, verbose=args.verbose)
    srv = make_server(args.port, args.bind_address, config, ssl_context=ctx, watch_history=args.watch_history,
                      ca_pem=ca_pem)
    port = srv.server_address[1]
    scheme = "https" if args.tls else "http"
    if args.kubeconfig_out:
        # A configured token is what the kubeconfig uses; the admin client certificate only
        # when there is none (a certificate would win over the token).
        write_kubeconfig(args.kubeconfig_out, f"{scheme}://127.0.0.1:{port}", ca_pem or None, kc_token,
                         None if kc_token else cert, key)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"apiserver: serving {scheme}://127.0.0.1:{port}\n")
    sys.stderr.flush()

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    done.wait()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
