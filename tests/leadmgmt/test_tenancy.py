"""Tenancy: fail-closed scoping, API keys, tenant provisioning, index layout."""
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from leadmgmt.tenancy.context import TenantNotSet, tenant_scope
from leadmgmt.tenancy.models import Membership, Role
from leadmgmt.tenancy.selectors import api_key_lookup
from leadmgmt.tenancy.services import api_key_revoke
from leads.models import Lead, LeadForm
from tests.support.factories import LeadFactory, api_key_for

pytestmark = pytest.mark.django_db


def test_scoped_manager_raises_without_tenant(tenant):
    LeadFactory(tenant=tenant)
    with pytest.raises(TenantNotSet):
        list(Lead.objects.all())


def test_scoped_manager_only_returns_current_tenant_rows(tenant, other_tenant):
    mine = LeadFactory(tenant=tenant)
    LeadFactory(tenant=other_tenant)
    with tenant_scope(tenant):
        assert list(Lead.objects.values_list("id", flat=True)) == [mine.id]
    with tenant_scope(other_tenant):
        assert not Lead.objects.filter(id=mine.id).exists()
    assert Lead.objects.unscoped().count() == 2


def test_tenant_scope_restores_previous_tenant(tenant, other_tenant):
    with tenant_scope(tenant):
        with tenant_scope(other_tenant):
            pass
        assert Lead.objects.filter(tenant=other_tenant).count() == 0
    with pytest.raises(TenantNotSet):
        Lead.objects.count()


def test_api_key_is_stored_hashed_and_revocable(tenant):
    key, raw = api_key_for(tenant)
    assert raw not in key.key_hash and len(key.key_hash) == 64
    assert api_key_lookup(raw=raw) == key
    assert api_key_lookup(raw=raw[:-2] + "xx") is None
    assert api_key_lookup(raw="garbage") is None
    from leadmgmt.audit.actors import SYSTEM

    api_key_revoke(api_key=key, actor=SYSTEM)
    assert api_key_lookup(raw=raw) is None


def test_create_tenant_command_prints_credentials_that_work(db):
    out = StringIO()
    call_command("create_tenant", "initech", "--name", "Initech", "--admin-email", "Boss@Initech.test", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {"tenant", "form_key", "api_key", "admin_email", "admin_password"}
    assert data["tenant"] == "initech" and data["admin_email"] == "boss@initech.test"
    assert LeadForm.objects.unscoped().get(key=data["form_key"]).tenant.slug == "initech"
    key = api_key_lookup(raw=data["api_key"])
    assert key is not None and key.tenant.slug == "initech"
    membership = Membership.objects.unscoped().get(tenant__slug="initech")
    assert membership.role == Role.ADMIN and membership.user.check_password(data["admin_password"])


def test_create_tenant_command_refuses_duplicate_slug(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_tenant", tenant.slug, "--name", "X", "--admin-email", "a@b.test", "--json", stdout=StringIO())


# Unique lookups that happen before the tenant is known (authentication by key, an invitation link).
GLOBAL_LOOKUP_INDEXES = {("tenancy_apikey", "prefix"), ("leads_leadform", "key"), ("tenancy_invitation", "token_hash")}


def test_every_index_of_a_tenant_owned_table_starts_with_tenant_id(db):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, ix.indisprimary,
                   (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = ix.indkey[0])
            FROM pg_index ix
            JOIN pg_class t ON t.oid = ix.indrelid
            JOIN pg_class i ON i.oid = ix.indexrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public'
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id')
            """
        )
        rows = cursor.fetchall()
    assert rows, "no tenant-owned tables found"
    offenders = [
        (table, index, first)
        for table, index, primary, first in rows
        if not primary and first != "tenant_id" and (table, first) not in GLOBAL_LOOKUP_INDEXES
    ]
    assert offenders == []
