"""RBAC authorization (Role, ClusterRole, RoleBinding, ClusterRoleBinding),
the default bootstrap policy a cluster starts with, and the Forbidden message."""

from . import selectors as SEL

RBAC = "rbac.authorization.k8s.io"
ROLES = (RBAC, "roles")
CLUSTER_ROLES = (RBAC, "clusterroles")
BINDINGS = (RBAC, "rolebindings")
CLUSTER_BINDINGS = (RBAC, "clusterrolebindings")

DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                  "/readyz", "/version", "/version/"]
BOOTSTRAP = [
    ("ClusterRole", {"metadata": {"name": "cluster-admin"},
                     "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                               {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
    ("ClusterRole", {"metadata": {"name": "system:discovery"},
                     "rules": [{"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}]}),
    ("ClusterRole", {"metadata": {"name": "system:public-info-viewer"},
                     "rules": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                                "verbs": ["get"]}]}),
    ("ClusterRole", {"metadata": {"name": "system:basic-user"},
                     "rules": [{"apiGroups": ["authorization.k8s.io"],
                                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                                "verbs": ["create"]},
                               {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                                "verbs": ["create"]}]}),
    ("ClusterRoleBinding", {"metadata": {"name": "cluster-admin"},
                            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
                            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:masters"}]}),
    ("ClusterRoleBinding", {"metadata": {"name": "system:discovery"},
                            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:discovery"},
                            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"}]}),
    ("ClusterRoleBinding", {"metadata": {"name": "system:public-info-viewer"},
                            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole",
                                        "name": "system:public-info-viewer"},
                            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"},
                                         {"apiGroup": RBAC, "kind": "Group", "name": "system:unauthenticated"}]}),
    ("ClusterRoleBinding", {"metadata": {"name": "system:basic-user"},
                            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:basic-user"},
                            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"}]}),
]


def bootstrap(store):
    from . import resources as R
    with store.lock:
        for kind, obj in BOOTSTRAP:
            plural = "clusterroles" if kind == "ClusterRole" else "clusterrolebindings"
            o = {"apiVersion": f"{RBAC}/v1", "kind": kind, **obj}
            o["metadata"] = dict(obj["metadata"], labels={"kubernetes.io/bootstrapping": "rbac-defaults"},
                                 annotations={"rbac.authorization.kubernetes.io/autoupdate": "true"})
            store._insert(R.builtin(RBAC, plural), o)


class Attributes:
    def __init__(self, user, groups, verb, api_group="", resource="", subresource="", name="", namespace="",
                 path="", resource_request=True, api_version=""):
        self.user, self.groups, self.verb = user, groups, verb
        self.api_group, self.resource, self.subresource = api_group, resource, subresource
        self.name, self.namespace, self.path = name, namespace, path
        self.resource_request = resource_request
        self.api_version = api_version


def _subject_matches(s, user, groups, binding_ns):
    kind = s.get("kind")
    if kind == "User":
        return s.get("name") == user
    if kind == "Group":
        return s.get("name") in groups
    if kind == "ServiceAccount":
        ns = s.get("namespace") or binding_ns
        return user == f"system:serviceaccount:{ns}:{s.get('name')}"
    return False


def _rule_allows(rule, a):
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        for u in rule.get("nonResourceURLs") or []:
            if u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])):
                return True
        return False
    groups = rule.get("apiGroups")
    if groups is None or ("*" not in groups and a.api_group not in groups):
        return False
    combined = a.resource + ("/" + a.subresource if a.subresource else "")
    ok = False
    for r in rule.get("resources") or []:
        if r == "*" or r == combined or (a.subresource and r == "*/" + a.subresource):
            ok = True
            break
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _role_rules(store, kind, name, ns, errors):
    if kind == "ClusterRole":
        role = store.data[CLUSTER_ROLES].get(("", name))
        if role is None:
            errors.append(f'clusterrole.rbac.authorization.k8s.io "{name}" not found')
            return []
        rules = list(role.get("rules") or [])
        agg = role.get("aggregationRule") or {}
        for sel in agg.get("clusterRoleSelectors") or []:
            reqs = SEL.label_selector_from_object(sel)
            for other in store.data[CLUSTER_ROLES].values():
                if other is not role and SEL.labels_match(reqs, other["metadata"].get("labels")):
                    rules.extend(other.get("rules") or [])
        return rules
    role = store.data[ROLES].get((ns, name))
    if role is None:
        errors.append(f'role.rbac.authorization.k8s.io "{name}" not found')
        return []
    return role.get("rules") or []


def authorize(store, a):
    """(allowed, reason) for the request attributes."""
    if "system:masters" in a.groups:
        return True, ""
    errors = []
    with store.lock:
        for b in store.data[CLUSTER_BINDINGS].values():
            if not any(_subject_matches(s, a.user, a.groups, "") for s in b.get("subjects") or []):
                continue
            ref = b.get("roleRef") or {}
            for rule in _role_rules(store, "ClusterRole", ref.get("name"), "", errors):
                if _rule_allows(rule, a):
                    return True, ""
        if a.namespace and a.resource_request:
            for (ns, _), b in store.data[BINDINGS].items():
                if ns != a.namespace:
                    continue
                if not any(_subject_matches(s, a.user, a.groups, ns) for s in b.get("subjects") or []):
                    continue
                ref = b.get("roleRef") or {}
                for rule in _role_rules(store, ref.get("kind"), ref.get("name"), ns, errors):
                    if _rule_allows(rule, a):
                        return True, ""
    reason = ""
    if errors:
        reason = "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return False, reason


def forbidden_message(a):
    """k8s.io/apiserver/pkg/endpoints/handlers/responsewriters.forbiddenMessage."""
    if not a.resource_request:
        return f'User "{a.user}" cannot {a.verb} path "{a.path}"'
    res = a.resource + ("/" + a.subresource if a.subresource else "")
    if a.namespace:
        return (f'User "{a.user}" cannot {a.verb} resource "{res}" in API group "{a.api_group}" '
                f'in the namespace "{a.namespace}"')
    return f'User "{a.user}" cannot {a.verb} resource "{res}" in API group "{a.api_group}" at the cluster scope'
