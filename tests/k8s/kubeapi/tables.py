"""meta.k8s.io/v1 Table responses for `kubectl get` (server-side printing)."""

import datetime
import re

NAME_COL = {"name": "Name", "type": "string", "format": "name", "priority": 0,
            "description": "Name must be unique within a namespace. Is required when creating resources, although "
                           "some resources may allow a client to request the generation of an appropriate name "
                           "automatically. Name is primarily intended for creation idempotence and configuration "
                           "definition. Cannot be updated. More info: "
                           "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"}
AGE_DESC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
            "guaranteed to be set in happens-before order across separate operations. Clients may not set this "
            "value. It is represented in RFC3339 form and is in UTC.")


def parse_time(s):
    try:
        return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(ts):
    t = parse_time(ts) if ts else None
    if t is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


# ---- a JSONPath subset: .a.b, ['a'], [0], [*], [?(@.k=="v")] ----

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-$]+)|\[(\d+|\*|'[^']*'|\"[^\"]*\"|\?\(@\.([^=!<>]+?)\s*(==|!=)\s*"
                    r"(\"[^\"]*\"|'[^']*'|[^)]*)\))\]|\.\*")


def jsonpath(obj, path):
    """All values at path (without the surrounding braces)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    cur = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        nxt = []
        for c in cur:
            if m.group(1) is not None:
                if isinstance(c, dict) and m.group(1) in c:
                    nxt.append(c[m.group(1)])
            elif m.group(0) == ".*":
                if isinstance(c, dict):
                    nxt.extend(c.values())
                elif isinstance(c, list):
                    nxt.extend(c)
            elif m.group(3) is not None:
                fld, op, val = m.group(3), m.group(4), m.group(5).strip("'\"")
                if isinstance(c, list):
                    for e in c:
                        v = jsonpath(e, "." + fld)
                        hit = bool(v) and str(v[0]) == val
                        if hit == (op == "=="):
                            nxt.append(e)
            else:
                sel = m.group(2)
                if sel == "*":
                    if isinstance(c, list):
                        nxt.extend(c)
                    elif isinstance(c, dict):
                        nxt.extend(c.values())
                elif sel[0] in "'\"":
                    if isinstance(c, dict) and sel[1:-1] in c:
                        nxt.append(c[sel[1:-1]])
                elif isinstance(c, list):
                    i = int(sel)
                    if -len(c) <= i < len(c):
                        nxt.append(c[i])
        cur = nxt
    return cur


def _cell(ctype, value):
    """apiextensions tableconvertor cellForJSONValue."""
    if value is None:
        return None
    if ctype == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value)
        return None
    if ctype == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if ctype == "boolean":
        return value if isinstance(value, bool) else None
    if ctype == "string":
        return value if isinstance(value, str) else None
    if ctype == "date":
        if isinstance(value, str):
            return age(value) if parse_time(value) else "<invalid>"
        return None
    return None


def crd_columns(version):
    cols = version.get("additionalPrinterColumns")
    if not cols:
        cols = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
                 "description": AGE_DESC}]
    return cols


def _cr_table(objs, version):
    cols = crd_columns(version)
    defs = [dict(NAME_COL)]
    for c in cols:
        defs.append({"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                     "description": c.get("description", ""), "priority": c.get("priority", 0)})
    rows = []
    for o in objs:
        cells = [o["metadata"]["name"]]
        for c in cols:
            vals = jsonpath(o, c.get("jsonPath", ""))
            if not vals:
                cells.append(None)
            elif len(vals) == 1:
                cells.append(_cell(c.get("type"), vals[0]))
            else:
                cells.append(", ".join(str(v) for v in vals) if c.get("type") == "string" else
                             _cell(c.get("type"), vals[0]))
        rows.append((o, cells))
    return defs, rows


def _col(name, typ="string", desc="", priority=0, fmt=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


def _pod_cells(o):
    st = o.get("status") or {}
    spec = o.get("spec") or {}
    cs = st.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    reason = st.get("reason") or st.get("phase") or "Pending"
    for c in cs:
        w = (c.get("state") or {}).get("waiting")
        t = (c.get("state") or {}).get("terminated")
        if w and w.get("reason"):
            reason = w["reason"]
        elif t:
            reason = t.get("reason") or ("Signal:%s" % t.get("signal") if t.get("signal") else
                                         "ExitCode:%s" % t.get("exitCode"))
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [o["metadata"]["name"], f"{ready}/{total}", reason, restarts, age(o["metadata"].get("creationTimestamp")),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>"]


def _ports(spec):
    out = []
    for p in spec.get("ports") or []:
        s = f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort"):
            s = f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        out.append(s)
    return ",".join(out) or "<none>"


def builtin_table(rdef, objs):
    p, g = rdef.plural, rdef.group
    A = lambda o: age(o["metadata"].get("creationTimestamp"))  # noqa: E731
    N = lambda o: o["metadata"]["name"]  # noqa: E731
    if g == "" and p == "pods":
        defs = [dict(NAME_COL), _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
                _col("Status", desc="The aggregate status of the containers in this pod."),
                _col("Restarts", "string", "The number of times the containers in this pod have been restarted "
                                           "and when the last container in this pod has restarted."),
                _col("Age", desc=AGE_DESC), _col("IP", priority=1), _col("Node", priority=1),
                _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)]
        return defs, [(o, _pod_cells(o)) for o in objs]
    if g == "apps" and p == "statefulsets":
        defs = [dict(NAME_COL), _col("Ready", desc="Number of the pod with ready state"), _col("Age", desc=AGE_DESC),
                _col("Containers", priority=1), _col("Images", priority=1)]
        rows = []
        for o in objs:
            st, sp = o.get("status") or {}, o.get("spec") or {}
            cs = ((sp.get("template") or {}).get("spec") or {}).get("containers") or []
            rows.append((o, [N(o), f"{st.get('readyReplicas', 0)}/{sp.get('replicas', 1)}", A(o),
                             ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]))
        return defs, rows
    if g == "apps" and p == "deployments":
        defs = [dict(NAME_COL), _col("Ready"), _col("Up-to-date", "string"), _col("Available", "string"),
                _col("Age", desc=AGE_DESC)]
        rows = []
        for o in objs:
            st, sp = o.get("status") or {}, o.get("spec") or {}
            rows.append((o, [N(o), f"{st.get('readyReplicas', 0)}/{sp.get('replicas', 1)}",
                             st.get("updatedReplicas", 0), st.get("availableReplicas", 0), A(o)]))
        return defs, rows
    if g == "" and p == "services":
        defs = [dict(NAME_COL), _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"),
                _col("Age", desc=AGE_DESC), _col("Selector", priority=1)]
        rows = []
        for o in objs:
            sp = o.get("spec") or {}
            sel = ",".join(f"{k}={v}" for k, v in sorted((sp.get("selector") or {}).items())) or "<none>"
            rows.append((o, [N(o), sp.get("type", "ClusterIP"), sp.get("clusterIP") or "<none>", "<none>",
                             _ports(sp), A(o), sel]))
        return defs, rows
    if g == "" and p == "secrets":
        defs = [dict(NAME_COL), _col("Type"), _col("Data", "string"), _col("Age", desc=AGE_DESC)]
        return defs, [(o, [N(o), o.get("type", "Opaque"), len(o.get("data") or {}), A(o)]) for o in objs]
    if g == "" and p == "configmaps":
        defs = [dict(NAME_COL), _col("Data", "string"), _col("Age", desc=AGE_DESC)]
        return defs, [(o, [N(o), len(o.get("data") or {}) + len(o.get("binaryData") or {}), A(o)]) for o in objs]
    if g == "" and p == "namespaces":
        defs = [dict(NAME_COL), _col("Status"), _col("Age", desc=AGE_DESC)]
        return defs, [(o, [N(o), (o.get("status") or {}).get("phase", "Active"), A(o)]) for o in objs]
    if g == "" and p == "persistentvolumeclaims":
        defs = [dict(NAME_COL), _col("Status"), _col("Volume"), _col("Capacity"), _col("Access Modes"),
                _col("StorageClass"), _col("VolumeAttributesClass"), _col("Age", desc=AGE_DESC),
                _col("VolumeMode", priority=1)]
        rows = []
        for o in objs:
            sp, st = o.get("spec") or {}, o.get("status") or {}
            modes = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                     "ReadWriteOncePod": "RWOP"}
            rows.append((o, [N(o), st.get("phase", "Pending"), sp.get("volumeName", ""),
                             (st.get("capacity") or {}).get("storage", ""),
                             ",".join(modes.get(m, m) for m in st.get("accessModes") or []),
                             sp.get("storageClassName") or "<unset>", sp.get("volumeAttributesClassName") or "<unset>",
                             A(o), sp.get("volumeMode", "Filesystem")]))
        return defs, rows
    if g == "coordination.k8s.io":
        defs = [dict(NAME_COL), _col("Holder"), _col("Age", desc=AGE_DESC)]
        return defs, [(o, [N(o), (o.get("spec") or {}).get("holderIdentity", ""), A(o)]) for o in objs]
    if g == "apiextensions.k8s.io":
        defs = [dict(NAME_COL), _col("Created At", "date")]
        return defs, [(o, [N(o), o["metadata"].get("creationTimestamp")]) for o in objs]
    if p == "events" and g == "":
        defs = [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")]
        rows = []
        for o in objs:
            io = o.get("involvedObject") or {}
            last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
            rows.append((o, [age(last), o.get("type", ""), o.get("reason", ""),
                             f"{(io.get('kind') or '').lower()}/{io.get('name', '')}", o.get("message", "")]))
        return defs, rows
    if g == "rbac.authorization.k8s.io" and p in ("rolebindings", "clusterrolebindings"):
        defs = [dict(NAME_COL), _col("Role"), _col("Age", desc=AGE_DESC)]
        return defs, [(o, [N(o), f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}",
                           A(o)]) for o in objs]
    if g == "rbac.authorization.k8s.io":
        defs = [dict(NAME_COL), _col("Created At", "date")]
        return defs, [(o, [N(o), o["metadata"].get("creationTimestamp")]) for o in objs]
    defs = [dict(NAME_COL), _col("Age", desc=AGE_DESC)]
    return defs, [(o, [N(o), A(o)]) for o in objs]


def to_table(rdef, objs, list_meta, include_object="Metadata", crd_version=None):
    if crd_version is not None:
        defs, rows = _cr_table(objs, crd_version)
    else:
        defs, rows = builtin_table(rdef, objs)
    out_rows = []
    for o, cells in rows:
        row = {"cells": cells}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        out_rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": defs, "rows": out_rows}
