"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
patch with the patch metadata of the built-in kinds served here."""

import copy
import json

from . import errors as E


class PatchError(Exception):
    pass


# ---- RFC 6902 ----

def _unescape(tok):
    return tok.replace("~1", "/").replace("~0", "~")


def _split(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {path}')
    return [_unescape(t) for t in path[1:].split("/")]


def _container(doc, toks, op, path):
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError):
                raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")
        else:
            raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")
    return cur


def _get(doc, path, op):
    toks = _split(path)
    if not toks:
        return doc
    c = _container(doc, toks, op, path)
    last = toks[-1]
    if isinstance(c, dict) and last in c:
        return c[last]
    if isinstance(c, list):
        try:
            return c[int(last)]
        except (ValueError, IndexError):
            pass
    raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")


def _remove(doc, path, op="remove"):
    toks = _split(path)
    c = _container(doc, toks, op, path)
    last = toks[-1]
    if isinstance(c, dict):
        if last not in c:
            raise PatchError(f"{op} operation does not apply: doc is missing key: {path}: missing value")
        return c.pop(last)
    if isinstance(c, list):
        try:
            i = int(last)
            return c.pop(i)
        except (ValueError, IndexError):
            raise PatchError(f"{op} operation does not apply: doc is missing index: {path}: missing value")
    raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")


def _add(doc, path, value, op="add"):
    toks = _split(path)
    if not toks:
        return value
    c = _container(doc, toks, op, path)
    last = toks[-1]
    if isinstance(c, dict):
        c[last] = value
    elif isinstance(c, list):
        if last == "-":
            c.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")
            if i < 0 or i > len(c):
                raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")
            c.insert(i, value)
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path: \"{path}\": missing value")
    return doc


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        path = op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if not _split(path):
                doc = copy.deepcopy(op.get("value"))
                continue
            _get(doc, path, "replace")
            toks = _split(path)
            c = _container(doc, toks, "replace", path)
            if isinstance(c, list):
                c[int(toks[-1])] = copy.deepcopy(op.get("value"))
            else:
                c[toks[-1]] = copy.deepcopy(op.get("value"))
        elif kind == "move":
            v = _remove(doc, op.get("from", ""), "move")
            doc = _add(doc, path, v, "move")
        elif kind == "copy":
            v = copy.deepcopy(_get(doc, op.get("from", ""), "copy"))
            doc = _add(doc, path, v, "copy")
        elif kind == "test":
            try:
                cur = _get(doc, path, "test")
            except PatchError:
                cur = None
            if cur != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


# ---- RFC 7386 ----

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- strategic merge patch ----
# Patch metadata from the Go struct tags: field -> ("map", type) for nested
# structs, ("list", mergeKey, elemType, strategies) for lists with a merge
# strategy. Lists not listed here are replaced, as lists without a strategy.

def L(key, elem=None, retain=False):
    return ("list", key, elem, retain)


def M(t):
    return ("map", t)


SMP_TYPES = {
    "ObjectMeta": {"finalizers": L(None), "ownerReferences": L("uid")},
    "PodTemplateSpec": {"metadata": M("ObjectMeta"), "spec": M("PodSpec")},
    "PodSpec": {"volumes": L("name", None, True), "initContainers": L("name", "Container"),
                "containers": L("name", "Container"), "ephemeralContainers": L("name", "Container"),
                "imagePullSecrets": L("name"), "hostAliases": L("ip"),
                "topologySpreadConstraints": L("topologyKey"), "resourceClaims": L("name", None, True)},
    "Container": {"ports": L("containerPort"), "env": L("name"), "volumeMounts": L("mountPath"),
                  "volumeDevices": L("devicePath")},
    "PodStatus": {"conditions": L("type")},
    "Pod": {"metadata": M("ObjectMeta"), "spec": M("PodSpec"), "status": M("PodStatus")},
    "StatefulSetSpec": {"template": M("PodTemplateSpec")},
    "WorkloadStatus": {"conditions": L("type")},
    "StatefulSet": {"metadata": M("ObjectMeta"), "spec": M("StatefulSetSpec"), "status": M("WorkloadStatus")},
    "DeploymentSpec": {"template": M("PodTemplateSpec"), "strategy": M("DeploymentStrategy")},
    "DeploymentStrategy": {"$retainKeys": True},
    "Deployment": {"metadata": M("ObjectMeta"), "spec": M("DeploymentSpec"), "status": M("WorkloadStatus")},
    "ServiceSpec": {"ports": L("port")},
    "Service": {"metadata": M("ObjectMeta"), "spec": M("ServiceSpec")},
    "PersistentVolumeClaim": {"metadata": M("ObjectMeta"), "status": M("WorkloadStatus")},
    "ServiceAccount": {"metadata": M("ObjectMeta"), "secrets": L("name")},
    "Namespace": {"metadata": M("ObjectMeta"), "status": M("WorkloadStatus")},
    "CustomResourceDefinition": {"metadata": M("ObjectMeta"), "status": M("WorkloadStatus")},
}


def _meta(tname, field):
    return SMP_TYPES.get(tname or "", {}).get(field)


def _strip(value, tname=None):
    """A new value coming from a patch: apply it to nothing, dropping directives."""
    if isinstance(value, dict):
        r = _merge_map({}, value, tname)
        return {} if r is None else r
    if isinstance(value, list):
        return [(_strip(v) if isinstance(v, dict) else v) for v in value
                if not (isinstance(v, dict) and v.get("$patch") == "delete")]
    return value


def _key_of(elem, key):
    return json.dumps(elem.get(key), sort_keys=True) if isinstance(elem, dict) else None


def _merge_list(orig, patch, meta):
    _, key, elem_t, _retain = meta
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p, elem_t) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    out = copy.deepcopy(orig) if isinstance(orig, list) else []
    if key is None:
        # a set of primitives: union
        for p in patch:
            if p not in out:
                out.append(p)
        return out
    for p in patch:
        if not isinstance(p, dict):
            raise PatchError(f"unable to find api field in struct for the merging list element: {p}")
        if key not in p:
            raise PatchError(f"map: {p} does not contain declared merge key: {key}")
        k = _key_of(p, key)
        idx = next((i for i, o in enumerate(out) if _key_of(o, key) == k), None)
        if p.get("$patch") == "delete":
            out = [o for o in out if _key_of(o, key) != k]
            continue
        if idx is None:
            out.append(_strip(p, elem_t))
        else:
            merged = _merge_map(out[idx], p, elem_t)
            if merged is None:
                out.pop(idx)
            else:
                out[idx] = merged
    return out


def _order(lst, order, key):
    if not isinstance(lst, list):
        return lst

    def ident(e):
        return _key_of(e, key) if key else json.dumps(e, sort_keys=True)

    pos = {}
    for i, o in enumerate(order):
        pos.setdefault(_key_of(o, key) if key else json.dumps(o, sort_keys=True), i)
    inorder = sorted([e for e in lst if ident(e) in pos], key=lambda e: pos[ident(e)])
    rest = [e for e in lst if ident(e) not in pos]
    return inorder + rest


def _merge_map(orig, patch, tname):
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"}, tname)
    out = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    retain = patch.get("$retainKeys")
    if retain is not None:
        for k in list(out):
            if k not in retain:
                del out[k]
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in (v or [])]
            continue
        meta = _meta(tname, k)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            sub = meta[1] if meta and meta[0] == "map" else None
            r = _merge_map(out.get(k), v, sub)
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        elif isinstance(v, list):
            if meta and meta[0] == "list":
                out[k] = _merge_list(out.get(k), v, meta)
            else:
                out[k] = _strip(v)
        else:
            out[k] = v
    for f, order in orders.items():
        meta = _meta(tname, f)
        key = meta[1] if meta and meta[0] == "list" else None
        if f in out:
            out[f] = _order(out[f], order or [], key)
    return out


def strategic_merge_patch(doc, patch, kind):
    if not isinstance(patch, dict):
        raise PatchError("unable to unmarshal the strategic merge patch: not an object")
    r = _merge_map(doc, patch, kind if kind in SMP_TYPES else "Default")
    return r if r is not None else {}


SMP_TYPES["Default"] = {"metadata": M("ObjectMeta")}


def apply(doc, body, content_type, kind, is_custom):
    """Apply a PATCH body of the given content type; raises APIError."""
    ct = (content_type or "").split(";")[0].strip()
    try:
        patch = json.loads(body or b"null")
    except ValueError as e:
        raise E.bad_request(f"error decoding patch: {e}")
    try:
        if ct == "application/json-patch+json":
            return json_patch(doc, patch)
        if ct == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise E.bad_request("error decoding patch: not an object")
            return merge_patch(doc, patch)
        if ct == "application/strategic-merge-patch+json":
            if is_custom:
                raise E.APIError(415, "UnsupportedMediaType",
                                 "the body of the request was in an unknown format - accepted media types "
                                 "include: application/json-patch+json, application/merge-patch+json, "
                                 "application/apply-patch+yaml")
            return strategic_merge_patch(doc, patch, kind)
    except PatchError as e:
        raise E.APIError(422, "Invalid", str(e), {})
    raise E.unsupported_media(ct)
