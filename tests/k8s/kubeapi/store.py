"""The object store and the REST semantics of the API server.

One lock guards everything; watchers wait on a condition over that lock.
Objects in the store are never mutated once inserted (every write stores a
new dict), so watch events can hold references to them.
"""

import base64
import collections
import copy
import datetime
import json
import random
import threading
import uuid

from . import errors as E
from . import fields
from . import patch as P
from . import resources as R
from . import schema as S
from . import selectors as SEL

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Event:
    __slots__ = ("rv", "key", "type", "obj", "prev")

    def __init__(self, rv, key, type_, obj, prev):
        self.rv, self.key, self.type, self.obj, self.prev = rv, key, type_, obj, prev


class Watcher:
    def __init__(self, rdef, namespace, label_reqs, field_reqs):
        self.rdef = rdef
        self.key = rdef.storage
        self.namespace = namespace
        self.label_reqs = label_reqs
        self.field_reqs = field_reqs
        self.queue = collections.deque()
        self.closed = False

    def matches(self, obj):
        if obj is None:
            return False
        md = obj.get("metadata", {})
        if self.namespace and md.get("namespace") != self.namespace:
            return False
        return SEL.labels_match(self.label_reqs, md.get("labels")) and SEL.fields_match(self.field_reqs, obj)

    def offer(self, ev):
        """Translate a store event into what this watcher sees (selector transitions)."""
        if ev.key != self.key:
            return
        new_ok = self.matches(ev.obj)
        if ev.type == "ADDED":
            if new_ok:
                self.queue.append(("ADDED", ev.obj))
        elif ev.type == "MODIFIED":
            old_ok = self.matches(ev.prev)
            if new_ok and old_ok:
                self.queue.append(("MODIFIED", ev.obj))
            elif new_ok:
                self.queue.append(("ADDED", ev.obj))
            elif old_ok:
                self.queue.append(("DELETED", ev.obj))
        elif ev.type == "DELETED":
            if new_ok:
                self.queue.append(("DELETED", ev.obj))


def _strip_meta(o):
    """The object without metadata (and status when wanted): what generation tracks."""
    return {k: v for k, v in o.items() if k not in ("metadata", "apiVersion", "kind")}


class Store:
    def __init__(self, watch_history=1000, ca_pem=""):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 1
        self.data = collections.defaultdict(dict)  # storage key -> {(ns, name): obj}
        self.uids = {}                              # uid -> (storage key, ns, name)
        self.history = collections.deque()
        self.history_limit = watch_history
        self.compacted = 0                          # events up to this rv are gone
        self.watchers = set()
        self.ca_pem = ca_pem
        self.next_ip = 10
        self.sa_tokens = {}                         # token -> (user, uid, groups)
        self._defs_cache = None
        with self.lock:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self._bootstrap_namespace(ns)
            svc = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "kubernetes", "namespace": "default",
                                "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "type": "ClusterIP",
                            "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                            "internalTrafficPolicy": "Cluster",
                            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
                   "status": {"loadBalancer": {}}}
            self._insert(self.rdef("", "v1", "services"), svc)

    # ---- resource definitions ----

    def rdefs(self):
        """All served ResourceDefs: built-ins plus every served version of every established CRD."""
        with self.lock:
            if self._defs_cache is None:
                out = list(R.BUILTINS)
                for crd in sorted(self.data[CRD_KEY].values(), key=lambda c: c["metadata"]["name"]):
                    if not _established(crd):
                        continue
                    out.extend(crd_rdefs(crd))
                self._defs_cache = out
            return self._defs_cache

    def rdef(self, group, version, plural):
        for d in self.rdefs():
            if d.group == group and d.version == version and d.plural == plural:
                return d
        return None

    def rdef_for_kind(self, api_version, kind):
        g, _, v = api_version.rpartition("/")
        for d in self.rdefs():
            if d.group == g and d.version == v and d.kind == kind:
                return d
        return None

    # ---- low-level storage ----

    def _next_rv(self):
        self.rv += 1
        return self.rv

    def _emit(self, key, type_, obj, prev):
        ev = Event(int(obj["metadata"]["resourceVersion"]), key, type_, obj, prev)
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            old = self.history.popleft()
            self.compacted = old.rv
        for w in list(self.watchers):
            w.offer(ev)
        self.cond.notify_all()

    def _insert(self, rdef, obj, type_=None):
        """Store obj (a fresh dict) with a new resourceVersion; emit ADDED or MODIFIED."""
        md = obj["metadata"]
        key = rdef.storage
        k = (md.get("namespace", ""), md["name"])
        prev = self.data[key].get(k)
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", now())
        md["resourceVersion"] = str(self._next_rv())
        self.data[key][k] = obj
        self.uids[md["uid"]] = (key, k[0], k[1])
        if key == CRD_KEY:
            self._defs_cache = None
        self._emit(key, type_ or ("MODIFIED" if prev is not None else "ADDED"), obj, prev)
        return obj

    def _remove(self, key, obj):
        md = obj["metadata"]
        k = (md.get("namespace", ""), md["name"])
        if self.data[key].get(k) is not obj:
            return
        del self.data[key][k]
        self.uids.pop(md.get("uid"), None)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._next_rv())
        if key == CRD_KEY:
            self._defs_cache = None
        self._emit(key, "DELETED", gone, obj)
        self._after_remove(key, obj)

    def compact(self):
        with self.lock:
            self.history.clear()
            self.compacted = self.rv
            return self.rv

    def _bootstrap_namespace(self, name):
        ns = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
              "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        self._insert(R.builtin("", "namespaces"), ns)
        self._namespace_created(name)

    def _namespace_created(self, name):
        """What the service account and root CA controllers do for a new namespace."""
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}
        if (name, "default") not in self.data[("", "serviceaccounts")]:
            self._insert(self.rdef("", "v1", "serviceaccounts"), sa)
        if (name, "kube-root-ca.crt") not in self.data[("", "configmaps")]:
            cm = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "kube-root-ca.crt", "namespace": name,
                               "annotations": {"kubernetes.io/description":
                                               "Contains a CA bundle that can be used to verify the "
                                               "kube-apiserver when using internal endpoints such as the "
                                               "internal service IP or kubernetes.default.svc. No other "
                                               "usage is guaranteed across distributions of Kubernetes "
                                               "clusters."}},
                  "data": {"ca.crt": self.ca_pem}}
            self._insert(self.rdef("", "v1", "configmaps"), cm)

    # ---- views ----

    def view(self, rdef, obj, in_list=False):
        """A copy of a stored object as this resource/version presents it."""
        o = copy.deepcopy(obj)
        if rdef.to_view:
            o = rdef.to_view(o)
        if rdef.crd is not None:
            o["apiVersion"] = rdef.api_version
            sch = rdef.schema
            if sch:
                S.default(sch, o)
        elif in_list:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        else:
            o["kind"] = rdef.kind
            o["apiVersion"] = rdef.api_version
        return o

    # ---- reads ----

    def get(self, rdef, ns, name):
        with self.lock:
            obj = self.data[rdef.storage].get((ns or "", name))
            if obj is None:
                raise E.not_found(rdef.plural, rdef.group, name)
            return self.view(rdef, obj)

    def _get_raw(self, rdef, ns, name):
        obj = self.data[rdef.storage].get((ns or "", name))
        if obj is None:
            raise E.not_found(rdef.plural, rdef.group, name)
        return obj

    def list(self, rdef, ns, label_sel=None, field_sel=None, limit=0, cont=None):
        lreqs = SEL.parse_label_selector(label_sel)
        freqs = SEL.parse_field_selector(field_sel, rdef.group, rdef.plural, _selectable(rdef))
        start = None
        if cont:
            try:
                start = json.loads(base64.b64decode(cont))["start"]
            except (ValueError, KeyError, TypeError):
                raise E.bad_request("continue key is not valid: illegal base64 data")
        with self.lock:
            items = []
            for k in sorted(self.data[rdef.storage]):
                if ns and k[0] != ns:
                    continue
                if start is not None and list(k) <= start:
                    continue
                o = self.data[rdef.storage][k]
                v = rdef.to_view(copy.deepcopy(o)) if rdef.to_view else o
                if not SEL.labels_match(lreqs, o["metadata"].get("labels")) or not SEL.fields_match(freqs, v):
                    continue
                items.append((k, o))
            meta = {"resourceVersion": str(self.rv)}
            if limit and len(items) > limit:
                rest = len(items) - limit
                items = items[:limit]
                meta["continue"] = base64.b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": self.rv, "start": list(items[-1][0])}).encode()).decode()
                meta["remainingItemCount"] = rest
            return meta, [self.view(rdef, o, in_list=True) for _, o in items]

    # ---- watch ----

    def watch(self, rdef, ns, label_sel, field_sel, rv, send_initial=None):
        w = Watcher(rdef, ns, SEL.parse_label_selector(label_sel),
                    SEL.parse_field_selector(field_sel, rdef.group, rdef.plural, _selectable(rdef)))
        with self.lock:
            fresh = rv in (None, "", "0")
            initial = fresh if send_initial is None else send_initial
            start = self.rv
            if not fresh:
                try:
                    start = int(rv)
                except ValueError:
                    raise E.bad_request(f'invalid resource version: strconv.ParseUint: parsing "{rv}": '
                                        f'invalid syntax')
                if start < self.compacted:
                    w.expired = E.gone(f"too old resource version: {start} ({self.compacted + 1})")
                    return w
            if initial:
                for k in sorted(self.data[rdef.storage]):
                    o = self.data[rdef.storage][k]
                    if w.matches(o):
                        w.queue.append(("ADDED", o))
            else:
                for ev in self.history:
                    if ev.rv > start:
                        w.offer(ev)
            w.expired = None
            w.initial_rv = self.rv
            self.watchers.add(w)
            return w

    def stop_watch(self, w):
        with self.lock:
            w.closed = True
            self.watchers.discard(w)
            self.cond.notify_all()

    # ---- helpers for writes ----

    def _check_namespace(self, rdef, ns, name):
        if not rdef.namespaced:
            return
        nso = self.data[NS_KEY].get(("", ns))
        if nso is None:
            raise E.not_found("namespaces", "", ns)
        if nso["metadata"].get("deletionTimestamp"):
            err = E.forbidden(rdef.plural, rdef.group, name,
                              f"unable to create new content in namespace {ns} because it is being terminated")
            err.details["causes"] = [{"reason": "NamespaceTerminating",
                                      "message": f"namespace {ns} is being terminated",
                                      "field": "metadata.namespace"}]
            raise err

    def _decode(self, rdef, body, ns, validation, warnings):
        """Decode a request body into an object of this resource: kind and
        apiVersion checks, unknown fields (fieldValidation), namespace."""
        if not isinstance(body, dict):
            jtype = {list: "array", str: "string", bool: "bool", int: "number", float: "number"}.get(
                type(body), "null")
            raise E.bad_request(f"couldn't get version/kind; json parse error: json: cannot unmarshal {jtype} "
                                f"into Go value of type struct {{ APIVersion string; Kind string }}")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, rdef.api_version):
            raise E.bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                                f"expected API version ({rdef.api_version})")
        if obj.get("kind") not in (None, "", rdef.kind):
            raise E.bad_request(f"the kind in the data ({obj.get('kind')}) does not match the expected kind "
                                f"({rdef.kind})")
        obj["apiVersion"], obj["kind"] = rdef.api_version, rdef.kind
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        if not isinstance(md, dict):
            raise E.bad_request(f"{rdef.kind} in version \"{rdef.version}\" cannot be handled as a "
                                f"{rdef.kind}: json: cannot unmarshal {type(md).__name__} into Go struct field "
                                f"{rdef.kind}.metadata of type v1.ObjectMeta")
        if rdef.crd is None:
            bad = fields.type_error(rdef.group, rdef.plural, rdef.kind, obj)
            if bad:
                raise E.bad_request(f'{rdef.kind} in version "{rdef.version}" cannot be handled as a '
                                    f'{rdef.kind}: {bad}')
        unknown = []
        if rdef.crd is not None:
            S.prune(rdef.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    obj, "", unknown, root=True)
        elif fields.prune_unknown(rdef.group, rdef.plural, obj, unknown):
            pass
        else:
            if rdef.top_fields is not None:
                for k in list(obj):
                    if k not in rdef.top_fields:
                        unknown.append(k)
                        del obj[k]
            for k in list(md):
                if k not in S.OBJECT_META_FIELDS:
                    unknown.append(f"metadata.{k}")
                    del md[k]
        if unknown:
            if validation == "Strict":
                text = ", ".join(f'unknown field "{u}"' for u in unknown)
                raise E.bad_request(f'{rdef.kind} in version "{rdef.version}" cannot be handled as a '
                                    f'{rdef.kind}: strict decoding error: {text}')
            if validation != "Ignore":
                warnings.extend(f'unknown field "{u}"' for u in unknown)
        if rdef.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise E.bad_request("the namespace of the provided object does not match the namespace sent "
                                    "on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if rdef.storage == ("", "events") and rdef.from_view:
            obj = rdef.from_view(obj)
            obj["metadata"] = md
        if rdef.group == "" and rdef.plural == "secrets":
            R.decode_secret(obj)
        return obj

    def _validate(self, rdef, obj, old):
        md = obj["metadata"]
        errs = []
        if md.get("name"):
            errs += R.validate_name(rdef, md["name"])
        errs += R.validate_meta(obj)
        if rdef.crd is not None:
            body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            sch = rdef.schema or {}
            sub = dict(sch)
            sub["properties"] = {k: v for k, v in (sch.get("properties") or {}).items()
                                 if k not in ("apiVersion", "kind", "metadata")}
            req = [r for r in sch.get("required") or [] if r not in ("apiVersion", "kind", "metadata")]
            if req:
                sub["required"] = req
            else:
                sub.pop("required", None)
            errs += S.validate(sub, body, "")
            # The schema may restrict metadata.name and metadata.generateName (and nothing else there).
            mprops = ((sch.get("properties") or {}).get("metadata") or {}).get("properties") or {}
            for f in ("name", "generateName"):
                if f in mprops and md.get(f) is not None:
                    errs += S.validate(mprops[f], md[f], f"metadata.{f}")
        elif rdef.storage == CRD_KEY:
            errs += S.validate_crd(obj, old)
        else:
            errs += R.validate(rdef, obj, old)
        if errs:
            raise E.invalid_object(rdef.kind, rdef.group, md.get("name", ""), errs)

    def _default(self, rdef, obj):
        if rdef.crd is not None:
            if rdef.schema:
                S.default(rdef.schema, obj)
        else:
            R.apply_defaults(rdef, obj)

    def _bump_generation(self, rdef, new, old):
        if not _has_generation(rdef):
            return
        drop_status = rdef.has_status()
        a = _strip_meta(new)
        b = _strip_meta(old)
        if drop_status:
            a.pop("status", None)
            b.pop("status", None)
        gen = old["metadata"].get("generation", 1)
        new["metadata"]["generation"] = gen + 1 if a != b else gen

    # ---- create ----

    def create(self, rdef, ns, body, validation="Strict", dry_run=False, warnings=None):
        warnings = [] if warnings is None else warnings
        with self.lock:
            if rdef.crd is not None and self._crd_terminating(rdef):
                raise E.method_not_allowed("create not allowed while custom resource definition is terminating")
            obj = self._decode(rdef, body, ns, validation, warnings)
            md = obj["metadata"]
            if md.get("resourceVersion"):
                raise E.internal("resourceVersion should not be set on objects to be created")
            if not md.get("name"):
                if md.get("generateName"):
                    for _ in range(20):
                        cand = md["generateName"] + "".join(random.choice(NAME_CHARS) for _ in range(5))
                        if (ns if rdef.namespaced else "", cand) not in self.data[rdef.storage]:
                            break
                    md["name"] = cand
                else:
                    raise E.invalid_object(rdef.kind, rdef.group, "", [
                        E.required("metadata.name", "name or generateName is required")])
            name = md["name"]
            self._check_namespace(rdef, ns, name)
            if (md.get("namespace", ""), name) in self.data[rdef.storage]:
                raise E.already_exists(rdef.plural, rdef.group, name)
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                      "managedFields"):
                md.pop(k, None)
            if rdef.has_status():
                if rdef.crd is not None:
                    obj.pop("status", None)
                else:
                    R.initial_status(rdef, obj)
            self._default(rdef, obj)
            if _has_generation(rdef):
                md["generation"] = 1
            else:
                md.pop("generation", None)
            self._validate(rdef, obj, None)
            self._admit(rdef, obj)
            if rdef.storage == CRD_KEY:
                md["finalizers"] = sorted(set((md.get("finalizers") or []) + [CRD_FINALIZER]))
            if rdef.group == "" and rdef.plural == "services":
                self._allocate_ip(obj)
            if dry_run:
                md["uid"] = str(uuid.uuid4())
                md["creationTimestamp"] = now()
                return self.view(rdef, obj)
            stored = self._insert(rdef, obj)
            if rdef.storage == NS_KEY:
                self._namespace_created(name)
            if rdef.storage == CRD_KEY:
                stored = self._establish(stored)
            self._gc_dangling(rdef, stored)
            cur = self.data[rdef.storage].get((md.get("namespace", ""), name), stored)
            return self.view(rdef, cur)

    def _admit(self, rdef, obj):
        """The admission plugins a plain cluster runs that an operator would notice."""
        if rdef.group == "" and rdef.plural == "pods":
            sa = obj["spec"].get("serviceAccountName", "default")
            ns = obj["metadata"]["namespace"]
            if (ns, sa) not in self.data[("", "serviceaccounts")]:
                raise E.forbidden("pods", "", obj["metadata"]["name"],
                                  f'error looking up service account {ns}/{sa}: serviceaccount "{sa}" not found')

    def _allocate_ip(self, obj):
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP"):
            used = {s.get("spec", {}).get("clusterIP") for s in self.data[("", "services")].values()}
            while True:
                ip = f"10.96.{self.next_ip // 256}.{self.next_ip % 256}"
                self.next_ip += 1
                if ip not in used:
                    break
            spec["clusterIP"] = ip
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    p["nodePort"] = 30000 + random.randrange(2767)
            spec.setdefault("externalTrafficPolicy", "Cluster")

    # ---- update ----

    def update(self, rdef, ns, name, body, subresource=None, validation="Strict", dry_run=False, warnings=None):
        warnings = [] if warnings is None else warnings
        with self.lock:
            old = self._get_raw(rdef, ns, name)
            if subresource == "scale":
                return self._update_scale(rdef, old, body, dry_run)
            obj = self._decode(rdef, body, ns if rdef.namespaced else "", validation, warnings)
            md = obj["metadata"]
            if md.get("name", name) != name:
                raise E.bad_request(f"the name of the object ({md.get('name')}) does not match the name on the "
                                    f"URL ({name})")
            md["name"] = name
            return self._update_locked(rdef, old, obj, subresource, dry_run)

    def _update_locked(self, rdef, old, obj, subresource, dry_run):
        md = obj["metadata"]
        omd = old["metadata"]
        name = omd["name"]
        rv = md.get("resourceVersion")
        if not rv and (rdef.crd is not None or rdef.storage == CRD_KEY):
            # Custom resources and CRDs do not allow unconditional updates (AllowUnconditionalUpdate false).
            raise E.invalid_object(rdef.plural, rdef.group, name, [E.invalid(
                "metadata.resourceVersion", E.Raw("0x0"), "must be specified for an update")])
        if rv and rv != omd["resourceVersion"]:
            raise E.conflict(rdef.plural, rdef.group, name, E.MODIFIED)
        if md.get("uid") and md["uid"] != omd["uid"]:
            raise E.conflict(rdef.plural, rdef.group, name,
                             f"Precondition failed: UID in precondition: {md['uid']}, UID in object meta: "
                             f"{omd['uid']}")
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            new["apiVersion"], new["kind"] = obj["apiVersion"], obj["kind"]
        else:
            new = obj
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation"):
                if k in omd:
                    md[k] = omd[k]
                else:
                    md.pop(k, None)
            md.pop("managedFields", None)
            if rdef.has_status():
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if rdef.group == "" and rdef.plural == "services":
                ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
                for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                    if k in ospec and not nspec.get(k):
                        nspec[k] = copy.deepcopy(ospec[k])
            if omd.get("deletionTimestamp"):
                added = [f for f in md.get("finalizers") or [] if f not in (omd.get("finalizers") or [])]
                if added:
                    raise E.invalid_object(rdef.kind, rdef.group, name, [E.forbidden_field(
                        "metadata.finalizers", "no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {E.go_value(added)}")])
        self._default(rdef, new)
        new["metadata"]["resourceVersion"] = omd["resourceVersion"]
        self._validate(rdef, new, old)
        self._bump_generation(rdef, new, old)
        if subresource is None and rdef.storage == CRD_KEY:
            self._crd_status(new)
        if rdef.group == "" and rdef.plural == "services":
            self._allocate_ip(new)
        if new == old:
            return self.view(rdef, old)
        if dry_run:
            return self.view(rdef, new)
        nmd = new["metadata"]
        if nmd.get("deletionTimestamp") and not nmd.get("finalizers") and not (
                rdef.group == "" and rdef.plural == "pods" and nmd.get("deletionGracePeriodSeconds")):
            stored = self._insert(rdef, new)
            self._remove(rdef.storage, stored)
            return self.view(rdef, stored)
        stored = self._insert(rdef, new)
        if rdef.storage == CRD_KEY:
            self._defs_cache = None
        self._gc_dangling(rdef, stored)
        return self.view(rdef, stored)

    # ---- patch ----

    def patch(self, rdef, ns, name, ctype, body, subresource=None, validation="Strict", dry_run=False,
              warnings=None):
        warnings = [] if warnings is None else warnings
        with self.lock:
            old = self._get_raw(rdef, ns, name)
            if subresource == "scale":
                cur = self._scale_of(rdef, old)
                new = P.apply(cur, body, ctype, "Scale", False)
                return self._update_scale(rdef, old, new, dry_run)
            cur = self.view(rdef, old)
            new = P.apply(cur, body, ctype, rdef.kind, rdef.crd is not None)
            if not isinstance(new, dict):
                raise E.bad_request("the patch did not produce an object")
            obj = self._decode(rdef, new, ns if rdef.namespaced else "", validation, warnings)
            md = obj["metadata"]
            if md.get("name") != name:
                raise E.bad_request(f"the name of the object ({md.get('name')}) does not match the name on the "
                                    f"URL ({name})")
            if rdef.namespaced and md.get("namespace") != ns:
                raise E.bad_request("the namespace of the provided object does not match the namespace sent "
                                    "on the request")
            return self._update_locked(rdef, old, obj, subresource, dry_run)

    def apply_patch(self, rdef, ns, name, body, validation="Strict", dry_run=False, warnings=None):
        """application/apply-patch+yaml, approximated: create if absent, otherwise merge the applied
        configuration into the object (no field ownership)."""
        try:
            cfg = json.loads(body)
        except ValueError:
            raise E.bad_request("error decoding YAML: only JSON-compatible YAML is accepted by this test server")
        with self.lock:
            if (ns if rdef.namespaced else "", name) not in self.data[rdef.storage]:
                cfg.setdefault("metadata", {})["name"] = name
                return self.create(rdef, ns, cfg, validation, dry_run, warnings), True
            ctype = ("application/merge-patch+json" if rdef.crd is not None
                     else "application/strategic-merge-patch+json")
            return self.patch(rdef, ns, name, ctype, json.dumps(cfg).encode(), None, validation, dry_run,
                              warnings), False

    # ---- pods/binding: how a scheduler puts a pod on a node ----

    def bind(self, rdef, ns, name, binding):
        target = (binding or {}).get("target") or {}
        if not target.get("name"):
            raise E.invalid_object("Binding", "", name, [E.required("target.name")])
        with self.lock:
            pod = self._get_raw(rdef, ns, name)
            if pod["metadata"].get("deletionTimestamp"):
                raise E.conflict(rdef.plural, "", name, "pod is being deleted, cannot be assigned to a host")
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                raise E.conflict(rdef.plural, "", name, f'pod {name} is already assigned to node "{node}"')
            new = copy.deepcopy(pod)
            new["spec"]["nodeName"] = target["name"]
            _set_condition(new, "PodScheduled", "True", None, None)
            for c in new["status"]["conditions"]:
                if c["type"] == "PodScheduled":
                    c.pop("reason", None)
                    c.pop("message", None)
                    c["lastProbeTime"] = None
            self._insert(rdef, new)

    # ---- scale ----

    def _scale_paths(self, rdef):
        if rdef.crd is not None:
            sc = (rdef.crd_version.get("subresources") or {}).get("scale") or {}
            return (sc.get("specReplicasPath", ".spec.replicas"), sc.get("statusReplicasPath", ".status.replicas"),
                    sc.get("labelSelectorPath"))
        return ".spec.replicas", ".status.replicas", None

    def _scale_of(self, rdef, obj):
        from . import tables
        sp, st, lp = self._scale_paths(rdef)
        spec_r = tables.jsonpath(obj, sp)
        stat_r = tables.jsonpath(obj, st)
        md = obj["metadata"]
        out = {"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md["uid"],
                            "resourceVersion": md["resourceVersion"],
                            "creationTimestamp": md["creationTimestamp"]},
               "spec": {"replicas": spec_r[0] if spec_r else 0},
               "status": {"replicas": stat_r[0] if stat_r else 0}}
        if rdef.crd is None:
            out["status"]["selector"] = SEL.selector_string((obj.get("spec") or {}).get("selector"))
        elif lp:
            sel = tables.jsonpath(obj, lp)
            if sel:
                out["status"]["selector"] = sel[0]
        if not out["metadata"].get("namespace"):
            out["metadata"].pop("namespace")
        return out

    def get_scale(self, rdef, ns, name):
        with self.lock:
            return self._scale_of(rdef, self._get_raw(rdef, ns, name))

    def _update_scale(self, rdef, old, scale, dry_run):
        if not isinstance(scale, dict):
            raise E.bad_request("invalid Scale")
        md = scale.get("metadata") or {}
        if md.get("resourceVersion") and md["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise E.conflict(rdef.plural, rdef.group, old["metadata"]["name"], E.MODIFIED)
        r = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(r, int) or r < 0:
            raise E.invalid_object("Scale", "autoscaling", old["metadata"]["name"],
                                   [E.invalid("spec.replicas", r, "must be greater than or equal to 0")])
        new = copy.deepcopy(old)
        sp = self._scale_paths(rdef)[0].lstrip(".").split(".")
        cur = new
        for p in sp[:-1]:
            cur = cur.setdefault(p, {})
        cur[sp[-1]] = r
        self._bump_generation(rdef, new, old)
        if new == old or dry_run:
            return self._scale_of(rdef, new)
        stored = self._insert(rdef, new)
        return self._scale_of(rdef, stored)

    # ---- delete ----

    def delete(self, rdef, ns, name, options=None, dry_run=False):
        options = options or {}
        with self.lock:
            obj = self._get_raw(rdef, ns, name)
            md = obj["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != md["uid"]:
                raise E.conflict(rdef.plural, rdef.group, name,
                                 f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                                 f"{md['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise E.conflict(rdef.plural, rdef.group, name,
                                 f"Precondition failed: ResourceVersion in precondition: "
                                 f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                 f"{md['resourceVersion']}")
            if rdef.storage == NS_KEY and name in ("default", "kube-system", "kube-public"):
                raise E.forbidden("namespaces", "", name, "this namespace may not be deleted")
            is_pod = rdef.group == "" and rdef.plural == "pods"
            grace = options.get("gracePeriodSeconds")
            if md.get("deletionTimestamp"):
                if is_pod and grace == 0 and not md.get("finalizers"):
                    if not dry_run:
                        self._remove(rdef.storage, obj)
                    return self.view(rdef, obj)
                return self.view(rdef, obj)
            prop = options.get("propagationPolicy")
            if options.get("orphanDependents") is True:
                prop = "Orphan"
            finalizers = list(md.get("finalizers") or [])
            if prop == "Orphan" and not finalizers and self._dependents(md["uid"]):
                finalizers.append("orphan")
            if prop == "Foreground" and self._dependents(md["uid"]):
                finalizers.append("foregroundDeletion")
            graceful = False
            if is_pod:
                if grace is None:
                    grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                phase = (obj.get("status") or {}).get("phase")
                graceful = bool((obj.get("spec") or {}).get("nodeName")) and grace > 0 and \
                    phase not in ("Succeeded", "Failed")
            if rdef.storage in (NS_KEY, CRD_KEY):
                new = copy.deepcopy(obj)
                nmd = new["metadata"]
                nmd["deletionTimestamp"] = now()
                nmd["deletionGracePeriodSeconds"] = 0
                if rdef.storage == NS_KEY:
                    new.setdefault("status", {})["phase"] = "Terminating"
                else:
                    _set_condition(new, "Terminating", "True", "InstanceDeletionInProgress",
                                   "CustomResource deletion is in progress")
                if dry_run:
                    return self.view(rdef, new)
                stored = self._insert(rdef, new)
                if rdef.storage == NS_KEY:
                    self._reconcile_namespace(name)
                else:
                    self._reconcile_crd(stored)
                cur = self.data[rdef.storage].get(("", name))
                return self.view(rdef, cur if cur is not None else stored)
            if finalizers or graceful:
                new = copy.deepcopy(obj)
                nmd = new["metadata"]
                nmd["finalizers"] = finalizers
                if not finalizers:
                    del nmd["finalizers"]
                nmd["deletionTimestamp"] = _later(grace) if graceful else now()
                nmd["deletionGracePeriodSeconds"] = grace if graceful else 0
                if nmd.get("generation"):
                    nmd["generation"] += 1
                if dry_run:
                    return self.view(rdef, new)
                stored = self._insert(rdef, new)
                if "orphan" in finalizers:
                    self._orphan(stored)
                if "foregroundDeletion" in finalizers:
                    self._foreground(stored)
                cur = self.data[rdef.storage].get((md.get("namespace", ""), name))
                return self.view(rdef, cur if cur is not None else stored)
            if not dry_run:
                self._remove(rdef.storage, obj)
            return self.view(rdef, obj)

    def delete_collection(self, rdef, ns, label_sel, field_sel, options=None, dry_run=False):
        with self.lock:
            meta, items = self.list(rdef, ns, label_sel, field_sel)
            out = []
            for o in items:
                try:
                    out.append(self.delete(rdef, o["metadata"].get("namespace", ""), o["metadata"]["name"],
                                           options, dry_run))
                except E.APIError as e:
                    if e.code != 404:
                        raise
            return meta, out

    # ---- controllers that live inside the API server here ----

    def _dependents(self, uid):
        out = []
        for key, objs in self.data.items():
            for k, o in objs.items():
                for ref in o["metadata"].get("ownerReferences") or []:
                    if ref.get("uid") == uid:
                        out.append((key, o))
                        break
        return out

    def _rdef_for_key(self, key):
        for d in self.rdefs():
            if d.storage == key and d.to_view is None:
                return d
        return None

    def _after_remove(self, key, obj):
        """Garbage collection (background propagation) and the namespace and CRD cleanups."""
        uid = obj["metadata"].get("uid")
        for dkey, dep in self._dependents(uid):
            cur = self.data[dkey].get((dep["metadata"].get("namespace", ""), dep["metadata"]["name"]))
            if cur is None:
                continue
            self._collect(dkey, cur)
        ns = obj["metadata"].get("namespace")
        if ns:
            nso = self.data[NS_KEY].get(("", ns))
            if nso is not None and nso["metadata"].get("deletionTimestamp"):
                self._reconcile_namespace(ns)
        if key[1] != "customresourcedefinitions":
            for crd in list(self.data[CRD_KEY].values()):
                spec = crd.get("spec") or {}
                if (spec.get("group"), (spec.get("names") or {}).get("plural")) == key and \
                        crd["metadata"].get("deletionTimestamp"):
                    self._reconcile_crd(crd)
        for dkey in list(self.data):
            for k, o in list(self.data[dkey].items()):
                if "foregroundDeletion" in (o["metadata"].get("finalizers") or []):
                    self._foreground(o, dkey)

    def _collect(self, key, dep):
        """An owner of dep is gone: delete dep if it has no owner left, else drop the dangling reference."""
        refs = dep["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if r.get("uid") in self.uids]
        rdef = self._rdef_for_key(key)
        if rdef is None:
            return
        md = dep["metadata"]
        if alive:
            if len(alive) != len(refs):
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = alive
                self._insert(rdef, new)
            return
        try:
            self.delete(rdef, md.get("namespace", ""), md["name"], {"propagationPolicy": "Background"})
        except E.APIError:
            pass

    def _gc_dangling(self, rdef, obj):
        refs = obj["metadata"].get("ownerReferences") or []
        if refs and not any(r.get("uid") in self.uids for r in refs):
            self._collect(rdef.storage, obj)

    def _orphan(self, owner):
        uid = owner["metadata"]["uid"]
        for dkey, dep in self._dependents(uid):
            rdef = self._rdef_for_key(dkey)
            new = copy.deepcopy(dep)
            new["metadata"]["ownerReferences"] = [r for r in new["metadata"]["ownerReferences"]
                                                  if r.get("uid") != uid]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._insert(rdef, new)
        self._drop_finalizer(owner, "orphan")

    def _foreground(self, owner, key=None):
        uid = owner["metadata"]["uid"]
        deps = self._dependents(uid)
        for dkey, dep in deps:
            rdef = self._rdef_for_key(dkey)
            if rdef is not None and not dep["metadata"].get("deletionTimestamp"):
                self._delete_quietly(rdef, dep["metadata"].get("namespace", ""), dep["metadata"]["name"],
                                     {"propagationPolicy": "Foreground"})
        if not self._dependents(uid):
            self._drop_finalizer(owner, "foregroundDeletion")

    def _drop_finalizer(self, obj, fin):
        md = obj["metadata"]
        for key, objs in self.data.items():
            cur = objs.get((md.get("namespace", ""), md["name"]))
            if cur is not None and cur["metadata"].get("uid") == md["uid"]:
                rdef = self._rdef_for_key(key)
                new = copy.deepcopy(cur)
                new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != fin]
                if not new["metadata"]["finalizers"]:
                    del new["metadata"]["finalizers"]
                self._update_locked(rdef, cur, new, None, False)
                return

    def _reconcile_namespace(self, ns):
        """The namespace controller: delete the namespace's content, then the namespace."""
        nso = self.data[NS_KEY].get(("", ns))
        if nso is None or getattr(self, "_ns_busy", None) == ns:
            return
        self._ns_busy = ns
        try:
            left = False
            for key in list(self.data):
                if key == NS_KEY:
                    continue
                rdef = self._rdef_for_key(key)
                if rdef is None or not rdef.namespaced:
                    continue
                for k, o in list(self.data[key].items()):
                    if k[0] != ns or self.data[key].get(k) is not o:
                        continue  # elsewhere, or already collected along with its owner
                    if not o["metadata"].get("deletionTimestamp") or (
                            rdef.plural == "pods" and not o["metadata"].get("finalizers")):
                        self._delete_quietly(rdef, ns, k[1], {"gracePeriodSeconds": 0})
            left = any(k[0] == ns for key in self.data if key != NS_KEY for k in self.data[key]
                       if (self._rdef_for_key(key) or R.builtin("", "namespaces")).namespaced)
            nso = self.data[NS_KEY].get(("", ns))
            if not left and nso is not None:
                new = copy.deepcopy(nso)
                new.setdefault("spec", {})["finalizers"] = []
                stored = self._insert(R.builtin("", "namespaces"), new)
                if not stored["metadata"].get("finalizers"):
                    self._remove(NS_KEY, stored)
        finally:
            self._ns_busy = None

    def _delete_quietly(self, rdef, ns, name, options=None):
        """A delete by a built-in controller: an object already gone is fine."""
        try:
            self.delete(rdef, ns, name, options)
        except E.APIError as e:
            if e.code != 404:
                raise

    def _crd_terminating(self, rdef):
        crd = self.data[CRD_KEY].get(("", rdef.crd["metadata"]["name"]))
        return crd is not None and bool(crd["metadata"].get("deletionTimestamp"))

    def _reconcile_crd(self, crd):
        spec = crd.get("spec") or {}
        key = (spec.get("group"), (spec.get("names") or {}).get("plural"))
        defs = [d for d in crd_rdefs(crd)]
        if not defs:
            return
        rdef = defs[0]
        for k, o in list(self.data[key].items()):
            if self.data[key].get(k) is o and not o["metadata"].get("deletionTimestamp"):
                self._delete_quietly(rdef, k[0], k[1])
        if not self.data[key]:
            cur = self.data[CRD_KEY].get(("", crd["metadata"]["name"]))
            if cur is not None:
                self._drop_finalizer(cur, CRD_FINALIZER)

    def _crd_status(self, crd):
        """What the CRD establishing and naming controllers write."""
        spec = crd.get("spec") or {}
        st = crd.setdefault("status", {})
        names = copy.deepcopy(spec.get("names") or {})
        st["acceptedNames"] = names
        stored = st.setdefault("storedVersions", [])
        for v in spec.get("versions") or []:
            if v.get("storage") and v.get("name") not in stored:
                stored.append(v["name"])
        _set_condition(crd, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
        _set_condition(crd, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")

    def _establish(self, crd):
        new = copy.deepcopy(crd)
        self._crd_status(new)
        return self._insert(R.builtin("apiextensions.k8s.io", "customresourcedefinitions"), new)

    # ---- service account tokens ----

    def mint_token(self, ns, name, audiences=None, expiration=3600):
        with self.lock:
            sa = self.data[("", "serviceaccounts")].get((ns, name))
            if sa is None:
                raise E.not_found("serviceaccounts", "", name)
            tok = "sa-" + uuid.uuid4().hex
            self.sa_tokens[tok] = (f"system:serviceaccount:{ns}:{name}", sa["metadata"]["uid"],
                                   ["system:serviceaccounts", f"system:serviceaccounts:{ns}"])
            return tok


def _set_condition(obj, type_, status, reason, message):
    conds = obj.setdefault("status", {}).setdefault("conditions", [])
    for c in conds:
        if c.get("type") == type_:
            if c.get("status") != status:
                c["lastTransitionTime"] = now()
            c.update({"status": status, "reason": reason, "message": message})
            return
    conds.append({"type": type_, "status": status, "lastTransitionTime": now(), "reason": reason,
                  "message": message})


def _selectable(rdef):
    """A CRD version's selectableFields, usable in fieldSelector."""
    if rdef.crd is None:
        return ()
    return [f.get("jsonPath", "").lstrip(".") for f in rdef.crd_version.get("selectableFields") or []]


def _established(crd):
    for c in (crd.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Established" and c.get("status") == "True":
            return True
    return False


def _has_generation(rdef):
    return rdef.generation or rdef.crd is not None


def crd_rdefs(crd):
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served"):
            continue
        subs = []
        sr = v.get("subresources") or {}
        if "status" in sr:
            subs.append("status")
        if "scale" in sr:
            subs.append("scale")
        d = R.ResourceDef(spec.get("group", ""), v.get("name", ""), names.get("kind", ""), names.get("plural", ""),
                          namespaced=spec.get("scope") == "Namespaced", singular=names.get("singular"),
                          short_names=names.get("shortNames") or [], categories=names.get("categories") or [],
                          subresources=subs, generation=True, crd=crd)
        d.list_kind = names.get("listKind") or (names.get("kind", "") + "List")
        d.schema = (v.get("schema") or {}).get("openAPIV3Schema")
        d.crd_version = v
        out.append(d)
    return out
