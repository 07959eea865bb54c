"""Certificates for the TLS mode, made with the openssl command line tool."""

import os
import subprocess


def _run(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key(path):
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)


def make_ca(d):
    os.makedirs(d, exist_ok=True)
    key, crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    if not os.path.exists(crt):
        _key(key)
        _run("req", "-x509", "-new", "-key", key, "-out", crt, "-days", "3650", "-subj", "/CN=test-apiserver-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return crt, key


def _sign(d, name, subj, ext):
    key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "crt"))
    extfile = os.path.join(d, f"{name}.ext")
    with open(extfile, "w") as f:
        f.write(ext)
    _key(key)
    _run("req", "-new", "-key", key, "-out", csr, "-subj", subj)
    _run("x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.crt"), "-CAkey", os.path.join(d, "ca.key"),
         "-CAcreateserial", "-out", crt, "-days", "3650", "-extfile", extfile)
    os.unlink(csr)
    os.unlink(extfile)
    return crt, key


def make_server_cert(d):
    return _sign(d, "server", "/CN=kube-apiserver",
                 "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n"
                 "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")


def make_client_cert(d, user, groups=(), name=None):
    """A client certificate for user (CN) in groups (O), signed by the CA in d."""
    subj = "".join(f"/O={g}" for g in groups) + f"/CN={user}"
    return _sign(d, name or user.replace(":", "_"), subj,
                 "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
