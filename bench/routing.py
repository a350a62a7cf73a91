"""Routing benchmark: --leads leads through a 50-rule set (leads/s), and round-robin fairness runs.

Creates a throwaway database on the DATABASE_URL server (dropped afterwards). Throughput: a tenant
with 50 active rules (49 with varied conditions that almost no lead meets: a named account first,
then country/industry/regex/score/campaign/attribute rules, then a round-robin catch-all over a
team of 10 SDRs) and --leads leads generated in SQL. Two figures: the rule walk alone (conditions
and the strategy's pick, nothing written) and the full `lead_route` (lead locked, round-robin slot
advanced, Assignment, audit event, SLA clock, notification), in transactions of --batch leads.
Fairness (issue 4): 8 concurrent workers (threads, each with its own database connection) route
800 leads to a team of 4 → exactly 200 each; 1,000 leads imported and routed in one transaction →
250 each; a rep joining a team of 3 mid-rotation gets one lead per round from the start.

    python -m leadmgmt.embedded exec -- python bench/routing.py --leads 100000
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import uuid
from collections import Counter

from _common import Timer, django_setup, maintenance, require_services, say, throwaway_database

COUNTRIES = ["US", "United States", "Canada", "United Kingdom", "Germany", "France", "India", "Brazil", "Japan", ""]
INDUSTRIES = ["Software", "SaaS", "Financial Services", "Healthcare", "Retail", "Manufacturing", "Education", ""]
SOURCES = ["web_form", "web_form", "paid_search", "event", "referral", "chat"]
TITLES = ["CEO", "VP Sales", "Marketing Manager", "Software Engineer", "Director of IT", "Analyst", ""]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000, help="leads routed through the 50-rule set (default 100,000)")
    parser.add_argument("--batch", type=int, default=500, help="leads per routing transaction (default 500)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.leads < 1 or args.batch < 1:
        parser.error("--leads and --batch must be at least 1")
    return args


def _array(values: list[str]) -> str:
    return "(ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[])"


def _pick(values: list[str], column: str) -> str:
    return f"{_array(values)}[1 + floor({column} * {len(values)})::int]"


def leads_generate(*, tenant_id: int, n: int, prefix: str) -> None:
    from django.db import connection, transaction

    sql = (
        "INSERT INTO leads_lead (id, tenant_id, email, first_name, last_name, phone, job_title, company, "
        "company_domain, company_size, industry, country, source, utm_source, utm_medium, utm_campaign, utm_term, "
        "utm_content, campaign, marketing_consent, consent_source, is_personal_email, status, stage, attributes, "
        "edited_fields, band, lead_class, lead_class_reason, archive_reason, is_hot, score, created_at, updated_at) "
        f"SELECT gen_random_uuid(), %(tenant)s, %(prefix)s || g.i || '@company' || mod(g.i, 5000) || '.com', 'Bench', "
        f"'Lead ' || g.i, '', {_pick(TITLES, 'random()')}, 'Company', 'company' || mod(g.i, 5000) || '.com', "
        f"(random() * 5000)::int, {_pick(INDUSTRIES, 'random()')}, {_pick(COUNTRIES, 'random()')}, "
        f"{_pick(SOURCES, 'random()')}, '', '', '', '', '', 'Always-on', false, '', false, 'new', 'raw', "
        "jsonb_build_object('seats', (random() * 100)::int), '[]'::jsonb, 'warm', '', '', '', false, "
        "(random() * 70)::int, now(), now() FROM generate_series(1, %(n)s) AS g(i)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.17)")
        cursor.execute(sql, {"tenant": tenant_id, "n": n, "prefix": prefix})
    if not connection.in_atomic_block:  # fresh statistics, as autovacuum would have after an import
        maintenance("VACUUM ANALYZE leads_lead")


def _reps(tenant, team, n: int) -> list:
    from django.contrib.auth import get_user_model

    from leadmgmt.tenancy.models import Membership, Role

    users = []
    for _ in range(n):
        user = get_user_model().objects.create(username=f"rep-{uuid.uuid4().hex[:10]}@bench.test")
        Membership.objects.unscoped().create(tenant=tenant, user=user, role=Role.SDR, team=team)
        users.append(user)
    return users


def _tenant(label: str, reps: int):
    from leadmgmt.tenancy.models import Team, Tenant
    from routing.models import RoutingRule, Strategy

    tenant = Tenant.objects.create(slug=f"bench-routing-{label}-{uuid.uuid4().hex[:6]}", name=f"Routing bench {label}")
    team = Team.objects.unscoped().create(tenant=tenant, name="SDRs")
    users = _reps(tenant, team, reps)
    rule = RoutingRule.objects.unscoped().create(tenant=tenant, position=1000, name="Round-robin", team=team,
                                                 strategy=Strategy.ROUND_ROBIN)
    return tenant, team, users, rule


def rules_create(*, tenant, team) -> None:
    """49 rules most leads do not meet, with every operator, in front of the round-robin catch-all."""
    from routing.models import RoutingRule, Strategy

    kinds = [
        lambda i: [{"field": "country", "operator": "equals", "value": f"Atlantis {i}"}],
        lambda i: [{"field": "industry", "operator": "in_list", "value": [f"Industry {i}", f"Sector {i}"]}],
        lambda i: [{"field": "job_title", "operator": "regex", "value": rf"^chief \w+ officer {i}$"}],
        lambda i: [{"field": "score", "operator": "range", "value": {"min": 90 + i % 10}}],
        lambda i: [{"field": "campaign", "operator": "contains", "value": f"spring-{i}"}],
        lambda i: [{"field": "attributes.seats", "operator": "range", "value": {"min": 1000 + i}}],
        lambda i: [{"field": "source", "operator": "equals", "value": "web_form"},
                   {"field": "product_interest", "operator": "not_blank"}],
        lambda i: [{"field": "is_hot", "operator": "is_true"}, {"field": "country", "operator": "not_in_list",
                                                                 "value": ["US", "Canada"]}],
    ]
    rules = [RoutingRule(tenant=tenant, position=1, name="Named accounts", strategy=Strategy.NAMED_ACCOUNT)]
    for i in range(48):
        rules.append(RoutingRule(tenant=tenant, position=10 + i, name=f"Rule {i}", team=team,
                                 strategy=[Strategy.ROUND_ROBIN, Strategy.CAPACITY][i % 2],
                                 conditions=kinds[i % len(kinds)](i)))
    RoutingRule.objects.unscoped().bulk_create(rules)


def throughput(args: argparse.Namespace) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from leads.models import Lead
    from routing.services.assign import ROUTING_AGENT, lead_route
    from routing.strategies import route_decide, routing_run

    tenant, team, users, rr = _tenant("throughput", 10)
    rules_create(tenant=tenant, team=team)
    say(f"generating {args.leads:,} leads …")
    leads_generate(tenant_id=tenant.pk, n=args.leads, prefix="t")
    ids = list(Lead.objects.unscoped().filter(tenant=tenant).order_by("id").values_list("id", flat=True))
    out = {"rules": 50, "leads": len(ids)}

    say("rule walk only (50 rules, nothing written) …")
    with Timer() as t, routing_run():
        rule_names = Counter()
        for start in range(0, len(ids), args.batch):
            for lead in Lead.objects.unscoped().filter(pk__in=ids[start:start + args.batch]):
                rule_names[route_decide(tenant=tenant, source=lead, at=timezone.now(), commit=False).rule.name] += 1
    out["decide"] = {"seconds": t.seconds, "rate": len(ids) / t.seconds, "by_rule": dict(rule_names.most_common(5))}

    say(f"full lead_route (assign, history, audit, SLA clock, notification) in transactions of {args.batch} …")
    with Timer() as t:
        for start in range(0, len(ids), args.batch):
            with transaction.atomic(), routing_run():
                for lead in Lead.objects.unscoped().filter(pk__in=ids[start:start + args.batch]).order_by("id"):
                    lead.tenant = tenant
                    lead_route(lead=lead, actor=ROUTING_AGENT, trigger="capture")
    per_rep = Counter(Lead.objects.unscoped().filter(tenant=tenant).values_list("owner_id", flat=True))
    out["route"] = {"seconds": t.seconds, "rate": len(ids) / t.seconds,
                    "spread": [min(per_rep.values()), max(per_rep.values())], "unassigned": per_rep.get(None, 0)}
    return out


def _counts(tenant, users) -> list[int]:
    from leads.models import Lead

    owned = Counter(Lead.objects.unscoped().filter(tenant=tenant).values_list("owner_id", flat=True))
    return [owned.get(u.pk, 0) for u in users]


def fairness_concurrent() -> dict:
    from django.db import connection

    from leadmgmt.tenancy.context import tenant_scope
    from leads.models import Lead
    from routing.services.assign import ROUTING_AGENT, lead_route

    tenant, _team, users, _rule = _tenant("concurrent", 4)
    leads_generate(tenant_id=tenant.pk, n=800, prefix="c")
    leads = list(Lead.objects.unscoped().filter(tenant=tenant).order_by("id"))
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(chunk):
        try:
            barrier.wait()
            with tenant_scope(tenant):  # as the routing task runs it
                for lead in chunk:
                    lead_route(lead=lead, actor=ROUTING_AGENT, trigger="capture")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(leads[i::8],)) for i in range(8)]
    with Timer() as t:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    counts = _counts(tenant, users)
    return {"counts": counts, "ok": counts == [200] * 4 and not errors, "errors": errors[:3], "seconds": t.seconds}


def fairness_bulk() -> dict:
    from django.db import transaction

    from leads.models import Lead
    from routing.services.assign import ROUTING_AGENT, lead_route
    from routing.strategies import routing_run

    tenant, _team, users, _rule = _tenant("bulk", 4)
    with Timer() as t, transaction.atomic(), routing_run():
        leads_generate(tenant_id=tenant.pk, n=1000, prefix="b")
        for lead in Lead.objects.unscoped().filter(tenant=tenant).order_by("id"):
            lead_route(lead=lead, actor=ROUTING_AGENT, trigger="capture")
    counts = _counts(tenant, users)
    return {"counts": counts, "ok": counts == [250] * 4, "seconds": t.seconds}


def fairness_joiner() -> dict:
    from leads.models import Lead
    from routing.services.assign import ROUTING_AGENT, lead_route

    tenant, team, users, _rule = _tenant("joiner", 3)
    leads_generate(tenant_id=tenant.pk, n=70, prefix="j")
    leads = list(Lead.objects.unscoped().filter(tenant=tenant).order_by("id"))
    for lead in leads[:30]:
        lead_route(lead=lead, actor=ROUTING_AGENT, trigger="capture")
    before = _counts(tenant, users)
    joiner = _reps(tenant, team, 1)[0]
    picks = [lead_route(lead=lead, actor=ROUTING_AGENT, trigger="capture").owner_id for lead in leads[30:]]
    after = Counter(picks)
    counts = [after.get(u.pk, 0) for u in [*users, joiner]]
    first_round = picks[:4].count(joiner.pk)
    return {"before": before, "after_join": counts, "joiner_first_round": first_round,
            "ok": counts == [10, 10, 10, 10] and first_round == 1}


def report(out: dict) -> str:
    tp = out["throughput"]
    rows = [
        f"{'routing, 50 rules':<58}{'leads':>10}{'seconds':>10}{'leads/s':>10}",
        f"{'rule walk only (conditions + pick, nothing written)':<58}{tp['leads']:>10,}{tp['decide']['seconds']:>10.2f}"
        f"{tp['decide']['rate']:>10,.0f}",
        f"{'full lead_route (lock, slot, history, audit, SLA, notify)':<58}{tp['leads']:>10,}"
        f"{tp['route']['seconds']:>10.2f}{tp['route']['rate']:>10,.0f}",
        f"winning rules (rule walk): {tp['decide']['by_rule']}",
        f"round-robin spread over 10 reps after the full run: min {tp['route']['spread'][0]:,}, "
        f"max {tp['route']['spread'][1]:,}, unassigned {tp['route']['unassigned']:,}",
    ]
    c, b, j = out["concurrent"], out["bulk"], out["joiner"]
    rows.append(f"fairness: 8 concurrent workers, 800 leads, team of 4 -> per rep {c['counts']} "
                f"({'exactly 200 each' if c['ok'] else 'NOT 200 each'}; {c['seconds']:.1f}s)"
                + (f" errors: {c['errors']}" if c["errors"] else ""))
    rows.append(f"fairness: 1,000 leads imported and routed in one transaction -> per rep {b['counts']} "
                f"({'exactly 250 each' if b['ok'] else 'NOT 250 each'})")
    rows.append(f"fairness: team of 3 after 30 leads {j['before']}; a 4th rep joins; next 40 leads -> {j['after_join']}, "
                f"joiner got {j['joiner_first_round']} of the first 4 ({'fair' if j['ok'] else 'UNFAIR'})")
    rows.append("fairness checks passed" if out["fair"] else "FAIRNESS CHECK FAILED")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("routing.py")
    with throwaway_database("bench_routing") as url:
        django_setup(url)
        from leadmgmt.celery import app

        app.conf.task_always_eager = False
        out = {"throughput": throughput(args), "concurrent": fairness_concurrent(), "bulk": fairness_bulk(),
               "joiner": fairness_joiner()}
        out["fair"] = all(out[k]["ok"] for k in ("concurrent", "bulk", "joiner"))
    if args.json:
        print(json.dumps(out, default=str))
    else:
        say(report(out))
    return 0 if out["fair"] else 1


if __name__ == "__main__":
    sys.exit(main())
