"""`manage.py seed_demo [--json]`: the "Demo Co" tenant that `make run` shows (idempotent).

Everything is written through the services that audit: the tenant, its admin, team, form and
routing set-up come from `tenant_create`, the other users from `membership_upsert`, the key from
`api_key_create`, and the sample leads from the capture service (`lead_capture`), exactly as
if they had been posted to the demo form.
Running it again adds nothing: existing users, leads and the key are reused.

API keys are stored hashed, so the raw demo key is kept in `<data dir>/demo_credentials.json`
(mode 0600) to be printed on every run. When that file is missing or its key no longer works
(a fresh database, a revoked key), the previous demo keys are revoked and a new one is stored.
Fixed passwords are acceptable here only because this tenant is a local demo.
"""
from __future__ import annotations

import json
import math
import os
import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record, diff, snapshot
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiKey, Role, Team, Tenant
from leadmgmt.tenancy.selectors import api_key_lookup
from leadmgmt.tenancy.services import (
    DEFAULT_TEAM,
    api_key_create,
    api_key_revoke,
    membership_upsert,
    tenant_create,
)
from leads.models import Lead, LeadForm, Outcome, Signal
from leads.services.capture import lead_capture
from leads.services.duplicates import duplicate_pairs_detect
from nurture.defaults import nurture_defaults_create
from nurture.models import NurtureSettings
from nurture.services.tracking import bounce_record
from routing.defaults import routing_defaults_create
from routing.models import Territory
from scoring.models import ScoreCause
from scoring.predictive.services import predictive_train
from scoring.services import SCORING_AGENT, leads_score, scoring_default_model_create
from workspace.funnel_plan import funnel_plan_get, month_add, tenant_today
from workspace.services.funnel_plan import funnel_plan_save
from workspace.services.outcomes import OutcomeInput, outcomes_sync
from workspace.services.source_costs import CostInput, source_costs_upsert

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Co"
DEMO_PASSWORD = "demo-pass-1234"  # noqa: S105 - the local demo tenant only; printed by `make run`
DEMO_FORM_NAME = "Website"
DEMO_KEY_NAME = "Demo integration key"
# tenant_create names its key "Default integration key"; both are demo keys that may be rotated.
DEMO_KEY_NAMES = {DEMO_KEY_NAME, "Default integration key"}
CREDENTIALS_FILE = "demo_credentials.json"
SEED_ACTOR = Actor.agent("Demo seeder")
AE_TEAM = "Account Executives"
MANAGER_EMAIL = "manager@demo.test"
DEMO_POSTAL_ADDRESS = "Demo Co, 100 Example Street, Springfield, IL 62701, United States"
# Qualified leads from these countries hand off to the AE team (SDR → AE, seed 003).
# ISO 3166-1 alpha-2 codes, the form territories are saved in (United States, Canada, UK, France, Germany).
DEMO_TERRITORY = ("North America and Europe", ["US", "CA", "GB", "FR", "DE"])

# (email, role, team): admin first, it is the tenant's provisioning admin.
DEMO_USERS: list[tuple[str, str, str | None]] = [
    ("admin@demo.test", Role.ADMIN, None),
    ("manager@demo.test", Role.MANAGER, DEFAULT_TEAM),
    ("sdr1@demo.test", Role.SDR, DEFAULT_TEAM),
    ("sdr2@demo.test", Role.SDR, DEFAULT_TEAM),
    ("ae@demo.test", Role.AE, AE_TEAM),
    ("ae2@demo.test", Role.AE, AE_TEAM),
    ("marketing@demo.test", Role.MARKETING_OPS, None),
]
# Names people see on every page (owners, timelines, notifications); given only where a user has none.
DEMO_NAMES: dict[str, tuple[str, str]] = {
    "admin@demo.test": ("Alex", "Morgan"), "manager@demo.test": ("Maria", "Lopez"),
    "sdr1@demo.test": ("Dana", "Reyes"), "sdr2@demo.test": ("Sam", "Rivera"), "ae@demo.test": ("Ana", "Ruiz"),
    "ae2@demo.test": ("Ben", "Okafor"), "marketing@demo.test": ("Mia", "Chen"),
}

# A spread of fit and channels: strong ICP, mid-market, small business, personal email, phone only.
DEMO_LEADS: list[dict] = [
    {"email": "dana.whitfield@northwind-analytics.com", "first_name": "Dana", "last_name": "Whitfield",
     "job_title": "VP Marketing", "company": "Northwind Analytics", "company_size": 850,
     "industry": "Software", "country": "United States", "phone": "+1 415 555 0134",
     "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "demo-request", "marketing_consent": True},
    {"email": "raj.patel@contoso-logistics.com", "first_name": "Raj", "last_name": "Patel",
     "job_title": "Head of Operations", "company": "Contoso Logistics", "company_size": 2400,
     "industry": "Logistics", "country": "United Kingdom", "utm_source": "linkedin", "utm_medium": "paid_social",
     "utm_campaign": "ops-efficiency", "marketing_consent": True},
    {"email": "mei.chen@fabrikam.io", "first_name": "Mei", "last_name": "Chen", "job_title": "CTO",
     "company": "Fabrikam", "company_size": 120, "industry": "Software", "country": "Singapore",
     "utm_source": "newsletter", "utm_medium": "email"},
    {"email": "lucas.moreau@tailspin-travel.fr", "first_name": "Lucas", "last_name": "Moreau",
     "job_title": "Marketing Manager", "company": "Tailspin Travel", "company_size": 45,
     "industry": "Travel", "country": "France", "utm_source": "webinar", "utm_medium": "event"},
    {"email": "sam.rivera@adventure-works.com", "first_name": "Sam", "last_name": "Rivera",
     "job_title": "Director of Sales", "company": "Adventure Works", "company_size": 5200,
     "industry": "Manufacturing", "country": "United States", "utm_source": "g2", "utm_medium": "review_site"},
    {"email": "jordan.lee.home@gmail.com", "first_name": "Jordan", "last_name": "Lee",
     "job_title": "Student", "utm_source": "organic"},
    {"email": "olga.ivanova@woodgrove-bank.com", "first_name": "Olga", "last_name": "Ivanova",
     "job_title": "Procurement Lead", "company": "Woodgrove Bank", "company_size": 12000,
     "industry": "Financial Services", "country": "Germany", "utm_source": "partner", "utm_medium": "referral"},
    {"phone": "+1 212 555 0187", "first_name": "Chris", "last_name": "Okafor", "company": "Litware",
     "job_title": "Owner", "company_size": 8, "country": "United States", "utm_source": "chat"},
    # Dana Whitfield again, from home: the same phone, another address (a possible duplicate for the merge review).
    {"email": "dana.whitfield.home@gmail.com", "first_name": "Dana", "last_name": "Whitfield",
     "phone": "+1 415 555 0134", "job_title": "VP Marketing", "utm_source": "webinar", "utm_medium": "event"},
]
# The address the email provider reported as a hard bounce (Manager → Bounced addresses, the lead page's banner).
DEMO_BOUNCED = ("lucas.moreau@tailspin-travel.fr", "550 5.1.1 The email account that you tried to reach does not exist")


@dataclass
class DemoSeedResult:
    tenant: str
    tenant_name: str
    created: bool
    form_key: str
    api_key: str
    password: str
    login_url: str
    users: list[dict] = field(default_factory=list)
    leads_total: int = 0
    leads_added: int = 0
    credentials_file: str = ""


def default_credentials_path() -> Path:
    from leadmgmt.embedded import DATA_DIR

    return Path(DATA_DIR) / CREDENTIALS_FILE


def _read_credentials(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_credentials(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(tmp, path)


def demo_api_key_ensure(*, tenant: Tenant, credentials_path: Path, fresh_raw: str | None = None) -> str:
    """The raw demo key: the stored one while it still works, else a new one (old demo keys revoked)."""
    if fresh_raw is not None:
        _write_credentials(credentials_path, {"tenant": tenant.slug, "api_key": fresh_raw})
        return fresh_raw
    stored = _read_credentials(credentials_path).get("api_key") or ""
    key = api_key_lookup(raw=stored) if stored else None
    if key is not None and key.tenant_id == tenant.pk:
        return stored
    with transaction.atomic():
        for old in ApiKey.objects.for_tenant(tenant).filter(name__in=DEMO_KEY_NAMES, revoked_at__isnull=True):
            api_key_revoke(api_key=old, actor=SEED_ACTOR)
        _key, raw = api_key_create(tenant=tenant, name=DEMO_KEY_NAME, actor=SEED_ACTOR)
        # Written inside the transaction: if the file cannot be written, the key is not kept either.
        _write_credentials(credentials_path, {"tenant": tenant.slug, "api_key": raw})
    return raw


@transaction.atomic
def demo_form_configure(*, tenant: Tenant, success_url: str) -> LeadForm:
    """The demo form accepts any origin and redirects plain HTML posts to `success_url`."""
    form = LeadForm.objects.for_tenant(tenant).select_for_update().get(name=DEMO_FORM_NAME)
    fields = ["allowed_origins", "success_url", "is_active"]
    before = snapshot(form, fields)
    form.allowed_origins, form.success_url, form.is_active = ["*"], success_url, True
    changes = diff(before, snapshot(form, fields))
    if changes:
        form.save(update_fields=list(changes))
        audit_record(tenant=tenant, actor=SEED_ACTOR, action="lead_form.updated", obj=form, changes=changes)
    return form


@transaction.atomic
def demo_teams_configure(*, tenant: Tenant) -> None:
    """The demo manager manages the SDR and AE teams; the AE team owns one territory (idempotent)."""
    manager = get_user_model().objects.get(username=MANAGER_EMAIL)
    for team in Team.objects.for_tenant(tenant).select_for_update().filter(name__in=[DEFAULT_TEAM, AE_TEAM]):
        if team.manager_id != manager.pk:
            before = team.manager_id
            team.manager = manager
            team.save(update_fields=["manager"])
            audit_record(tenant=tenant, actor=SEED_ACTOR, action="team.updated", obj=team,
                         changes={"manager": [before, manager.pk]})
    name, countries = DEMO_TERRITORY
    if not Territory.objects.for_tenant(tenant).filter(name=name).exists():
        territory = Territory.objects.create(
            tenant=tenant, name=name, countries=countries,
            team=Team.objects.for_tenant(tenant).get(name=AE_TEAM))
        audit_record(tenant=tenant, actor=SEED_ACTOR, action="territory.created", obj=territory,
                     metadata={"name": name, "team": AE_TEAM})


@transaction.atomic
def demo_nurture_configure(*, tenant: Tenant) -> NurtureSettings:
    """The demo tenant's nurture defaults, with a postal address so its sequences send (idempotent)."""
    nurture_defaults_create(tenant=tenant, actor=SEED_ACTOR)
    nurture = NurtureSettings.objects.for_tenant(tenant).select_for_update().get()
    if not nurture.postal_address.strip():
        nurture.postal_address = DEMO_POSTAL_ADDRESS
        nurture.save(update_fields=["postal_address", "updated_at"])
        audit_record(tenant=tenant, actor=SEED_ACTOR, action="nurture_settings.updated", obj=nurture,
                     changes={"postal_address": ["", DEMO_POSTAL_ADDRESS]})
    return nurture


def demo_leads_seed(*, tenant: Tenant, form: LeadForm) -> int:
    """Capture the sample leads that are not there yet (through the demo form); returns how many."""
    existing_emails = set(
        Lead.objects.for_tenant(tenant).exclude(email="").values_list("email", flat=True)
    )
    existing_phones = set(Lead.objects.for_tenant(tenant).filter(email="").values_list("phone", flat=True))
    added = 0
    for data in DEMO_LEADS:
        email = data.get("email", "").lower()
        if email in existing_emails or (not email and data["phone"].replace(" ", "") in existing_phones):
            continue
        lead_capture(tenant=tenant, data=dict(data), actor=SEED_ACTOR, form=form)
        added += 1
    return added


def demo_review_seed(*, tenant: Tenant) -> None:
    """What a manager reviews in a real tenant's first week: the sample leads' possible duplicates (found now,
    not only when the worker's pipeline gets to them) and the bounced address, reported as the provider would.
    Both are no-ops the second time (a pair is stored once; a repeated bounce report changes nothing)."""
    samples = Lead.objects.for_tenant(tenant).filter(
        Q(email__in=[d["email"].lower() for d in DEMO_LEADS if d.get("email")]) | Q(email="", phone__in=[
            d["phone"].replace(" ", "") for d in DEMO_LEADS if not d.get("email")]))
    duplicate_pairs_detect(tenant=tenant, lead_ids=list(samples.values_list("pk", flat=True)))
    email, reason = DEMO_BOUNCED
    bounce_record(tenant=tenant, email=email, kind="hard", reason=reason, actor=SEED_ACTOR)


DEMO_CAMPAIGN_COSTS = {"demo-request": Decimal("1200.00"), "ops-efficiency": Decimal("800.00")}


def demo_costs_and_plan_seed(*, tenant: Tenant) -> None:
    """Three months of costs (this month and the two before) for each source the demo's leads carry and for its two
    paid campaigns (the Source ROI on the dashboards), and a funnel plan if the tenant has none (the plan page).
    Re-running it changes nothing: costs are upserted with the same amounts, an existing plan is left alone."""
    today, _tz = tenant_today(tenant)
    sources = sorted(set(Lead.objects.for_tenant(tenant).exclude(source="").values_list("source", flat=True))) \
        or ["web_form"]
    # Each paid campaign's cost on the source that brought most of its leads.
    campaign_source = {}
    for campaign in DEMO_CAMPAIGN_COSTS:
        carried = (Lead.objects.for_tenant(tenant).filter(campaign=campaign).values("source")
                   .annotate(n=Count("id")).order_by("-n", "source").first())
        campaign_source[campaign] = carried["source"] if carried else sources[0]
    items = []
    for back in range(3):
        month = month_add(today.replace(day=1), -back)
        for i, source in enumerate(sources):
            items.append(CostInput(month=month, source=source, campaign="", amount=Decimal(1500 + 250 * i),
                                   currency="EUR"))
        items += [CostInput(month=month, source=campaign_source[campaign], campaign=campaign, amount=amount,
                            currency="EUR") for campaign, amount in DEMO_CAMPAIGN_COSTS.items()]
    source_costs_upsert(tenant=tenant, items=items, actor=SEED_ACTOR)
    if funnel_plan_get(tenant=tenant) is None:
        funnel_plan_save(tenant=tenant, actor=SEED_ACTOR, data={
            "revenue_target": Decimal("100000"), "target_period": "month", "currency": "EUR",
            "average_contract_value": Decimal("12000"), "lead_to_mql": Decimal("0.15"), "mql_to_sal": Decimal("0.5"),
            "sal_to_opportunity": Decimal("0.4"), "opportunity_to_won": Decimal("0.25")})


# The closed history (issue 16): people who bought or did not over the last half year, so the learned model, the
# backtest, the feedback report and the Source ROI show something on the first `make run`. Their odds of buying are
# a logistic function of these (a toy funnel; real tenants learn theirs from their own outcomes).
HISTORY_SIZE = 400
HISTORY_DOMAIN = "history.demo.test"
HISTORY_INDUSTRIES = {"Healthcare": 1.1, "Software": 0.7, "Financial Services": 0.3, "Manufacturing": 0.0,
                      "Retail": -0.7, "Education": -1.0}
HISTORY_TITLES = {"Chief Executive Officer": 0.9, "VP Sales": 0.8, "Director of Marketing": 0.5, "IT Manager": 0.1,
                  "Software Engineer": -0.4, "Student": -1.4}
HISTORY_SIGNALS = {"demo_request": 0.9, "pricing_page_view": 0.5, "email_click": 0.15, "webinar_attendance": 0.2}
HISTORY_SOURCES = [("web_form", "google", "demo-request"), ("webinar", "webinar", ""), ("paid_search", "linkedin",
                   "ops-efficiency"), ("event", "", ""), ("referral", "partner", "")]
HISTORY_LOST = ["price", "competitor", "no_decision", "timing", "missing_feature", "no_response"]


def demo_history_seed(*, tenant: Tenant) -> int:
    """HISTORY_SIZE closed leads (created 8–188 days ago, with their signals and owners) and their outcomes (won,
    lost or disqualified), recorded
    through the outcome sync like another CRM would send them; returns how many were added. Once only: a tenant
    with any outcome already is left alone, so re-running the seed (or a demo user's own outcomes) changes nothing."""
    if Outcome.objects.for_tenant(tenant).exists():
        return 0
    rng = random.Random(16)
    now = timezone.now()
    reps = {role: list(get_user_model().objects.filter(
        memberships__tenant=tenant, memberships__role=role, memberships__is_active=True).order_by("pk"))
        for role in (Role.SDR, Role.AE)}
    leads, signals, items = [], [], []
    for i in range(HISTORY_SIZE):
        industry, title = rng.choice(list(HISTORY_INDUSTRIES)), rng.choice(list(HISTORY_TITLES))
        free_mail = rng.random() < 0.2
        size = int(math.exp(rng.uniform(math.log(5), math.log(20000))))
        counts = {t: rng.choice([0, 0, 0, 1, 2] if t == "demo_request" else [0, 0, 1, 2, 3, 5])
                  for t in HISTORY_SIGNALS}
        z = (-1.9 + HISTORY_INDUSTRIES[industry] + HISTORY_TITLES[title] - (0.9 if free_mail else 0.0)
             + 0.25 * (math.log1p(size) - math.log1p(200))
             + sum(HISTORY_SIGNALS[t] * math.log1p(n) for t, n in counts.items()))
        won = rng.random() < 1 / (1 + math.exp(-z))
        source, utm_source, campaign = rng.choice(HISTORY_SOURCES)
        created = now - timedelta(days=8 + 180 * (HISTORY_SIZE - i) / HISTORY_SIZE)
        closed = min(created + timedelta(days=5 + rng.random() * 25), now - timedelta(hours=1))
        lead_id = uuid.uuid4()
        owners = reps[Role.AE] if won and reps[Role.AE] else reps[Role.SDR]
        leads.append(Lead(
            # Free-mail people keep the flag the capture would give them, on an address that reaches nobody.
            id=lead_id, tenant=tenant, email=f"buyer{i}@{'home.' if free_mail else ''}{HISTORY_DOMAIN}",
            first_name=rng.choice(["Alex", "Jamie", "Robin", "Kim", "Noa", "Lee", "Sasha", "Taylor"]),
            last_name=f"Buyer {i}", company="" if free_mail else f"Company {i}", company_size=size,
            industry=industry, job_title=title, source=source, utm_source=utm_source, utm_campaign=campaign,
            campaign=campaign, is_personal_email=free_mail, owner=owners[i % len(owners)] if owners else None,
            created_at=created, last_activity_at=closed, updated_at=closed))
        for signal_type, count in counts.items():
            signals += [Signal(tenant=tenant, lead_id=lead_id, type=signal_type, processed_at=closed,
                               occurred_at=created + timedelta(days=rng.random() * 5, minutes=k))
                        for k in range(count)]
        result = "won" if won else "disqualified" if rng.random() < 0.3 else "lost"
        items.append(OutcomeInput(
            index=i, result=result, lead_id=lead_id, closed_at=closed,
            amount=Decimal(rng.randrange(6, 40) * 1000) if won else None, currency="EUR" if won else "",
            reason="" if won else rng.choice(HISTORY_LOST)))
    with transaction.atomic():
        Lead.objects.for_tenant(tenant).bulk_create(leads, batch_size=500)
        Signal.objects.for_tenant(tenant).bulk_create(signals, batch_size=2000)
        outcomes_sync(tenant=tenant, items=items, actor=SEED_ACTOR, now=now)
    return len(leads)



@transaction.atomic
def demo_seed(*, credentials_path: Path, base_url: str) -> DemoSeedResult:
    """Create or complete the demo tenant, all or nothing; safe to run any number of times."""
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    created = tenant is None
    fresh_raw = None
    admin_email = DEMO_USERS[0][0]
    if created:
        provisioned = tenant_create(slug=DEMO_SLUG, name=DEMO_NAME, admin_email=admin_email,
                                    admin_password=DEMO_PASSWORD, actor=SEED_ACTOR, form_name=DEMO_FORM_NAME,
                                    allowed_origins=["*"])
        tenant, fresh_raw = provisioned.tenant, provisioned.api_key
    with tenant_scope(tenant):  # everything below is the demo tenant's (row-level security)
        return _demo_complete(tenant=tenant, created=created, fresh_raw=fresh_raw,
                              credentials_path=credentials_path, base_url=base_url)


def _demo_complete(*, tenant: Tenant, created: bool, fresh_raw: str | None,
                   credentials_path: Path, base_url: str) -> DemoSeedResult:
    if not created and not LeadForm.objects.for_tenant(tenant).filter(name=DEMO_FORM_NAME).exists():
        with transaction.atomic():
            form = LeadForm.objects.create(tenant=tenant, name=DEMO_FORM_NAME, allowed_origins=["*"])
            audit_record(tenant=tenant, actor=SEED_ACTOR, action="lead_form.created", obj=form,
                         metadata={"name": DEMO_FORM_NAME})
    users = []
    for email, role, team in DEMO_USERS:
        # A no-op for members that are already there (an existing user's password is left alone).
        membership, _created, _password = membership_upsert(tenant=tenant, email=email, role=role, team_name=team,
                                                            actor=SEED_ACTOR, password=DEMO_PASSWORD)
        user = membership.user
        if not (user.first_name or user.last_name) and email in DEMO_NAMES:
            user.first_name, user.last_name = DEMO_NAMES[email]
            user.save(update_fields=["first_name", "last_name"])
        users.append({"email": email, "role": str(role), "team": team or ""})
    # A demo tenant made before scoring existed gets its default model too (a no-op otherwise).
    scoring_default_model_create(tenant=tenant, actor=SEED_ACTOR)
    # ... and its routing set-up; then the manager leads both teams and the AE team has a territory.
    routing_defaults_create(tenant=tenant, actor=SEED_ACTOR)
    demo_teams_configure(tenant=tenant)
    # ... and its nurture set-up, with a postal address so the sequences send under `make run`.
    demo_nurture_configure(tenant=tenant)
    form = demo_form_configure(tenant=tenant, success_url=f"{base_url.rstrip('/')}/?submitted=1")
    raw_key = demo_api_key_ensure(tenant=tenant, credentials_path=credentials_path, fresh_raw=fresh_raw)
    added = demo_leads_seed(tenant=tenant, form=form)
    demo_review_seed(tenant=tenant)
    # Score now, so the demo shows scores even before the worker has run (idempotent: unchanged
    # scores are not rewritten).
    leads_score(tenant=tenant, cause=ScoreCause.CAPTURE, actor=SCORING_AGENT)
    history = demo_history_seed(tenant=tenant)
    if history:
        # The history scored like every lead, then the learned model trained on it (and every lead re-scored).
        leads_score(tenant=tenant, cause=ScoreCause.CAPTURE, actor=SCORING_AGENT)
        predictive_train(tenant=tenant, actor=SEED_ACTOR)
    demo_costs_and_plan_seed(tenant=tenant)  # after the history: the costs of every source the leads carry
    return DemoSeedResult(
        tenant=tenant.slug, tenant_name=tenant.name, created=created, form_key=form.key, api_key=raw_key,
        password=DEMO_PASSWORD, login_url=str(settings.LOGIN_URL), users=users,
        leads_total=Lead.objects.for_tenant(tenant).count(), leads_added=added + history,
        credentials_file=str(credentials_path),
    )


class Command(BaseCommand):
    help = "Create (or complete) the 'Demo Co' tenant with users for every role, a form, an API key and sample leads."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the credentials as one JSON object.")
        parser.add_argument("--credentials-file", default=None,
                            help=f"Where the raw demo API key is kept (default: <data dir>/{CREDENTIALS_FILE}).")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="Where the app is served; the demo form's success URL points at it.")

    def handle(self, *args, json: bool, credentials_file: str | None, base_url: str, **options):
        path = Path(credentials_file) if credentials_file else default_credentials_path()
        try:
            result = demo_seed(credentials_path=path, base_url=base_url)
        except OSError as exc:
            raise CommandError(f"could not write {path}: {exc}") from exc
        if json:
            self.stdout.write(_dumps(asdict(result)))
            return
        self.stdout.write(f"Tenant {result.tenant_name} ({result.tenant}) {'created' if result.created else 'up to date'}")
        self.stdout.write(f"form key: {result.form_key}\napi key:  {result.api_key}")
        for user in result.users:
            self.stdout.write(f"  {user['role']:<14} {user['email']:<24} password: {result.password}")
        self.stdout.write(f"leads: {result.leads_total} ({result.leads_added} added)")


def _dumps(payload) -> str:
    return json.dumps(payload)
