"""Built-in resource kinds: discovery data, defaulting and the validation
that an operator is likely to run into."""

import base64
import binascii
import copy
import re

from . import errors as E

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]


class ResourceDef:
    """One resource at one group/version, as served at one URL."""

    def __init__(self, group, version, kind, plural, namespaced=True, singular=None,
                 short_names=(), categories=(), subresources=(), verbs=None,
                 generation=False, storage=None, crd=None, top_fields=None):
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.singular = singular or kind.lower()
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.subresources = set(subresources)
        self.verbs = verbs or ALL_VERBS
        self.generation = generation
        # Two resources sharing one storage (core and events.k8s.io events)
        # have the same storage key; converters translate between views.
        self.storage = storage or (group, plural)
        self.crd = crd              # the CRD object (dict) for custom resources
        self.top_fields = top_fields  # known top-level fields, for strict decoding
        self.list_kind = kind + "List"
        self.to_view = None         # stored object -> this view
        self.from_view = None       # this view -> stored object

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self):
        return E.qualified(self.plural, self.group)

    def has_status(self):
        return "status" in self.subresources

    def discovery(self):
        out = [{"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                "kind": self.kind, "verbs": self.verbs}]
        if self.short_names:
            out[0]["shortNames"] = self.short_names
        if self.categories:
            out[0]["categories"] = self.categories
        for sub in sorted(self.subresources):
            if sub == "scale":
                out.append({"name": f"{self.plural}/scale", "singularName": "", "namespaced": self.namespaced,
                            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": SUB_VERBS})
            elif sub == "binding":
                out.append({"name": f"{self.plural}/binding", "singularName": "", "namespaced": True,
                            "kind": "Binding", "verbs": ["create"]})
            elif sub == "token":
                out.append({"name": f"{self.plural}/token", "singularName": "", "namespaced": self.namespaced,
                            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                            "verbs": ["create"]})
            else:
                out.append({"name": f"{self.plural}/{sub}", "singularName": "", "namespaced": self.namespaced,
                            "kind": self.kind, "verbs": SUB_VERBS})
        return out


META_FIELDS = ["apiVersion", "kind", "metadata"]


def _builtins():
    R = ResourceDef
    defs = [
        R("", "v1", "Namespace", "namespaces", namespaced=False, short_names=["ns"],
          subresources=["status", "finalize"], verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
          top_fields=META_FIELDS + ["spec", "status"]),
        R("", "v1", "Pod", "pods", short_names=["po"], categories=["all"], subresources=["status", "binding"],
          top_fields=META_FIELDS + ["spec", "status"]),
        R("", "v1", "Service", "services", short_names=["svc"], categories=["all"], subresources=["status"],
          verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
          top_fields=META_FIELDS + ["spec", "status"]),
        R("", "v1", "Secret", "secrets", top_fields=META_FIELDS + ["data", "stringData", "type", "immutable"]),
        R("", "v1", "ConfigMap", "configmaps", short_names=["cm"],
          top_fields=META_FIELDS + ["data", "binaryData", "immutable"]),
        R("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=["pvc"],
          subresources=["status"], top_fields=META_FIELDS + ["spec", "status"]),
        R("", "v1", "ServiceAccount", "serviceaccounts", short_names=["sa"], subresources=["token"],
          top_fields=META_FIELDS + ["secrets", "imagePullSecrets", "automountServiceAccountToken"]),
        R("", "v1", "Event", "events", short_names=["ev"], storage=("", "events"),
          top_fields=None),
        R("", "v1", "Node", "nodes", namespaced=False, short_names=["no"], subresources=["status"],
          top_fields=META_FIELDS + ["spec", "status"]),
        R("", "v1", "Endpoints", "endpoints", short_names=["ep"], top_fields=META_FIELDS + ["subsets"]),
        R("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short_names=["pv"],
          subresources=["status"], top_fields=META_FIELDS + ["spec", "status"]),
        R("apps", "v1", "StatefulSet", "statefulsets", short_names=["sts"], categories=["all"],
          subresources=["status", "scale"], generation=True, top_fields=META_FIELDS + ["spec", "status"]),
        R("apps", "v1", "Deployment", "deployments", short_names=["deploy"], categories=["all"],
          subresources=["status", "scale"], generation=True, top_fields=META_FIELDS + ["spec", "status"]),
        R("batch", "v1", "Job", "jobs", categories=["all"], subresources=["status"], generation=True,
          top_fields=META_FIELDS + ["spec", "status"]),
        R("batch", "v1", "CronJob", "cronjobs", short_names=["cj"], categories=["all"], subresources=["status"],
          generation=True, top_fields=META_FIELDS + ["spec", "status"]),
        R("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=["pdb"],
          subresources=["status"], generation=True, top_fields=META_FIELDS + ["spec", "status"]),
        R("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short_names=["sc"],
          top_fields=META_FIELDS + ["provisioner", "parameters", "reclaimPolicy", "mountOptions",
                                    "allowVolumeExpansion", "volumeBindingMode", "allowedTopologies"]),
        R("coordination.k8s.io", "v1", "Lease", "leases", top_fields=META_FIELDS + ["spec"]),
        R("events.k8s.io", "v1", "Event", "events", short_names=["ev"], storage=("", "events"),
          top_fields=None),
        R("rbac.authorization.k8s.io", "v1", "Role", "roles", top_fields=META_FIELDS + ["rules"]),
        R("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings",
          top_fields=META_FIELDS + ["subjects", "roleRef"]),
        R("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False,
          top_fields=META_FIELDS + ["rules", "aggregationRule"]),
        R("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False,
          top_fields=META_FIELDS + ["subjects", "roleRef"]),
        R("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
          namespaced=False, short_names=["crd", "crds"], categories=["api-extensions"], subresources=["status"],
          generation=True, top_fields=META_FIELDS + ["spec", "status"]),
        R("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
          namespaced=False, verbs=["create"], top_fields=META_FIELDS + ["spec", "status"]),
        R("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
          namespaced=False, verbs=["create"], top_fields=META_FIELDS + ["spec", "status"]),
        R("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
          namespaced=False, verbs=["create"], top_fields=META_FIELDS + ["status"]),
    ]
    ev_new = next(d for d in defs if d.group == "events.k8s.io")
    ev_new.to_view, ev_new.from_view = core_event_to_new, new_event_to_core
    return defs


# Resources answered by the handler without being stored.
VIRTUAL = {("authorization.k8s.io", "selfsubjectaccessreviews"),
           ("authorization.k8s.io", "subjectaccessreviews"),
           ("authentication.k8s.io", "selfsubjectreviews")}



def builtin(group, plural):
    for d in BUILTINS:
        if d.group == group and d.plural == plural and d.to_view is None:
            return d
    raise KeyError((group, plural))


# ---- events.k8s.io/v1 <-> v1 Event (one storage, two views) ----

_EVENT_MAP = [("regarding", "involvedObject"), ("note", "message"),
              ("reportingController", "reportingComponent"), ("deprecatedSource", "source"),
              ("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp"),
              ("deprecatedCount", "count")]
_EVENT_SAME = ["metadata", "related", "reportingInstance", "action", "reason", "type", "eventTime", "series"]


def core_event_to_new(o):
    out = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for k in _EVENT_SAME:
        if k in o:
            out[k] = copy.deepcopy(o[k])
    for new, old in _EVENT_MAP:
        if old in o and o[old] not in (None, "", 0, {}):
            out[new] = copy.deepcopy(o[old])
    return out


def new_event_to_core(o):
    out = {"kind": "Event", "apiVersion": "v1"}
    for k in _EVENT_SAME:
        if k in o:
            out[k] = copy.deepcopy(o[k])
    for new, old in _EVENT_MAP:
        if new in o:
            out[old] = copy.deepcopy(o[new])
    out.setdefault("involvedObject", {})
    out.setdefault("source", {})
    return out


# ---- names ----

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def validate_name(rdef, name):
    """Name format errors for metadata.name (generateName is checked the same way)."""
    if rdef.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            return [E.invalid("metadata.name", name, 'may not contain "/" or "%" or be "." or ".."')]
        return []
    if rdef.plural == "namespaces":
        if not DNS1123_LABEL.match(name) or len(name) > 63:
            return [E.invalid("metadata.name", name, LABEL_MSG)]
        return []
    if rdef.plural == "services":
        if not DNS1035_LABEL.match(name) or len(name) > 63:
            return [E.invalid("metadata.name", name, DNS1035_MSG)]
        return []
    if len(name) > 253:
        return [E.invalid("metadata.name", name, "must be no more than 253 characters")]
    if not DNS1123_SUBDOMAIN.match(name):
        return [E.invalid("metadata.name", name, SUBDOMAIN_MSG)]
    return []


def validate_meta(obj):
    errs = []
    md = obj.get("metadata", {})
    for fld in ("labels", "annotations"):
        v = md.get(fld)
        if v is not None and not isinstance(v, dict):
            errs.append(E.invalid(f"metadata.{fld}", v, "must be a map"))
            continue
        for k, val in (v or {}).items():
            key = k.split("/", 1)[-1]
            if not key or len(key) > 63 or not QUALIFIED_NAME.match(key):
                errs.append(E.invalid(f"metadata.{fld}", k,
                                      "name part must consist of alphanumeric characters, '-', '_' or '.', and "
                                      "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                                      "'my.name',  or '123-abc', regex used for validation is "
                                      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"))
            if fld == "labels":
                if not isinstance(val, str) or len(val) > 63 or not LABEL_VALUE.match(val):
                    errs.append(E.invalid("metadata.labels", val,
                                          "must be no more than 63 characters" if isinstance(val, str)
                                          and len(val) > 63 else LABEL_VALUE_MSG))
            elif not isinstance(val, str):
                errs.append(E.invalid(f"metadata.annotations", val, "must be a string"))
    for i, f in enumerate(md.get("finalizers") or []):
        if not isinstance(f, str) or not f:
            errs.append(E.invalid(f"metadata.finalizers[{i}]", f, "name part must be non-empty"))
    for i, ref in enumerate(md.get("ownerReferences") or []):
        for k in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(k):
                errs.append(E.invalid(f"metadata.ownerReferences.{k}" if k != "uid" else
                                      "metadata.ownerReferences.uid", ref.get(k, ""),
                                      f"{k} must not be empty" if k != "uid" else "uid must not be empty"))
    return errs


# ---- defaulting ----

def _image_pull_policy(image):
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec):
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            if isinstance(c.get("image"), str):
                c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
            for env in c.get("env") or []:
                vf = env.get("valueFrom") if isinstance(env, dict) else None
                if isinstance(vf, dict) and isinstance(vf.get("fieldRef"), dict):
                    vf["fieldRef"].setdefault("apiVersion", "v1")
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        for src in ("secret", "configMap"):
            if isinstance(v.get(src), dict):
                v[src].setdefault("defaultMode", 420)
        if "emptyDir" in v and v["emptyDir"] is None:
            v["emptyDir"] = {}


def default_template(spec):
    tpl = spec.get("template")
    if isinstance(tpl, dict):
        tpl.setdefault("metadata", {})
        default_pod_spec(tpl.get("spec"))


def apply_defaults(rdef, obj):
    """Defaulting on create and update, for built-in kinds (SetDefaults_* subset)."""
    p = rdef.plural
    g = rdef.group
    if g == "" and p == "pods":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif g == "" and p == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        obj.setdefault("status", {"loadBalancer": {}})
    elif g == "" and p == "secrets":
        obj.setdefault("type", "Opaque")
    elif g == "" and p == "persistentvolumeclaims":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
    elif g == "" and p == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif g == "apps" and p == "statefulsets":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        if spec["updateStrategy"].get("type") == "RollingUpdate":
            spec["updateStrategy"].setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("persistentVolumeClaimRetentionPolicy",
                        {"whenDeleted": "Retain", "whenScaled": "Retain"})
        for t in spec.get("volumeClaimTemplates") or []:
            if isinstance(t, dict):
                t.setdefault("apiVersion", "v1")
                t.setdefault("kind", "PersistentVolumeClaim")
                t.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
                t.setdefault("status", {"phase": "Pending"})
        default_template(spec)
    elif g == "apps" and p == "deployments":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        default_template(spec)
    elif g == "apiextensions.k8s.io":
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        spec.setdefault("conversion", {"strategy": "None"})
    elif g == "rbac.authorization.k8s.io" and p in ("rolebindings", "clusterrolebindings"):
        for s in obj.get("subjects") or []:
            if isinstance(s, dict) and s.get("kind") in ("User", "Group"):
                s.setdefault("apiGroup", "rbac.authorization.k8s.io")


def initial_status(rdef, obj):
    """Status a freshly created object carries (status is not client-settable on create)."""
    p = rdef.plural
    if rdef.group == "" and p == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    elif rdef.group == "" and p == "persistentvolumeclaims":
        obj["status"] = {"phase": "Pending"}
    elif rdef.group == "" and p == "namespaces":
        obj["status"] = {"phase": "Active"}
    elif rdef.group == "apps" and p == "statefulsets":
        obj["status"] = {"replicas": 0, "availableReplicas": 0}
    elif rdef.group == "apps" and p == "deployments":
        obj["status"] = {}
    elif rdef.group == "" and p == "services":
        obj["status"] = {"loadBalancer": {}}
    else:
        obj.pop("status", None)


def qos_class(spec):
    """v1.PodQOSClass from the containers' requests and limits."""
    cs = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]
    any_set, guaranteed = False, bool(cs)
    for c in cs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim[r]) != lim[r]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# ---- validation of built-in kinds ----

def _selector_matches(sel, labels):
    if not isinstance(sel, dict):
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in sel.get("matchExpressions") or []:
        key, op, vals = req.get("key"), req.get("operator"), req.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_pod_spec(spec, path):
    errs = []
    if not isinstance(spec, dict):
        return [E.required(path)]
    cs = spec.get("containers")
    if not cs:
        errs.append(E.required(f"{path}.containers"))
    names = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            p = f"{path}.{key}[{i}]"
            if not isinstance(c, dict):
                errs.append(E.invalid(p, c, "must be an object"))
                continue
            n = c.get("name")
            if not n:
                errs.append(E.required(f"{p}.name"))
            elif not DNS1123_LABEL.match(n):
                errs.append(E.invalid(f"{p}.name", n, LABEL_MSG))
            elif n in names:
                errs.append(FieldDup(f"{p}.name", n))
            names.add(n)
            if not c.get("image"):
                errs.append(E.required(f"{p}.image"))
    vols = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name") if isinstance(v, dict) else None
        if not n:
            errs.append(E.required(f"{path}.volumes[{i}].name"))
        elif n in vols:
            errs.append(FieldDup(f"{path}.volumes[{i}].name", n))
        vols.add(n)
    return errs


def FieldDup(field, value):
    return E.FieldError("FieldValueDuplicate", field, value)


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def validate(rdef, obj, old):
    """Field errors for built-in kinds; old is None on create."""
    errs = []
    g, p = rdef.group, rdef.plural
    spec = obj.get("spec")
    if g == "" and p == "pods":
        errs += _validate_pod_spec(spec, "spec")
        if old is not None and isinstance(spec, dict):
            a, b = copy.deepcopy(spec), copy.deepcopy(old.get("spec", {}))
            for s in (a, b):
                for key in ("containers", "initContainers"):
                    for c in s.get(key) or []:
                        c.pop("image", None)
                s.pop("activeDeadlineSeconds", None)
                s.pop("tolerations", None)
                s.pop("terminationGracePeriodSeconds", None)
            if a != b:
                errs.append(E.forbidden_field(
                    "spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)"))
    elif g == "apps" and p in ("statefulsets", "deployments"):
        if not isinstance(spec, dict):
            return [E.required("spec")]
        sel = spec.get("selector")
        tpl = spec.get("template") or {}
        labels = (tpl.get("metadata") or {}).get("labels") or {}
        if not sel:
            errs.append(E.required("spec.selector"))
        elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(E.invalid("spec.selector", sel, "empty selector is invalid for deployment"
                                  if p == "deployments" else "empty selector is invalid for statefulset"))
        elif not _selector_matches(sel, labels):
            errs.append(E.invalid("spec.template.metadata.labels", labels,
                                  "`selector` does not match template `labels`"))
        errs += _validate_pod_spec(tpl.get("spec"), "spec.template.spec")
        r = spec.get("replicas")
        if isinstance(r, int) and r < 0:
            errs.append(E.invalid("spec.replicas", r, "must be greater than or equal to 0"))
        if p == "statefulsets":
            pol = (tpl.get("spec") or {}).get("restartPolicy")
            if pol not in (None, "Always"):
                errs.append(E.not_supported("spec.template.spec.restartPolicy", pol, ["Always"]))
        if old is not None:
            ospec = old.get("spec") or {}
            if p == "statefulsets":
                a = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
                b = {k: v for k, v in ospec.items() if k not in _STS_MUTABLE}
                if a != b:
                    errs.append(E.forbidden_field(
                        "spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                        "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                        "'minReadySeconds' are forbidden"))
            elif spec.get("selector") != ospec.get("selector"):
                errs.append(E.invalid("spec.selector", spec.get("selector"), "field is immutable"))
    elif g == "" and p == "services":
        spec = spec or {}
        headless = spec.get("clusterIP") == "None"
        if not spec.get("ports") and not headless and spec.get("type") != "ExternalName":
            errs.append(E.required("spec.ports"))
        names = set()
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port.get("port"), int):
                errs.append(E.required(f"spec.ports[{i}].port"))
            if len(spec.get("ports")) > 1 and not port.get("name"):
                errs.append(E.required(f"spec.ports[{i}].name"))
            if port.get("name") in names:
                errs.append(FieldDup(f"spec.ports[{i}].name", port.get("name")))
            names.add(port.get("name"))
        if old is not None:
            oip = (old.get("spec") or {}).get("clusterIP")
            if oip and spec.get("clusterIP") != oip:
                errs.append(E.invalid("spec.clusterIPs[0]", spec.get("clusterIPs", []),
                                      "may not change once set"))
    elif g == "" and p in ("secrets", "configmaps"):
        data = obj.get("data") or {}
        size = sum(len(k) + len(v) for k, v in data.items() if isinstance(v, str))
        if p == "secrets":
            size = sum(len(k) + len(v) * 3 // 4 for k, v in data.items() if isinstance(v, str))
            need = {"kubernetes.io/tls": ["tls.crt", "tls.key"],
                    "kubernetes.io/dockerconfigjson": [".dockerconfigjson"],
                    "kubernetes.io/dockercfg": [".dockercfg"],
                    "kubernetes.io/ssh-auth": ["ssh-privatekey"]}.get(obj.get("type"), [])
            for k in need:
                if k not in data:
                    errs.append(E.required(f"data[{k}]"))
            if obj.get("type") == "kubernetes.io/service-account-token" and not (
                    (obj["metadata"].get("annotations") or {}).get("kubernetes.io/service-account.name")):
                errs.append(E.required("metadata.annotations[kubernetes.io/service-account.name]"))
        else:
            size += sum(len(k) + len(v) * 3 // 4 for k, v in (obj.get("binaryData") or {}).items())
        if size > 1024 * 1024:
            errs.append(E.too_long("data" if p == "secrets" else "[]", 1024 * 1024))
        for fld in ("data", "binaryData", "stringData"):
            for k in (obj.get(fld) or {}):
                if not CONFIG_KEY.match(k):
                    errs.append(E.invalid(f"{fld}[{k}]", k, CONFIG_KEY_MSG))
        if old is not None:
            if old.get("immutable"):
                for fld in (("data", "type") if p == "secrets" else ("data", "binaryData")):
                    if obj.get(fld) != old.get(fld):
                        errs.append(E.forbidden_field(fld, "field is immutable when `immutable` is set"))
                if not obj.get("immutable"):
                    errs.append(E.forbidden_field("immutable", "field is immutable when `immutable` is set"))
            if p == "secrets" and obj.get("type") != old.get("type"):
                errs.append(E.invalid("type", obj.get("type"), "field is immutable"))
    elif g == "" and p == "persistentvolumeclaims":
        spec = spec or {}
        if not spec.get("accessModes"):
            errs.append(E.required("spec.accessModes", "at least 1 access mode is required"))
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            errs.append(E.required("spec.resources[storage]"))
        if old is not None:
            ospec = old.get("spec") or {}
            a = {k: v for k, v in spec.items() if k not in ("resources", "volumeName", "volumeAttributesClassName")}
            b = {k: v for k, v in ospec.items() if k not in ("resources", "volumeName", "volumeAttributesClassName")}
            if a != b:
                errs.append(E.forbidden_field(
                    "spec", "spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims"))
    elif g == "rbac.authorization.k8s.io":
        if p in ("roles", "clusterroles"):
            for i, r in enumerate(obj.get("rules") or []):
                if not r.get("verbs"):
                    errs.append(E.required(f"rules[{i}].verbs", "verbs must contain at least one value"))
                if not r.get("nonResourceURLs") and not r.get("resources"):
                    errs.append(E.required(f"rules[{i}].resources",
                                           "resource rules must supply at least one resource"))
        else:
            ref = obj.get("roleRef") or {}
            if not ref.get("name"):
                errs.append(E.required("roleRef.name"))
            kinds = ["ClusterRole"] if p == "clusterrolebindings" else ["Role", "ClusterRole"]
            if ref.get("kind") not in kinds:
                errs.append(E.not_supported("roleRef.kind", ref.get("kind", ""), kinds))
            if old is not None and old.get("roleRef") != obj.get("roleRef"):
                errs.append(E.invalid("roleRef", ref, "cannot change roleRef"))
            for i, s in enumerate(obj.get("subjects") or []):
                if s.get("kind") not in ("ServiceAccount", "User", "Group"):
                    errs.append(E.not_supported(f"subjects[{i}].kind", s.get("kind", ""),
                                                ["ServiceAccount", "User", "Group"]))
                if not s.get("name"):
                    errs.append(E.required(f"subjects[{i}].name"))
                if s.get("kind") == "ServiceAccount" and p == "clusterrolebindings" and not s.get("namespace"):
                    errs.append(E.required(f"subjects[{i}].namespace"))
    elif g == "coordination.k8s.io":
        d = (spec or {}).get("leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            errs.append(E.invalid("spec.leaseDurationSeconds", d, "must be greater than 0"))
    return errs


def decode_secret(obj):
    """stringData folds into data; data must be base64 (a decode error, as real)."""
    for k, v in (obj.get("data") or {}).items():
        if not isinstance(v, str):
            raise E.bad_request(f'Secret in version "v1" cannot be handled as a Secret: '
                                f'json: cannot unmarshal {type(v).__name__} into Go struct field '
                                f'Secret.data of type []uint8')
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise E.bad_request(f'Secret in version "v1" cannot be handled as a Secret: '
                                f'illegal base64 data at input byte {_bad_b64_index(v)}')
    sd = obj.pop("stringData", None)
    if sd:
        data = obj.setdefault("data", {})
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _bad_b64_index(v):
    ok = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(v):
        if ch not in ok:
            return i
    return max(len(v) - len(v) % 4, 0)


BUILTINS = _builtins()
