"""factory_boy factories; tenant-owned objects default to one shared tenant per test."""
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
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.django.Password("pw-for-tests-123")


class TeamFactory(TenantOwnedFactory):
    class Meta:
        model = Team

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(TenantOwnedFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.SDR


class LeadFormFactory(TenantOwnedFactory):
    class Meta:
        model = LeadForm

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Form {n}")
    allowed_origins = factory.LazyFunction(lambda: ["*"])


class AccountFactory(TenantOwnedFactory):
    class Meta:
        model = Account

    tenant = factory.SubFactory(TenantFactory)
    domain = factory.Sequence(lambda n: f"company{n}.example")
    name = factory.LazyAttribute(lambda o: o.domain.split(".")[0].title())


class LeadFactory(TenantOwnedFactory):
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
