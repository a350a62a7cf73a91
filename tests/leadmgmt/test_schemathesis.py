"""Schemathesis over the whole OpenAPI schema: every operation of /api/schema/ with every check, positive and
negative data, sent to the app in-process (WSGI) as a seeded tenant's integration; no 5xx, no schema violation.

`SCHEMATHESIS_MAX_EXAMPLES` (default 200) is the number of generated cases per operation in the fuzzing phase;
the examples and coverage phases add their own. `SCHEMATHESIS_SEED` fixes the data, so a run is repeatable."""
from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import random
import time

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client, TestCase, override_settings
from django.utils import timezone
from django.utils.crypto import get_random_string
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

from leadmgmt.api import ApiKeyRateThrottle
from leadmgmt.audit.actors import Actor
from leadmgmt.celery import app as celery_app
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.events import tenant_provisioned
from leadmgmt.tenancy.models import Membership, Role, Tenant
from leadmgmt.webhooks.models import (
    AttemptTrigger,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEvent,
)
from leadmgmt.webhooks.services.endpoints import webhook_endpoint_create
from leads.models import OPEN_STATUSES, ActivityOutcome, Lead, LostReason, Opportunity
from leads.throttles import IntakeFormRateThrottle, IntakeIpRateThrottle
from nurture.models import Enrollment, NurtureSettings, Sequence, SequenceStatus
from nurture.services.enrollment import lead_enroll, lead_mailable_problems
from routing.models import Notification, RejectionReason
from scoring.models import ScoringModel
from tests.support.factories import TenantFactory, api_key_for
from workspace.management.commands.seed_demo import DEMO_FORM_NAME, DEMO_NAME, DEMO_SLUG, demo_seed
from workspace.services.imports import (
    import_mapping_set,
    import_run,
    import_run_start,
    import_upload,
)
from workspace.services.lifecycle import lead_convert

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "200"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20260413"))
SEEDER = Actor.agent("Schemathesis seeder")
NOT_THROTTLED = "1000000/min"  # the run sends thousands of requests a minute with one key, form and IP

SIGNALS = "POST /api/v1/signals/"
OUTCOMES = "POST /api/v1/outcomes/"
LEAD_BATCH = "POST /api/v1/leads/batch/"
WITH_BODY = ["POST", "PATCH", "PUT"]
# A body value of the right type can still be refused with a field error (400), for what a JSON schema cannot say:
# a row that is not there (a member, a sequence, a lead of the tenant), the lead's state, a phone number, NUL
# characters and lone surrogates (PostgreSQL stores neither). Query parameters get no such allowance.
BODY_POSITIVE_STATUSES = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
CONFIG = {
    "seed": SEED,
    "suppress-health-check": ["too_slow", "filter_too_much"],
    # Every check schemathesis has is on (its default); some are told what the API documents. For each check,
    # the first entry that matches an operation wins.
    "operations": [{
        # An `Idempotency-Key` sent again with another body is a 422 (as the IETF Idempotency-Key draft has it).
        "include-name": "POST /api/v1/intake/",
        "checks": {"positive_data_acceptance": {"expected-statuses": [*BODY_POSITIVE_STATUSES, "422"]}},
    }, {
        # Signals are answered item by item: a body that is an object or a list is a 202 whose results say which
        # items were refused (`signal_errors_are_reported` below holds it to that).
        "include-name": SIGNALS,
        "checks": {"negative_data_rejection": {"expected-statuses": [
            "202", "400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]}},
    }, {
        # Outcomes likewise: per item, in a 202 (`signal_errors_are_reported` holds them to it too).
        "include-name": OUTCOMES,
        "checks": {"negative_data_rejection": {"expected-statuses": [
            "202", "400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]}},
    }, {
        # A batch of leads is answered lead by lead (207), as the web intake would answer each: a lead's text field
        # sent as a number is taken as text, a refused lead is an error in the results. Its Idempotency-Key sent
        # again with another batch is a 422.
        "include-name": LEAD_BATCH,
        "checks": {
            "negative_data_rejection": {"expected-statuses": [
                "207", "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]},
            "positive_data_acceptance": {"expected-statuses": [*BODY_POSITIVE_STATUSES, "422"]},
        },
    }, {
        # A backtest's range is two dates the schema allows one by one; `from` after `to`, a range over ten years or
        # a year outside 1970–2999 is a 400 on the field, which a JSON schema cannot say.
        "include-name": "GET /api/v1/scoring/models/{id}/backtest/",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404"]}},
    }, {
        # The feedback report's range is two dates the schema cannot relate: `from` after `to`, more than 366 days,
        # or one without the other is a 400 with field messages.
        "include-name": "GET /api/v1/reports/feedback/",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "429",
                                                                      "5xx"]}},
    }, {
        "include-method": WITH_BODY,
        "checks": {"positive_data_acceptance": {"expected-statuses": BODY_POSITIVE_STATUSES}},
    }],
}
# Loaded from the app itself, as a client would (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(),
                                        config=schemathesis.Config.from_dict(CONFIG))
SEEDED: dict = {}  # what the hooks and auth providers below use, filled by the `seeded` fixture
STATS: dict = {"cases": 0, "started": None, "statuses": collections.defaultdict(collections.Counter),
               "reached": set()}


# --- the tenant under test ----------------------------------------------------------------------------------


def _seed(credentials_path) -> dict:
    """The demo tenant (people of every role, teams, a territory, routing rules, nurture sequences, its form and
    leads captured, scored and routed), a key with every scope, the raw bounce secret, enrolments and the
    session of a rep who has notifications."""
    # The tenant row first, then its set-up inside its scope (what `tenant_create` does) and the demo's data.
    tenant = TenantFactory(slug=DEMO_SLUG, name=DEMO_NAME)
    with tenant_scope(tenant):
        with TestCase.captureOnCommitCallbacks(execute=True):  # score and route the captured leads
            tenant_provisioned.send(sender=Tenant, tenant=tenant, actor=SEEDER, form_name=DEMO_FORM_NAME,
                                    allowed_origins=["*"])
            result = demo_seed(credentials_path=credentials_path, base_url="http://localhost")
        _key, raw_key = api_key_for(tenant)
        nurture = NurtureSettings.objects.get()
        bounce_secret = nurture.bounce_secret_generate()
        nurture.save(update_fields=["bounce_secret", "updated_at"])
        leads = list(Lead.objects.order_by("created_at"))
        # Every mailable lead enrolled, but one kept free for the enrolment POST to have a lead it can enrol
        # (most demo leads are its closed history, which nobody enrols).
        free = [lead for lead in leads if not lead_mailable_problems(lead=lead)][-1:]
        for lead in leads:
            for sequence in Sequence.objects.filter(status=SequenceStatus.ACTIVE).order_by("pk"):
                if lead not in free and not lead_mailable_problems(lead=lead):
                    with contextlib.suppress(ValidationError):  # already in a sequence of that kind
                        lead_enroll(lead=lead, sequence=sequence, actor=SEEDER)
        rep = Notification.objects.order_by("pk").first().user
        admin = Membership.objects.get(role=Role.ADMIN).user
        data = {
            "tenant_slug": tenant.slug, "api_key": raw_key, "form_key": result.form_key,
            "bounce_secret": bounce_secret, "lead_ids": [str(lead.pk) for lead in leads],
            "enrollments": [(str(lead), int(pk)) for lead, pk in Enrollment.objects.values_list("lead_id", "pk")],
            "enrollable_lead_ids": [str(lead.pk) for lead in free],
            "notification_ids": list(Notification.objects.filter(user=rep).values_list("pk", flat=True)),
            "owners": {str(lead.pk): lead.owner_id for lead in leads},
            "member_ids": sorted(Membership.objects.values_list("user_id", flat=True)),
            "sequence_ids": sorted(Sequence.objects.values_list("pk", flat=True)),
            "reason_codes": sorted(RejectionReason.objects.values_list("code", flat=True)),
            "outcomes": sorted(ActivityOutcome.objects.values_list("code", flat=True)),
            "emails": sorted(lead.email for lead in leads if lead.email),
            "import_ids": _imports_seed(tenant),
            "duplicate_pair_ids": _duplicates_seed(tenant),
            "opportunity_ids": _opportunities_seed(tenant),
            "lost_reason_codes": sorted(LostReason.objects.values_list("code", flat=True)),
            "scoring_model_ids": sorted(ScoringModel.objects.values_list("pk", flat=True)),
            "currencies": ["EUR", "USD", "GBP"],
            **_webhooks_seed(tenant),
        }
        _predictive_seed(tenant)
    data["rep_session"], data["admin_session"] = _session(rep), _session(admin)
    return data


def _predictive_seed(tenant) -> None:
    """Closed history enough for the learned model (lower minimums), and a model trained on it: training and
    suggesting a draft answer 2xx."""
    from scoring.models import ScoringModel
    from scoring.predictive.services import predictive_train
    from tests.support.funnel import funnel_leads

    ScoringModel.objects.filter(status="published").update(predictive_min_closed=40, predictive_min_won=5)
    funnel_leads(tenant=tenant, n=150, seed=5, closed=True, prefix="schemathesis")
    predictive_train(tenant=tenant, actor=SEEDER)


def _duplicates_seed(tenant) -> list[int]:
    """Possible-duplicate pairs to review (same phone, different emails): each can be merged, dismissed, undone."""
    from leads.models import DuplicatePair
    from leads.services.duplicates import duplicate_pairs_detect

    for n in range(3):
        for side in ("a", "b"):
            Lead.objects.create(tenant=tenant, email=f"twin{n}{side}@schemathesis.example", first_name="Twin",
                                last_name=f"Seed{n}", phone=f"+1415555098{n}")
    duplicate_pairs_detect(tenant=tenant)
    return sorted(DuplicatePair.objects.values_list("pk", flat=True))


def _opportunities_seed(tenant) -> list[int]:
    """Open opportunities to move and close (the demo's converted leads, and two more converted here)."""
    for lead in Lead.objects.filter(owner__isnull=False, status__in=OPEN_STATUSES).order_by("created_at", "pk")[:2]:
        lead_convert(lead=lead, actor=SEEDER)
    return sorted(Opportunity.objects.values_list("pk", flat=True))


def _imports_seed(tenant) -> list[int]:
    """CSV imports at each step an endpoint needs: uploaded (mapping), mapped (dry run, run), finished (undo,
    refused rows)."""
    content = b"email,first_name\nnew.import@schemathesis.example,Ima\nnot-an-email,Bad\n"
    uploaded = import_upload(tenant=tenant, actor=SEEDER, file_name="seed.csv", content=content)
    mapped = import_upload(tenant=tenant, actor=SEEDER, file_name="seed.csv", content=content)
    mapped = import_mapping_set(job=mapped, mapping=mapped.mapping)
    finished = import_upload(tenant=tenant, actor=SEEDER, file_name="seed.csv", content=content)
    finished = import_run_start(job=import_mapping_set(job=finished, mapping=finished.mapping), actor=SEEDER)
    import_run(tenant=tenant, job_id=finished.pk)
    return [uploaded.pk, mapped.pk, finished.pk]
def _webhooks_seed(tenant) -> dict:
    """An endpoint with a delivery given up after two attempts (to send again; one answered, one timed out); nothing
    is ever sent (the transaction never commits)."""
    endpoint = webhook_endpoint_create(tenant=tenant, actor=SEEDER, url="https://hooks.schemathesis.example/in",
                                       events=["lead.created"])
    event = WebhookEvent.objects.create(tenant=tenant, type="lead.created", payload={"data": {}})
    delivery = WebhookDelivery.objects.create(tenant=tenant, endpoint=endpoint, event=event,
                                              status=DeliveryStatus.FAILED)
    WebhookDeliveryAttempt.objects.bulk_create([
        WebhookDeliveryAttempt(tenant=tenant, delivery=delivery, number=1, trigger=AttemptTrigger.FIRST,
                               attempted_at=timezone.now(), status_code=500, response_time_ms=12,
                               response_excerpt='{"error": "busy"}'),
        WebhookDeliveryAttempt(tenant=tenant, delivery=delivery, number=2, trigger=AttemptTrigger.RETRY,
                               attempted_at=timezone.now(), error="TimeoutError: timed out", response_time_ms=10000)])
    return {"webhook_ids": [endpoint.pk], "webhook_delivery_ids": [delivery.pk]}


def _session(user) -> str:
    browser = Client()
    browser.force_login(user)
    return browser.cookies[django_settings.SESSION_COOKIE_NAME].value


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seeded once for the module in a transaction rolled back at its end; each operation's test runs in a
    savepoint inside it (the `db` fixture), so every operation starts from the same data."""
    # Requests go through the WSGI handler, whose request signals would close the connection that holds this
    # transaction (Django's test client unhooks them the same way).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    throttles = (ApiKeyRateThrottle, IntakeFormRateThrottle, IntakeIpRateThrottle)
    absent = object()
    rates = [throttle.__dict__.get("rate", absent) for throttle in throttles]
    for throttle in throttles:
        throttle.rate = NOT_THROTTLED
    try:
        with django_db_blocker.unblock(), override_settings(
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]), transaction.atomic():
            SEEDED.update(_seed(tmp_path_factory.mktemp("schemathesis") / "credentials.json"))
            yield SEEDED
            transaction.set_rollback(True)
    finally:
        SEEDED.clear()
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
        celery_app.conf.task_always_eager = eager
        for throttle, rate in zip(throttles, rates, strict=True):
            if rate is absent:
                del throttle.rate
            else:
                throttle.rate = rate  # the class's own value (None: the settings' rate)


# --- who calls: the tenant's API key; a rep's session for notifications; the bounce secret for bounces -------
# Schemathesis builds the coverage phase's cases while collecting, before anything is seeded, so the providers
# put placeholders (which also mark the auth as explicit for the `ignored_auth` check) and `_credentials`
# swaps in the seeded secrets right before each call.

PLACEHOLDERS = {"SEEDED-API-KEY": "api_key", "SEEDED-BOUNCE-SECRET": "bounce_secret",
                "SEEDED-REP-SESSION": "rep_session", "SEEDED-ADMIN-SESSION": "admin_session"}
CSRF_TOKEN = get_random_string(32)
# An API key is refused (403): the lead actions a person takes, outbound webhooks (tenant admins) and the merge
# review of possible duplicates (managers, admins).
MEMBERS_ONLY = r"^/api/v1/leads/\{id\}/(accept|reject|qualify|convert)/$|^/api/v1/webhooks/|^/api/v1/duplicates/"


def _session_auth(case, session) -> None:
    case.cookies = {**(case.cookies or {}), django_settings.SESSION_COOKIE_NAME: session,
                    django_settings.CSRF_COOKIE_NAME: CSRF_TOKEN}
    case.headers = {**(case.headers or {}), "X-CSRFToken": CSRF_TOKEN}


@schema.auth.auth().apply_to(path_regex="^/api/v1/notifications/")
class RepSession:
    """Notifications belong to people (an API key gets 403): the session of a rep who has some."""

    def get(self, case, context):
        return "SEEDED-REP-SESSION"

    def set(self, case, session, context):
        _session_auth(case, session)


@schema.auth.auth().apply_to(path_regex=MEMBERS_ONLY).apply_to(method="POST", path_regex="/activities/$")
class AdminSession:
    """Accept, reject, qualify, convert and logging an activity are done by signed-in members (an API key gets
    403): a tenant admin's session, who may act on every lead."""

    def get(self, case, context):
        return "SEEDED-ADMIN-SESSION"

    def set(self, case, session, context):
        _session_auth(case, session)


@schema.auth.auth().apply_to(path_regex="^/api/v1/nurture/bounces/")
class BounceSecret:
    """The email provider's bounce callback authenticates with the tenant's bounce secret."""

    def get(self, case, context):
        return "SEEDED-BOUNCE-SECRET"

    def set(self, case, secret, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}


@schema.auth.auth()
class TenantApiKey:
    """Every other operation: the tenant's API key with every scope."""

    def get(self, case, context):
        return "SEEDED-API-KEY"

    def set(self, case, key, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}


def _credentials(case) -> None:
    """The placeholders of the auth providers replaced by the seeded tenant's secrets."""
    for container in (case.headers, case.cookies):
        for name, value in list((container or {}).items()):
            if isinstance(value, str):
                for placeholder, key in PLACEHOLDERS.items():
                    value = value.replace(placeholder, SEEDED[key])
                container[name] = value


# --- values that reach the seeded rows -----------------------------------------------------------------------
# Random ids name nothing (404, or 400 on a body field), so most of the time a value the schema allows is swapped
# for one of the seeded tenant's: a lead, its enrolment, a member, a sequence, a reason code …. Values of a part
# the case negates are left alone and nothing is added, so a negative case stays negative. Fuzzed cases choose
# through Hypothesis (`flatmap_case`); the coverage phase's, built while collecting, choose right before the call
# by a hash of the case (the same choices every run); so do the schema's own examples.

BODY_REFERENCES = {  # body field: the seeded values it may take (by operation path, or for every operation)
    "to_user_id": "member_ids", "from_user_id": "member_ids", "owner": "member_ids", "sequence": "sequence_ids",
    "lead_id": "lead_ids", "email": "emails", ("/api/v1/leads/{id}/reject/", "reason"): "reason_codes",
    ("/api/v1/leads/{id}/activities/", "outcome"): "outcomes",
    ("/api/v1/opportunities/{id}/", "lost_reason"): "lost_reason_codes",
    # A random three-letter code is almost never ISO 4217.
    ("/api/v1/costs/", "currency"): "currencies", ("/api/v1/funnel-plan/", "currency"): "currencies",
}


def _seed_into(case, choose):
    """`case` with seeded values where it has values of their type; `choose(options)` picks one option (the
    last option keeps what was generated)."""

    meta = case.meta  # read once, before any change (reading it after one revalidates the changed parts)
    negated = {where for where in ParameterLocation if meta is not None and meta.is_negative_at(where)}

    def positive(location) -> bool:
        return location not in negated

    def swap(container: dict, key, values) -> None:
        value = container.get(key)
        if values and isinstance(value, type(values[0])) and not isinstance(value, bool):
            container[key] = choose([*values, value])

    path, operation = case.path_parameters or {}, case.operation.path
    if positive(ParameterLocation.PATH):
        if "enrollment_id" in path:
            pair = choose([*SEEDED["enrollments"], None])
            if pair is not None:
                path["id"], path["enrollment_id"] = pair[0], str(pair[1])
        elif operation == "/api/v1/leads/{id}/enrollments/" and case.method == "POST":
            swap(path, "id", SEEDED["enrollable_lead_ids"])
        elif operation.startswith("/api/v1/imports/{id}/"):
            swap(path, "id", SEEDED["import_ids"])
        elif operation.startswith("/api/v1/opportunities/{id}/"):
            swap(path, "id", SEEDED["opportunity_ids"])
        elif operation.startswith("/api/v1/scoring/models/{id}/"):
            swap(path, "id", SEEDED["scoring_model_ids"])
        elif operation.startswith("/api/v1/webhooks/"):
            swap(path, "id", SEEDED["webhook_delivery_ids" if "/deliveries/{id}/" in operation else "webhook_ids"])
        else:
            swap(path, "id", SEEDED["lead_ids"])
        swap(path, "notification_id", SEEDED["notification_ids"])
        swap(path, "pair_id", SEEDED["duplicate_pair_ids"])
        swap(path, "tenant_slug", [SEEDED["tenant_slug"]])
    body = case.body if isinstance(case.body, dict) and positive(ParameterLocation.BODY) else {}
    for field, seeded in BODY_REFERENCES.items():
        if isinstance(field, str) or field[0] == operation:
            swap(body, field if isinstance(field, str) else field[1], SEEDED[seeded])
    if isinstance(body.get("expected_owner_id"), int) and path.get("id") in SEEDED["owners"]:
        body["expected_owner_id"] = choose([SEEDED["owners"][path["id"]], body["expected_owner_id"]])
    if operation == "/api/v1/intake/" and all(positive(where) for where in ParameterLocation) \
            and choose([True, False]):
        # The seeded form's key in its header, and no other (different form keys in one request are a 400); a
        # person to capture (a form post needs an email or a phone): a new one, or a lead's to merge into.
        case.headers = {**(case.headers or {}), "X-Form-Key": SEEDED["form_key"]}
        (case.query or {}).pop("form_key", None)
        if isinstance(case.body, dict):
            case.body.pop("form_key", None)
            kept = [case.body["email"]] if "email" in case.body else []
            case.body["email"] = choose([*SEEDED["emails"][:2], "new.lead@schemathesis.example", *kept])
    return case


@schema.hook
def flatmap_case(context, case):
    if not SEEDED:  # a coverage case, built while collecting: `_seed_coverage_case` does it before the call
        return st.just(case)

    @st.composite
    def seeded(draw):
        return _seed_into(case, lambda options: draw(st.sampled_from(options)))

    return seeded()


def _seed_coverage_case(case) -> None:
    if case.meta is not None and case.meta.phase.name.value != "fuzzing":  # coverage and explicit examples
        key = f"{SEED}:{case.operation.label}:{case.path_parameters!r}:{case.query!r}:{case.body!r}"
        _seed_into(case, random.Random(hashlib.blake2b(key.encode("utf-8", "surrogatepass")).digest()).choice)


@schemathesis.check
def signal_errors_are_reported(ctx, response, case):
    """A batch of signals (or outcomes) the schema refuses is a 400, or a 202 whose results report an item as an
    error."""
    if case.operation.label not in (SIGNALS, OUTCOMES) or response.status_code != 202 or case.meta is None \
            or not case.meta.is_negative_at(ParameterLocation.BODY):
        return None
    statuses = [item.get("status") for item in response.json().get("results", [])]
    assert "error" in statuses, f"an item the schema refuses was not reported as an error: {statuses}"
    return True


@schema.hook
def after_call(context, case, response):
    STATS["statuses"][case.operation.label][response.status_code] += 1
    if 200 <= response.status_code < 300 and response.request.method == case.method.upper():
        STATS["reached"].add(case.operation.label)


# --- the run --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _timer(seeded):
    STATS["started"] = STATS["started"] or time.monotonic()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case):
    STATS["cases"] += 1
    _seed_coverage_case(case)
    _credentials(case)
    case.call_and_validate()  # every check enabled in schemathesis' default configuration


def test_every_check_is_on():
    checks = schema.config.checks_config_for()
    for name in ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                 "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
                 "positive_data_acceptance", "missing_required_header", "unsupported_method",
                 "allow_header_conformance", "ignored_auth", "use_after_free", "ensure_resource_availability"):
        assert checks.get_by_name(name=name).enabled, name


def test_every_operation_got_past_validation_at_least_once():
    """The seeding works: each operation that ran (all of them in a full run; those selected with -k
    otherwise) answered a 2xx to its own method at least once (runs after the operations' tests)."""
    labels = {result.ok().label for result in schema.get_all_operations()}
    ran = set(STATS["statuses"])
    assert ran <= labels
    assert ran - STATS["reached"] == set()


class _Summary:
    """Prints what the run did at the end of the session (a teardown's output is captured)."""

    def pytest_terminal_summary(self, terminalreporter):
        if STATS["started"] is None:
            return
        elapsed = time.monotonic() - STATS["started"]
        requests = sum(sum(counts.values()) for counts in STATS["statuses"].values())
        terminalreporter.write_sep("-", "schemathesis")
        terminalreporter.write_line(
            f"{STATS['cases']} cases ({requests} requests with the checks' own) over {len(STATS['statuses'])} "
            f"operations in {elapsed:.0f} s (max_examples={MAX_EXAMPLES}, seed={SEED})")
        for label in sorted(STATS["statuses"]):
            counts = " ".join(f"{code}:{n}" for code, n in sorted(STATS["statuses"][label].items()))
            terminalreporter.write_line(f"  {label:<58} {counts}")


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    if not request.config.pluginmanager.has_plugin("schemathesis-summary"):
        request.config.pluginmanager.register(_Summary(), "schemathesis-summary")
