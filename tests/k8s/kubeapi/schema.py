"""CustomResourceDefinition schemas: the structural check done when a CRD is
written, and validation, pruning and defaulting of custom resources."""

import base64
import binascii
import copy
import datetime
import json
import re
import uuid as _uuid

from . import errors as E


# ---- paths ----

def child(path, name):
    return f"{path}.{name}" if path else name


def key(path, k):
    return f"{path}[{k}]"


def index(path, i):
    return f"{path}[{i}]"


# ---- the structural check on CRD write ----

def _structural(s, level, path, errs):
    """level: root, item, field (apiextensions-apiserver schema.validateStructuralInvariants)."""
    if not isinstance(s, dict):
        errs.append(E.invalid(path, s, "must be an object"))
        return
    t = s.get("type", "")
    ios = s.get("x-kubernetes-int-or-string", False)
    pres = s.get("x-kubernetes-preserve-unknown-fields", False)
    emb = s.get("x-kubernetes-embedded-resource", False)
    if t == "array" and s.get("items") is None:
        errs.append(E.required(child(path, "items"), "must be specified"))
    if isinstance(s.get("items"), dict):
        _structural(s["items"], "item", child(path, "items"), errs)
    for k, v in (s.get("properties") or {}).items():
        _structural(v, "field", key(child(path, "properties"), k), errs)
    ap = s.get("additionalProperties")
    if ap is not None and ap is not False:
        if level == "root":
            errs.append(E.forbidden_field(child(path, "additionalProperties"), "must not be used at the root"))
        if s.get("properties"):
            errs.append(E.forbidden_field(child(path, "additionalProperties"),
                                          "additionalProperties and properties are mutual exclusive"))
        if isinstance(ap, dict):
            _structural(ap, "field", child(path, "additionalProperties"), errs)
    if ios and pres:
        errs.append(E.invalid(child(path, "x-kubernetes-preserve-unknown-fields"), True,
                              "must be false if x-kubernetes-int-or-string is true"))
    if emb and t != "object":
        if not t:
            errs.append(E.required(child(path, "type"), "must be object if x-kubernetes-embedded-resource is true"))
        else:
            errs.append(E.invalid(child(path, "type"), t, "must be object if x-kubernetes-embedded-resource is true"))
    elif not t and not ios and not pres:
        what = {"root": "must not be empty at the root", "item": "must not be empty for specified array items",
                "field": "must not be empty for specified object fields"}[level]
        errs.append(E.required(child(path, "type"), what))
    if level == "root" and t and t != "object":
        errs.append(E.invalid(child(path, "type"), t, "must be object at the root"))
    if t and t not in ("object", "array", "string", "integer", "number", "boolean"):
        errs.append(E.not_supported(child(path, "type"), t,
                                    ["array", "boolean", "integer", "number", "object", "string"]))
    props = s.get("properties") or {}
    if "metadata" in props and level == "root":
        md = props["metadata"]
        extra = {k for k in (md.get("properties") or {}) if k not in ("name", "generateName")}
        other = {k for k in md if k not in ("type", "properties", "description")}
        if md.get("type", "object") != "object":
            errs.append(E.invalid(child(key(child(path, "properties"), "metadata"), "type"), md.get("type"),
                                  "must be object"))
        if extra or other:
            errs.append(E.forbidden_field(key(child(path, "properties"), "metadata"),
                                          "must not specify anything other than name and generateName, but "
                                          "metadata is implicitly specified"))
    for kw in ("anyOf", "allOf", "oneOf"):
        for i, sub in enumerate(s.get(kw) or []):
            _nested(sub, index(child(path, kw), i), errs)
    if isinstance(s.get("not"), dict):
        _nested(s["not"], child(path, "not"), errs)
    if s.get("pattern") is not None:
        try:
            re.compile(_go_regex(s["pattern"]))
        except re.error as e:
            errs.append(E.invalid(child(path, "pattern"), s["pattern"],
                                  f"must be a valid regular expression, but isn't: {e}"))


def _nested(v, path, errs):
    """Value validations under anyOf/allOf/oneOf/not must not carry structure."""
    if not isinstance(v, dict):
        return
    if v.get("type"):
        errs.append(E.forbidden_field(child(path, "type"), "must be empty to be structural"))
    if "default" in v:
        errs.append(E.forbidden_field(child(path, "default"), "must be undefined to be structural"))
    if v.get("description"):
        errs.append(E.forbidden_field(child(path, "description"), "must be empty to be structural"))
    if v.get("nullable"):
        errs.append(E.forbidden_field(child(path, "nullable"), "must be false to be structural"))
    if v.get("x-kubernetes-preserve-unknown-fields"):
        errs.append(E.forbidden_field(child(path, "x-kubernetes-preserve-unknown-fields"),
                                      "must be false to be structural"))
    if "additionalProperties" in v:
        errs.append(E.forbidden_field(child(path, "additionalProperties"), "must be undefined to be structural"))
    for k, sub in (v.get("properties") or {}).items():
        if k == "metadata":
            errs.append(E.forbidden_field(key(child(path, "properties"), k),
                                          "must not be specified in a nested context"))
        _nested(sub, key(child(path, "properties"), k), errs)
    if isinstance(v.get("items"), dict):
        _nested(v["items"], child(path, "items"), errs)


def _defaults(s, path, errs, root):
    """Every default must validate against its own schema (and be pruned)."""
    if not isinstance(s, dict):
        return
    for k, v in (s.get("properties") or {}).items():
        if not isinstance(v, dict):
            continue
        p = key(child(path, "properties"), k)
        if "default" in v:
            dpath = child(p, "default")
            val = copy.deepcopy(v["default"])
            if val is None and not v.get("nullable"):
                errs.append(E.required(dpath, "must not be null for a non-nullable field"))
            else:
                default(v, val)
                errs.extend(validate(v, val, dpath))
        _defaults(v, p, errs, False)
    if isinstance(s.get("items"), dict):
        it = s["items"]
        if "default" in it:
            errs.extend(validate(it, copy.deepcopy(it["default"]), child(child(path, "items"), "default")))
        _defaults(it, child(path, "items"), errs, False)
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        _defaults(ap, child(path, "additionalProperties"), errs, False)


def structural_errors(schema, path):
    errs = []
    _structural(schema, "root", path, errs)
    if not errs:
        _defaults(schema, path, errs, True)
    errs.sort(key=str)
    return errs


COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]


def validate_crd(crd, old=None):
    """ValidateCustomResourceDefinition, the parts a test or an operator meets."""
    errs = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    name = (crd.get("metadata") or {}).get("name", "")
    if not group:
        errs.append(E.required("spec.group"))
    elif "." not in group:
        errs.append(E.invalid("spec.group", group, "should be a domain with at least one dot"))
    if not names.get("plural"):
        errs.append(E.required("spec.names.plural"))
    elif names["plural"] != names["plural"].lower() or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
                                                                         names["plural"]):
        errs.append(E.invalid("spec.names.plural", names["plural"],
                              "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
                              "'-', and must start and end with an alphanumeric character"))
    if not names.get("kind"):
        errs.append(E.required("spec.names.kind"))
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        errs.append(E.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        if not spec.get("scope"):
            errs.append(E.required("spec.scope"))
        else:
            errs.append(E.not_supported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"]))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(E.required("spec.versions", "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(E.invalid("spec.versions", [v.get("name") for v in versions],
                              "must have exactly one version marked as storage version"))
    seen = set()
    for i, v in enumerate(versions):
        vp = f"spec.versions[{i}]"
        vn = v.get("name", "")
        if not vn:
            errs.append(E.required(f"{vp}.name"))
        elif not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", vn):
            errs.append(E.invalid(f"{vp}.name", vn, "a DNS-1035 label must consist of lower case alphanumeric "
                                                  "characters or '-'"))
        if vn in seen:
            errs.append(E.invalid("spec.versions", vn, "must contain unique version names"))
        seen.add(vn)
        if "served" not in v:
            errs.append(E.required(f"{vp}.served"))
        if "storage" not in v:
            errs.append(E.required(f"{vp}.storage"))
        sch = (v.get("schema") or {}).get("openAPIV3Schema")
        if sch is None:
            errs.append(E.required(f"{vp}.schema.openAPIV3Schema", "schemas are required"))
        else:
            errs.extend(structural_errors(sch, f"{vp}.schema.openAPIV3Schema"))
        for j, c in enumerate(v.get("additionalPrinterColumns") or []):
            cp = f"{vp}.additionalPrinterColumns[{j}]"
            if not c.get("name"):
                errs.append(E.required(f"{cp}.name"))
            if c.get("type") not in COLUMN_TYPES:
                if not c.get("type"):
                    errs.append(E.required(f"{cp}.type"))
                else:
                    errs.append(E.not_supported(f"{cp}.type", c.get("type"), COLUMN_TYPES))
            if not c.get("jsonPath"):
                errs.append(E.required(f"{cp}.JSONPath"))
        scale = ((v.get("subresources") or {}).get("scale"))
        if scale is not None:
            sp = scale.get("specReplicasPath", "")
            if not sp.startswith(".spec."):
                errs.append(E.invalid(f"{vp}.subresources.scale.specReplicasPath", sp,
                                      "should be a json path under .spec"))
            st = scale.get("statusReplicasPath", "")
            if not st.startswith(".status."):
                errs.append(E.invalid(f"{vp}.subresources.scale.statusReplicasPath", st,
                                      "should be a json path under .status"))
    if old is not None:
        ospec = old.get("spec") or {}
        if ospec.get("scope") != spec.get("scope"):
            errs.append(E.invalid("spec.scope", spec.get("scope"), "field is immutable"))
        if ospec.get("group") != group:
            errs.append(E.invalid("spec.group", group, "field is immutable"))
        stored = (old.get("status") or {}).get("storedVersions") or []
        for sv in stored:
            if sv not in seen:
                errs.append(E.invalid("status.storedVersions[0]", sv,
                                      "must appear in spec.versions"))
    return errs


# ---- custom resource validation ----

def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_ok(t, v):
    n = _type_name(v)
    if t == "number":
        return n in ("integer", "number")
    return n == t


def _num(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _go_regex(p):
    # Go's RE2 and Python's re agree on what CRD patterns use; \z is Go only.
    return p.replace(r"\z", r"\Z")


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _format_ok(fmt, v):
    if not isinstance(v, str):
        return True
    try:
        if fmt == "date-time":
            return bool(_DATE_TIME.match(v))
        if fmt == "date":
            datetime.date.fromisoformat(v)
            return len(v) == 10
        if fmt == "byte":
            base64.b64decode(v, validate=True)
            return True
        if fmt == "uuid":
            _uuid.UUID(v)
            return bool(re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", v))
        if fmt == "ipv4":
            parts = v.split(".")
            return len(parts) == 4 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)
        if fmt == "hostname":
            return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", v))
        if fmt == "duration":
            return bool(re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", v))
    except (ValueError, binascii.Error):
        return False
    return True


def validate(s, v, path):
    """Field errors for value v against schema s (kube-openapi validate, as
    apiextensions-apiserver reports them)."""
    errs = []
    if not isinstance(s, dict):
        return errs
    t = s.get("type")
    shown = path or "<root>"
    if v is None:
        if s.get("nullable") or (not t and s.get("x-kubernetes-preserve-unknown-fields")):
            return errs
        if t:
            return [E.type_invalid(path, "null", f"{shown} in body must be of type {t}: \"null\"")]
        return errs
    if s.get("x-kubernetes-int-or-string"):
        if _type_name(v) not in ("integer", "string"):
            tn = _type_name(v)
            return [E.type_invalid(path, tn, f"{shown} in body must be of type integer,string: \"{tn}\"")]
    elif t and not _type_ok(t, v):
        tn = _type_name(v)
        return [E.type_invalid(path, tn, f"{shown} in body must be of type {t}: \"{tn}\"")]
    if "enum" in s and v not in s["enum"]:
        errs.append(E.not_supported(path, v, s["enum"]))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s:
            m = s["minimum"]
            if (v <= m) if s.get("exclusiveMinimum") else (v < m):
                word = "greater than" if s.get("exclusiveMinimum") else "greater than or equal to"
                errs.append(E.invalid(path, v, f"{shown} in body should be {word} {_num(m)}"))
        if "maximum" in s:
            m = s["maximum"]
            if (v >= m) if s.get("exclusiveMaximum") else (v > m):
                word = "less than" if s.get("exclusiveMaximum") else "less than or equal to"
                errs.append(E.invalid(path, v, f"{shown} in body should be {word} {_num(m)}"))
        if s.get("multipleOf"):
            q = v / s["multipleOf"]
            if abs(q - round(q)) > 1e-9:
                errs.append(E.invalid(path, v, f"{shown} in body should be a multiple of {_num(s['multipleOf'])}"))
    if isinstance(v, str):
        if "maxLength" in s and len(v) > s["maxLength"]:
            errs.append(E.too_long(path, s["maxLength"]))
        if "minLength" in s and len(v) < s["minLength"]:
            errs.append(E.invalid(path, v, f"{shown} in body should be at least {s['minLength']} chars long"))
        if "pattern" in s and not re.search(_go_regex(s["pattern"]), v):
            errs.append(E.invalid(path, v, f"{shown} in body should match '{s['pattern']}'"))
        if "format" in s and not _format_ok(s["format"], v):
            errs.append(E.invalid(path, v, f"{shown} in body must be of type {s['format']}: {json.dumps(v)}"))
    if isinstance(v, list):
        if "maxItems" in s and len(v) > s["maxItems"]:
            errs.append(E.too_many(path, len(v), s["maxItems"]))
        if "minItems" in s and len(v) < s["minItems"]:
            errs.append(E.invalid(path, len(v), f"{shown} in body should have at least {s['minItems']} items"))
        if s.get("uniqueItems"):
            seen = []
            for x in v:
                if x in seen:
                    errs.append(E.FieldError("FieldValueDuplicate", path, x))
                    break
                seen.append(x)
        lt = s.get("x-kubernetes-list-type")
        if lt == "set":
            seen = []
            for i, x in enumerate(v):
                if x in seen:
                    errs.append(E.FieldError("FieldValueDuplicate", index(path, i), x))
                seen.append(x)
        elif lt == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            seen = []
            for i, x in enumerate(v):
                k = [x.get(kk) if isinstance(x, dict) else None for kk in keys]
                if k in seen:
                    errs.append(E.FieldError("FieldValueDuplicate", index(path, i),
                                             {kk: x.get(kk) for kk in keys} if isinstance(x, dict) else x))
                seen.append(k)
        if isinstance(s.get("items"), dict):
            for i, x in enumerate(v):
                errs.extend(validate(s["items"], x, index(path, i)))
    if isinstance(v, dict):
        props = s.get("properties") or {}
        for r in s.get("required") or []:
            if r not in v:
                errs.append(E.required(child(path, r)))
        if "maxProperties" in s and len(v) > s["maxProperties"]:
            errs.append(E.too_many(path, len(v), s["maxProperties"]))
        if "minProperties" in s and len(v) < s["minProperties"]:
            errs.append(E.invalid(path, len(v), f"{shown} in body should have at least "
                                                f"{s['minProperties']} properties"))
        for k, x in v.items():
            if k in props:
                errs.extend(validate(props[k], x, child(path, k)))
            elif isinstance(s.get("additionalProperties"), dict):
                errs.extend(validate(s["additionalProperties"], x, child(path, k)))
    for i, sub in enumerate(s.get("allOf") or []):
        errs.extend(validate(sub, v, path))
    if s.get("anyOf") and not any(not validate(sub, v, path) for sub in s["anyOf"]):
        first = validate(s["anyOf"][0], v, path)
        errs.extend(first or [E.invalid(path, v, f"{shown} in body must match at least one schema in anyOf")])
    if s.get("oneOf"):
        ok = sum(1 for sub in s["oneOf"] if not validate(sub, v, path))
        if ok != 1:
            errs.append(E.invalid(path, v, f"{shown} in body must validate one and only one schema (oneOf)"))
    if isinstance(s.get("not"), dict) and not validate(s["not"], v, path):
        errs.append(E.invalid(path, v, f"{shown} in body should not validate the schema (not)"))
    return errs


# ---- pruning and defaulting ----

OBJECT_META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                      "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                      "annotations", "ownerReferences", "finalizers", "managedFields"}


def prune(s, v, path, unknown, root=False):
    """Drop fields the schema does not specify; their paths go to unknown."""
    if not isinstance(s, dict):
        return v
    if isinstance(v, dict):
        props = s.get("properties")
        ap = s.get("additionalProperties")
        preserve = s.get("x-kubernetes-preserve-unknown-fields")
        embedded = s.get("x-kubernetes-embedded-resource")
        for k in list(v):
            if (root or embedded) and k in ("apiVersion", "kind"):
                continue
            if (root or embedded) and k == "metadata":
                if isinstance(v[k], dict):
                    for mk in list(v[k]):
                        if mk not in OBJECT_META_FIELDS:
                            unknown.append(child(child(path, "metadata"), mk))
                            del v[k][mk]
                continue
            if props is not None and k in props:
                v[k] = prune(props[k], v[k], child(path, k), unknown)
            elif isinstance(ap, dict):
                v[k] = prune(ap, v[k], child(path, k), unknown)
            elif ap is True or preserve:
                continue
            else:
                unknown.append(child(path, k))
                del v[k]
    elif isinstance(v, list) and isinstance(s.get("items"), dict):
        for i, x in enumerate(v):
            v[i] = prune(s["items"], x, index(path, i), unknown)
    return v


def default(s, v):
    """Apply defaults in place: a field is defaulted when absent (or null and
    not nullable) and its parent object is present."""
    if not isinstance(s, dict):
        return v
    if isinstance(v, dict):
        for k, ps in (s.get("properties") or {}).items():
            if not isinstance(ps, dict):
                continue
            if "default" in ps and (k not in v or (v[k] is None and not ps.get("nullable"))):
                v[k] = copy.deepcopy(ps["default"])
            if k in v:
                default(ps, v[k])
        ap = s.get("additionalProperties")
        if isinstance(ap, dict):
            for k in v:
                if k not in (s.get("properties") or {}):
                    default(ap, v[k])
    elif isinstance(v, list) and isinstance(s.get("items"), dict):
        for x in v:
            default(s["items"], x)
    return v
