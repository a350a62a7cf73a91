"""A synthetic B2B funnel with a KNOWN latent propensity, written in bulk through the real models.

Each lead's true odds of being won are a logistic function of its industry, company size, title level, a custom
attribute (`plan`), free mail and its signal counts (`LATENT`); `funnel_leads` draws leads, their signals and
(for closed leads) the outcome from those odds, so a learned model can be checked against the truth.
"""
from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from leads.models import Lead, Outcome, OutcomeResult, OutcomeSource, Signal

INDUSTRIES = {"Healthcare": 1.1, "Software": 0.7, "Finance": 0.3, "Manufacturing": 0.0, "Retail": -0.7,
              "Education": -1.0}
TITLES = {"Chief Executive Officer": 0.9, "VP Sales": 0.8, "Director of Marketing": 0.5, "IT Manager": 0.1,
          "Software Engineer": -0.4, "Student": -1.4}
PLANS = {"enterprise": 0.9, "pro": 0.3, "free": -0.7}
SOURCES = ["web_form", "webinar", "paid_search", "event", "referral"]
SIGNALS = {"demo_request": 0.9, "pricing_page_view": 0.5, "email_click": 0.15, "webinar_attendance": 0.2}
INTERCEPT = -2.6
FREE_MAIL = -0.9
SIZE = 0.25  # per unit of ln(1 + employees) above ln(1 + 200)


@dataclass
class FunnelLead:
    id: uuid.UUID
    propensity: float  # the true probability of being won
    won: bool
    closed_at: datetime | None = None


def _logit(industry, title, plan, free_mail, size, counts) -> float:
    z = INTERCEPT + INDUSTRIES[industry] + TITLES[title] + PLANS[plan] + (FREE_MAIL if free_mail else 0.0)
    z += SIZE * (math.log1p(size) - math.log1p(200))
    z += sum(SIGNALS[t] * math.log1p(n) for t, n in counts.items())
    return z


def _draw(rng: random.Random) -> dict:
    """One person of the funnel: their fields, signal counts, true odds, whether they buy and their source (the
    draws in this order, which `funnel_leads` and `funnel_people` share, so one seed gives the same people)."""
    industry = rng.choice(list(INDUSTRIES))
    title = rng.choice(list(TITLES))
    plan = rng.choices(list(PLANS), weights=[1, 2, 3])[0]
    free_mail = rng.random() < 0.25
    size = int(math.exp(rng.uniform(math.log(5), math.log(20000))))
    counts = {t: (rng.choice([0, 0, 0, 1, 2]) if t == "demo_request" else rng.choice([0, 0, 1, 2, 3, 5]))
              for t in SIGNALS}
    p = 1.0 / (1.0 + math.exp(-_logit(industry, title, plan, free_mail, size, counts)))
    won = rng.random() < p
    return {"industry": industry, "title": title, "plan": plan, "free_mail": free_mail, "size": size,
            "counts": counts, "p": p, "won": won, "source": rng.choice(SOURCES)}


def funnel_leads(*, tenant, n: int, seed: int, closed: bool, start: datetime | None = None,
                 days: int = 120, prefix: str = "f", with_outcomes: bool = True) -> list[FunnelLead]:
    """`n` leads (and their signals); closed ones get an outcome (won with the true odds) spread over `days`
    from `start` (close dates in order of creation), open ones have their signals in the last 30 days.
    `with_outcomes=False`: the closed leads' outcomes are left for the caller to send (`POST /api/v1/outcomes/`)."""
    rng = random.Random(seed)
    now = timezone.now()
    start = start or now - timedelta(days=days + 1)
    leads, signals, outcomes, out = [], [], [], []
    for i in range(n):
        d = _draw(rng)
        industry, title, plan, free_mail, size, counts, p, won = (
            d["industry"], d["title"], d["plan"], d["free_mail"], d["size"], d["counts"], d["p"], d["won"])
        lead_id = uuid.uuid4()
        ref = start + timedelta(days=days * i / max(1, n)) if closed else now
        domain = "gmail.com" if free_mail else f"co{i}-{prefix}{seed}.example"
        leads.append(Lead(
            id=lead_id, tenant=tenant, email=f"{prefix}{seed}-{i}@{domain}", first_name="Pat", last_name=f"L{i}",
            company=f"Company {i}", company_size=size, industry=industry, job_title=title,
            source=d["source"], is_personal_email=free_mail, attributes={"plan": plan},
            created_at=ref - timedelta(days=20), last_activity_at=ref - timedelta(days=1),
        ))
        for signal_type, count in counts.items():
            for k in range(count):
                signals.append(Signal(tenant=tenant, lead_id=lead_id, type=signal_type,
                                      occurred_at=ref - timedelta(days=1 + rng.random() * 25, minutes=k),
                                      processed_at=ref))
        if closed and with_outcomes:
            outcomes.append(Outcome(tenant=tenant, lead_id=lead_id,
                                    result=OutcomeResult.WON if won else OutcomeResult.LOST, closed_at=ref,
                                    source=OutcomeSource.SYNC))
        out.append(FunnelLead(id=lead_id, propensity=p, won=won, closed_at=ref if closed else None))
    Lead.objects.unscoped().bulk_create(leads, batch_size=2000)
    Signal.objects.unscoped().bulk_create(signals, batch_size=5000)
    Outcome.objects.unscoped().bulk_create(outcomes, batch_size=2000)
    return out


@dataclass
class FunnelPerson:
    """A fresh person of the funnel as a web form and a tracker would send them: the intake body, the signals
    (type, days ago) and the true odds."""
    email: str
    intake: dict
    signals: list[tuple[str, float]]
    propensity: float
    won: bool


def funnel_people(*, n: int, seed: int, prefix: str = "web") -> list[FunnelPerson]:
    """`n` fresh people drawn from the same funnel as `funnel_leads` (same odds), written nowhere: the caller posts
    them through the intake and their signals through the signals API."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        d = _draw(rng)
        domain = "gmail.com" if d["free_mail"] else f"co{i}-{prefix}{seed}.example"
        email = f"{prefix}{seed}-{i}@{domain}"
        intake = {"email": email, "first_name": "Pat", "last_name": f"W{i}", "company": f"Company {i}",
                  "employees": d["size"], "industry": d["industry"], "job_title": d["title"], "plan": d["plan"],
                  "source": d["source"]}
        signals = [(t, 1 + rng.random() * 25) for t, c in d["counts"].items() for _k in range(c)]
        out.append(FunnelPerson(email=email, intake=intake, signals=signals, propensity=d["p"], won=d["won"]))
    return out


def outcomes_sync_post(client, closed: list[FunnelLead], *, amount: str = "12000.00") -> None:
    """The closed leads' outcomes sent as another CRM would, through `POST /api/v1/outcomes/` in batches of 1,000
    (won with `amount` EUR, lost for "price"); every one must come back `recorded`."""
    for start in range(0, len(closed), 1000):
        items = [{"lead_id": str(f.id), "outcome": "won" if f.won else "lost", "closed_at": f.closed_at.isoformat()}
                 | ({"amount": amount, "currency": "EUR"} if f.won else {"reason": "price"})
                 for f in closed[start:start + 1000]]
        response = client.post("/api/v1/outcomes/", items, format="json")
        assert response.status_code == 202, response.content
        results = response.json()["results"]
        assert {r["status"] for r in results} == {"recorded"}, results[:3]
