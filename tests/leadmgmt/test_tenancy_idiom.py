"""One tenancy idiom: code names its tenant (`Model.objects.for_tenant(tenant)` or the scoped `Model.objects`);
`.unscoped()` (every tenant's rows) appears only in the cross-tenant paths listed in
leadmgmt/tenancy/cross_tenant.py, and each of those runs its query inside `cross_tenant(...)`."""
from __future__ import annotations

import ast
from pathlib import Path

from leadmgmt.tenancy.cross_tenant import PURPOSES, UNSCOPED_CALLERS

ROOT = Path(__file__).resolve().parents[2]
APPS = ["leadmgmt", "leads", "scoring", "routing", "nurture", "workspace"]
# The manager that defines `.unscoped()` and the module that lists who may call it.
DEFINITIONS = {"leadmgmt/tenancy/managers.py"}


def _calls(path: Path) -> list[tuple[str, int]]:
    """(qualified name of the enclosing function, line) of every `.unscoped()` call in a module."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                walk(child, [*scope, child.name])
                continue
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr == "unscoped"):
                found.append((".".join(scope) or "<module>", child.lineno))
            walk(child, scope)

    walk(tree, [])
    return found


def unscoped_calls() -> dict[str, list[tuple[str, int]]]:
    calls = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in DEFINITIONS:
                continue
            found = _calls(path)
            if found:
                calls[relative] = found
    return calls


def test_unscoped_is_called_only_by_the_listed_cross_tenant_paths():
    calls = unscoped_calls()
    strays = [f"{module}:{line} in {function}" for module, found in calls.items() for function, line in found
              if function not in UNSCOPED_CALLERS.get(module, {})]
    assert not strays, ("`.unscoped()` outside the cross-tenant paths of leadmgmt/tenancy/cross_tenant.py; "
                        "use `.for_tenant(tenant)` (or list a genuine cross-tenant path there):\n" + "\n".join(strays))
    total = sum(len(found) for found in calls.values())
    print(f"\n{total} `.unscoped()` calls, all in {sum(len(v) for v in UNSCOPED_CALLERS.values())} listed paths")


def test_the_list_names_no_path_that_is_gone_and_gives_each_a_purpose():
    calls = unscoped_calls()
    for module, functions in UNSCOPED_CALLERS.items():
        present = {function for function, _line in calls.get(module, [])}
        assert set(functions) <= present, f"{module}: listed but no longer calling .unscoped(): {set(functions) - present}"
        for function, purpose in functions.items():
            assert purpose in PURPOSES, f"{module} {function}: unknown purpose {purpose!r}"


def test_no_unscoped_filter_by_tenant_is_left():
    """The pattern point 2 replaced: `.unscoped().filter(tenant=…)` is `.for_tenant(…)`."""
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "/migrations/" in path.as_posix():
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in {"filter", "get", "exclude"}
                        and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Attribute)
                        and node.func.value.func.attr == "unscoped"
                        and any(k.arg in {"tenant", "tenant_id"} for k in node.keywords)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
