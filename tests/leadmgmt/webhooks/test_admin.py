"""Webhooks admin: tenant admins add endpoints (secret shown once, URL checked), rotate secrets, read the
delivery log with each delivery's attempts and send deliveries again; other roles are refused; another tenant's rows are not there."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.roles import WEBHOOKS_MANAGE, may
from leadmgmt.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.support.factories import MembershipFactory, UserFactory
from tests.support.webhooks import endpoint_for

from .test_api import attempted, delivery_for

pytestmark = pytest.mark.django_db


def staff(tenant, role) -> Client:
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def url(model, view="changelist", *args) -> str:
    return reverse(f"admin:webhooks_{model._meta.model_name}_{view}", args=args)


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(tenant):
    client = staff(tenant, Role.ADMIN)
    response = client.post(url(WebhookEndpoint, "add"), {"url": "ftp://x.example.com/", "events": ["lead.created"],
                                                         "is_active": "on"})
    assert response.status_code == 200 and "Enter an http:// or https:// URL." in response.content.decode()
    response = client.post(url(WebhookEndpoint, "add"), {
        "url": "https://hooks.example.com/in", "events": ["lead.created", "sla.breached"], "is_active": "on"},
        follow=True)
    endpoint = WebhookEndpoint.objects.unscoped().get()
    assert (endpoint.tenant_id, endpoint.events) == (tenant.pk, ["lead.created", "sla.breached"])
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret not in client.get(url(WebhookEndpoint, "change", endpoint.pk)).content.decode()
    assert AuditEvent.objects.unscoped().filter(action="webhook.created", object_id=str(endpoint.pk)).exists()


def test_an_admin_rotates_a_secret_from_the_list(tenant):
    client = staff(tenant, Role.ADMIN)
    endpoint = endpoint_for(tenant, "https://hooks.example.com/in", ["lead.created"])
    old = endpoint.secret
    response = client.post(url(WebhookEndpoint), {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
                           follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()
    assert endpoint.previous_secret == old


def test_the_delivery_log_sends_again_from_the_admin(tenant, django_capture_on_commit_callbacks):
    client = staff(tenant, Role.ADMIN)
    endpoint = endpoint_for(tenant, "http://127.0.0.1:9/never", ["lead.created"])
    failed = delivery_for(endpoint)
    page = client.get(url(WebhookDelivery))
    assert page.status_code == 200 and "lead.created" in page.content.decode()
    detail = client.get(url(WebhookDelivery, "change", failed.pk))
    assert detail.status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(url(WebhookDelivery), {"action": "send_again", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING and len(callbacks) == 1


def test_the_delivery_log_lists_in_a_fixed_number_of_queries(tenant, django_assert_max_num_queries):
    client = staff(tenant, Role.ADMIN)
    endpoint = endpoint_for(tenant, "http://127.0.0.1:9/never", ["lead.created"])
    for _ in range(3):
        delivery_for(endpoint)
    client.get(url(WebhookDelivery))
    for _ in range(20):
        delivery_for(endpoint)
    with django_assert_max_num_queries(15):
        assert client.get(url(WebhookDelivery)).status_code == 200


def test_a_deliverys_page_shows_its_attempts_read_only_in_a_fixed_number_of_queries(
        tenant, webhook_receiver, django_assert_max_num_queries):
    client = staff(tenant, Role.ADMIN)
    short = attempted(tenant, webhook_receiver, 503, 200)
    page = client.get(url(WebhookDelivery, "change", short.pk)).content.decode()
    assert "Scheduled retry" in page and "First attempt" in page and ">503<" in page
    assert "{&quot;ok&quot;: false, &quot;n&quot;: 1}" in page  # the answer's excerpt
    assert 'name="attempt_history-0-status_code"' not in page  # nothing to edit
    with CaptureQueriesContext(connection) as few:
        client.get(url(WebhookDelivery, "change", short.pk))
    longer = attempted(tenant, webhook_receiver, *[500] * 8, 200)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url(WebhookDelivery, "change", longer.pk)).content.decode()
    assert page.count("Scheduled retry") == 8


def test_another_tenants_endpoints_and_deliveries_are_not_there(tenant, other_tenant):
    client = staff(tenant, Role.ADMIN)
    theirs = endpoint_for(other_tenant, "https://globex.example.com/secret-hook", ["lead.created"])
    their_delivery = delivery_for(theirs)
    assert "globex.example.com" not in client.get(url(WebhookEndpoint)).content.decode()
    assert "secret-hook" not in client.get(url(WebhookDelivery)).content.decode()
    assert client.get(url(WebhookEndpoint, "change", theirs.pk)).status_code == 302  # "does not exist"
    assert client.get(url(WebhookDelivery, "change", their_delivery.pk)).status_code == 302
    client.post(url(WebhookDelivery), {"action": "send_again", "_selected_action": [their_delivery.pk]})
    client.post(url(WebhookEndpoint), {"action": "rotate_secret", "_selected_action": [theirs.pk]})
    assert WebhookDelivery.objects.unscoped().get(pk=their_delivery.pk).status == DeliveryStatus.FAILED
    assert WebhookEndpoint.objects.unscoped().get(pk=theirs.pk).secret == theirs.secret


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER, Role.MARKETING_OPS, Role.ADMIN])
def test_only_the_roles_the_matrix_allows_reach_the_webhook_admin(tenant, role):
    client = staff(tenant, role)
    endpoint = endpoint_for(tenant, "https://hooks.example.com/in", ["lead.created"])
    delivery_for(endpoint)
    codes = {client.get(url(WebhookEndpoint)).status_code, client.get(url(WebhookDelivery)).status_code,
             client.get(url(WebhookEndpoint, "change", endpoint.pk)).status_code}
    assert codes == ({200} if may(role, WEBHOOKS_MANAGE) else {403})
