"""factory_boy factories of the platform and the lead core.

A tenant-owned factory makes a new tenant of its own unless it is given one, so tests pass
`tenant=` (usually the `tenant` fixture) to keep their objects in one tenant; nothing is shared
between factories implicitly. Users get the password "pw-for-tests-123" (hashed with the cheap
hasher the root conftest installs)."""
from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from leadmgmt.tenancy.models import ApiKey, ApiScope, Membership, Role, Team, Tenant
from leads.models import Account, Lead, LeadForm


class TenantOwnedFactory(factory.django.DjangoModelFactory):
    """Creates through `.unscoped()` so factories work outside a tenant scope."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return model_class.objects.unscoped()


class TenantFactory(factory.django.DjangoModelFactory):
    """A tenant with a unique slug; asking for an existing slug returns that tenant."""

    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class UserFactory(factory.django.DjangoModelFactory):
    """A user whose username is its email; no membership (see MembershipFactory)."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.django.Password("pw-for-tests-123")


class TeamFactory(TenantOwnedFactory):
    """A team of reps (in its own new tenant unless `tenant=` is given)."""

    class Meta:
        model = Team

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(TenantOwnedFactory):
    """A new user's membership as an SDR, on no team, available, with no capacity limit."""

    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.SDR


class LeadFormFactory(TenantOwnedFactory):
    """An active lead form any site may post to."""

    class Meta:
        model = LeadForm

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Form {n}")
    allowed_origins = factory.LazyFunction(lambda: ["*"])


class AccountFactory(TenantOwnedFactory):
    """An account (a company in the tenant's CRM data) keyed by a unique domain."""

    class Meta:
        model = Account

    tenant = factory.SubFactory(TenantFactory)
    domain = factory.Sequence(lambda n: f"company{n}.example")
    name = factory.LazyAttribute(lambda o: o.domain.split(".")[0].title())


class LeadFactory(TenantOwnedFactory):
    """A lead as stored, not captured: no score, owner, assignment or SLA clock until a test gives them."""

    class Meta:
        model = Lead

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"lead{n}@company.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    company = "Company"
    source = "web_form"


def api_key_for(tenant: Tenant, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """A real key (hashed in the DB) and its raw secret."""
    from leadmgmt.tenancy.services import api_key_create

    return api_key_create(tenant=tenant, name="test key", scopes=scopes if scopes is not None else ApiScope.values)
