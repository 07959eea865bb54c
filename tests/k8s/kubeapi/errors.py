"""API errors as the real server reports them: metav1.Status objects."""

import json


class APIError(Exception):
    """An error that the handler turns into a Status response."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {},
             "status": "Failure", "message": self.message}
        if self.reason:
            s["reason"] = self.reason
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def qualified(resource, group):
    """schema.GroupResource.String(): "statefulsets.apps", "pods"."""
    return f"{resource}.{group}" if group else resource


def _details(name, group, kind):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def not_found(resource, group, name):
    return APIError(404, "NotFound",
                    f'{qualified(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def already_exists(resource, group, name):
    return APIError(409, "AlreadyExists",
                    f'{qualified(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource, group, name, why):
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                    _details(name, group, resource))


MODIFIED = ("the object has been modified; please apply your changes to the "
            "latest version and try again")


def bad_request(message):
    return APIError(400, "BadRequest", message)


def method_not_allowed(message="the server does not allow this method on the requested resource"):
    return APIError(405, "MethodNotAllowed", message, {})


def unsupported_media(ctype):
    return APIError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types include: '
                    f'application/json-patch+json, application/merge-patch+json, '
                    f'application/apply-patch+yaml, application/strategic-merge-patch+json; got {ctype}')


def unauthorized():
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden(resource, group, name, message):
    q = qualified(resource, group)
    text = f'{q} "{name}" is forbidden: {message}' if name else f"{q} is forbidden: {message}"
    return APIError(403, "Forbidden", text, _details(name, group, resource))


def gone(message):
    return APIError(410, "Expired", message)


def internal(message):
    return APIError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})


# ---- field errors (k8s.io/apimachinery/pkg/util/validation/field) ----

_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}

OMIT = object()


class Raw(str):
    """A bad value printed as is (Go's %#v of a non-string)."""


def go_value(v):
    """How field.Error prints a bad value (%v for scalars, %q for strings)."""
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return '"null"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v) if not (isinstance(v, float) and v.is_integer()) else str(int(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return "[]string{" + ", ".join(json.dumps(x) for x in v) + "}"
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return "map[string]string{" + ", ".join(
            f"{json.dumps(k)}:{json.dumps(x)}" for k, x in sorted(v.items())) + "}"
    return json.dumps(v, sort_keys=True)


class FieldError:
    def __init__(self, type_, field, value=OMIT, detail=""):
        self.type = type_
        self.field = field
        self.value = value
        self.detail = detail

    def body(self):
        t = _TYPE_TEXT[self.type]
        if self.type in ("FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong",
                         "InternalError") or self.value is OMIT:
            s = t
        else:
            s = f"{t}: {go_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self):
        return f"{self.field}: {self.body()}"


def required(field, detail=""):
    return FieldError("FieldValueRequired", field, OMIT, detail)


def invalid(field, value, detail=""):
    return FieldError("FieldValueInvalid", field, value, detail)


def type_invalid(field, value, detail=""):
    return FieldError("FieldValueTypeInvalid", field, value, detail)


def not_supported(field, value, allowed):
    detail = "supported values: " + ", ".join(
        json.dumps(a) if isinstance(a, str) else go_value(a) for a in allowed)
    return FieldError("FieldValueNotSupported", field, value, detail)


def forbidden_field(field, detail):
    return FieldError("FieldValueForbidden", field, OMIT, detail)


def too_long(field, limit):
    return FieldError("FieldValueTooLong", field, OMIT, f"may not be more than {limit} bytes")


def too_many(field, count, limit):
    return FieldError("FieldValueTooMany", field, count, f"must have at most {limit} items")


def invalid_object(kind, group, name, errs):
    """apierrors.NewInvalid: 'Kind.group "name" is invalid: <aggregate>'."""
    qk = f"{kind}.{group}" if group else kind
    causes = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errs]
    # Aggregate: one error prints alone, several as "[a, b]" without duplicates.
    texts = []
    for e in errs:
        if str(e) not in texts:
            texts.append(str(e))
    if not texts:
        msg = f'{qk} "{name}" is invalid'
    elif len(texts) == 1:
        msg = f'{qk} "{name}" is invalid: {texts[0]}'
    else:
        msg = f'{qk} "{name}" is invalid: [{", ".join(texts)}]'
    details = {"name": name, "kind": kind, "causes": causes}
    if group:
        details = {"name": name, "group": group, "kind": kind, "causes": causes}
    return APIError(422, "Invalid", msg, details)
