"""The operator's generated objects (tests/golden/operator/*/expected.json, checked byte for byte
against the C++ generator by pbm_operator_test) validated against the Kubernetes API models of
Debian's python3-kubernetes: every field must exist in the model with the right type, and the
models' own client-side validation (required fields, enums) must accept them. A misspelt field,
a string where an integer belongs or a missing required field fails here."""
import datetime
import glob
import json
import os
import unittest

import kubernetes.client as k8s
from kubernetes.client.configuration import Configuration

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(ROOT, "tests", "golden", "operator")

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object,
              "datetime": str, "date": str}


def check(value, type_name, path, errors):
    """Checks `value` against the model type `type_name` ('V1Container', 'list[V1EnvVar]',
    'dict(str, str)', 'str', ...), collecting errors."""
    if value is None:
        return
    if type_name.startswith("list["):
        if not isinstance(value, list):
            errors.append("%s: expected a list, got %r" % (path, value))
            return
        for i, v in enumerate(value):
            check(v, type_name[5:-1], "%s[%d]" % (path, i), errors)
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            errors.append("%s: expected a map, got %r" % (path, value))
            return
        inner = type_name[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            check(v, inner, "%s.%s" % (path, k), errors)
        return
    if type_name in PRIMITIVES:
        want = PRIMITIVES[type_name]
        if type_name == "int" and isinstance(value, bool):
            errors.append("%s: expected int, got bool" % path)
        elif want is not object and not isinstance(value, want):
            errors.append("%s: expected %s, got %r" % (path, type_name, value))
        return
    model = getattr(k8s, type_name, None)
    if model is None:
        errors.append("%s: unknown model %s" % (path, type_name))
        return
    if not isinstance(value, dict):
        errors.append("%s: expected a %s object, got %r" % (path, type_name, value))
        return
    by_json = {v: k for k, v in model.attribute_map.items()}
    for key, v in value.items():
        if key not in by_json:
            errors.append("%s.%s: no such field in %s" % (path, key, type_name))
            continue
        check(v, model.openapi_types[by_json[key]], "%s.%s" % (path, key), errors)


def construct(value, type_name):
    """Builds the model objects, which run the models' client-side validation (required fields,
    enums): a ValueError on a violation."""
    if value is None:
        return None
    if type_name.startswith("list["):
        return [construct(v, type_name[5:-1]) for v in value]
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        return {k: construct(v, inner) for k, v in value.items()}
    if type_name in PRIMITIVES:
        return value
    model = getattr(k8s, type_name)
    by_json = {v: k for k, v in model.attribute_map.items()}
    kwargs = {by_json[k]: construct(v, model.openapi_types[by_json[k]]) for k, v in value.items()}
    cfg = Configuration()
    cfg.client_side_validation = True
    return model(local_vars_configuration=cfg, **kwargs)


def load(path):
    with open(path) as f:
        return json.load(f)


MODELS = {("v1", "Service"): "V1Service", ("apps/v1", "StatefulSet"): "V1StatefulSet"}


class GeneratedObjects(unittest.TestCase):
    def variants(self):
        found = sorted(glob.glob(os.path.join(GOLDEN, "*", "expected.json")))
        self.assertGreaterEqual(len(found), 3, "golden files missing under " + GOLDEN)
        return found

    def test_every_object_fits_the_kubernetes_models(self):
        for path in self.variants():
            objects = load(path)["objects"]
            self.assertTrue(objects, path)
            for obj in objects:
                model = MODELS.get((obj["apiVersion"], obj["kind"]))
                self.assertIsNotNone(model, "%s: unexpected kind %s" % (path, obj["kind"]))
                errors = []
                check(obj, model, obj["kind"], errors)
                self.assertEqual(errors, [], "%s: %s" % (path, obj["metadata"]["name"]))
                construct(obj, model)  # raises on a missing required field or a bad enum

    def test_the_checker_refuses_what_the_api_would(self):
        # The validator itself must be able to fail: a misspelt field, a wrong type, a missing
        # required field.
        obj = load(self.variants()[0])["objects"][1]
        bad = json.loads(json.dumps(obj))
        bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
        errors = []
        check(bad, "V1StatefulSet", "StatefulSet", errors)
        self.assertTrue(any("imagePullPolice: no such field" in e for e in errors), errors)
        bad = json.loads(json.dumps(obj))
        bad["spec"]["replicas"] = "3"
        errors = []
        check(bad, "V1StatefulSet", "StatefulSet", errors)
        self.assertTrue(any("replicas: expected int" in e for e in errors), errors)
        bad = json.loads(json.dumps(obj))
        del bad["spec"]["template"]["spec"]["containers"][0]["name"]
        with self.assertRaises(ValueError):
            construct(bad, "V1StatefulSet")


if __name__ == "__main__":
    unittest.main()
