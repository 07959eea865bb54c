"""An in-memory stand-in for kube-apiserver, for tests.

Modules: errors (Status objects), resources (built-in kinds), store (objects,
versions, watches, garbage collection), patch (JSON, merge and strategic merge
patches), schema (CRD structural checks, validation, pruning, defaulting),
selectors, tables, rbac, server (HTTP, authentication, routing).
"""
