"""Writes of scoring: default model, drafts, publishing, and (re-)scoring leads set-based in SQL."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.locks import leads_lock_rows

from . import defaults
from .account_scores import ACCOUNTS_LOCK_CTE, ACCOUNTS_LOCKED, accounts_score_run
from .engine import compile_model, scored_rows_sql
from .models import ModelStatus, Operator, ScoreBand, ScoreCause, ScoringModel, ScoringRule
from .validation import bands_errors, rule_errors

SCORING_AGENT = Actor.agent("Scoring Agent")
AUTO_STAGE_BLOCKING_STATUSES = ("archived", "unqualified", "converted")


def scoring_model_published(*, tenant: Tenant) -> ScoringModel | None:
    return ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()


# --- models ----------------------------------------------------------------------------------------


@transaction.atomic
def scoring_default_model_create(*, tenant: Tenant, actor: Actor) -> ScoringModel:
    """Give a tenant its first, published model: seed 002's scoring table and bands exactly."""
    existing = scoring_model_published(tenant=tenant)
    if existing is not None:
        return existing
    model = ScoringModel.objects.create(
        tenant=tenant, name="Lead score (seed 002 defaults)", version=1, status=ModelStatus.PUBLISHED,
        published_at=timezone.now(), published_by=actor.user, created_by=actor.user,
    )
    rules, position = [], 0
    for name, category, field, operator, value, points, group, extra in defaults.FIT_RULES:
        position += 10
        rules.append(ScoringRule(tenant=tenant, model=model, position=position, name=name, category=category,
                                 field=field, operator=operator, value=value, points=points,
                                 exclusive_group=group, **extra))
    for signal_type, name, category, points in defaults.SIGNAL_RULES:
        position += 10
        rules.append(ScoringRule(tenant=tenant, model=model, position=position, name=name, category=category,
                                 operator=Operator.SIGNAL, signal_type=signal_type, points=points))
    for name, category, target, operator, value, points, extra in defaults.NEGATIVE_RULES:
        position += 10
        is_signal = operator == Operator.SIGNAL
        rules.append(ScoringRule(tenant=tenant, model=model, position=position, name=name, category=category,
                                 field="" if is_signal else target, signal_type=target if is_signal else "",
                                 operator=operator, value=value, points=points, **extra))
    ScoringRule.objects.bulk_create(rules)
    ScoreBand.objects.bulk_create([
        ScoreBand(tenant=tenant, model=model, key=key, name=name, min_score=lo, max_score=hi, action=action,
                  auto_mql=auto_mql)
        for key, name, lo, hi, action, auto_mql in defaults.BANDS
    ])
    audit_record(tenant=tenant, actor=actor, action="scoring_model.published", obj=model,
                 metadata={"version": 1, "rules": len(rules), "default": True})
    return model


@transaction.atomic
def scoring_model_draft_create(*, tenant: Tenant, actor: Actor, based_on: ScoringModel | None = None,
                               name: str | None = None) -> ScoringModel:
    """A new editable version copying `based_on` (default: the published one): rules and bands."""
    based_on = based_on or scoring_model_published(tenant=tenant)
    version = (ScoringModel.objects.for_tenant(tenant).select_for_update()
               .aggregate(v=Max("version"))["v"] or 0) + 1
    copy_fields = ["engagement_window_days", "hot_threshold", "cold_threshold", "archive_after_days",
                   "fit_high_min", "fit_medium_min", "engagement_ready_min", "engagement_some_min",
                   "account_engaged_min", "account_others_percent", "account_breadth_points", "account_breadth_cap",
                   "predictive_blend", "predictive_min_closed", "predictive_min_won", "predictive_model"]
    draft = ScoringModel.objects.create(
        tenant=tenant, version=version, status=ModelStatus.DRAFT, based_on=based_on, created_by=actor.user,
        name=name or (based_on.name if based_on else "Lead score"),
        **({f: getattr(based_on, f) for f in copy_fields} if based_on else {}),
    )
    if based_on is not None:
        rule_fields = ["key", "position", "name", "category", "field", "operator", "value", "signal_type", "points",
                       "cap", "once_per_days", "exclusive_group", "disqualifies", "is_active"]
        ScoringRule.objects.bulk_create([
            ScoringRule(tenant=tenant, model=draft, **{f: getattr(r, f) for f in rule_fields})
            for r in ScoringRule.objects.for_tenant(based_on.tenant_id).filter(model=based_on)
        ])
        ScoreBand.objects.bulk_create([
            ScoreBand(tenant=tenant, model=draft, key=b.key, name=b.name, min_score=b.min_score,
                      max_score=b.max_score, action=b.action, auto_mql=b.auto_mql)
            for b in ScoreBand.objects.for_tenant(based_on.tenant_id).filter(model=based_on)
        ])
    audit_record(tenant=tenant, actor=actor, action="scoring_model.draft_created", obj=draft,
                 metadata={"version": version, "based_on": based_on.version if based_on else None})
    return draft


def scoring_model_problems(*, model: ScoringModel) -> list[str]:
    """Everything that stops a model from being published, as readable sentences."""
    from leads.signal_catalog import signal_type_names

    types = signal_type_names(tenant=model.tenant)
    problems = []
    for rule in ScoringRule.objects.for_tenant(model.tenant_id).filter(model=model):
        for field, messages in rule_errors(rule, signal_types=types).items():
            problems.extend(f"Rule '{rule.name}' ({field}): {m}" for m in messages)
    problems.extend(bands_errors(list(ScoreBand.objects.for_tenant(model.tenant_id).filter(model=model))))
    return problems


def scoring_model_publish(*, model: ScoringModel, actor: Actor, rescore: bool = True) -> ScoringModel:
    """Make a draft the one active version; the previous one is retired (kept, read-only).

    Re-scoring every lead runs in a worker after commit (a million leads take tens of seconds).
    """
    with transaction.atomic():
        list(ScoringModel.objects.for_tenant(model.tenant_id).select_for_update().order_by("pk"))
        model.refresh_from_db()
        if model.status != ModelStatus.DRAFT:
            raise ValidationError({"status": ["Only a draft can be published; this version is "
                                              f"{model.get_status_display().lower()}."]})
        problems = scoring_model_problems(model=model)
        if problems:
            raise ValidationError({"detail": problems})
        previous = scoring_model_published(tenant=model.tenant)
        if previous is not None:
            previous.status = ModelStatus.RETIRED
            previous.save(update_fields=["status"])
        model.status, model.published_at, model.published_by = ModelStatus.PUBLISHED, timezone.now(), actor.user
        model.save(update_fields=["status", "published_at", "published_by"])
        audit_record(tenant=model.tenant, actor=actor, action="scoring_model.published", obj=model,
                     changes={"status": [ModelStatus.DRAFT, ModelStatus.PUBLISHED]},
                     metadata={"version": model.version, "previous_version": previous.version if previous else None})
        if rescore:
            from .tasks import leads_rescore_all_task

            transaction.on_commit(lambda: leads_rescore_all_task.delay(
                tenant_id=model.tenant_id, cause=ScoreCause.MODEL_PUBLISH, actor_name=actor.name))
    return model


# --- scoring leads ---------------------------------------------------------------------------------


@dataclass
class ScoreRun:
    updated: int = 0
    score_changes: int = 0
    events: int = 0
    stage_moves: int = 0
    model_version: int | None = None
    accounts: int = 0  # account scores that changed (scoring.account_scores)


def _score_sql(compiled, rows_sql: str, *, actor: Actor, cause: str, audit_each: bool, target_filter: str = "",
               materialize: bool = False, lock_accounts: bool = False) -> str:
    model = compiled.model
    auto_bands = [b.key for b in compiled.bands if b.auto_mql]
    compiled.p("model_id", model.pk)
    compiled.p("hot", int(model.hot_threshold))
    compiled.p("cold", int(model.cold_threshold))
    compiled.p("auto_bands", auto_bands)
    compiled.p("blocking", list(AUTO_STAGE_BLOCKING_STATUSES))
    compiled.p("cause", cause)
    compiled.p("actor_kind", actor.kind)
    compiled.p("actor_name", actor.name)
    compiled.p("actor_user", actor.user_id)
    compiled.p("version", model.version)
    new_stage = ("CASE WHEN l.stage = 'raw' AND f.band = ANY(%(auto_bands)s) "
                 "AND NOT (l.status = ANY(%(blocking)s)) THEN 'mql' ELSE l.stage END")
    audit = ""
    if audit_each:
        audit = (
            ", audit AS (INSERT INTO audit_auditevent (tenant_id, at, actor_kind, actor_name, actor_user_id, "
            "actor_api_key_id, action, object_type, object_id, changes, metadata) "
            "SELECT %(tenant)s, %(now)s, %(actor_kind)s, %(actor_name)s, %(actor_user)s, NULL, 'lead.scored', "
            "'leads.lead', u.id::text, jsonb_strip_nulls(jsonb_build_object("
            "'score', jsonb_build_array(u.old_score, u.score), "
            "'band', CASE WHEN u.old_band IS DISTINCT FROM u.band THEN jsonb_build_array(u.old_band, u.band) END, "
            "'lead_class', CASE WHEN u.old_class IS DISTINCT FROM u.lead_class "
            "THEN jsonb_build_array(u.old_class, u.lead_class) END, "
            "'stage', CASE WHEN u.moved THEN jsonb_build_array('raw', 'mql') END)), "
            "jsonb_build_object('cause', %(cause)s, 'model_version', %(version)s) FROM upd u "
            "WHERE u.old_score IS DISTINCT FROM u.score OR u.old_band IS DISTINCT FROM u.band "
            "OR u.old_class IS DISTINCT FROM u.lead_class OR u.moved RETURNING 1)"
        )
    learned_set = learned_old = learned_new = ""
    if compiled.predictive is not None:
        # The learned model's columns, written by the same statement (scoring.predictive).
        learned_set = ("conversion_probability = f.cprob, predictive_score = f.pscore, "
                       "predictive_reasons = f.preasons, ")
        learned_old = ", l.conversion_probability, l.predictive_score, l.predictive_reasons"
        learned_new = ", f.cprob, f.pscore, f.preasons"
    return (
        f"WITH f AS {'MATERIALIZED ' if materialize else ''}({rows_sql}), "
        "upd AS (UPDATE leads_lead l SET score = f.score, fit_score = f.fit, engagement_score = f.eng, "
        f"{learned_set}"
        "band = f.band, lead_class = f.lead_class, lead_class_reason = f.class_reason, "
        "score_breakdown = f.breakdown, scoring_model_id = %(model_id)s, scored_at = %(now)s, "
        "is_hot = (f.score >= %(hot)s), "
        "cold_since = CASE WHEN f.score <= %(cold)s THEN COALESCE(l.cold_since, %(now)s) END, "
        f"stage = {new_stage} "
        f"FROM f WHERE l.id = f.id AND l.tenant_id = %(tenant)s {target_filter} AND ("
        # Rule keys are stable across versions, so a lead whose result is the same under a new
        # version is left alone (its scoring_model_id names the version that last changed it).
        "(l.score, l.fit_score, l.engagement_score, l.band, l.lead_class, l.lead_class_reason, l.score_breakdown, "
        f"l.is_hot, l.cold_since IS NULL{learned_old}) IS DISTINCT FROM "
        "(f.score, f.fit, f.eng, f.band, f.lead_class, f.class_reason, f.breakdown, "
        f"f.score >= %(hot)s, f.score > %(cold)s{learned_new}) "
        f"OR l.stage IS DISTINCT FROM {new_stage}) "
        "RETURNING l.id, f.old_score, f.old_band, f.old_hot, f.old_class, l.score, l.band, l.is_hot, l.lead_class, "
        "(f.stage = 'raw' AND l.stage = 'mql') AS moved), "
        "changes AS (INSERT INTO scoring_scorechange (tenant_id, lead_id, at, old_score, new_score, old_band, "
        "new_band, cause, model_id) SELECT %(tenant)s, u.id, %(now)s, u.old_score, u.score, COALESCE(u.old_band, ''), "
        "u.band, %(cause)s, %(model_id)s FROM upd u "
        "WHERE u.old_score IS DISTINCT FROM u.score OR u.old_band IS DISTINCT FROM u.band RETURNING 1), "
        "events AS (INSERT INTO scoring_scoreevent (tenant_id, lead_id, kind, from_band, to_band, score, at) "
        "SELECT %(tenant)s, u.id, 'band_changed', COALESCE(u.old_band, ''), u.band, u.score, %(now)s FROM upd u "
        "WHERE u.old_band IS DISTINCT FROM u.band "
        "UNION ALL SELECT %(tenant)s, u.id, 'became_hot', COALESCE(u.old_band, ''), u.band, u.score, %(now)s "
        "FROM upd u WHERE u.is_hot AND NOT COALESCE(u.old_hot, false) RETURNING 1), "
        "stages AS (INSERT INTO leads_stagetransition (tenant_id, lead_id, from_stage, to_stage, at, actor_name, "
        "actor_user_id, reason) SELECT %(tenant)s, u.id, 'raw', 'mql', %(now)s, %(actor_name)s, %(actor_user)s, "
        "'Score ' || u.score || ' entered band ' || u.band FROM upd u WHERE u.moved RETURNING 1)"
        f"{audit}{', ' + ACCOUNTS_LOCK_CTE if lock_accounts else ''} "
        "SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM changes), (SELECT count(*) FROM events), "
        f"(SELECT count(*) FROM stages), {ACCOUNTS_LOCKED if lock_accounts else 'NULL'}"
    )


def leads_score(
    *, tenant: Tenant, cause: str, actor: Actor = SCORING_AGENT, lead_ids: Iterable | None = None,
    now: datetime | None = None, model: ScoringModel | None = None, slices: int | None = None,
) -> ScoreRun:
    """(Re-)score the given leads, or every lead of the tenant, with the published model.

    One transaction: the leads are locked first, so the SQL that follows sees every signal
    committed before; two concurrent runs on one lead serialise and the later one wins with the
    fuller picture. Writes the scores, history, band/hot events, automatic MQL stage moves and
    (for agent runs) one audit event per changed lead, all set-based.

    A whole-tenant run outside any transaction (the worker after a publish, the daily decay) is
    cut into `slices` ranges of lead ids (default: settings.SCORING_SLICES, one per CPU core of
    the database) scored side by side, each in its own transaction on its own connection: the
    statement is CPU-bound and PostgreSQL runs one statement on one core. Each slice is complete
    and consistent on its own; a failed run is simply run again (scoring is idempotent).
    """
    now = now or timezone.now()
    ids = None if lead_ids is None else sorted({str(i) for i in lead_ids})
    if ids is not None and not ids:
        return ScoreRun()
    model = model or scoring_model_published(tenant=tenant)
    if model is None:
        return ScoreRun()
    slices = settings.SCORING_SLICES if slices is None else slices
    if ids is None and slices > 1 and not connection.in_atomic_block:
        return _leads_score_sliced(tenant=tenant, cause=cause, actor=actor, now=now, model=model, slices=slices)
    return _leads_score_one(tenant=tenant, cause=cause, actor=actor, ids=ids, now=now, model=model)


def id_slices(count: int) -> list[tuple[str | None, str | None]]:
    """`count` contiguous ranges covering the whole UUID space (lead ids are random UUIDs)."""
    bounds = [None] + [str(uuid.UUID(int=(i << 128) // count)) for i in range(1, count)] + [None]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _leads_score_sliced(*, tenant: Tenant, cause: str, actor: Actor, now: datetime, model: ScoringModel,
                        slices: int) -> ScoreRun:
    def run_slice(id_range):
        try:
            # A new thread starts with no tenant in context: each slice runs as the tenant (row-level security).
            with tenant_scope(tenant):
                return _leads_score_one(tenant=tenant, cause=cause, actor=actor, ids=None, now=now, model=model,
                                        id_range=id_range)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=slices, thread_name_prefix="rescore") as pool:
        runs = list(pool.map(run_slice, id_slices(slices)))
    # An account's leads fall into several slices: its score is computed once every slice is written.
    with transaction.atomic(), connection.cursor() as cursor:
        accounts = accounts_score_run(cursor, tenant_id=tenant.pk, model=model, now=now)
    return ScoreRun(updated=sum(r.updated for r in runs), score_changes=sum(r.score_changes for r in runs),
                    events=sum(r.events for r in runs), stage_moves=sum(r.stage_moves for r in runs),
                    model_version=model.version, accounts=accounts)


def _leads_score_one(*, tenant: Tenant, cause: str, actor: Actor, ids: list[str] | None, now: datetime,
                     model: ScoringModel, id_range: tuple[str | None, str | None] | None = None) -> ScoreRun:
    with transaction.atomic(), connection.cursor() as cursor:
        if ids is not None:
            leads_lock_rows(tenant=tenant, lead_ids=ids)
        else:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # A whole tenant: never nest the lead/signal join, even on stale statistics.
            cursor.execute("SET LOCAL enable_nestloop = off")
        # The compiled statement is large; LLVM JIT spends seconds compiling it and wins nothing back.
        cursor.execute("SET LOCAL jit = off")
        compiled = compile_model(model)
        rows = scored_rows_sql(compiled, tenant_id=tenant.pk, now=now, lead_ids=ids, id_range=id_range)
        target = "".join(f" AND l.id {op} %({name})s::uuid" for name, op in (("id_low", ">="), ("id_high", "<"))
                         if name in compiled.params)
        # A list of leads (a capture batch) is scored once and joined after: the new rows have no statistics
        # yet, so the planner guesses one row and would otherwise re-run the scoring per lead (quadratic). The
        # UPDATE names the ids too, so it reads those rows by primary key whatever the statistics say (without,
        # on a tenant's first thousands of leads, it read all of them for each scored row).
        if ids is not None:
            target += " AND l.id = ANY(%(ids)s::uuid[])"
        # A batch's statement also locks its leads' accounts, whose scores the next statement recomputes.
        sql = _score_sql(compiled, rows, actor=actor, cause=cause, audit_each=actor.kind == "agent",
                         target_filter=target, materialize=ids is not None, lock_accounts=ids is not None)
        cursor.execute(sql, compiled.params)
        updated, changes, events, stages, account_ids = cursor.fetchone()
        accounts = 0
        if id_range is None:  # a slice leaves its accounts to the sliced run, which scores them once at the end
            accounts = accounts_score_run(cursor, tenant_id=tenant.pk, model=model, now=now, account_ids=account_ids)
        if events:
            from .tasks import score_events_dispatch_task

            transaction.on_commit(lambda: score_events_dispatch_task.delay(tenant_id=tenant.pk))
    return ScoreRun(updated=updated, score_changes=changes, events=events, stage_moves=stages,
                    model_version=model.version, accounts=accounts)


def lead_score_enqueue(*, tenant: Tenant, lead_ids: Iterable, cause: str) -> None:
    """Have the Scoring Agent re-score these leads in a worker once the current transaction commits."""
    ids = sorted({str(i) for i in lead_ids})
    if not ids:
        return
    from .tasks import leads_score_task

    transaction.on_commit(lambda: leads_score_task.delay(tenant_id=tenant.pk, lead_ids=ids, cause=cause))


def model_whatif(*, model: ScoringModel, now: datetime | None = None) -> list[dict]:
    """Per band of `model`: leads in it now, after publishing it, and how many move in and out."""
    now = now or timezone.now()
    compiled = compile_model(model)
    rows_sql = scored_rows_sql(compiled, tenant_id=model.tenant_id, now=now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SELECT COALESCE(r.old_band, ''), r.band, count(*) FROM ({rows_sql}) r GROUP BY 1, 2",
                       compiled.params)
        moves = cursor.fetchall()
    out = []
    for band in compiled.bands:
        now_in = sum(n for old, _new, n in moves if old == band.key)
        after = sum(n for _old, new, n in moves if new == band.key)
        moving_in = sum(n for old, new, n in moves if new == band.key and old != band.key)
        moving_out = sum(n for old, new, n in moves if old == band.key and new != band.key)
        out.append({"key": band.key, "name": band.name, "min": band.min_score, "max": band.max_score,
                    "now": now_in, "after": after, "moving_in": moving_in, "moving_out": moving_out})
    unbanded = sum(n for old, _new, n in moves if old not in {b.key for b in compiled.bands})
    if unbanded:
        out.append({"key": "", "name": "Not scored yet / other bands", "min": None, "max": None, "now": unbanded,
                    "after": 0, "moving_in": 0, "moving_out": unbanded})
    return out


# --- decay and archiving (daily) ---------------------------------------------------------------


@dataclass
class DecayRun:
    rescored: ScoreRun
    archived: int = 0


def leads_decay_and_archive(*, tenant: Tenant, now: datetime | None = None, actor: Actor = SCORING_AGENT) -> DecayRun:
    """The daily pass: re-score every lead at `now` (signals older than the model's window stop
    counting, the inactivity penalty starts), then archive leads that stayed cold too long.

    Both steps are set-based and idempotent: a second run the same day changes nothing.
    """
    now = now or timezone.now()
    model = scoring_model_published(tenant=tenant)
    if model is None:
        return DecayRun(rescored=ScoreRun())
    rescored = leads_score(tenant=tenant, cause=ScoreCause.DECAY, actor=actor, now=now, model=model)
    archived = 0
    if model.archive_after_days:
        cutoff = now - timedelta(days=int(model.archive_after_days))
        reason = f"Score at or below {model.cold_threshold} (cold) for {model.archive_after_days} days"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH arch AS (UPDATE leads_lead l SET status = 'archived', archived_at = %(now)s, "
                "archive_reason = %(reason)s, updated_at = %(now)s "
                "WHERE l.tenant_id = %(tenant)s AND l.cold_since <= %(cutoff)s "
                "AND l.status IN ('new', 'contacted', 'recycled') "
                "RETURNING l.id, l.score, l.cold_since), "
                "audit AS (INSERT INTO audit_auditevent (tenant_id, at, actor_kind, actor_name, actor_user_id, "
                "actor_api_key_id, action, object_type, object_id, changes, metadata) "
                "SELECT %(tenant)s, %(now)s, %(kind)s, %(name)s, NULL, NULL, 'lead.archived', 'leads.lead', a.id::text, "
                "jsonb_build_object('status', jsonb_build_array(NULL, 'archived')), "
                "jsonb_build_object('reason', %(reason)s, 'score', a.score, 'cold_since', a.cold_since) FROM arch a "
                "RETURNING 1) SELECT count(*) FROM arch",
                {"now": now, "tenant": tenant.pk, "cutoff": cutoff, "reason": reason, "kind": actor.kind,
                 "name": actor.name},
            )
            archived = cursor.fetchone()[0]
    return DecayRun(rescored=rescored, archived=archived)
