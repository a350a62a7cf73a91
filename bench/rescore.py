"""Re-score benchmark: publishing a changed scoring model re-scores every lead of a tenant; time it against a plain UPDATE.

Creates a throwaway database on the DATABASE_URL server (dropped afterwards, so repeated runs do
not accumulate), a tenant through `tenant_create` (it gets seed 002's default model), and
--leads leads with --signals-per-lead signals each, generated in SQL (`INSERT … SELECT …
generate_series`). Every lead is scored once with the default model, as in production; then a
draft changes some weights and adds a rule, is published with rescore=False, and the full
re-score `leads_score(cause="model_publish")` is timed. The floor is a plain UPDATE rewriting the
same columns of the same rows on the same data; both run after VACUUM and a CHECKPOINT.
Targets (issue 3): the full re-score of 1,000,000 leads within 60 s and within 3x of the floor.

    python -m leadmgmt.embedded exec -- python bench/rescore.py --leads 1000000
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid

from _common import Timer, django_setup, maintenance, require_services, say, throwaway_database

TARGET_SECONDS_PER_MILLION = 60.0
TARGET_RATIO = 3.0
FLOOR_SQL = (
    "UPDATE leads_lead SET score = score, fit_score = fit_score, engagement_score = engagement_score, band = band, "
    "lead_class = lead_class, lead_class_reason = lead_class_reason, score_breakdown = score_breakdown, "
    "scored_at = scored_at WHERE tenant_id = %s"
)

JOB_TITLES = [
    "CEO", "Chief Marketing Officer", "CTO", "Founder", "Co-Founder & CEO", "President", "Owner",
    "VP Sales", "VP of Marketing", "Senior Vice President, Operations", "Director of Engineering",
    "Marketing Director", "Head of Growth", "Head of Demand Generation", "Marketing Manager", "Sales Manager",
    "Engineering Manager", "Team Lead", "Product Manager", "Software Engineer", "Senior Software Engineer",
    "Data Analyst", "Account Executive", "Marketing Specialist", "Consultant", "Designer", "Student", "Intern",
    "", "", "",
]
INDUSTRIES = [
    "Software", "Software", "SaaS", "Technology", "Information Technology", "Financial Services", "Fintech",
    "Healthcare", "Retail", "Manufacturing", "Education", "Consulting", "Media", "Telecommunications",
    "Government", "Non-profit", "", "",
]
COUNTRIES = ["US", "United States", "USA", "US", "Canada", "United Kingdom", "Germany", "France", "India",
             "Brazil", "Australia", "Netherlands", "Japan", "", ""]
COMPANY_SIZES = [None, None, 3, 8, 15, 25, 45, 80, 120, 250, 400, 650, 1200, 5000, 20000]
SOURCES = ["web_form", "web_form", "web_form", "paid_search", "event", "referral", "chat", "import"]
UTM_SOURCES = ["google", "linkedin", "newsletter", "facebook", "", "", ""]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de"]
STUDENT_MAIL = ["stanford.edu", "mit.edu", "ox.ac.uk", "student.uva.nl", "unimelb.edu.au"]
COMPETITOR_MAIL = ["rivalcrm.com", "competitor.io", "leadcompetitor.com"]
STATUSES = ["new"] * 12 + ["contacted", "contacted", "qualified", "unqualified", "recycled", "archived"]
# Weighted like a real tracker's stream: many page views, opens and blog reads; few demo requests.
SIGNAL_TYPES = (
    ["page_view"] * 8 + ["blog_post_view"] * 6 + ["email_open"] * 8 + ["email_click"] * 4
    + ["product_page_view"] * 4 + ["pricing_page_view"] * 3 + ["multi_page_session"] * 3
    + ["whitepaper_download"] * 2 + ["case_study_download", "webinar_registration", "webinar_attendance",
                                     "demo_request", "contact_form", "free_trial_signup", "unsubscribe"]
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads in the bench tenant (default 1,000,000)")
    parser.add_argument("--signals-per-lead", type=int, default=5, help="signals per lead (default 5)")
    parser.add_argument("--agent", action="store_true",
                        help="re-score as the Scoring Agent (one audit event per changed lead) instead of as the "
                             "publishing user (what `scoring_model_publish` enqueues)")
    parser.add_argument("--explain", action="store_true",
                        help="also print EXPLAIN (ANALYZE, BUFFERS) of the re-score statement (runs it once more, "
                             "rolled back)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--predictive", action="store_true",
                        help="then close 20%% of the leads (outcomes), train the learned model (timed) and re-score "
                             "every lead with it (timed), to compare with the re-score without it")
    args = parser.parse_args(argv)
    if args.leads < 1 or args.signals_per_lead < 0:
        parser.error("--leads must be at least 1 and --signals-per-lead at least 0")
    return args


def _sql_array(values: list) -> str:
    def literal(v):
        if v is None:
            return "NULL"
        if isinstance(v, int):
            return str(v)
        return "'" + str(v).replace("'", "''") + "'"

    kind = "int" if any(isinstance(v, int) for v in values) else "text"
    return f"(ARRAY[{', '.join(literal(v) for v in values)}]::{kind}[])"


def _pick(values: list, random_column: str) -> str:
    return f"{_sql_array(values)}[1 + floor({random_column} * {len(values)})::int]"


def generate(*, tenant_id: int, form_id: int, leads: int, signals_per_lead: int) -> None:
    """Leads and their signals, set-based; deterministic thanks to setseed()."""
    from django.db import connection, transaction

    domain = (
        f"CASE WHEN r.r_dom < 0.70 THEN 'company' || floor(r.r_n * 40000)::int || '.com' "
        f"WHEN r.r_dom < 0.88 THEN {_pick(FREE_MAIL, 'r.r_n')} "
        f"WHEN r.r_dom < 0.95 THEN {_pick(STUDENT_MAIL, 'r.r_n')} "
        f"ELSE {_pick(COMPETITOR_MAIL, 'r.r_n')} END"
    )
    leads_sql = (
        "INSERT INTO leads_lead (id, tenant_id, form_id, email, first_name, last_name, phone, job_title, company, "
        "company_domain, company_size, industry, country, source, utm_source, utm_medium, utm_campaign, utm_term, "
        "utm_content, campaign, marketing_consent, consent_source, is_personal_email, status, stage, attributes, "
        "edited_fields, band, lead_class, lead_class_reason, archive_reason, is_hot, last_activity_at, created_at, "
        "updated_at) "
        "SELECT gen_random_uuid(), %(tenant)s, %(form)s, 'lead' || g.i || '@' || g.domain, 'Bench', 'Lead ' || g.i, "
        f"'', {_pick(JOB_TITLES, 'g.r_title')}, "
        "CASE WHEN g.r_dom < 0.70 OR g.r_dom >= 0.95 THEN initcap(split_part(g.domain, '.', 1)) ELSE '' END, "
        "CASE WHEN g.r_dom < 0.70 OR g.r_dom >= 0.95 THEN g.domain ELSE '' END, "
        f"{_pick(COMPANY_SIZES, 'g.r_size')}, {_pick(INDUSTRIES, 'g.r_ind')}, {_pick(COUNTRIES, 'g.r_country')}, "
        f"{_pick(SOURCES, 'g.r_src')}, {_pick(UTM_SOURCES, 'g.r_utm')}, '', '', '', '', '', g.r_consent < 0.6, '', "
        f"(g.r_dom >= 0.70 AND g.r_dom < 0.88), {_pick(STATUSES, 'g.r_status')}, 'raw', '{{}}'::jsonb, "
        "'[]'::jsonb, '', '', '', '', false, g.active_at, g.active_at - g.r_created * interval '60 days', now() "
        "FROM (SELECT i, r_dom, r_n, r_title, r_size, r_ind, r_country, r_src, r_utm, r_consent, r_status, r_created, "
        f"active_at, {domain} AS domain FROM (SELECT i, random() AS r_dom, random() AS r_n, random() AS r_title, "
        "random() AS r_size, random() AS r_ind, random() AS r_country, random() AS r_src, random() AS r_utm, "
        "random() AS r_consent, random() AS r_status, random() AS r_created, "
        "now() - random() * interval '120 days' AS active_at FROM generate_series(1, %(n)s) AS i) r) g"
    )
    signals_sql = (
        "INSERT INTO leads_signal (tenant_id, lead_id, email, type, occurred_at, external_id, properties, "
        "received_at, processed_at) "
        "SELECT l.tenant_id, l.id, '', s.type, s.at, '', '{}'::jsonb, s.at, s.at FROM leads_lead l "
        f"CROSS JOIN LATERAL (SELECT {_pick(SIGNAL_TYPES, 'random()')} AS type, "
        "now() - random() * interval '120 days' AS at "
        # The reference to l.id makes the subquery run once per lead (fresh random values each time).
        "FROM generate_series(1, %(per_lead)s) AS k WHERE l.id IS NOT NULL) s "
        "WHERE l.tenant_id = %(tenant)s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(leads_sql, {"tenant": tenant_id, "form": form_id, "n": leads})
        if signals_per_lead:
            cursor.execute(signals_sql, {"tenant": tenant_id, "per_lead": signals_per_lead})


def change_model(*, tenant, actor):
    """The marketing-ops edit being published: two weights raised, competitors named, one new rule."""
    from scoring.models import Category, Operator, ScoringRule
    from scoring.services import scoring_model_draft_create

    draft = scoring_model_draft_create(tenant=tenant, actor=actor, name="Lead score (bench change)")
    rules = ScoringRule.objects.unscoped().filter(tenant=tenant, model=draft)
    assert rules.filter(name="Web: pricing page view").update(points=25) == 1
    assert rules.filter(name="Title: C-level").update(points=30) == 1
    assert rules.filter(name="Negative: competitor email domain").update(value=COMPETITOR_MAIL) == 1
    last = max(rules.values_list("position", flat=True))
    ScoringRule.objects.unscoped().create(
        tenant=tenant, model=draft, position=last + 10, name="Title: marketing or growth", category=Category.DEMOGRAPHIC,
        field="job_title", operator=Operator.KEYWORDS, value=["marketing", "growth", "demand generation"], points=5,
    )
    return draft


@contextlib.contextmanager
def parked_scoring_tasks() -> contextlib.AbstractContextManager:
    """Send the scoring tasks enqueued after commit (event dispatch) to a queue of their own, deleted after.

    Nothing consumes the throwaway database's events; the enqueue itself (what production pays) stays in the timing.
    """
    from leadmgmt.celery import app

    queue = f"bench-rescore-{uuid.uuid4().hex[:10]}"
    previous = app.conf.task_routes
    app.conf.task_always_eager = False
    app.conf.task_routes = {"scoring.tasks.*": {"queue": queue}}
    try:
        yield
    finally:
        app.conf.task_routes = previous
        with contextlib.suppress(Exception), app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def explain_rescore(*, tenant, actor) -> str:
    from django.db import connection, transaction
    from django.utils import timezone

    from scoring.engine import compile_model, scored_rows_sql
    from scoring.models import ScoreCause
    from scoring.services import _score_sql, scoring_model_published

    compiled = compile_model(scoring_model_published(tenant=tenant))
    rows = scored_rows_sql(compiled, tenant_id=tenant.pk, now=timezone.now())
    sql = _score_sql(compiled, rows, actor=actor, cause=ScoreCause.MODEL_PUBLISH, audit_each=actor.kind == "agent")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, VERBOSE false) " + sql, compiled.params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


OUTCOMES_SQL = (
    # A fifth of the leads closed, won more often in some industries, at larger companies and with a higher score.
    "INSERT INTO leads_outcome (tenant_id, lead_id, result, closed_at, source, currency, reason, created_at, "
    "updated_at) SELECT l.tenant_id, l.id, CASE WHEN random() < 0.04 + 0.25 * (l.industry IN ('Healthcare', "
    "'Software', 'SaaS'))::int + 0.1 * (COALESCE(l.company_size, 0) >= 250)::int + 0.2 * (COALESCE(l.score, 0) "
    ">= 50)::int THEN 'won' ELSE 'lost' END, l.created_at + random() * interval '30 days', 'sync', '', '', now(), "
    "now() FROM leads_lead l WHERE l.tenant_id = %s AND random() < 0.2"
)


FLOOR_PREDICTIVE_SQL = FLOOR_SQL.replace(
    "scored_at = scored_at", "scored_at = scored_at, conversion_probability = conversion_probability, "
    "predictive_score = predictive_score, predictive_reasons = predictive_reasons")


def predictive_bench(*, tenant, actor) -> dict:
    """Close a fifth of the leads, train the learned model (timed), re-score every lead with it (timed: each lead's
    probability and words are new, the worst case), publish a points change with the model in place (timed: the
    bench's re-score, now with the model) and take the floor of the wider row."""
    from django.db import connection, transaction

    from scoring.models import PredictiveFeature, ScoreCause, ScoringRule
    from scoring.predictive.services import predictive_train
    from scoring.predictive.training import spec_from_features
    from scoring.services import leads_score, scoring_model_draft_create, scoring_model_publish

    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
    say("full re-score without a learned model, nothing changed (the read side alone) …")
    with Timer() as t0:
        plain = leads_score(tenant=tenant, cause=ScoreCause.MANUAL, actor=actor)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.17)")
        cursor.execute(OUTCOMES_SQL, [tenant.pk])
        closed = cursor.rowcount
    maintenance("VACUUM ANALYZE leads_outcome", "CHECKPOINT")
    say(f"training the learned model on {closed:,} closed leads …")
    with Timer() as t:
        job = predictive_train(tenant=tenant, actor=actor, rescore=False)
    train = {"closed": closed, "seconds": t.seconds, "status": job.status, "metrics": job.metrics,
             "groups": len(spec_from_features(PredictiveFeature.objects.unscoped().filter(model=job)
                                              .order_by("position"))[0].groups)}
    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
    say("full re-score with the learned model (every lead's probability and words written) …")
    with Timer() as t:
        first = leads_score(tenant=tenant, cause=ScoreCause.PREDICTIVE, actor=actor)
    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
    say("full re-score with the learned model again (nothing changed: the read side alone) …")
    with Timer() as t2:
        again = leads_score(tenant=tenant, cause=ScoreCause.MANUAL, actor=actor)
    draft = scoring_model_draft_create(tenant=tenant, actor=actor, name="Lead score (bench change back)")
    rules = ScoringRule.objects.unscoped().filter(tenant=tenant, model=draft)
    assert rules.filter(name="Web: pricing page view").update(points=20) == 1
    assert rules.filter(name="Title: C-level").update(points=25) == 1
    scoring_model_publish(model=draft, actor=actor, rescore=False)
    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
    say(f"full re-score after publishing v{draft.version} with the learned model in place …")
    with Timer() as t3:
        published = leads_score(tenant=tenant, cause=ScoreCause.MODEL_PUBLISH, actor=actor)
    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
    say("floor with the learned model's columns: plain UPDATE of the same columns of the same rows …")
    with Timer() as t4, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(FLOOR_PREDICTIVE_SQL, [tenant.pk])
        floor_rows = cursor.rowcount
    return {"train": train, "rescore": {"updated": first.updated, "seconds": t.seconds},
            "plain_unchanged": {"updated": plain.updated, "seconds": t0.seconds},
            "rescore_unchanged": {"updated": again.updated, "seconds": t2.seconds},
            "publish": {"updated": published.updated, "seconds": t3.seconds, "model_version": draft.version},
            "floor": {"updated": floor_rows, "seconds": t4.seconds}}


def run(args: argparse.Namespace) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from leadmgmt.audit.actors import Actor
    from leadmgmt.tenancy.services import tenant_create
    from leads.models import LeadForm
    from scoring.models import ScoreCause, ScoreChange, ScoreEvent
    from scoring.services import SCORING_AGENT, leads_score, scoring_model_publish

    out: dict = {"leads": args.leads, "signals_per_lead": args.signals_per_lead}
    provisioned = tenant_create(slug=f"bench-rescore-{uuid.uuid4().hex[:6]}", name="Re-score benchmark",
                                admin_email=f"bench-rescore-{uuid.uuid4().hex[:6]}@bench.test")
    tenant = provisioned.tenant
    user = get_user_model().objects.get(username=provisioned.admin_email)
    publisher = Actor.for_user(user)
    form = LeadForm.objects.unscoped().get(tenant=tenant)

    say(f"generating {args.leads:,} leads with {args.signals_per_lead} signals each (INSERT … SELECT) …")
    with Timer() as t:
        generate(tenant_id=tenant.pk, form_id=form.pk, leads=args.leads, signals_per_lead=args.signals_per_lead)
        maintenance("VACUUM ANALYZE leads_lead", "VACUUM ANALYZE leads_signal")
    out["generate_seconds"] = t.seconds

    with parked_scoring_tasks():
        say("scoring every lead once with the default model (not measured against the targets) …")
        maintenance("CHECKPOINT")
        with Timer() as t:
            first = leads_score(tenant=tenant, cause=ScoreCause.MANUAL, actor=publisher)
        out["first_score"] = {"updated": first.updated, "seconds": t.seconds}
        maintenance("VACUUM ANALYZE", "CHECKPOINT")
        changes_before = ScoreChange.objects.unscoped().filter(tenant=tenant).count()
        events_before = ScoreEvent.objects.unscoped().filter(tenant=tenant).count()

        draft = change_model(tenant=tenant, actor=publisher)
        scoring_model_publish(model=draft, actor=publisher, rescore=False)
        actor = SCORING_AGENT if args.agent else publisher
        say(f"full re-score after publishing v{draft.version} (as {actor.kind} '{actor.name}') …")
        with Timer() as t:
            run_ = leads_score(tenant=tenant, cause=ScoreCause.MODEL_PUBLISH, actor=actor)
        out["rescore"] = {"updated": run_.updated, "seconds": t.seconds, "score_changes": run_.score_changes,
                          "events": run_.events, "stage_moves": run_.stage_moves, "model_version": run_.model_version,
                          "actor": actor.kind, "slices": settings.SCORING_SLICES}
        assert ScoreChange.objects.unscoped().filter(tenant=tenant).count() - changes_before == run_.score_changes
        assert ScoreEvent.objects.unscoped().filter(tenant=tenant).count() - events_before == run_.events

        if args.explain:
            maintenance("VACUUM ANALYZE leads_lead")
            out["explain"] = explain_rescore(tenant=tenant, actor=actor)
        if args.predictive:
            out["predictive"] = predictive_bench(tenant=tenant, actor=actor)

    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
    say("floor: plain UPDATE of the same columns of the same rows …")
    with Timer() as t, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(FLOOR_SQL, [tenant.pk])
        floor_rows = cursor.rowcount
    out["floor"] = {"updated": floor_rows, "seconds": t.seconds, "sql": FLOOR_SQL.replace("%s", str(tenant.pk))}
    return out


def report(out: dict) -> str:
    res, floor, first = out["rescore"], out["floor"], out["first_score"]
    ratio = res["seconds"] / floor["seconds"] if floor["seconds"] else float("inf")
    target_seconds = TARGET_SECONDS_PER_MILLION * out["leads"] / 1_000_000
    rows = [
        f"data: {out['leads']:,} leads x {out['signals_per_lead']} signals, generated in {out['generate_seconds']:.1f}s "
        "(not measured)",
        f"{'step':<44}{'rows':>12}{'seconds':>10}{'rows/s':>12}",
        f"{'first scoring, default model (setup)':<44}{first['updated']:>12,}{first['seconds']:>10.2f}"
        f"{first['updated'] / first['seconds'] if first['seconds'] else 0:>12,.0f}",
        f"{'full re-score after publish (leads_score)':<44}{res['updated']:>12,}{res['seconds']:>10.2f}"
        f"{res['updated'] / res['seconds'] if res['seconds'] else 0:>12,.0f}",
        f"{'floor: plain UPDATE, same rows and columns':<44}{floor['updated']:>12,}{floor['seconds']:>10.2f}"
        f"{floor['updated'] / floor['seconds'] if floor['seconds'] else 0:>12,.0f}",
        f"re-score / floor = {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x); "
        f"re-score {res['seconds']:.1f}s (target <= {target_seconds:.0f}s for {out['leads']:,} leads)",
        f"re-score wrote {res['score_changes']:,} score changes, {res['events']:,} score events, "
        f"{res['stage_moves']:,} MQL stage moves (model v{res['model_version']}, actor: {res['actor']}, "
        f"{res['slices']} id slices side by side, SCORING_SLICES)",
        f"floor statement: {floor['sql']}",
    ]
    verdict = []
    if res["seconds"] > target_seconds:
        verdict.append(f"MISSED the time target ({res['seconds']:.1f}s > {target_seconds:.0f}s)")
    if ratio > TARGET_RATIO:
        verdict.append(f"MISSED the floor target ({ratio:.2f}x > {TARGET_RATIO:.0f}x)")
    rows.append("; ".join(verdict) if verdict else "targets met")
    if out.get("predictive"):
        pred = out["predictive"]
        rows.append(f"learned model: {pred['train']['groups']} feature groups, trained on {pred['train']['closed']:,} "
                    f"closed leads in {pred['train']['seconds']:.1f}s ({pred['train']['status']}, held-out AUC "
                    f"{pred['train']['metrics'].get('auc')}, points AUC {pred['train']['metrics'].get('points_auc')})")
        floor_p = pred["floor"]["seconds"]
        for label, key in (("re-score, no learned model, nothing changed", "plain_unchanged"),
                           ("full re-score with the learned model (all new)", "rescore"),
                           ("again, nothing changed (read side)", "rescore_unchanged"),
                           (f"re-score after publish v{pred['publish']['model_version']}, with the model", "publish"),
                           ("floor with the learned model's columns", "floor")):
            run_ = pred[key]
            rows.append(f"{label:<50}{run_['updated']:>12,}{run_['seconds']:>10.2f}"
                        f"{run_['updated'] / run_['seconds'] if run_['seconds'] else 0:>12,.0f}"
                        + (f"   {run_['seconds'] / floor_p:.2f}x floor" if floor_p and key != "floor" else ""))
        missed = [f"{label} {pred[key]['seconds']:.1f}s > {target_seconds:.0f}s or "
                  f"{pred[key]['seconds'] / floor_p if floor_p else float('inf'):.2f}x > {TARGET_RATIO:.0f}x floor"
                  for label, key in (("all-new re-score", "rescore"), ("publish re-score", "publish"))
                  if pred[key]["seconds"] > target_seconds
                  or (floor_p and pred[key]["seconds"] / floor_p > TARGET_RATIO)]
        rows.append("with the learned model: " + ("; ".join(f"MISSED {m}" for m in missed) if missed
                                                   else f"targets met (<= {target_seconds:.0f}s and "
                                                        f"<= {TARGET_RATIO:.0f}x the floor)"))
    if out.get("explain"):
        rows.append("EXPLAIN (ANALYZE, BUFFERS) of the re-score statement:\n" + out["explain"])
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("rescore.py")
    with throwaway_database("bench_rescore") as url:
        django_setup(url)
        out = run(args)
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "explain"}, indent=None, default=str))
    else:
        say(report(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
