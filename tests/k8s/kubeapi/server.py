"""HTTP front end: authentication, impersonation, authorization, discovery,
OpenAPI v3 for kubectl, request routing, watches and content negotiation."""

import copy
import hashlib
import http.server
import json
import re
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

from . import errors as E
from . import protobuf
from . import rbac
from . import resources as R
from . import tables
from .store import Store

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2025-04-22T00:00:00Z", "goVersion": "go1.23.8",
           "compiler": "gc", "platform": "linux/amd64"}

MASTERS = ("admin", "", ["system:masters", "system:authenticated"])
DISCOVERY_PATHS = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi")


class Config:
    def __init__(self, tokens=None, anonymous_admin=True, authz="AlwaysAllow", bookmark_interval=1.0,
                 verbose=False, client_ca=False):
        self.tokens = tokens or {}          # token -> (user, uid, groups)
        self.anonymous_admin = anonymous_admin
        self.authz = authz
        self.bookmark_interval = bookmark_interval
        self.verbose = verbose
        self.client_ca = client_ca


def _version_key(v):
    """Kubernetes version priority: GA > beta > alpha > other, higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0, v)
    major = int(m.group(1))
    if not m.group(2):
        return (0, -major, 0, v)
    return (1 if m.group(2) == "beta" else 2, -major, -int(m.group(3)), v)


def _parse_accept(accept):
    """The first media type we can serve: ('json'|'table'|'pom', version)."""
    for part in (accept or "").split(","):
        items = [p.strip() for p in part.split(";")]
        media = items[0]
        params = dict(p.split("=", 1) for p in items[1:] if "=" in p)
        if media not in ("application/json", "*/*", "application/*", ""):
            continue
        as_ = params.get("as")
        if as_ is None:
            return ("json", None)
        if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            if as_ == "Table":
                return ("table", params["v"])
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return ("pom", params["v"])
    return ("json", None)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-test/1.32"
    sys_version = ""

    # ---- plumbing ----

    def log_message(self, fmt, *args):
        if self.server.config.verbose:
            sys.stderr.write("apiserver: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, obj, ctype="application/json", headers=None):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            if isinstance(v, list):
                for x in v:
                    self.send_header(k, x)
            else:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, err):
        self._send(err.code, err.status(), headers=err.headers)

    def _handle(self, method):
        self.method = method
        self.warnings = []
        try:
            self.body = self._read_body()
            url = urllib.parse.urlsplit(self.path)
            self.url_path = urllib.parse.unquote(url.path)
            self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
            self.user = self._authenticate()
            self._impersonate()
            self._route()
        except E.APIError as e:
            if self.warnings:
                e.headers.setdefault("Warning", [self._warning(w) for w in self.warnings])
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - every failure becomes a Status
            traceback.print_exc()
            try:
                self._error(E.internal(str(e)))
            except OSError:
                self.close_connection = True

    @staticmethod
    def _warning(text):
        return '299 - "%s"' % text.replace("\\", "\\\\").replace('"', '\\"')

    # ---- authentication ----

    def _authenticate(self):
        cfg = self.server.config
        cert_user = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                cn, orgs = "", []
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
                        elif k == "organizationName":
                            orgs.append(v)
                if cn:
                    cert_user = (cn, "", orgs + ["system:authenticated"])
        if cert_user:
            return cert_user
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            tok = auth[7:].strip()
            hit = cfg.tokens.get(tok) or self.server.store.sa_tokens.get(tok)
            if hit:
                user, uid, groups = hit
                return (user, uid, list(groups) + ["system:authenticated"])
            raise E.unauthorized()
        if cfg.anonymous_admin:
            return MASTERS
        raise E.unauthorized()

    def _impersonate(self):
        target = self.headers.get("Impersonate-User")
        groups = self.headers.get_all("Impersonate-Group") or []
        if not target:
            if groups:
                raise E.bad_request("requested [" + ", ".join(f"{{Group  {g}  authentication.k8s.io/v1  }}"
                                                              for g in groups) + "] without impersonating a user")
            return
        user, uid, ugroups = self.user
        if target.startswith("system:serviceaccount:"):
            parts = target.split(":")
            ns, name = (parts[2], parts[3]) if len(parts) == 4 else ("", "")
            checks = [rbac.Attributes(user, ugroups, "impersonate", "", "serviceaccounts", "", name, ns)]
            if not groups:
                groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
        else:
            checks = [rbac.Attributes(user, ugroups, "impersonate", "", "users", "", target)]
        for g in groups:
            checks.append(rbac.Attributes(user, ugroups, "impersonate", "", "groups", "", g))
        if self.server.config.authz == "RBAC":
            for a in checks:
                ok, reason = rbac.authorize(self.server.store, a)
                if not ok:
                    msg = rbac.forbidden_message(a) + (f": {reason}" if reason else "")
                    raise E.forbidden(a.resource, "", a.name, msg)
        if "system:authenticated" not in groups and target != "system:anonymous":
            groups = list(groups) + ["system:authenticated"]
        self.user = (target, self.headers.get("Impersonate-Uid", ""), groups)

    def _authorize(self, attrs):
        if self.server.config.authz != "RBAC":
            return
        ok, reason = rbac.authorize(self.server.store, attrs)
        if ok:
            return
        msg = rbac.forbidden_message(attrs) + (f": {reason}" if reason else "")
        if not attrs.resource_request:
            raise E.APIError(403, "Forbidden", f"forbidden: {msg}", {})
        raise E.forbidden(attrs.resource, attrs.api_group, attrs.name, msg)

    def _attrs(self, verb, group="", resource="", sub="", name="", ns="", rr=True, version=""):
        user, _, groups = self.user
        return rbac.Attributes(user, groups, verb, group, resource, sub, name, ns, self.url_path, rr, version)

    # ---- routing ----

    def _route(self):
        p = self.url_path.rstrip("/") or "/"
        parts = [x for x in p.split("/") if x]
        m = self.method
        if not parts or parts[0] not in ("api", "apis") or (parts[0] == "api" and len(parts) < 2) or \
                (parts[0] == "apis" and len(parts) < 3):
            verb = {"GET": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}[m]
            self._authorize(self._attrs(verb, rr=False))
            return self._non_resource(p, parts)
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            self._authorize(self._attrs("get", rr=False))
            return self._resource_list(group, version)
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        ns, name, sub = "", "", ""
        if rest and rest[0] == "namespaces":
            if len(rest) > 2 and rest[2] not in ("status", "finalize"):
                ns = rest[1]
                rest = rest[2:]
            else:
                resource = "namespaces"
                name = rest[1] if len(rest) > 1 else ""
                ns = name
                sub = rest[2] if len(rest) > 2 else ""
                rest = None
        if rest is not None:
            if not rest:
                raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
            resource = rest[0]
            name = rest[1] if len(rest) > 1 else ""
            sub = rest[2] if len(rest) > 2 else ""
            if len(rest) > 3:
                raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
        store = self.server.store
        rdef = store.rdef(group, version, resource)
        if rdef is None or (sub and sub not in rdef.subresources) or (rdef.namespaced is False and ns and
                                                                       resource != "namespaces"):
            raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
        if rdef.namespaced and not ns and name:
            raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
        watch = watch_path or self.query.get("watch") in ("true", "1")
        if m == "GET":
            verb = "watch" if watch else ("get" if name else "list")
        elif m == "POST":
            verb = "create"
        elif m == "PUT":
            verb = "update"
        elif m == "PATCH":
            verb = "patch"
        else:
            verb = "delete" if name else "deletecollection"
        if (m in ("PUT", "PATCH") and not name) or (not sub and verb not in rdef.verbs and
                                                   (group, resource) not in R.VIRTUAL):
            raise E.method_not_allowed()
        auth_name = name
        if verb in ("list", "watch") and not name:
            # A list or watch of one object by name is authorized against that name, as real.
            reqs = [r.strip() for r in (self.query.get("fieldSelector") or "").split(",") if r.strip()]
            named = [r.split("=")[-1] for r in reqs if re.fullmatch(r"metadata\.name==?[^=]*", r)]
            if len(named) == 1:
                auth_name = named[0]
        self._authorize(self._attrs(verb, group, resource, sub, auth_name, ns if rdef.namespaced or
                                    resource == "namespaces" else "", version=version))
        if (group, resource) in R.VIRTUAL:
            return self._virtual(rdef, verb)
        return self._resource(rdef, verb, ns if rdef.namespaced else "", name, sub)

    # ---- non-resource endpoints and discovery ----

    def _non_resource(self, p, parts):
        store = self.server.store
        if p in ("/healthz", "/livez", "/readyz") or p.startswith(("/healthz/", "/livez/", "/readyz/")):
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        if p == "/version":
            return self._send(200, VERSION)
        if p == "/api":
            host = "%s:%d" % self.server.server_address[:2]
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                    "serverAddress": host}]})
        if p == "/apis":
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
        if len(parts) == 2 and parts[0] == "apis":
            for g in self._groups():
                if g["name"] == parts[1]:
                    return self._send(200, dict(kind="APIGroup", apiVersion="v1", **g))
            raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
        if p == "/openapi/v2":
            # An OpenAPI v2 document without definitions (protobuf: the empty message), so that kubectl's
            # client-side fallbacks find nothing to check and go on as with a real server.
            return self._send(200, b"", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if p == "/openapi/v3":
            return self._send(200, {"paths": self._openapi_root()})
        if p.startswith("/openapi/v3/"):
            gv = p[len("/openapi/v3/"):]
            doc = self._openapi_gv(gv)
            if doc is None:
                raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
            return self._send(200, doc)
        if p == "/debug/compact" and self.method == "POST":
            self._require_master()
            rv = store.compact()
            return self._send(200, {"compactedResourceVersion": str(rv)})
        if p == "/debug/tokens" and self.method == "POST":
            self._require_master()
            req = json.loads(self.body or b"{}")
            tok = req.get("token") or ("tok-" + uuid.uuid4().hex)
            self.server.config.tokens[tok] = (req.get("user", "user"), req.get("uid", ""),
                                              list(req.get("groups") or []))
            return self._send(201, {"token": tok})
        raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})

    def _require_master(self):
        if "system:masters" not in self.user[2]:
            raise E.APIError(403, "Forbidden", f'forbidden: User "{self.user[0]}" cannot post path '
                                               f'"{self.url_path}"', {})

    def _groups(self):
        by = {}
        order = []
        for d in self.server.store.rdefs():
            if not d.group:
                continue
            if d.group not in by:
                by[d.group] = []
                order.append(d.group)
            if d.version not in by[d.group]:
                by[d.group].append(d.version)
        out = []
        for g in order:
            vs = sorted(by[g], key=_version_key)
            versions = [{"groupVersion": f"{g}/{v}", "version": v} for v in vs]
            out.append({"name": g, "versions": versions, "preferredVersion": versions[0]})
        return out

    def _resource_list(self, group, version):
        defs = [d for d in self.server.store.rdefs() if d.group == group and d.version == version]
        if not defs:
            raise E.APIError(404, "NotFound", "the server could not find the requested resource", {})
        res = []
        for d in defs:
            res.extend(d.discovery())
        gv = f"{group}/{version}" if group else version
        return self._send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                "resources": res})

    def _openapi_gvs(self):
        out = {}
        for d in self.server.store.rdefs():
            key = f"apis/{d.group}/{d.version}" if d.group else f"api/{d.version}"
            out.setdefault(key, []).append(d)
        return out

    def _openapi_root(self):
        out = {}
        for key, defs in self._openapi_gvs().items():
            h = hashlib.sha512(json.dumps(self._openapi_doc(key, defs), sort_keys=True).encode()).hexdigest()
            out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={h[:64].upper()}"}
        return out

    def _openapi_gv(self, key):
        defs = self._openapi_gvs().get(key)
        return self._openapi_doc(key, defs) if defs else None

    @staticmethod
    def _openapi_doc(key, defs):
        """Enough OpenAPI v3 for kubectl: a PATCH operation per kind that takes fieldValidation (so kubectl
        relies on server-side validation), without strategic merge patch in its request body (so kubectl
        computes strategic patches from its built-in types), and the CRD schemas."""
        paths, schemas = {}, {}
        for d in defs:
            gvk = {"group": d.group, "version": d.version, "kind": d.kind}
            prefix = "/" + key + ("/namespaces/{namespace}" if d.namespaced else "")
            ctypes = {c: {"schema": {"type": "object"}} for c in
                      ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")}
            params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                      for n in ("dryRun", "fieldManager", "fieldValidation", "force")]
            item = {
                "get": {"operationId": f"read{d.kind}", "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk, "responses": {"200": {"description": "OK"}}},
                "patch": {"operationId": f"patch{d.kind}", "x-kubernetes-action": "patch",
                          "x-kubernetes-group-version-kind": gvk, "parameters": params,
                          "requestBody": {"content": ctypes, "required": True},
                          "responses": {"200": {"description": "OK"}}},
            }
            paths[f"{prefix}/{d.plural}/{{name}}"] = item
            if d.crd is not None and d.schema:
                rev = ".".join(reversed(d.group.split(".")))
                sch = copy.deepcopy(d.schema)
                sch["x-kubernetes-group-version-kind"] = [gvk]
                schemas[f"{rev}.{d.version}.{d.kind}"] = sch
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
                "paths": paths, "components": {"schemas": schemas}}

    # ---- resources ----

    def _json_body(self):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf" and self.body:
            return protobuf.decode_body(self.body)
        if self.body and ctype not in ("application/json", "*/*", "application/yaml") and \
                not ctype.endswith("+json"):
            raise E.APIError(415, "UnsupportedMediaType",
                             f"the body of the request was in an unknown format - accepted media types include: "
                             f"application/json, application/vnd.kubernetes.protobuf (some kinds)", {})
        if ctype == "application/yaml" and self.body and self.body.lstrip()[:1] not in (b"{", b"["):
            raise E.APIError(415, "UnsupportedMediaType", "this test server accepts JSON bodies only", {})
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise E.bad_request(f"couldn't get version/kind; json parse error: {e}")

    def _validation(self):
        v = self.query.get("fieldValidation", "")
        if v == "":
            return "Warn"
        if v not in ("Strict", "Warn", "Ignore"):
            raise E.bad_request(f"fieldValidation parameter unsupported: {v}")
        return v

    def _dry_run(self):
        d = self.query.get("dryRun")
        if d and d != "All":
            raise E.bad_request(f"Invalid dry run value: {d}")
        return d == "All"

    def _reply(self, code, obj, rdef=None):
        headers = {}
        if self.warnings:
            headers["Warning"] = [self._warning(w) for w in self.warnings]
        kind, ver = _parse_accept(self.headers.get("Accept"))
        if kind == "table" and rdef is not None and isinstance(obj, dict) and obj.get("kind") != "Status":
            items = obj["items"] if "items" in obj and obj.get("kind", "").endswith("List") else [obj]
            meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                    if k in ("resourceVersion", "continue", "remainingItemCount")}
            t = tables.to_table(rdef, items, meta, self.query.get("includeObject", "Metadata"),
                                rdef.crd_version if rdef.crd is not None else None)
            t["apiVersion"] = f"meta.k8s.io/{ver}"
            return self._send(code, t, f"application/json;as=Table;v={ver};g=meta.k8s.io", headers)
        if kind == "pom" and rdef is not None and isinstance(obj, dict) and obj.get("kind") != "Status":
            if "items" in obj:
                out = {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{ver}",
                       "metadata": obj.get("metadata", {}),
                       "items": [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{ver}",
                                  "metadata": i["metadata"]} for i in obj["items"]]}
            else:
                out = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{ver}",
                       "metadata": obj["metadata"]}
            return self._send(code, out, headers=headers)
        return self._send(code, obj, headers=headers)

    def _resource(self, rdef, verb, ns, name, sub):
        store = self.server.store
        q = self.query
        if verb == "get":
            if sub == "scale":
                return self._send(200, store.get_scale(rdef, ns, name))
            return self._reply(200, store.get(rdef, ns, name), rdef)
        if verb == "list":
            meta, items = store.list(rdef, ns, q.get("labelSelector"), q.get("fieldSelector"),
                                     int(q.get("limit") or 0), q.get("continue"))
            return self._reply(200, {"kind": rdef.list_kind, "apiVersion": rdef.api_version, "metadata": meta,
                                     "items": items}, rdef)
        if verb == "watch":
            fs = q.get("fieldSelector")
            if name:
                fs = f"metadata.name={name}" + (f",{fs}" if fs else "")
            return self._watch(rdef, ns, q.get("labelSelector"), fs)
        if verb == "create":
            if sub == "token" and rdef.plural == "serviceaccounts":
                return self._token_request(ns, name)
            if sub == "binding" and rdef.plural == "pods":
                store.bind(rdef, ns, name, self._json_body())
                return self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                        "status": "Success", "code": 201})
            if name:
                raise E.method_not_allowed()
            obj = store.create(rdef, ns, self._json_body(), self._validation(), self._dry_run(), self.warnings)
            return self._reply(201, obj, rdef)
        if verb == "update":
            if sub in ("finalize",):
                sub = None
            obj = store.update(rdef, ns, name, self._json_body(), sub or None, self._validation(),
                               self._dry_run(), self.warnings)
            return self._reply(200, obj, None if sub == "scale" else rdef)
        if verb == "patch":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                if sub:
                    raise E.unsupported_media(ctype)
                obj, created = store.apply_patch(rdef, ns, name, self.body, self._validation(),
                                                 self._dry_run(), self.warnings)
                return self._reply(201 if created else 200, obj, rdef)
            obj = store.patch(rdef, ns, name, ctype, self.body, sub or None, self._validation(),
                              self._dry_run(), self.warnings)
            return self._reply(200, obj, None if sub == "scale" else rdef)
        if verb == "delete":
            opts = self._json_body() if self.body else {}
            opts = opts or {}
            if "gracePeriodSeconds" in q:
                opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            if "propagationPolicy" in q:
                opts["propagationPolicy"] = q["propagationPolicy"]
            before = store.get(rdef, ns, name)
            obj = store.delete(rdef, ns, name, opts, self._dry_run())
            try:
                still = store.get(rdef, ns, name)["metadata"].get("uid") == before["metadata"].get("uid")
            except E.APIError:
                still = False
            if still or rdef.crd is not None or rdef.plural == "pods" or self._dry_run():
                return self._send(200, obj)
            return self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                    "details": {"name": name, "group": rdef.group, "kind": rdef.plural,
                                                "uid": before["metadata"].get("uid")}})
        if verb == "deletecollection":
            opts = (self._json_body() if self.body else {}) or {}
            meta, items = store.delete_collection(rdef, ns, q.get("labelSelector"), q.get("fieldSelector"),
                                                  opts, self._dry_run())
            return self._send(200, {"kind": rdef.list_kind, "apiVersion": rdef.api_version, "metadata": meta,
                                    "items": items})
        raise E.method_not_allowed()

    def _token_request(self, ns, name):
        req = self._json_body() or {}
        spec = req.get("spec") or {}
        tok = self.server.store.mint_token(ns, name)
        exp = int(spec.get("expirationSeconds") or 3600)
        out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
               "spec": {"audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
                        "expirationSeconds": exp, "boundObjectRef": spec.get("boundObjectRef")},
               "status": {"token": tok,
                          "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime(time.time() + exp))}}
        return self._send(201, out)

    def _virtual(self, rdef, verb):
        if verb != "create":
            raise E.method_not_allowed()
        body = self._json_body() or {}
        spec = body.get("spec") or {}
        user, uid, groups = self.user
        if rdef.plural == "selfsubjectreviews":
            return self._send(201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                                    "metadata": {"creationTimestamp": None},
                                    "status": {"userInfo": {"username": user, "uid": uid, "groups": groups}}})
        if rdef.plural == "subjectaccessreviews":
            user, groups = spec.get("user", ""), list(spec.get("groups") or [])
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if ra:
            a = rbac.Attributes(user, groups, ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                                ra.get("subresource", ""), ra.get("name", ""), ra.get("namespace", ""))
        elif nra:
            a = rbac.Attributes(user, groups, nra.get("verb", ""), path=nra.get("path", ""), resource_request=False)
        else:
            raise E.invalid_object(rdef.kind, rdef.group, "", [
                E.invalid("spec.resourceAttributes", None, "exactly one of nonResourceAttributes or "
                                                           "resourceAttributes must be specified")])
        if self.server.config.authz == "RBAC":
            ok, reason = rbac.authorize(self.server.store, a)
            reason = reason or ("" if not ok else "RBAC: allowed")
        else:
            ok, reason = True, ""
        out = {"kind": rdef.kind, "apiVersion": rdef.api_version, "metadata": {"creationTimestamp": None},
               "spec": spec, "status": {"allowed": ok}}
        if reason:
            out["status"]["reason"] = reason
        return self._send(201, out)

    # ---- watch ----

    def _watch(self, rdef, ns, label_sel, field_sel):
        store = self.server.store
        q = self.query
        send_initial = None
        if q.get("sendInitialEvents") == "true":
            send_initial = True
        elif q.get("sendInitialEvents") == "false":
            send_initial = False
        w = store.watch(rdef, ns, label_sel, field_sel, q.get("resourceVersion"), send_initial)
        timeout = float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        kind, ver = _parse_accept(self.headers.get("Accept"))
        self.send_response(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(etype, obj):
            if etype == "ERROR" or etype == "BOOKMARK":
                out = obj
            else:
                out = store.view(rdef, obj)
                if kind == "table":
                    t = tables.to_table(rdef, [out], {"resourceVersion": out["metadata"].get("resourceVersion")},
                                        q.get("includeObject", "Metadata"),
                                        rdef.crd_version if rdef.crd is not None else None)
                    t["apiVersion"] = f"meta.k8s.io/{ver}"
                    out = t
            line = json.dumps({"type": etype, "object": out}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        def bookmark(rv, initial_end=False):
            md = {"resourceVersion": str(rv)}
            if initial_end:
                md["annotations"] = {"k8s.io/initial-events-end": "true"}
            emit("BOOKMARK", {"kind": rdef.kind, "apiVersion": rdef.api_version, "metadata": md})

        try:
            if w.expired is not None:
                emit("ERROR", w.expired.status())
                return self._end_chunks()
            deadline = time.monotonic() + timeout
            last_bm = time.monotonic()
            first = True
            while True:
                with store.cond:
                    if not first:
                        while not w.queue and not w.closed and not self.server.stopping:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            if bookmarks and time.monotonic() - last_bm >= self.server.config.bookmark_interval:
                                break
                            store.cond.wait(min(left, 0.25))
                            if self._peer_closed():
                                w.closed = True
                    events = list(w.queue)
                    w.queue.clear()
                    rv_now = store.rv
                for etype, obj in events:
                    emit(etype, obj)
                if first and send_initial and bookmarks:
                    bookmark(w.initial_rv, True)
                    last_bm = time.monotonic()
                first = False
                if w.closed or self.server.stopping or time.monotonic() >= deadline:
                    break
                if bookmarks and time.monotonic() - last_bm >= self.server.config.bookmark_interval:
                    bookmark(rv_now)
                    last_bm = time.monotonic()
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            store.stop_watch(w)

    def _end_chunks(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _peer_closed(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                # No MSG_PEEK on TLS sockets: a non-blocking read tells EOF from "nothing yet".
                # (A client sends nothing else while it reads a watch.)
                saved = self.connection.gettimeout()
                self.connection.settimeout(0)
                try:
                    return self.connection.recv(1) == b""
                except (ssl.SSLWantReadError, BlockingIOError):
                    return False
                finally:
                    self.connection.settimeout(saved)
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError, ssl.SSLError):
            return True


class APIServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, config, store, ssl_context=None):
        self.config = config
        self.store = store
        self.ssl_context = ssl_context
        self.stopping = False
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, not in the accept loop.
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def stop(self):
        self.stopping = True
        with self.store.cond:
            self.store.cond.notify_all()
        self.shutdown()
        self.server_close()


def make_server(port=0, host="127.0.0.1", config=None, store=None, ssl_context=None, watch_history=1000,
                ca_pem=""):
    config = config or Config()
    store = store or Store(watch_history=watch_history, ca_pem=ca_pem)
    rbac.bootstrap(store)
    srv = APIServer((host, port), config, store, ssl_context)
    return srv


def serve_in_thread(srv):
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    return t
