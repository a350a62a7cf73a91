"""The bounce secret is stored as a hash: callbacks compare against it, rotation shows the new one once, and
the data migration hashes secrets stored in the clear without breaking them."""
from __future__ import annotations

import hashlib
import importlib
import re

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from leadmgmt.tenancy.models import Role
from nurture.models import NurtureSettings, bounce_secret_hash
from tests.support.factories import MembershipFactory, UserFactory
from tests.support.nurture import NurtureSettingsFactory, sent_message

pytestmark = pytest.mark.django_db
migration = importlib.import_module("nurture.migrations.0003_bounce_secret_hashed")


def bounce(tenant, secret: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    message = sent_message(tenant=tenant)
    return client.post(f"/api/v1/nurture/bounces/{tenant.slug}/", {"email": message.to_email, "type": "soft"},
                       format="json")


def staff(tenant, role) -> Client:
    user = UserFactory(is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def stored_secrets() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT bounce_secret FROM nurture_nurturesettings")
        return [row[0] for row in cursor.fetchall()]


def test_the_right_secret_is_accepted_a_wrong_one_and_the_hash_itself_are_refused(tenant):
    row = NurtureSettingsFactory(tenant=tenant)
    raw = row.bounce_secret_generate()
    row.save()

    assert bounce(tenant, raw).status_code == 200
    assert bounce(tenant, raw + "x").status_code == 401
    assert bounce(tenant, row.bounce_secret).status_code == 401  # a leaked hash is not a credential


def test_the_database_holds_no_raw_secret(tenant, other_tenant):
    raws = []
    for t in (tenant, other_tenant):
        row = NurtureSettingsFactory(tenant=t)
        raws.append(row.bounce_secret_generate())
        row.save()
    stored = stored_secrets()
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in stored)
    assert not set(raws) & set(stored)
    assert sorted(stored) == sorted(hashlib.sha256(r.encode()).hexdigest() for r in raws)


def test_a_new_tenant_gets_a_hashed_secret_nobody_knows(tenant):
    row = NurtureSettings.objects.unscoped().get_or_create(tenant=tenant)[0]
    assert re.fullmatch(r"[0-9a-f]{64}", row.bounce_secret)


def test_rotating_shows_the_new_secret_once_to_the_tenant_only(tenant, other_tenant):
    mine = NurtureSettingsFactory(tenant=tenant)
    theirs = NurtureSettingsFactory(tenant=other_tenant)
    their_hash = theirs.bounce_secret
    changelist = reverse("admin:nurture_nurturesettings_changelist")
    ops = staff(tenant, Role.MARKETING_OPS)

    response = ops.post(changelist, {"action": "rotate_bounce_secret", "_selected_action": [mine.pk, theirs.pk]})

    html = response.content.decode()
    [shown] = re.findall(r'<code class="bounce-secret">([^<]+)</code>', html)
    assert "shown only this once" in html and other_tenant.name not in html
    assert bounce(tenant, shown).status_code == 200
    theirs.refresh_from_db()
    assert theirs.bounce_secret == their_hash  # another tenant's row is out of reach
    assert shown not in ops.get(reverse("admin:nurture_nurturesettings_change", args=[mine.pk])).content.decode()


def test_a_sales_rep_cannot_rotate_the_secret(tenant):
    row = NurtureSettingsFactory(tenant=tenant)
    before = row.bounce_secret
    rep = staff(tenant, Role.SDR)
    response = rep.post(reverse("admin:nurture_nurturesettings_changelist"),
                        {"action": "rotate_bounce_secret", "_selected_action": [row.pk]})
    assert response.status_code in (302, 403)
    row.refresh_from_db()
    assert row.bounce_secret == before and "bounce-secret" not in response.content.decode()


def test_the_migration_hashes_clear_secrets_in_place_and_they_keep_working(tenant, other_tenant):
    legacy = "legacy-secret-" + "k" * 30
    NurtureSettingsFactory(tenant=tenant)
    already = NurtureSettingsFactory(tenant=other_tenant).bounce_secret
    NurtureSettings.objects.unscoped().filter(tenant=tenant).update(bounce_secret=legacy)

    migration.hash_existing(apps, None)
    migration.hash_existing(apps, None)  # idempotent: a hash is not hashed again

    assert NurtureSettings.objects.unscoped().get(tenant=tenant).bounce_secret == bounce_secret_hash(legacy)
    assert NurtureSettings.objects.unscoped().get(tenant=other_tenant).bounce_secret == already
    assert legacy not in stored_secrets()
    assert bounce(tenant, legacy).status_code == 200
