"""The routing engine: a tenant's compiled rule set, the strategies, and the rule walk that picks an owner.

`route_decide` walks the rules (named-account rules first, whatever their position; then by
position; fallback rules last). The first rule whose conditions match and whose strategy can
place the lead wins; a matched rule that cannot place (nobody eligible) records why and, when it
falls through, lets the next rule try. With `commit=False` nothing is locked or written (dry run).
"""
from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q

from leadmgmt.tenancy.models import Membership, Role, Team, Tenant
from leads.models import Account, Lead

from . import locks
from .conditions import ACCOUNT_FIELDS, CompiledCondition, compiled_match, conditions_compile
from .models import RoundRobinSlot, RoutingRule, RoutingRuleMember, Strategy, Territory
from .selectors import candidate_memberships, eligible_reps, ineligibility, open_lead_counts
from .territories import lead_facts, territory_match

ALL_ROLES = tuple(Role.values)


# --- the compiled rule set, cached per routing run ---------------------------------------------------

@dataclass
class RuleSpec:
    rule: RoutingRule
    compiled: tuple[CompiledCondition, ...]
    member_weights: dict[int, int]
    invalid: str = ""


@dataclass
class RuleSet:
    tenant_id: int
    rules: list[RuleSpec]
    territories: list[Territory]
    reads_account_score: bool = False  # a condition reads `account_score`: the lead's account is looked up


_run_cache: ContextVar[dict | None] = ContextVar("routing_run_cache", default=None)


@contextlib.contextmanager
def routing_run(*, hold_slots: bool = False) -> Iterator[None]:
    """Within this block each tenant's rule set is loaded and compiled once (bulk routing, benches).

    `hold_slots` (a batch of leads routed in one transaction, whose assignments are written together at
    the end): a round-robin pool's slots are locked once, on first use, and advanced in memory for every
    lead of the batch, then written back in one statement when the block ends; the reps' open-lead counts
    are read once per rep and include the leads given to them earlier in the batch (nothing else assigns
    while the batch is decided: its assignments are written together at the end). The slots stay locked
    until the transaction ends, so a concurrent batch waits and then continues the same strict rotation."""
    cache: dict = {}
    if hold_slots:
        cache[_HELD] = {"slots": {}, "dirty": {}, "given": Counter(), "open": {}}
    token = _run_cache.set(cache)
    try:
        yield
        if hold_slots:
            _held_slots_write(cache[_HELD]["dirty"])
    finally:
        _run_cache.reset(token)


_HELD = "held"


def _held() -> dict | None:
    cache = _run_cache.get()
    return None if cache is None else cache.get(_HELD)


def _held_slots_write(dirty: dict) -> None:
    """Write back the slots a held run advanced: one UPDATE … FROM (VALUES …)."""
    if not dirty:
        return
    rows = [(slot.pk, slot.served, slot.last_assigned_at, slot.seq) for slot in dirty.values()]
    values = ", ".join(["(%s, %s, %s::timestamptz, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {RoundRobinSlot._meta.db_table} s SET served = v.served, last_assigned_at = v.at, "  # noqa: S608
            f"seq = v.seq FROM (VALUES {values}) AS v(id, served, at, seq) WHERE s.id = v.id",
            [value for row in rows for value in row],
        )


def _open_counts_read(held: dict, tenant: Tenant, user_ids) -> None:
    """A held run's open-lead counts of these reps as stored, read once per rep (one query for the new ones)."""
    missing = sorted({int(i) for i in user_ids if (tenant.pk, int(i)) not in held["open"]})
    if missing:
        held["open"].update(((tenant.pk, user_id), n)
                            for user_id, n in open_lead_counts(tenant=tenant, user_ids=missing).items())


def _open_counts(ctx: Context, user_ids: list[int]) -> dict[int, int]:
    """Open leads per rep, counting those a held run has given them already (not written yet)."""
    held = _held()
    if held is None:
        return open_lead_counts(tenant=ctx.tenant, user_ids=user_ids)
    _open_counts_read(held, ctx.tenant, user_ids)
    given = held["given"] if ctx.commit else Counter()
    return {int(user_id): held["open"][(ctx.tenant.pk, int(user_id))] + given[int(user_id)] for user_id in user_ids}


def _rule_set_load(tenant: Tenant) -> RuleSet:
    rules = list(RoutingRule.objects.for_tenant(tenant).filter(is_active=True).select_related("team")
                 .order_by("is_fallback", "position", "id"))
    weights: dict[int, dict[int, int]] = {}
    for rule_id, user_id, weight in (RoutingRuleMember.objects.for_tenant(tenant)
                                     .order_by("rule_id", "id").values_list("rule_id", "user_id", "weight")):
        weights.setdefault(rule_id, {})[user_id] = weight
    specs = []
    for rule in rules:
        try:
            compiled, invalid = conditions_compile(rule.conditions), ""
        except ValueError as exc:
            compiled, invalid = (), f"invalid conditions ({exc})"
        specs.append(RuleSpec(rule=rule, compiled=compiled, member_weights=weights.get(rule.pk, {}), invalid=invalid))
    # Named-account rules run before every other rule (seed 003), whatever their position.
    specs.sort(key=lambda s: s.rule.strategy != Strategy.NAMED_ACCOUNT)
    territories = list(Territory.objects.for_tenant(tenant).filter(is_active=True).select_related("team")
                       .order_by("position", "id"))
    reads = any(c.field in ACCOUNT_FIELDS for spec in specs for c in spec.compiled)
    return RuleSet(tenant_id=tenant.pk, rules=specs, territories=territories, reads_account_score=reads)


def run_cached(key: tuple, load):
    """`load()`, remembered for the rest of the routing run (if one is active). Open-lead counts and
    round-robin slots are never cached: they change with every lead routed."""
    cache = _run_cache.get()
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


_cached = run_cached


def rule_set_get(tenant: Tenant) -> RuleSet:
    return _cached(("rules", tenant.pk), lambda: _rule_set_load(tenant))


def _members(ctx: Context, *, team: Team | None, user_ids: list[int] | None, roles) -> list[Membership]:
    key = ("members", ctx.tenant.pk, team.pk if team else None, tuple(user_ids or ()), tuple(roles or ()))
    return _cached(key, lambda: candidate_memberships(tenant=ctx.tenant, team=team, user_ids=user_ids, roles=roles))


# --- the decision --------------------------------------------------------------------------------------

@dataclass
class Context:
    tenant: Tenant
    at: datetime
    exclude: frozenset[int] = frozenset()
    commit: bool = True


@dataclass
class Outcome:
    """What one rule did: placed (owner, or deliberately Unassigned) or why it could not."""

    placed: bool
    why: str
    owner: Any = None
    team: Team | None = None
    candidates: list[int] = field(default_factory=list)


@dataclass
class Decision:
    owner: Any
    team: Team | None
    rule: RoutingRule | None
    strategy: str
    reason: str
    trace: list[dict]
    candidates: list[int] = field(default_factory=list)


def _value(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def _label(rule: RoutingRule, team: Team | None) -> str:
    return f"team {team.name}" if team is not None else f"the people of rule '{rule.name}'"


def _nobody_why(label: str, members: list[Membership], reasons: dict[int, str]) -> str:
    if not members:
        return f"{label[0].upper()}{label[1:]} has no reps with a routable role"
    counts = Counter(reasons.values())
    if len(counts) == 1:
        kind = next(iter(counts))
        if kind == "the current owner":
            return f"The only eligible rep of {label} is the current owner"
        return f"Every eligible rep of {label} is {kind}"
    return f"Nobody in {label} can take the lead: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def _reasons(ctx: Context, members: list[Membership], counts: dict[int, int], weights: dict[int, int]) -> dict:
    out = {}
    for m in members:
        why = "the current owner" if m.user_id in ctx.exclude else ineligibility(
            m, at=ctx.at, open_count=counts.get(m.user_id))
        if why is None and weights.get(m.user_id, 1) <= 0:
            why = "paused (weight 0)"
        if why is not None:
            out[m.user_id] = why
    return out


def _slots(ctx: Context, pool: str, members: list[Membership], weights: dict[int, int]) -> dict[int, Any]:
    ids = [m.user_id for m in members]
    held = _held()
    if ctx.commit and held is not None:
        slots = held["slots"].setdefault((ctx.tenant.pk, pool), {})
        missing = [user_id for user_id in ids if user_id not in slots]
        if missing:
            slots.update(locks.round_robin_slots_lock(tenant=ctx.tenant, pool=pool, user_ids=missing, weights=weights))
        return {user_id: slots[user_id] for user_id in ids}
    if ctx.commit:
        return locks.round_robin_slots_lock(tenant=ctx.tenant, pool=pool, user_ids=ids, weights=weights)
    existing = {s.user_id: s for s in RoundRobinSlot.objects.for_tenant(ctx.tenant).filter(pool=pool,
                                                                               user_id__in=ids)}
    level = min((s.served / max(weights.get(s.user_id, 1), 1) for s in existing.values()), default=0)
    for user_id in ids:
        existing.setdefault(user_id, RoundRobinSlot(tenant=ctx.tenant, pool=pool, user_id=user_id,
                                                    served=int(level * max(weights.get(user_id, 1), 1))))
    return existing


def _rotate(ctx: Context, *, pool: str, label: str, members: list[Membership], weights: dict[int, int],
            by_load: bool = False) -> Outcome:
    """Strict (weighted) rotation over the pool's slots, locked: the eligible rep with the smallest
    (served + 1) / weight wins, then the longest wait (last_assigned_at, never-assigned first), then the
    pool-wide pick order. Reps who fell more than one round behind (out of office, at capacity) are
    lifted to one round behind, so coming back never floods them. `by_load`: fewest open leads first."""
    slots = _slots(ctx, pool, members, weights)  # locked before counting: counts are current
    capped = [m.user_id for m in members if m.capacity is not None or by_load]
    counts = _open_counts(ctx, capped)
    reasons = _reasons(ctx, members, counts, weights)
    eligible = [m for m in members if m.user_id not in reasons]
    if not eligible:
        return Outcome(placed=False, why=_nobody_why(label, members, reasons))
    weight = {m.user_id: max(weights.get(m.user_id, 1), 1) for m in eligible}
    top = max(slots[m.user_id].served / weight[m.user_id] for m in eligible)
    served = {m.user_id: max(slots[m.user_id].served, math.ceil(top * weight[m.user_id]) - weight[m.user_id])
              for m in eligible}
    never = datetime.min.replace(tzinfo=ctx.at.tzinfo)

    def key(m: Membership):
        slot = slots[m.user_id]
        return ((counts.get(m.user_id, 0) if by_load else 0), (served[m.user_id] + 1) / weight[m.user_id],
                slot.last_assigned_at or never, slot.seq, m.user_id)

    chosen = min(eligible, key=key)
    held = _held()
    if ctx.commit and held is not None:
        slot = slots[chosen.user_id]
        slot.served, slot.last_assigned_at = served[chosen.user_id] + 1, ctx.at
        slot.seq = max(s.seq for s in held["slots"][(ctx.tenant.pk, pool)].values()) + 1
        held["dirty"][slot.pk] = slot
    elif ctx.commit:
        next_seq = max(s.seq for s in slots.values()) + 1
        RoundRobinSlot.objects.for_tenant(slots[chosen.user_id].tenant_id).filter(pk=slots[chosen.user_id].pk).update(
            served=served[chosen.user_id] + 1, last_assigned_at=ctx.at, seq=next_seq)
    how = "fewest open leads" if by_load else "next in rotation"
    return Outcome(placed=True, owner=chosen.user, why=f"{chosen.user.get_username()} is {how} in {label}",
                   candidates=[m.user_id for m in eligible])


def _targets(ctx: Context, spec: RuleSpec, *, team: Team | None = None) -> list[Membership]:
    rule = spec.rule
    team = team if team is not None else rule.team
    return _members(ctx, team=team, user_ids=list(spec.member_weights) or None, roles=rule.roles or None)


def _account_owner_id(ctx: Context, source: Any) -> tuple[int | None, str]:
    def accounts():  # built only when the run has not read the account yet (a queryset costs as much as the walk)
        return Account.objects.for_tenant(ctx.tenant).values_list("owner_id", "domain")

    account_id = _value(source, "account_id")
    domain = (_value(source, "company_domain") or "").strip().lower()
    if account_id:
        row = _cached(("account", ctx.tenant.pk, account_id), lambda: accounts().filter(pk=account_id).first())
    elif domain:
        row = _cached(("domain", ctx.tenant.pk, domain), lambda: accounts().filter(domain=domain).first())
    else:
        return None, "the lead has no company domain"
    if row is None:
        return None, f"no account for {domain or 'the lead'}"
    if row[0] is None:
        return None, f"account {row[1]} has no owner"
    return row[0], row[1]


def account_scores_attach(*, tenant: Tenant, leads: list[Lead]) -> None:
    """Give each lead of a batch its account's score (`lead.account_score`, None without an account or
    score) in one query, when the tenant's rules read it: `route_decide` then looks nothing up per lead."""
    if not leads or not rule_set_get(tenant).reads_account_score:
        return
    account_ids = {lead.account_id for lead in leads if lead.account_id}
    scores = dict(Account.objects.for_tenant(tenant).filter(pk__in=account_ids).values_list("pk", "score")
                  ) if account_ids else {}
    for lead in leads:
        lead.account_score = scores.get(lead.account_id)


def _account_facts(ctx: Context, source: Any) -> dict | None:
    """{"account_score": …} of a lead not given one (`account_scores_attach`): its cached account's, else one
    look-up per account and routing run; a dict of hypothetical values may name it or an account_id."""
    if isinstance(source, dict):
        if "account_score" in source:
            return None
        account_id = source.get("account_id")
    else:
        if "account_score" in vars(source):
            return None
        account_id = source.account_id
        if account_id and Lead.account.is_cached(source) and source.account is not None:
            return {"account_score": source.account.score}
    if not account_id:
        return {"account_score": None}
    score = _cached(("account_score", ctx.tenant.pk, account_id), lambda: (
        Account.objects.for_tenant(ctx.tenant).filter(pk=account_id).values_list("score", flat=True).first()))
    return {"account_score": score}


def _named_account(ctx: Context, spec: RuleSpec, source: Any) -> Outcome | str:
    owner_id, domain = _account_owner_id(ctx, source)
    if owner_id is None:
        return domain  # the rule does not apply to this lead
    members = _members(ctx, team=None, user_ids=[owner_id], roles=spec.rule.roles or ALL_ROLES)
    capped = [m.user_id for m in members if m.capacity is not None]
    reasons = _reasons(ctx, members, _open_counts(ctx, capped), {})
    if not members:
        return Outcome(placed=False, why=f"The owner of account {domain} is not a routable member of this tenant")
    if reasons:
        return Outcome(placed=False, why=f"The owner of account {domain} is {reasons[owner_id]}")
    return Outcome(placed=True, owner=members[0].user, why=f"{members[0].user.get_username()} owns account {domain}",
                   candidates=[owner_id])


def routing_run_prefetch(*, tenant: Tenant, sources: list) -> None:
    """Inside a routing run about to route `sources` (a batch of leads), read at once what the named-account
    rules would otherwise ask lead by lead: the accounts of every lead (by account, else by company domain)
    in one query, the memberships of their owners in one query per named-account rule's roles, and, in a
    held run, the owners' open-lead counts in one query. Decisions stay those of lead-by-lead routing."""
    cache = _run_cache.get()
    if cache is None:
        return
    named = [spec for spec in rule_set_get(tenant).rules
             if spec.rule.strategy == Strategy.NAMED_ACCOUNT and not spec.invalid]
    if not named:
        return
    account_ids, domains = set(), set()
    for source in sources:
        if account_id := _value(source, "account_id"):
            account_ids.add(account_id)
        elif domain := (_value(source, "company_domain") or "").strip().lower():
            domains.add(domain)
    if not account_ids and not domains:
        return
    rows = (Account.objects.for_tenant(tenant).filter(Q(pk__in=account_ids) | Q(domain__in=domains))
            .values_list("pk", "owner_id", "domain"))
    by_id, by_domain = {}, {}
    for pk, owner_id, domain in rows:
        by_id[pk] = by_domain[domain] = (owner_id, domain)
    for account_id in account_ids:
        cache.setdefault(("account", tenant.pk, account_id), by_id.get(account_id))
    for domain in domains:
        cache.setdefault(("domain", tenant.pk, domain), by_domain.get(domain))
    owner_ids = sorted({row[0] for row in by_id.values() if row[0] is not None})
    if not owner_ids:
        return
    capped = set()
    for roles in dict.fromkeys(tuple(spec.rule.roles or ALL_ROLES) for spec in named):
        members = {m.user_id: m for m in candidate_memberships(tenant=tenant, user_ids=owner_ids, roles=roles)}
        for owner_id in owner_ids:
            cache.setdefault(("members", tenant.pk, None, (owner_id,), roles),
                             [members[owner_id]] if owner_id in members else [])
        capped.update(user_id for user_id, m in members.items() if m.capacity is not None)
    held = cache.get(_HELD)
    if held is not None and capped:
        _open_counts_read(held, tenant, capped)


def _place(ctx: Context, rule_set: RuleSet, spec: RuleSpec, source: Any) -> Outcome | str:
    """The rule's strategy for one lead; a string means the rule does not apply (not matched)."""
    rule, strategy = spec.rule, spec.rule.strategy
    if strategy == Strategy.NAMED_ACCOUNT:
        return _named_account(ctx, spec, source)
    if strategy == Strategy.UNASSIGNED:
        return Outcome(placed=True, team=rule.team, why=f"Rule '{rule.name}' sends these leads to the Unassigned queue")
    if strategy == Strategy.TERRITORY:
        territory = territory_match(rule_set.territories, source)
        if territory is None:
            return "no territory matches the lead's country, industry and company size"
        members = _targets(ctx, spec, team=territory.team)
        outcome = _rotate(ctx, pool=f"territory:{territory.pk}", members=members, weights={},
                          label=f"team {territory.team.name} (territory {territory.name})")
        outcome.team = territory.team
        return outcome
    members = _targets(ctx, spec)
    label = _label(rule, rule.team)
    if strategy == Strategy.DIRECT:
        ids = [m.user_id for m in members]
        reasons = _reasons(ctx, members, _open_counts(ctx, ids), {})
        order = list(spec.member_weights) or ids
        chosen = next((m for uid in order for m in members if m.user_id == uid and uid not in reasons), None)
        if chosen is None:
            return Outcome(placed=False, why=_nobody_why(label, members, reasons))
        return Outcome(placed=True, owner=chosen.user, team=rule.team, candidates=[chosen.user_id],
                       why=f"Rule '{rule.name}' routes these leads to {chosen.user.get_username()}")
    if strategy == Strategy.WEIGHTED_ROUND_ROBIN:
        weights = {m.user_id: spec.member_weights.get(m.user_id, m.routing_weight) for m in members}
    else:
        weights = {m.user_id: spec.member_weights.get(m.user_id, 1) and 1 for m in members}
    outcome = _rotate(ctx, pool=f"rule:{rule.pk}", label=label, members=members, weights=weights,
                      by_load=strategy == Strategy.CAPACITY)
    outcome.team = rule.team
    return outcome


def route_decide(*, tenant: Tenant, source: Lead | dict, at: datetime, exclude_user_ids=(),
                 commit: bool = True) -> Decision:
    """Walk the tenant's rules for one lead (or a dict of lead values) and decide its owner.

    With commit=True the winning round-robin slot is locked and advanced (call inside the routing
    transaction, after the lead's row is locked); with commit=False nothing is locked or written.
    """
    rule_set = rule_set_get(tenant)
    ctx = Context(tenant=tenant, at=at, exclude=frozenset(int(i) for i in exclude_user_ids if i), commit=commit)
    trace: list[dict] = []
    blocked: list[str] = []
    facts = _account_facts(ctx, source) if rule_set.reads_account_score else None
    for spec in rule_set.rules:
        rule = spec.rule
        entry = {"position": rule.position, "name": rule.name, "rule_id": rule.pk, "strategy": rule.strategy,
                 "fallback": rule.is_fallback, "matched": False, "placed": False}
        trace.append(entry)
        if spec.invalid:
            entry["why"] = spec.invalid
            continue
        matched, why = compiled_match(source, spec.compiled, facts)
        if not matched:
            entry["why"] = why
            continue
        outcome = _place(ctx, rule_set, spec, source)
        if isinstance(outcome, str):
            entry["why"] = f"{why}, but {outcome}"
            continue
        entry.update(matched=True, placed=outcome.placed, why=outcome.why)
        if outcome.placed:
            held = _held()
            if commit and held is not None and outcome.owner is not None:
                held["given"][outcome.owner.pk] += 1
            return Decision(owner=outcome.owner, team=outcome.team, rule=rule, strategy=rule.strategy,
                            reason=outcome.why, trace=trace, candidates=outcome.candidates)
        blocked.append(outcome.why)
        if not rule.fall_through:
            entry["why"] += " (the rule does not fall through)"
            return Decision(owner=None, team=rule.team, rule=rule, strategy=rule.strategy, reason=outcome.why,
                            trace=trace)
    reason = blocked[0] if blocked else ("No routing rules are set up" if not trace
                                         else "No routing rule matches this lead")
    return Decision(owner=None, team=None, rule=None, strategy=Strategy.UNASSIGNED, reason=reason, trace=trace)


# --- SDR → AE handoff ---------------------------------------------------------------------------------


def account_of_lead(lead: Lead) -> Account | None:
    """The lead's account: the linked one, else the one of its company domain, else None."""
    accounts = Account.objects.for_tenant(lead.tenant_id)
    if lead.account_id:
        return accounts.filter(pk=lead.account_id).first()
    domain = (lead.company_domain or "").strip().lower()
    return accounts.filter(domain=domain).first() if domain else None


def _ae_rotate(*, lead: Lead, pool: str, members: list[Membership], now: datetime) -> Membership:
    """The next AE of a handoff pool: fewest handoffs served, then the longest wait (locked slots)."""
    slots = locks.round_robin_slots_lock(tenant=lead.tenant, pool=pool, user_ids=[m.user_id for m in members])
    never = datetime.min.replace(tzinfo=now.tzinfo)
    chosen = min(members, key=lambda m: (slots[m.user_id].served, slots[m.user_id].last_assigned_at or never,
                                         slots[m.user_id].seq, m.user_id))
    slot = slots[chosen.user_id]
    next_seq = max(s.seq for s in slots.values()) + 1
    type(slot).objects.for_tenant(slot.tenant_id).filter(pk=slot.pk).update(served=slot.served + 1, last_assigned_at=now, seq=next_seq)
    return chosen


def handoff_ae_pick(*, lead: Lead, now: datetime) -> tuple[Membership | None, str, str]:
    """(AE membership or None, strategy, why) for an SDR → AE handoff (seed 003).

    The AE is the owner of the lead's named account when that owner is an AE who can take leads; else an
    AE of the first matching territory's team, in strict rotation (`handoff:territory:<id>` round-robin
    pool); else, for tenants without territories, the AE with the fewest open leads. None: nobody can
    take it, and `why` says so (the lead then waits in Unassigned)."""
    tenant = lead.tenant
    account = account_of_lead(lead)
    if account is not None and account.owner_id is not None:
        named = eligible_reps(tenant=tenant, user_ids=[account.owner_id], roles=[Role.AE], at=now)
        if named:
            return named[0], Strategy.NAMED_ACCOUNT, f"{named[0].user.get_username()} owns account {account.domain}"
    territories = list(Territory.objects.for_tenant(tenant).filter(is_active=True)
                       .select_related("team").order_by("position", "id"))
    territory = territory_match(territories, lead)
    if territory is not None:
        aes = eligible_reps(tenant=tenant, team=territory.team, roles=[Role.AE], at=now)
        if aes:
            chosen = _ae_rotate(lead=lead, pool=f"handoff:territory:{territory.pk}", members=aes, now=now)
            return (chosen, Strategy.TERRITORY,
                    f"{chosen.user.get_username()} is next among the AEs of territory {territory.name}")
        return None, Strategy.TERRITORY, f"No AE of territory {territory.name} ({territory.team.name}) can take leads"
    if territories:
        return None, Strategy.TERRITORY, (f"No territory covers this lead ({lead_facts(lead)}) and its account "
                                          "has no available AE owner")
    aes = eligible_reps(tenant=tenant, roles=[Role.AE], at=now)
    if not aes:
        return None, Strategy.CAPACITY, "No AE can take leads (none available, all out of office or at capacity)"
    counts = open_lead_counts(tenant=tenant, user_ids=[m.user_id for m in aes])
    chosen = min(aes, key=lambda m: (counts[m.user_id], m.user_id))
    return chosen, Strategy.CAPACITY, f"{chosen.user.get_username()} has the fewest open leads among the AEs"
