"""Learning benchmark (issue 16): training time of the learned model on --closed closed leads, re-scoring
throughput with it against the same re-score without it (measured side by side in one run), and how well the
seed points model, the learned model and the draft suggested from it rank the buyers of a synthetic funnel.

Creates a throwaway database on the DATABASE_URL server (dropped afterwards) and a tenant through `tenant_create`
(seed 002's default scoring model). The funnel (`tests/support/funnel.py`) has a KNOWN latent propensity: each
lead's true odds of being won are a logistic function of its industry, company size, title, a custom attribute,
free mail and its signal counts. --closed leads with their signals and outcomes (close dates in order, written in
chunks through the real models) are the history; --fresh open leads drawn from the same funnel are ranked by each
model, and whether they would have been won is the funnel's draw from their true odds (the "truth" line: the AUC
of the true odds themselves, the ceiling any model can reach on these draws).

    python -m leadmgmt.embedded exec -- python bench/learning.py --closed 100000
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import timedelta

from _common import Timer, django_setup, maintenance, require_services, say, throwaway_database

CHUNK = 10_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closed", type=int, default=100_000, help="closed leads the model learns from (100,000)")
    parser.add_argument("--fresh", type=int, default=10_000, help="fresh open leads the models rank (10,000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    return parser.parse_args(argv)


def history(*, tenant, closed: int) -> None:
    """`closed` closed leads in chunks (memory stays flat), their close dates in order over a year."""
    from django.utils import timezone

    from tests.support.funnel import funnel_leads

    chunks = max(1, (closed + CHUNK - 1) // CHUNK)
    days = max(1, 365 // chunks)
    start = timezone.now() - timedelta(days=days * chunks + 31)
    for k in range(chunks):
        n = min(CHUNK, closed - k * CHUNK)
        funnel_leads(tenant=tenant, n=n, seed=100 + k, closed=True, start=start + timedelta(days=days * k),
                     days=days, prefix=f"c{k}-")


def auc(labels: list[int], scores: list[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < sum(labels) < len(labels) else None


def run(args: argparse.Namespace) -> dict:
    from django.db import connection
    from django.utils import timezone

    from leadmgmt.audit.actors import SYSTEM
    from leadmgmt.tenancy.context import tenant_scope
    from leadmgmt.tenancy.services import tenant_create
    from leads.models import Lead
    from scoring.engine import compile_model, scored_rows_sql
    from scoring.models import ScoreCause
    from scoring.predictive.services import predictive_train
    from scoring.predictive.suggest import predictive_draft_suggest
    from scoring.services import leads_score
    from tests.support.funnel import funnel_leads

    out: dict = {"closed": args.closed, "fresh": args.fresh}
    tenant = tenant_create(slug=f"bench-learning-{uuid.uuid4().hex[:6]}", name="Learning benchmark",
                           admin_email=f"bench-learning-{uuid.uuid4().hex[:6]}@bench.test").tenant
    say(f"generating the funnel: {args.closed:,} closed leads with signals and outcomes, {args.fresh:,} fresh ones …")
    with Timer() as t:
        history(tenant=tenant, closed=args.closed)
        fresh = funnel_leads(tenant=tenant, n=args.fresh, seed=7, closed=False, prefix="fresh-")
        maintenance("VACUUM ANALYZE leads_lead", "VACUUM ANALYZE leads_signal", "VACUUM ANALYZE leads_outcome")
    out["generate_seconds"] = t.seconds

    with tenant_scope(tenant):
        maintenance("CHECKPOINT")
        say("scoring every lead with the seed model (setup) …")
        with Timer() as t:
            first = leads_score(tenant=tenant, cause=ScoreCause.MANUAL, actor=SYSTEM)
        out["first_score"] = {"updated": first.updated, "seconds": t.seconds}
        maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
        say("re-scoring every lead with the seed model, nothing changed (the floor of the same re-score with the "
            "learned model) …")
        with Timer() as t:
            leads_score(tenant=tenant, cause=ScoreCause.MANUAL, actor=SYSTEM)
        out["rescore_seed"] = {"evaluated": args.closed + args.fresh, "seconds": t.seconds}
        seed_scores = dict(Lead.objects.unscoped().filter(tenant=tenant, pk__in=[f.id for f in fresh])
                           .values_list("id", "score"))

        maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
        say(f"training the learned model on {args.closed:,} closed leads …")
        with Timer() as t:
            job = predictive_train(tenant=tenant, actor=SYSTEM, rescore=False)
        out["train"] = {"seconds": t.seconds, "status": job.status, "message": job.message,
                        "closed": job.closed_count, "won": job.won_count, "metrics": job.metrics}
        if job.status != "ready":
            return out

        maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
        say("re-scoring every lead with the learned model compiled into the scoring statement …")
        with Timer() as t:
            learned = leads_score(tenant=tenant, cause=ScoreCause.PREDICTIVE, actor=SYSTEM)
        out["rescore_learned_first"] = {"updated": learned.updated, "seconds": t.seconds}
        maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")
        say("re-scoring every lead with the learned model again, nothing changed …")
        with Timer() as t:
            leads_score(tenant=tenant, cause=ScoreCause.MANUAL, actor=SYSTEM)
        out["rescore_learned"] = {"evaluated": args.closed + args.fresh, "seconds": t.seconds}
        probabilities = dict(Lead.objects.unscoped().filter(tenant=tenant, pk__in=[f.id for f in fresh])
                             .values_list("id", "conversion_probability"))

        say("suggesting a points draft from the learned model, scoring the fresh leads with it (read-only) …")
        with Timer() as t:
            draft = predictive_draft_suggest(tenant=tenant, actor=SYSTEM)
        out["suggest_seconds"] = t.seconds
        compiled = compile_model(draft)
        rows = scored_rows_sql(compiled, tenant_id=tenant.pk, now=timezone.now(), lead_ids=[f.id for f in fresh])
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT r.id, r.score FROM ({rows}) r", compiled.params)  # noqa: S608 - engine SQL
            draft_scores = dict(cursor.fetchall())
        draft_rules = draft.rules.count()

    labels = [int(f.won) for f in fresh]
    out["fresh_won"] = sum(labels)
    out["auc"] = {
        "seed": auc(labels, [seed_scores[f.id] or 0 for f in fresh]),
        "learned": auc(labels, [probabilities[f.id] for f in fresh]),
        "suggested": auc(labels, [draft_scores[f.id] for f in fresh]),
        "truth": auc(labels, [f.propensity for f in fresh]),
    }
    p = [probabilities[f.id] for f in fresh]
    out["mean_probability"] = sum(p) / len(p)
    out["mean_truth"] = sum(f.propensity for f in fresh) / len(fresh)
    out["draft"] = {"id": draft.pk, "rules": draft_rules, "mql_threshold": getattr(draft, "mql_threshold", None)}
    return out


def report(out: dict) -> str:
    train = out["train"]
    rows = [f"funnel: {out['closed']:,} closed + {out['fresh']:,} fresh leads, generated in "
            f"{out['generate_seconds']:.1f}s (not measured)"]
    if train["status"] != "ready":
        rows.append(f"training refused or failed: {train['status']}: {train['message']}")
        return "\n".join(rows)
    metrics = train["metrics"]
    rows.append(f"training: {train['closed']:,} closed ({train['won']:,} won) in {train['seconds']:.1f}s; held-out "
                f"(newest 20 %) AUC {metrics.get('auc')}, points AUC {metrics.get('points_auc')}, calibration error "
                f"{metrics.get('calibration_error')}")
    seed, learned, first = out["rescore_seed"], out["rescore_learned"], out["rescore_learned_first"]
    ratio = learned["seconds"] / seed["seconds"] if seed["seconds"] else float("inf")
    rows.append(f"{'re-score of every lead':<52}{'leads':>10}{'seconds':>10}{'leads/s':>12}")
    for label, n, r in (("seed model only, nothing changed (floor, same run)", seed["evaluated"], seed),
                        ("with the learned model, nothing changed", learned["evaluated"], learned),
                        ("with the learned model, first (every lead written)", first["updated"], first)):
        rows.append(f"{label:<52}{n:>10,}{r['seconds']:>10.2f}{n / r['seconds'] if r['seconds'] else 0:>12,.0f}")
    rows.append(f"re-score with the learned model / without = {ratio:.2f}x")
    a = out["auc"]
    rows.append(f"AUC on {out['fresh']:,} fresh leads ({out['fresh_won']:,} would buy): seed {a['seed']:.3f}, "
                f"learned {a['learned']:.3f}, suggested draft {a['suggested']:.3f} (truth: {a['truth']:.3f})")
    rows.append(f"calibration: mean probability {out['mean_probability']:.3f} against the true mean odds "
                f"{out['mean_truth']:.3f}; suggested draft: {out['draft']['rules']} rules, MQL at "
                f"{out['draft']['mql_threshold']} (drafted in {out['suggest_seconds']:.1f}s)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("learning.py")
    with throwaway_database("bench_learning") as url:
        django_setup(url)
        out = run(args)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        say(report(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
