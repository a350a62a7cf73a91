"""The one lead lock (leads/locks.py): it holds the row against other connections, refuses a stale action with the
one STALE message, locks several leads in ascending id; and no module but it locks lead rows, and OPEN_STATUSES
and the STALE message are defined once."""
from __future__ import annotations

import ast
import re
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.context import tenant_scope
from leads.locks import STALE, StaleLead, lead_lock, lead_lock_refresh, leads_lock, leads_lock_rows
from leads.models import Lead
from leads.services.lead_edit import lead_update
from routing.services.aging import lead_recycle
from routing.services.assign import lead_reassign
from tests.support.factories import LeadFactory, MembershipFactory, UserFactory
from workspace.services.activities import activity_log
from workspace.services.lifecycle import lead_accept

ROOT = Path(__file__).resolve().parents[2]
APPS = ["leadmgmt", "leads", "scoring", "routing", "nurture", "workspace"]
HELPER = "leads/locks.py"
REASSIGNED = "This lead was reassigned meanwhile; reload it and try again."
CHANGED = "This lead was changed meanwhile; reload it and try again."
LOCK_NOT_AVAILABLE = "55P03"


# --- the lock holds against other connections (real PostgreSQL, one connection per thread) --------------------


def _in_thread(work):
    """Run `work` in a thread of its own (its own database connection); returns (thread, result dict)."""
    result: dict = {}

    def run():
        try:
            result["value"] = work()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _joined(thread, result) -> dict:
    thread.join(timeout=30)
    assert not thread.is_alive(), "the thread is still waiting"
    return result


@contextmanager
def _held(tenant, lock):
    """Hold the locks `lock()` takes, in a transaction of another connection, until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        with tenant_scope(tenant), transaction.atomic():
            taken = lock()
            locked.set()
            release.wait(timeout=30)
            return taken

    thread, result = _in_thread(hold)
    try:
        assert locked.wait(timeout=10), result
        yield result
    finally:
        release.set()
        _joined(thread, result)
    assert "error" not in result, result


def _attempt(tenant, work):
    """`work()` in a transaction of another connection: its value, or the error it raised."""
    def run():
        with tenant_scope(tenant), transaction.atomic():
            return work()

    return _joined(*_in_thread(run))


def _lock_not_available(result: dict) -> bool:
    error = result.get("error")
    return isinstance(error, DatabaseError) and getattr(error.__cause__, "pgcode", None) == LOCK_NOT_AVAILABLE


@pytest.mark.django_db(transaction=True)
def test_a_locked_lead_refuses_a_second_lock_with_nowait_and_a_write_past_lock_timeout(tenant):
    lead = LeadFactory(tenant=tenant)

    def lock_nowait():
        return lead_lock(tenant=tenant, lead_id=lead.pk, nowait=True).pk

    def write_with_lock_timeout():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '200ms'")
        return Lead.objects.for_tenant(tenant).filter(pk=lead.pk).update(job_title="Someone else")

    with _held(tenant, lambda: lead_lock(tenant=tenant, lead_id=lead.pk)):
        assert _lock_not_available(_attempt(tenant, lock_nowait))
        assert _lock_not_available(_attempt(tenant, write_with_lock_timeout))
        skipped = _attempt(tenant, lambda: lead_lock(tenant=tenant, lead_id=lead.pk, skip_locked=True))
        assert skipped == {"value": None}

    assert _attempt(tenant, lock_nowait) == {"value": lead.pk}  # released with the holder's transaction
    assert _attempt(tenant, write_with_lock_timeout) == {"value": 1}


@pytest.mark.django_db(transaction=True)
def test_a_lead_refreshed_in_place_is_locked_too(tenant):
    lead = LeadFactory(tenant=tenant)
    with _held(tenant, lambda: lead_lock_refresh(lead=Lead.objects.for_tenant(tenant).get(pk=lead.pk))):
        assert _lock_not_available(_attempt(tenant, lambda: lead_lock(tenant=tenant, lead_id=lead.pk, nowait=True)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lock_all", [leads_lock, leads_lock_rows])
def test_several_leads_are_locked_in_ascending_id(tenant, lock_all):
    """While another connection holds the middle lead, `leads_lock` (or `leads_lock_rows`, which reads nothing)
    of all three has taken the first and waits for the middle one: a third connection finds the first and the
    middle locked and only the last free."""
    first, middle, last = sorted((LeadFactory(tenant=tenant) for _ in range(3)), key=lambda lead: lead.pk)
    ids = [last.pk, first.pk, middle.pk]  # asked for in any order

    def free():
        return [lead.pk for lead in (first, middle, last)
                if lead_lock(tenant=tenant, lead_id=lead.pk, skip_locked=True) is not None]

    with _held(tenant, lambda: lead_lock(tenant=tenant, lead_id=middle.pk)):
        waiting, result = _in_thread(lambda: _run_in_tenant(tenant, lambda: lock_all(tenant=tenant, lead_ids=ids)))
        for _ in range(200):
            if first.pk not in _attempt(tenant, free)["value"]:
                break
            threading.Event().wait(0.05)
        assert _attempt(tenant, free) == {"value": [last.pk]}
        assert waiting.is_alive()
    locked = _joined(waiting, result)["value"]
    if lock_all is leads_lock:
        assert [lead.pk for lead in locked] == [first.pk, middle.pk, last.pk]
    else:
        assert locked is None


def _run_in_tenant(tenant, work):
    with tenant_scope(tenant), transaction.atomic():
        return work()


# --- the one STALE message -----------------------------------------------------------------------------------


def _owned(tenant):
    owner = UserFactory()
    MembershipFactory(tenant=tenant, user=owner)
    return LeadFactory(tenant=tenant, owner=owner), owner


@pytest.mark.django_db
def test_a_stale_owner_is_refused_with_the_one_message(tenant):
    lead, owner = _owned(tenant)
    with pytest.raises(StaleLead) as refused:
        lead_lock(tenant=tenant, lead_id=lead.pk, expected_owner_id=owner.pk + 1)
    assert refused.value.message_dict == {"owner": [REASSIGNED]}
    with pytest.raises(StaleLead, match="reassigned meanwhile"):
        lead_lock(tenant=tenant, lead_id=lead.pk, expected_owner_id=None)  # it saw the lead unassigned

    assert lead_lock(tenant=tenant, lead_id=lead.pk, expected_owner_id=str(owner.pk)).owner == owner
    unassigned = LeadFactory(tenant=tenant)
    assert lead_lock(tenant=tenant, lead_id=unassigned.pk, expected_owner_id="").owner is None


@pytest.mark.django_db
def test_a_stale_version_is_refused_with_the_one_message(tenant):
    lead = LeadFactory(tenant=tenant)
    with pytest.raises(StaleLead) as refused:
        lead_lock(tenant=tenant, lead_id=lead.pk, expected_updated_at=lead.updated_at - timedelta(seconds=1))
    assert refused.value.message_dict == {"updated_at": [CHANGED]}
    assert refused.value.field == "updated_at"
    assert lead_lock(tenant=tenant, lead_id=lead.pk, expected_updated_at=lead.updated_at).pk == lead.pk


@pytest.mark.django_db
def test_another_tenants_lead_is_not_there(tenant, other_tenant):
    lead = LeadFactory(tenant=other_tenant)
    with pytest.raises(Lead.DoesNotExist):
        lead_lock(tenant=tenant, lead_id=lead.pk)
    assert leads_lock(tenant=tenant, lead_ids=[lead.pk]) == []


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["accept", "recycle", "log_call", "reassign", "edit"])
def test_every_stale_action_gets_the_one_message_from_the_helper(tenant, action):
    """The four variants and the edit are gone: each service refuses through `StaleLead`."""
    lead, owner = _owned(tenant)
    manager = UserFactory()
    MembershipFactory(tenant=tenant, user=manager, role="manager")
    actor, seen = Actor.for_user(manager), owner.pk + 1
    refused = {
        "accept": lambda: lead_accept(lead=lead, actor=actor, expected_owner_id=seen),
        "recycle": lambda: lead_recycle(lead=lead, actor=actor, reason="not now", expected_owner_id=seen),
        "log_call": lambda: activity_log(lead=lead, kind="call", actor=actor, expected_owner_id=seen),
        "reassign": lambda: lead_reassign(lead=lead, actor=actor, reason="moving", to_user=manager,
                                          expected_owner_id=seen),
        "edit": lambda: lead_update(lead=lead, data={"job_title": "CTO"}, actor=SYSTEM,
                                    expected_updated_at=lead.updated_at - timedelta(seconds=1)),
    }[action]
    with pytest.raises(StaleLead) as stale:
        refused()
    field = "updated_at" if action == "edit" else "owner"
    assert stale.value.message_dict == {field: [REASSIGNED if field == "owner" else CHANGED]}


# --- static: one lock, one OPEN_STATUSES, one STALE message ----------------------------------------------------


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" not in relative:
                yield relative, path.read_text()


def _receiver_root(node: ast.AST) -> ast.AST:
    """The start of a method chain: `Lead` in `Lead.objects.for_tenant(t).select_for_update()`."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        else:
            return node


def _bindings(scope: ast.AST) -> dict[str, list[ast.AST]]:
    """Names assigned in a function (or a module, outside its functions) and the expressions assigned to them."""
    found: dict[str, list[ast.AST]] = {}
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and isinstance(node.target, ast.Name) and node.value:
            found.setdefault(node.target.id, []).append(node.value)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
    return found


def _built_on_lead(expr: ast.AST, scopes: list[dict], seen: frozenset = frozenset()) -> bool:
    """Whether a queryset expression starts from the Lead model, directly or through local names."""
    root = _receiver_root(expr)
    if isinstance(root, ast.IfExp):
        return _built_on_lead(root.body, scopes, seen) or _built_on_lead(root.orelse, scopes, seen)
    if isinstance(root, ast.BoolOp):
        return any(_built_on_lead(value, scopes, seen) for value in root.values)
    if not isinstance(root, ast.Name):
        return False
    if root.id == "Lead":
        return True
    if root.id in seen:
        return False
    for bindings in scopes:
        if root.id in bindings:
            return any(_built_on_lead(value, scopes, seen | {root.id}) for value in bindings[root.id])
    return False


def _chain(node: ast.AST) -> list[ast.Call]:
    """The calls of a method chain, outermost first."""
    calls = []
    while isinstance(node, ast.Call | ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Call):
            calls.append(node)
            node = node.func
        else:
            node = node.value
    return calls


def _method(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def _lead_lock_in(chain: list[ast.Call], scopes: list[dict]) -> ast.Call | None:
    """The `select_for_update()` of a chain that locks lead rows: on a Lead queryset, or without `of=` in a
    chain that `select_related`s a lead (the joined lead row is locked too)."""
    joins_lead = any(_method(c) == "select_related" and any(
        isinstance(a, ast.Constant) and str(a.value).split("__")[0] == "lead" for a in c.args) for c in chain)
    for call in chain:
        if _method(call) != "select_for_update":
            continue
        if _built_on_lead(call.func.value, scopes) or (
                joins_lead and not any(keyword.arg == "of" for keyword in call.keywords)):
            return call
    return None


_ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+|KEY\s+)?(?:UPDATE|SHARE)\b(?:\s+OF\s+(\w+(?:\s*,\s*\w+)*))?", re.I)


def _sql_locks_leads(sql: str) -> bool:
    """Raw SQL naming leads_lead that takes row locks on it: a `FOR UPDATE` without `OF` (every table of its
    FROM), or one whose `OF` names leads_lead or an alias of it."""
    if not re.search(r"\bleads_lead\b", sql):
        return False
    aliases = {"leads_lead", *re.findall(r"\bleads_lead\s+(?:AS\s+)?(\w+)", sql, re.I)}
    for match in _ROW_LOCK.finditer(sql):
        if match.group(1) is None:
            return True
        if {name.strip() for name in match.group(1).split(",")} & aliases:
            return True
    return False


def lead_row_locks(source: str) -> list[int]:
    """Lines of a module that lock lead rows: `select_for_update()` on a Lead queryset (or joining a lead), or
    raw SQL `FOR UPDATE`/`FOR SHARE` naming leads_lead."""
    tree = ast.parse(source)
    inner = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)} | {
        id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute | ast.Subscript)}
    lines = []

    def visit(node: ast.AST, scopes: list[dict]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, [_bindings(child), *scopes])
                continue
            if isinstance(child, ast.Call) and id(child) not in inner:
                found = _lead_lock_in(_chain(child), scopes)
                if found is not None:
                    lines.append(found.lineno)
            if isinstance(child, ast.Constant) and isinstance(child.value, str) and _sql_locks_leads(child.value):
                lines.append(child.lineno)
            visit(child, scopes)

    visit(tree, [_bindings(tree)])
    return lines


@pytest.mark.parametrize("source", [
    "Lead.objects.for_tenant(t).select_for_update().get(pk=1)",
    "def f(t):\n    leads = Lead.objects.for_tenant(t)\n    return leads.filter(email=e).select_for_update().first()",
    "qs = Lead.objects.unscoped() if t is None else Lead.objects.for_tenant(t)\nqs.select_for_update()",
    "lead.refresh_from_db(from_queryset=Lead.objects.for_tenant(t).select_for_update())",
    "Enrollment.objects.for_tenant(t).select_for_update().select_related('lead__owner').first()",
    "cursor.execute('SELECT id FROM leads_lead WHERE id = %s FOR UPDATE', [pk])",
    "cursor.execute('SELECT l.id FROM leads_lead l JOIN leads_account a ON a.id = l.account_id FOR UPDATE OF a, l')",
])
def test_the_scan_finds_a_fifth_variant(source):
    assert lead_row_locks(source)


@pytest.mark.parametrize("source", [
    "SlaClock.objects.for_tenant(t).select_for_update(of=('self',)).select_related('policy').first()",
    "Enrollment.objects.for_tenant(t).select_for_update(of=('self',)).select_related('lead').first()",
    "def f(t):\n    due = SlaClock.objects.for_tenant(t)\n    return due.select_for_update(skip_locked=True)",
    "SQL = 'SELECT a.id FROM leads_account a WHERE a.id IN (SELECT l.account_id FROM leads_lead l) FOR UPDATE OF a'",
])
def test_the_scan_leaves_other_rows_alone(source):
    assert not lead_row_locks(source)


def test_no_module_but_the_helper_locks_lead_rows():
    strays = [f"{module}:{line}" for module, source in _sources() if module != HELPER
              for line in lead_row_locks(source)]
    assert not strays, "lock lead rows through leads/locks.py (the one lead lock, in the lock order):\n" + \
        "\n".join(strays)
    assert lead_row_locks((ROOT / HELPER).read_text())  # the scan sees the helper's own lock


def _assigned_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


OPEN = {"new", "contacted", "qualified"}


def _open_status_literals(tree: ast.AST) -> list[int]:
    """Lines of tuple/list/set literals of exactly the open statuses ("new", … or LeadStatus.NEW, …)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
            values = {e.value if isinstance(e, ast.Constant) else e.attr.lower() if isinstance(e, ast.Attribute)
                      else None for e in node.elts}
            if values == OPEN and len(node.elts) == len(OPEN):
                lines.append(node.lineno)
    return lines


def test_open_statuses_are_defined_once():
    definitions, literals = [], []
    for module, source in _sources():
        tree = ast.parse(source)
        definitions += [f"{module}: {name}" for name in _assigned_names(tree)
                        if re.fullmatch(r"(OPEN|QUEUE)_?\w*_STATUSES|OPEN_STATUSES", name)]
        literals += [f"{module}:{line}" for line in _open_status_literals(tree)]
    assert definitions == ["leads/models.py: OPEN_STATUSES"], definitions
    assert literals == ["leads/models.py:" + str(_open_status_literals(ast.parse(
        (ROOT / "leads/models.py").read_text()))[0])], literals


def test_the_stale_message_is_defined_once():
    definitions, texts = [], []
    for module, source in _sources():
        tree = ast.parse(source)
        definitions += [f"{module}: {name}" for name in _assigned_names(tree)
                        if re.fullmatch(r"STALE|STALE_\w*MESSAGE", name)]
        texts += [f"{module}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and re.search(r"meanwhile; reload it", node.value) and module != HELPER]
    assert definitions == [f"{HELPER}: STALE"], definitions
    assert not texts, texts
    assert STALE.format(change="reassigned") == REASSIGNED and STALE.format(change="changed") == CHANGED
