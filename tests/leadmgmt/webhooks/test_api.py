"""The webhooks API: admins only, the secret shown once, field errors for bad input, a delivery's attempts,
tenants apart."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.roles import WEBHOOKS_MANAGE, may
from leadmgmt.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.support.webhooks import endpoint_for

pytestmark = pytest.mark.django_db
URL = "https://hooks.example.com/leadmgmt"


@pytest.fixture
def admin(tenant, make_member, client_for):
    return client_for(make_member(tenant, role=Role.ADMIN))


def create(client, **body):
    return client.post("/api/v1/webhooks/", {"url": URL, "events": ["lead.created"], **body}, format="json")


def delivery_for(endpoint, status=DeliveryStatus.FAILED) -> WebhookDelivery:
    event = WebhookEvent.objects.unscoped().create(tenant_id=endpoint.tenant_id, type="lead.created",
                                                   payload={"id": "x", "type": "lead.created", "data": {}})
    return WebhookDelivery.objects.unscoped().create(tenant_id=endpoint.tenant_id, endpoint=endpoint, event=event,
                                                     status=status, attempts=3, last_status_code=500)


def test_an_admin_registers_an_endpoint_and_sees_its_secret_once(tenant, admin):
    response = create(admin, events=["lead.created", "lead.assigned", "lead.created"], description="CRM sync")
    assert response.status_code == 201, response.json()
    body = response.json()
    endpoint = WebhookEndpoint.objects.unscoped().get(pk=body["id"])
    assert body["secret"] == endpoint.secret and body["secret"].startswith("whsec_")
    assert body["events"] == ["lead.assigned", "lead.created"] and endpoint.tenant_id == tenant.pk
    assert "secret" not in admin.get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert "secret" not in admin.get("/api/v1/webhooks/").json()["results"][0]
    assert AuditEvent.objects.unscoped().filter(action="webhook.created", object_id=str(endpoint.pk)).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://files.example.com/x"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": 5}, "url"),
    ({"url": "https://" + "a" * 2000 + ".com"}, "url"),
    ({"events": []}, "events"),
    ({"events": ["lead.exploded"]}, "events"),
    ({"events": "lead.created"}, "events"),
    ({"description": "x" * 201}, "description"),
])
def test_bad_input_is_a_400_on_its_field_and_writes_nothing(admin, body, field):
    response = create(admin, **body)
    assert response.status_code == 400, response.json()
    assert {key.split(".")[0] for key in response.json()["errors"]} == {field}, response.json()
    assert not WebhookEndpoint.objects.unscoped().exists()


def test_an_admin_edits_disables_re_enables_and_deletes_an_endpoint(tenant, admin):
    endpoint = endpoint_for(tenant, URL, ["lead.created"], is_active=False, disabled_reason="Failing for 3 days")
    WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).update(failing_since="2026-01-01T00:00Z")
    response = admin.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"events": ["sla.breached"], "is_active": True},
                           format="json")
    assert response.status_code == 200, response.json()
    endpoint.refresh_from_db()
    assert (endpoint.events, endpoint.is_active, endpoint.disabled_reason, endpoint.failing_since) == (
        ["sla.breached"], True, "", None)
    assert admin.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"url": "gopher://x"}, format="json").status_code == 400
    delivery_for(endpoint)
    assert admin.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.unscoped().exists() and not WebhookDelivery.objects.unscoped().exists()


def test_rotating_the_secret_returns_the_new_one_and_keeps_the_old_signing(tenant, admin):
    endpoint = endpoint_for(tenant, URL, ["lead.created"])
    old = endpoint.secret
    response = admin.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret/")
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert response.json()["secret"] == endpoint.secret != old
    assert endpoint.secrets_signing() == [endpoint.secret, old]
    assert response.json()["previous_secret_expires_at"] is not None


def test_the_delivery_log_pages_in_a_fixed_number_of_queries_and_filters_by_status(tenant, admin):
    endpoint = endpoint_for(tenant, URL, ["lead.created"])
    for _ in range(3):
        delivery_for(endpoint)
    delivery_for(endpoint, status=DeliveryStatus.DELIVERED)
    with CaptureQueriesContext(connection) as few:
        response = admin.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/")
    assert response.status_code == 200 and response.json()["count"] == 4
    row = response.json()["results"][0]
    assert row["event_type"] == "lead.created" and row["last_status_code"] in (500, None)
    for _ in range(10):
        delivery_for(endpoint)
    with CaptureQueriesContext(connection) as many:
        assert admin.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").json()["count"] == 14
    assert len(many.captured_queries) == len(few.captured_queries)
    failed = admin.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/?status=failed").json()
    assert failed["count"] == 13
    assert admin.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/?status=nope").status_code == 400
    assert admin.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/?status=").status_code == 400  # not in the enum


def attempted(tenant, receiver, *codes: int) -> WebhookDelivery:
    """A delivery sent to the real receiver once per code, each attempt the retry of the one before (its endpoint
    switched off after: the next one made gets the next events)."""
    from .test_delivery import T0, emit, send

    endpoint = endpoint_for(tenant, receiver.url(f"/{len(codes)}"), ["lead.created"])
    emit(tenant)
    receiver.answer(*codes)
    now = T0
    for _ in codes:
        send(tenant, now)
        now = WebhookDelivery.objects.unscoped().get(endpoint=endpoint).next_attempt_at
    WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).update(is_active=False)
    return WebhookDelivery.objects.unscoped().get(endpoint=endpoint)


def test_a_delivery_shows_every_attempt_in_a_fixed_number_of_queries(tenant, admin, webhook_receiver):
    delivery = attempted(tenant, webhook_receiver, 500, 200)
    with CaptureQueriesContext(connection) as few:
        response = admin.get(f"/api/v1/webhooks/deliveries/{delivery.pk}/")
    assert response.status_code == 200, response.json()
    body = response.json()
    listed = admin.get(f"/api/v1/webhooks/{delivery.endpoint_id}/deliveries/").json()["results"][0]
    assert {key: value for key, value in body.items() if key != "attempt_history"} == listed  # the log's fields
    first, second = body["attempt_history"]
    assert (first["number"], first["trigger"], first["status_code"], first["error"]) == (1, "first", 500, "")
    assert (second["number"], second["trigger"], second["status_code"]) == (2, "retry", 200)
    assert first["response_excerpt"] == '{"ok": false, "n": 1}' and first["response_time_ms"] >= 0
    assert second["attempted_at"] == body["last_attempt_at"] and body["attempts"] == 2

    longer = attempted(tenant, webhook_receiver, 500, 502, 503, 504, 500, 200)
    with CaptureQueriesContext(connection) as many:
        body = admin.get(f"/api/v1/webhooks/deliveries/{longer.pk}/").json()
    assert [a["status_code"] for a in body["attempt_history"]] == [500, 502, 503, 504, 500, 200]
    assert len(many.captured_queries) == len(few.captured_queries)


def test_send_again_queues_a_given_up_delivery_once(tenant, admin, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(tenant, "http://127.0.0.1:9/never", ["lead.created"])
    delivery = delivery_for(endpoint)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert len(callbacks) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.gave_up_at) == (DeliveryStatus.PENDING, 0, None)
    assert admin.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/redeliver/").status_code == 409


def test_another_tenants_endpoints_and_deliveries_are_not_there(tenant, other_tenant, admin, webhook_receiver):
    their_attempted = attempted(other_tenant, webhook_receiver, 500)
    theirs = endpoint_for(other_tenant, URL, ["lead.created"])
    their_delivery = delivery_for(theirs)
    endpoint_for(tenant, URL + "/ours", ["lead.created"])
    listed = admin.get("/api/v1/webhooks/").json()
    assert [row["url"] for row in listed["results"]] == [URL + "/ours"]
    for method, path in [("get", f"/api/v1/webhooks/{theirs.pk}/"), ("patch", f"/api/v1/webhooks/{theirs.pk}/"),
                         ("delete", f"/api/v1/webhooks/{theirs.pk}/"),
                         ("post", f"/api/v1/webhooks/{theirs.pk}/rotate-secret/"),
                         ("get", f"/api/v1/webhooks/{theirs.pk}/deliveries/"),
                         ("post", f"/api/v1/webhooks/deliveries/{their_delivery.pk}/redeliver/"),
                         ("get", f"/api/v1/webhooks/deliveries/{their_delivery.pk}/"),
                         ("get", f"/api/v1/webhooks/deliveries/{their_attempted.pk}/"),
                         ("get", "/api/v1/webhooks/deliveries/99999999999999999999999/"),
                         ("get", "/api/v1/webhooks/99999999999999999999999/")]:
        response = getattr(admin, method)(path, {"is_active": False} if method == "patch" else None, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
    theirs.refresh_from_db()
    their_delivery.refresh_from_db()
    assert theirs.is_active and their_delivery.status == DeliveryStatus.FAILED


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER, Role.MARKETING_OPS, Role.ADMIN])
def test_only_the_roles_the_matrix_allows_manage_webhooks(tenant, make_member, client_for, role):
    client = client_for(make_member(tenant, role=role))
    endpoint = endpoint_for(tenant, URL, ["lead.created"])
    delivery = delivery_for(endpoint)
    answers = [client.get("/api/v1/webhooks/").status_code, create(client).status_code,
               client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").status_code,
               client.get(f"/api/v1/webhooks/deliveries/{delivery.pk}/").status_code,
               client.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret/").status_code,
               client.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/redeliver/").status_code]
    if may(role, WEBHOOKS_MANAGE):
        assert answers == [200, 201, 200, 200, 200, 202]
    else:
        assert answers == [403] * 6
        assert WebhookEndpoint.objects.unscoped().count() == 1


def test_api_keys_cannot_manage_webhooks(tenant, api_client):
    assert api_client.get("/api/v1/webhooks/").status_code == 403
    assert create(api_client).status_code == 403
    assert not WebhookEndpoint.objects.unscoped().exists()


def test_anonymous_requests_are_refused(client):
    assert client.get("/api/v1/webhooks/").status_code in (401, 403)
