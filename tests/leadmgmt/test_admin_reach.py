"""Every model registered in the Django admin, walked as tenant staff: nothing of another tenant is
listed, opened, deleted, offered as a choice or autocompleted, and platform models are out of reach.

How it works. The walk reads `django.contrib.admin.site._registry` when the tests are collected, so a
model registered later (nurture's sequences, say) is walked without anyone editing this file:

* A model with a `tenant` foreign key is *tenant-scoped*. Its ModelAdmin must derive from
  `leadmgmt.tenancy.admin_base.TenantScopedAdmin` (test_every_tenant_model_uses_the_scoped_admin_base),
  and the walk needs one object of it in tenant A and one in tenant B. Both tenants are provisioned
  with `tenant_create()` (scoring model, routing set-up, reasons, form, API key, team ...) and one
  captured lead; a model still without rows is built by `auto_object()`, which fills the required
  fields by type and takes related rows from the same tenant. When that cannot build a valid row
  (a check constraint, a field type it does not know), the test fails and says so: add a builder
  `"app_label.ModelName": lambda tenant: ...` to OBJECT_FACTORIES below.
* A model without a `tenant` foreign key is *platform-only* (tenants, users, groups, Celery beat):
  tenant staff get 403 on every one of its pages even when granted every Django permission, and it
  is absent from their admin index. A model that belongs to a tenant only through its parent (a
  step of a sequence) is therefore refused too: show it as an inline of its tenant-scoped parent, or
  give it its own `tenant` column like every other tenant-owned table.

For each tenant-scoped model, as a marketing-ops user and as a tenant admin of A (both also granted
every Django permission, which the tenant-scoped admin must not care about):
changelist (only A's rows when allowed), add page and A's change page (every model choice, in the
form and its inlines, offers only A's rows and A's people), B's change, history and delete pages and
any custom per-object URL (never a 2xx), a bulk delete or delete confirmation aimed at B's object
(nothing deleted), the autocomplete endpoint for each foreign key (403 or A's rows only). At the end
not one row of tenant B has changed in number.
"""
from __future__ import annotations

import datetime as dt
import decimal
import itertools
import re
import uuid
from collections.abc import Callable

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import models, transaction
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.admin_base import TenantScopedAdmin
from leadmgmt.tenancy.models import Role, Tenant
from leadmgmt.tenancy.services import membership_upsert, tenant_create
from leads.models import LeadForm
from leads.services.capture import lead_capture

pytestmark = pytest.mark.django_db

User = get_user_model()


def _is_tenant_scoped(model) -> bool:
    try:
        field = model._meta.get_field("tenant")
    except Exception:  # noqa: BLE001 - FieldDoesNotExist
        return False
    return field.many_to_one and field.related_model is Tenant


REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
TENANT_MODELS = [model for model, _ in REGISTRY if _is_tenant_scoped(model)]
PLATFORM_MODELS = [model for model, _ in REGISTRY if not _is_tenant_scoped(model)]


def _label(model) -> str:
    return model._meta.label


# --- objects of each model ------------------------------------------------------------------------

# Builders for models that provisioning does not create and auto_object() cannot fill in.
OBJECT_FACTORIES: dict[str, Callable[[Tenant], models.Model]] = {}

_counter = itertools.count(1)


def _source_cost(tenant) -> models.Model:
    """A month is its first day (a check constraint)."""
    from workspace.models import SourceCost

    return SourceCost.objects.unscoped().create(tenant=tenant, month=timezone.localdate().replace(day=1),
                                                source=f"auto{next(_counter)}", amount=decimal.Decimal(1),
                                                currency="EUR")


OBJECT_FACTORIES["workspace.SourceCost"] = _source_cost


def _member_of(tenant) -> models.Model:
    return User.objects.filter(memberships__tenant=tenant).order_by("pk").first()


def _value_for(field, tenant, depth: int):
    n = next(_counter)
    if field.many_to_one:
        related = field.related_model
        if related is Tenant:
            return tenant
        if related is User:
            return _member_of(tenant)
        if _is_tenant_scoped(related):
            existing = related.objects.unscoped().filter(tenant=tenant).order_by("pk").first()
            return existing if existing is not None else auto_object(related, tenant, depth=depth + 1)
        raise TypeError(f"{field} points at {related._meta.label}, which has no tenant")
    if field.choices:
        return field.choices[0][0]
    simple: list[tuple[type, object]] = [
        (models.EmailField, f"auto{n}@reach.test"),
        (models.URLField, f"https://reach.test/{n}"),
        (models.SlugField, f"auto-{n}"),
        (models.GenericIPAddressField, "127.0.0.1"),
        (models.CharField, f"Auto {n}"),
        (models.TextField, f"Auto {n}"),
        (models.BooleanField, False),
        (models.DecimalField, decimal.Decimal(1)),
        (models.FloatField, 1.0),
        (models.IntegerField, n),
        (models.DateTimeField, timezone.now()),
        (models.DateField, timezone.localdate()),
        (models.TimeField, dt.time(9, 0)),
        (models.DurationField, dt.timedelta(minutes=5)),
        (models.UUIDField, uuid.uuid4()),
        (models.JSONField, {}),
    ]
    for field_type, value in simple:
        if isinstance(field, field_type):
            if isinstance(value, str) and field.max_length:
                return value[: field.max_length]
            return value
    raise TypeError(f"auto_object() cannot fill {field.__class__.__name__} {field}")


def auto_object(model, tenant, depth: int = 0) -> models.Model:
    """A row of `model` in `tenant` with every required field filled by type (related rows: the tenant's)."""
    if _label(model) in OBJECT_FACTORIES:
        return OBJECT_FACTORIES[_label(model)](tenant)
    if depth > 4:
        raise RecursionError(f"{_label(model)}: related objects nest too deep; add it to OBJECT_FACTORIES")
    values = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.has_default() or field.null or field.db_default is not models.NOT_PROVIDED:
            continue
        if field.blank and field.empty_strings_allowed and not field.many_to_one:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        values[field.name] = _value_for(field, tenant, depth)
    try:
        with transaction.atomic():
            return model.objects.unscoped().create(**values)
    except Exception as exc:
        raise AssertionError(
            f"Could not build a {_label(model)} for tenant {tenant.slug} ({exc!r}): add a builder to "
            "OBJECT_FACTORIES in tests/leadmgmt/test_admin_reach.py") from exc


def object_of(model, tenant) -> models.Model:
    existing = model.objects.unscoped().filter(tenant=tenant).order_by("pk").first()
    return existing if existing is not None else auto_object(model, tenant)


def provision(slug: str) -> Tenant:
    tenant = tenant_create(slug=slug, name=slug.replace("-", " ").title(), admin_email=f"admin@{slug}.test").tenant
    form = LeadForm.objects.unscoped().filter(tenant=tenant).first()
    lead_capture(tenant=tenant, data={"email": f"jane@{slug}-buyer.test", "first_name": "Jane",
                                      "company": f"{slug} buyer", "country": "Germany"}, actor=SYSTEM, form=form)
    return tenant


@pytest.fixture
def tenants():
    a, b = provision("reach-a"), provision("reach-b")
    objects = {model: (object_of(model, a), object_of(model, b)) for model in TENANT_MODELS}
    return a, b, objects


def staff_client(tenant, role, *, all_django_permissions: bool) -> tuple[Client, models.Model]:
    membership, _created, _pw = membership_upsert(tenant=tenant, email=f"{role}@{tenant.slug}.test", role=role)
    user = membership.user
    if not user.is_staff:  # SDRs, AEs and managers are not staff; tests make them so to prove roles decide
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if all_django_permissions:
        user.user_permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(user)
    return client, user


def tenant_b_counts(tenant_b) -> dict[str, int]:
    return {_label(m): m.objects.unscoped().filter(tenant=tenant_b).count() for m in TENANT_MODELS}


# --- URL helpers ------------------------------------------------------------------------------------


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _custom_object_urls(model_admin, pk) -> list[str]:
    """Per-object URLs a ModelAdmin adds to the standard ones (publish, new draft ...): every named
    pattern with one path parameter, given the object's pk."""
    standard = {"change", "delete", "history"}
    urls = []
    for pattern in model_admin.get_urls():
        name = getattr(pattern, "name", None) or ""
        params = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
        if not name or len(params) != 1 or name.rsplit("_", 1)[-1] in standard:
            continue
        try:
            urls.append(reverse(f"admin:{name}", kwargs={params[0]: pk}))
        except NoReverseMatch:
            continue
    return urls


def refused(response) -> bool:
    """A 403/404/405, or the admin's "… doesn't exist. Perhaps it was deleted?" redirect."""
    if response.status_code in (403, 404, 405):
        return True
    if response.status_code == 302:
        return True  # the admin redirects a missing (or not-yours) object to its index with a warning
    return False


def choice_leaks(form, tenant) -> list[str]:
    """Model choices of `form` that belong to another tenant (or people who are not its members)."""
    leaks = []
    for name, field in form.fields.items():
        queryset = getattr(field, "queryset", None)
        if queryset is None:
            continue
        related = queryset.model
        if related is Tenant:
            outside = queryset.exclude(pk=tenant.pk)
        elif related is User:
            outside = queryset.exclude(memberships__tenant=tenant)
        elif _is_tenant_scoped(related):
            outside = queryset.exclude(tenant=tenant)
        else:
            continue
        if outside.exists():
            leaks.append(f"{type(form).__name__}.{name} offers {outside.count()} row(s) of another tenant")
    return leaks


def page_forms(response) -> list:
    context = response.context
    forms = []
    if context is None:
        return forms
    if context.get("adminform") is not None:
        forms.append(context["adminform"].form)
    for inline in context.get("inline_admin_formsets") or []:
        forms.extend(inline.formset.forms)
        # the blank row ("Add another"): its choices are the form class's, fixed when the admin built it
        forms.append(type("EmptyForm", (), {"fields": inline.formset.form.base_fields}))
    return forms


# --- the registry is classified ----------------------------------------------------------------------


def test_every_tenant_model_uses_the_scoped_admin_base():
    unscoped = [f"{_label(model)} ({type(ma).__name__})" for model, ma in REGISTRY
                if _is_tenant_scoped(model) and not isinstance(ma, TenantScopedAdmin)]
    assert not unscoped, f"tenant-owned models registered without TenantScopedAdmin: {unscoped}"


def test_the_walk_covers_what_the_product_registers():
    labels = {_label(m) for m in TENANT_MODELS}
    assert {"scoring.ScoringModel", "routing.RoutingRule", "routing.Territory", "routing.SlaPolicy",
            "routing.BusinessHours", "routing.RejectionReason", "leads.LeadForm", "tenancy.ApiKey",
            "tenancy.Membership", "tenancy.AgentSetting"} <= labels
    assert {"tenancy.Tenant", "auth.User", "auth.Group"} <= {_label(m) for m in PLATFORM_MODELS}


# --- the walk -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MARKETING_OPS, Role.ADMIN])
def test_tenant_staff_reach_only_their_tenants_rows_in_every_admin(tenants, role):
    tenant_a, tenant_b, objects = tenants
    client, _user = staff_client(tenant_a, role, all_django_permissions=True)
    before = tenant_b_counts(tenant_b)
    problems: list[str] = []

    for model in TENANT_MODELS:
        label = _label(model)
        model_admin = admin.site._registry[model]
        mine, theirs = objects[model]

        changelist = client.get(_url(model, "changelist"))
        if changelist.status_code == 200:
            cl = changelist.context["cl"]
            if cl.queryset.exclude(tenant=tenant_a).exists():
                problems.append(f"{label}: changelist lists rows of another tenant")
            if not cl.queryset.filter(pk=mine.pk).exists():
                problems.append(f"{label}: changelist does not list tenant A's own row")
        elif changelist.status_code != 403:
            problems.append(f"{label}: changelist answered {changelist.status_code}")

        add = client.get(_url(model, "add"))
        if add.status_code == 200:
            problems += [f"{label} add: {leak}" for form in page_forms(add) for leak in choice_leaks(form, tenant_a)]
        elif add.status_code != 403:
            problems.append(f"{label}: add page answered {add.status_code}")

        own = client.get(_url(model, "change", mine.pk))
        if own.status_code == 200:
            problems += [f"{label} change: {leak}" for form in page_forms(own) for leak in choice_leaks(form, tenant_a)]
        elif own.status_code != 403:
            problems.append(f"{label}: own change page answered {own.status_code}")
        if changelist.status_code == 200 and own.status_code != 200:
            problems.append(f"{label}: listed but its own row does not open ({own.status_code})")

        for view in ("change", "history", "delete"):
            response = client.get(_url(model, view, theirs.pk))
            if not refused(response):
                problems.append(f"{label}: tenant B's {view} page answered {response.status_code}")
            elif response.status_code == 302 and changelist.status_code == 200:
                page = client.get(response["Location"])
                if "doesn’t exist" not in page.content.decode() and "doesn't exist" not in page.content.decode():
                    problems.append(f"{label}: B's {view} page redirected without saying it does not exist")
        for url in _custom_object_urls(model_admin, theirs.pk):
            for method in (client.get, client.post):
                response = method(url)
                if not refused(response):
                    problems.append(f"{label}: {method.__name__.upper()} {url} (tenant B's) answered "
                                    f"{response.status_code}")

        client.post(_url(model, "delete", theirs.pk), {"post": "yes"})
        client.post(_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [theirs.pk],
                                                "post": "yes", "index": 0})
        if not model.objects.unscoped().filter(pk=theirs.pk).exists():
            problems.append(f"{label}: tenant B's row was deleted")

        for field in model._meta.concrete_fields:
            if not field.many_to_one or field.name == "tenant":
                continue
            response = client.get(reverse("admin:autocomplete"), {
                "app_label": model._meta.app_label, "model_name": model._meta.model_name,
                "field_name": field.name, "term": ""})
            if response.status_code == 200:
                ids = [row["id"] for row in response.json()["results"]]
                related = field.related_model
                if related is User:
                    outside = User.objects.filter(pk__in=ids).exclude(memberships__tenant=tenant_a)
                else:
                    outside = related.objects.unscoped().filter(pk__in=ids).exclude(tenant=tenant_a)
                if outside.exists():
                    problems.append(f"{label}.{field.name}: autocomplete offers another tenant's rows")
            elif response.status_code not in (403, 404):
                problems.append(f"{label}.{field.name}: autocomplete answered {response.status_code}")

    after = tenant_b_counts(tenant_b)
    problems += [f"{label}: tenant B had {before[label]} row(s), now {after[label]}" for label in before
                 if after[label] != before[label]]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", [Role.MARKETING_OPS, Role.ADMIN])
@pytest.mark.parametrize("all_django_permissions", [False, True], ids=["plain", "granted-every-django-perm"])
def test_platform_models_are_refused_to_tenant_staff_and_absent_from_their_index(tenants, role,
                                                                                  all_django_permissions):
    tenant_a, tenant_b, _objects = tenants
    client, _user = staff_client(tenant_a, role, all_django_permissions=all_django_permissions)
    problems = []
    for model in PLATFORM_MODELS:
        label = _label(model)
        for view in ("changelist", "add"):
            status = client.get(_url(model, view)).status_code
            if status != 403:
                problems.append(f"{label}: {view} answered {status}")
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            for view in ("change", "history", "delete"):
                status = client.get(_url(model, view, obj.pk)).status_code
                if status != 403:
                    problems.append(f"{label}: {view} of #{obj.pk} answered {status}")
    for slug in (tenant_a.slug, tenant_b.slug):
        status = client.get(_url(Tenant, "change", Tenant.objects.get(slug=slug).pk)).status_code
        if status != 403:
            problems.append(f"tenancy.Tenant {slug}: change answered {status}")
    index = client.get(reverse("admin:index"))
    listed = {model["model"] for app in index.context["app_list"] for model in app["models"]}
    problems += [f"{_label(m)} is on the admin index" for m in PLATFORM_MODELS if m in listed]
    assert not problems, "\n".join(problems)


def test_a_platform_superuser_without_a_tenant_opens_every_admin_page(tenants):
    """The same pages for a platform operator: every tenant's rows, and never a 500."""
    tenant_a, tenant_b, objects = tenants
    root = User.objects.create_superuser("root@reach.test", "root@reach.test", "pw-for-tests-123")
    client = Client()
    client.force_login(root)
    problems = []
    for model in TENANT_MODELS:
        label = _label(model)
        changelist = client.get(_url(model, "changelist"))
        if changelist.status_code != 200:
            problems.append(f"{label}: changelist answered {changelist.status_code}")
        else:
            tenant_ids = set(changelist.context["cl"].queryset.values_list("tenant_id", flat=True))
            if not {tenant_a.pk, tenant_b.pk} <= tenant_ids:
                problems.append(f"{label}: the platform changelist does not show every tenant")
        for obj in objects[model]:
            status = client.get(_url(model, "change", obj.pk)).status_code
            if status != 200:
                problems.append(f"{label}: change of tenant {obj.tenant_id}'s row answered {status}")
        status = client.get(_url(model, "add")).status_code
        if status not in (200, 403):
            problems.append(f"{label}: add answered {status}")
    for model in PLATFORM_MODELS:
        status = client.get(_url(model, "changelist")).status_code
        if status != 200:
            problems.append(f"{_label(model)}: changelist answered {status}")
    assert not problems, "\n".join(problems)

