"""Decoding of the Kubernetes protobuf envelope for the request bodies that
kubectl's typed commands send (create namespace/secret/configmap/
serviceaccount/role/rolebinding, create token, auth can-i, auth whoami).
Responses are always JSON, which client-go accepts whatever it asked for."""

import base64
import datetime

from . import errors as E

MAGIC = b"k8s\x00"

# message name -> {field number: (json name, type, repeated)}; types are
# string, bytes, int, bool, time, microtime, map:string, map:bytes, or a message name.
S, B, I, BOOL = "string", "bytes", "int", "bool"
SCHEMAS = {
    "Unknown": {1: ("typeMeta", "RuntimeTypeMeta", False), 2: ("raw", "rawbytes", False),
                3: ("contentEncoding", S, False), 4: ("contentType", S, False)},
    "RuntimeTypeMeta": {1: ("apiVersion", S, False), 2: ("kind", S, False)},
    "ObjectMeta": {1: ("name", S, False), 2: ("generateName", S, False), 3: ("namespace", S, False),
                   4: ("selfLink", S, False), 5: ("uid", S, False), 6: ("resourceVersion", S, False),
                   7: ("generation", I, False), 8: ("creationTimestamp", "time", False),
                   9: ("deletionTimestamp", "time", False), 10: ("deletionGracePeriodSeconds", I, False),
                   11: ("labels", "map:string", False), 12: ("annotations", "map:string", False),
                   13: ("ownerReferences", "OwnerReference", True), 14: ("finalizers", S, True)},
    "OwnerReference": {1: ("kind", S, False), 3: ("name", S, False), 4: ("uid", S, False),
                       5: ("apiVersion", S, False), 6: ("controller", BOOL, False),
                       7: ("blockOwnerDeletion", BOOL, False)},
    "LabelSelector": {1: ("matchLabels", "map:string", False), 2: ("matchExpressions", "LabelSelectorRequirement",
                                                                   True)},
    "LabelSelectorRequirement": {1: ("key", S, False), 2: ("operator", S, False), 3: ("values", S, True)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False)},
    "NamespaceSpec": {1: ("finalizers", S, True)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:bytes", False), 3: ("type", S, False),
               4: ("stringData", "map:string", False), 5: ("immutable", BOOL, False)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:string", False),
                  3: ("binaryData", "map:bytes", False), 4: ("immutable", BOOL, False)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", False), 2: ("secrets", "ObjectReference", True),
                       3: ("imagePullSecrets", "LocalObjectReference", True),
                       4: ("automountServiceAccountToken", BOOL, False)},
    "ObjectReference": {1: ("kind", S, False), 2: ("namespace", S, False), 3: ("name", S, False),
                        4: ("uid", S, False), 5: ("apiVersion", S, False), 6: ("resourceVersion", S, False),
                        7: ("fieldPath", S, False)},
    "LocalObjectReference": {1: ("name", S, False)},
    "Role": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "ClusterRole": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True),
                    3: ("aggregationRule", "AggregationRule", False)},
    "AggregationRule": {1: ("clusterRoleSelectors", "LabelSelector", True)},
    "PolicyRule": {1: ("verbs", S, True), 2: ("apiGroups", S, True), 3: ("resources", S, True),
                   4: ("resourceNames", S, True), 5: ("nonResourceURLs", S, True)},
    "RoleBinding": {1: ("metadata", "ObjectMeta", False), 2: ("subjects", "Subject", True),
                    3: ("roleRef", "RoleRef", False)},
    "Subject": {1: ("kind", S, False), 2: ("apiGroup", S, False), 3: ("name", S, False), 4: ("namespace", S, False)},
    "RoleRef": {1: ("apiGroup", S, False), 2: ("kind", S, False), 3: ("name", S, False)},
    "TokenRequest": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "TokenRequestSpec", False)},
    "TokenRequestSpec": {1: ("audiences", S, True), 3: ("boundObjectRef", "BoundObjectReference", False),
                         4: ("expirationSeconds", I, False)},
    "BoundObjectReference": {1: ("kind", S, False), 2: ("apiVersion", S, False), 3: ("name", S, False),
                             4: ("uid", S, False)},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "SelfSubjectAccessReviewSpec",
                                                                         False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "SubjectAccessReviewSpec", False)},
    "SubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                2: ("nonResourceAttributes", "NonResourceAttributes", False),
                                3: ("user", S, False), 4: ("groups", S, True), 6: ("uid", S, False)},
    "ResourceAttributes": {1: ("namespace", S, False), 2: ("verb", S, False), 3: ("group", S, False),
                           4: ("version", S, False), 5: ("resource", S, False), 6: ("subresource", S, False),
                           7: ("name", S, False)},
    "NonResourceAttributes": {1: ("path", S, False), 2: ("verb", S, False)},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta", False)},
    "Lease": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "LeaseSpec", False)},
    "LeaseSpec": {1: ("holderIdentity", S, False), 2: ("leaseDurationSeconds", I, False),
                  3: ("acquireTime", "microtime", False), 4: ("renewTime", "microtime", False),
                  5: ("leaseTransitions", I, False), 6: ("strategy", S, False), 7: ("preferredHolder", S, False)},
    "Time": {1: ("seconds", I, False), 2: ("nanos", I, False)},
    "MapEntry": {1: ("key", S, False), 2: ("value", "rawbytes", False)},
    "DeleteOptions": {1: ("gracePeriodSeconds", I, False), 2: ("preconditions", "Preconditions", False),
                      3: ("orphanDependents", BOOL, False), 4: ("propagationPolicy", S, False),
                      5: ("dryRun", S, True)},
    "Preconditions": {1: ("uid", S, False), 2: ("resourceVersion", S, False)},
}


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def _time(buf, micro=False):
    t = decode(buf, "Time")
    dt = datetime.datetime.fromtimestamp(t.get("seconds", 0), datetime.timezone.utc)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%06dZ" % (t.get("nanos", 0) // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(buf, msg):
    schema = SCHEMAS[msg]
    out = {}
    for num, wt, v in _fields(buf):
        if num not in schema:
            continue
        name, typ, rep = schema[num]
        if typ == S:
            val = v.decode()
        elif typ == "rawbytes":
            val = v
        elif typ == I:
            val = v - (1 << 64) if v >= 1 << 63 else v
        elif typ == BOOL:
            val = bool(v)
        elif typ in ("time", "microtime"):
            val = _time(v, typ == "microtime")
        elif typ.startswith("map:"):
            e = decode(v, "MapEntry")
            raw = e.get("value", b"")
            out.setdefault(name, {})[e.get("key", "")] = (raw.decode() if typ == "map:string"
                                                          else base64.b64encode(raw).decode())
            continue
        else:
            val = decode(v, typ)
        if rep:
            out.setdefault(name, []).append(val)
        else:
            out[name] = val
    return out


def decode_body(body):
    """A k8s protobuf envelope -> the object as JSON would carry it."""
    if not body.startswith(MAGIC):
        raise E.bad_request("the body is not a Kubernetes protobuf message")
    unk = decode(body[len(MAGIC):], "Unknown")
    tm = unk.get("typeMeta", {})
    kind = tm.get("kind", "")
    if kind not in SCHEMAS or kind in ("Unknown", "Time", "MapEntry"):
        raise E.APIError(415, "UnsupportedMediaType",
                         f"the body of the request was in an unknown format - this test server decodes protobuf "
                         f"only for a few kinds, not {kind}; accepted media types include: application/json", {})
    obj = decode(unk.get("raw", b""), kind)
    out = {"apiVersion": tm.get("apiVersion", ""), "kind": kind}
    out.update(obj)
    if kind == "DeleteOptions":
        out.pop("apiVersion", None)
    return out
