"""Label selectors (equality- and set-based) and field selectors."""

import re

from . import errors as E

_KEY = re.compile(r"^([a-z0-9A-Z.\-/_]+)")


def _split_top(s):
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _bad(sel, why):
    return E.bad_request(f"unable to parse requirement: {why}")


def parse_label_selector(s):
    """Returns a list of (key, op, values); op in =, !=, in, notin, exists, !, gt, lt."""
    reqs = []
    if s is None or not s.strip():
        return reqs
    for part in _split_top(s):
        p = part.strip()
        if not p:
            raise _bad(s, f"found '', expected: !, identifier, or 'end of string'")
        if p.startswith("!"):
            key = p[1:].strip()
            if not _KEY.fullmatch(key):
                raise _bad(s, f'<nil>: Invalid value: "{key}": name part must consist of alphanumeric characters')
            reqs.append((key, "!", []))
            continue
        m = re.fullmatch(r"([^\s=!<>()]+)\s+(in|notin)\s*\((.*)\)", p)
        if m:
            vals = [v.strip() for v in m.group(3).split(",")]
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([^\s=!<>()]+)\s*(==|=|!=|>|<)\s*([^\s=!<>(),]*)", p)
        if m:
            op = {"==": "=", "=": "=", "!=": "!=", ">": "gt", "<": "lt"}[m.group(2)]
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", m.group(3)):
                raise _bad(s, f'for \'Gt\', \'Lt\' operators, the value must be an integer')
            reqs.append((m.group(1), op, [m.group(3)]))
            continue
        if re.fullmatch(r"[^\s=!<>(),]+", p):
            reqs.append((p, "exists", []))
            continue
        raise _bad(s, f"found '{p}', expected: identifier")
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and v != vals[0]:
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and (not has or v not in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
        if op in ("gt", "lt"):
            try:
                n = int(v)
            except (TypeError, ValueError):
                return False
            if op == "gt" and not n > int(vals[0]):
                return False
            if op == "lt" and not n < int(vals[0]):
                return False
    return True


def label_selector_from_object(sel):
    """metav1.LabelSelector -> requirements."""
    reqs = []
    if not sel:
        return reqs
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append((k, "=", [v]))
    for r in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(r.get("operator"))
        reqs.append((r.get("key"), op, r.get("values") or []))
    return reqs


def selector_string(sel):
    """metav1.LabelSelectorAsSelector(...).String(), for Scale.status.selector."""
    out = []
    for k, op, vals in label_selector_from_object(sel):
        if op == "=":
            out.append(f"{k}={vals[0]}")
        elif op in ("in", "notin"):
            out.append(f"{k} {op} ({','.join(sorted(vals))})")
        elif op == "exists":
            out.append(k)
        elif op == "!":
            out.append(f"!{k}")
    return ",".join(sorted(out))


# Fields each resource supports in fieldSelector, beyond metadata.name/namespace.
FIELD_SELECTABLE = {
    ("", "pods"): ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
    ("", "events"): ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                     "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"],
    ("", "secrets"): ["type"],
    ("", "namespaces"): ["status.phase"],
    ("apps", "statefulsets"): ["status.successful"],
}


def _field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(s, group, plural, extra=()):
    reqs = []
    if not s:
        return reqs
    allowed = ["metadata.name", "metadata.namespace"] + FIELD_SELECTABLE.get((group, plural), []) + list(extra)
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(==|!=|=)\s*(.*)", part)
        if not m:
            raise E.bad_request(f'invalid selector: \'{s}\'; can\'t understand \'{part}\'')
        field, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in allowed:
            raise E.bad_request(f'field label not supported: {field}')
        reqs.append((field, "!=" if op == "!=" else "=", val))
    return reqs


def fields_match(reqs, obj):
    for field, op, val in reqs:
        if field == "source" and obj.get("source"):
            v = (obj.get("source") or {}).get("component", "")
        else:
            v = _field_value(obj, field)
        if (v == val) != (op == "="):
            return False
    return True
