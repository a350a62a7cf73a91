"""The OpenAPI schema documents the statuses the endpoints really answer: each case below is a real request
whose status must be listed under its operation's `responses`."""
from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import ApiScope
from routing.models import Assignment, Trigger
from routing.serializers import AssignmentSerializer
from tests.support.factories import LeadFactory, api_key_for

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return APIClient().get("/api/schema/", {"format": "json"}).json()


def documented(schema, method: str, url: str) -> set[str]:
    """The statuses the schema lists for the operation `url` matches (path parameters match any segment)."""
    path = url.split("?")[0]
    for template, operations in schema["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method in operations:
            return set(operations[method]["responses"])
    raise AssertionError(f"{method.upper()} {url} is not in the schema")


def key_client(tenant, scopes=None) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


SURROGATE_KEY = b'{"\\udfff": 1}'
CASES = [  # (client, method, url, body, content type, status)
    ("key", "get", "/api/v1/leads/?created_after=2026-13-45", None, None, 400),
    ("key", "get", "/api/v1/leads/?owner=%C2%B3", None, None, 400),
    ("key", "get", "/api/v1/leads/?page=999", None, None, 404),
    ("anonymous", "get", "/api/v1/leads/", None, None, 401),
    ("read_only", "patch", "/api/v1/leads/{lead}/", b'{"company": "Acme"}', "application/json", 403),
    ("key", "get", "/api/v1/leads/00000000-0000-0000-0000-000000000000/", None, None, 404),
    ("key", "patch", "/api/v1/leads/{lead}/", SURROGATE_KEY, "application/json", 400),
    ("key", "patch", "/api/v1/leads/{lead}/", b"company=Acme", "text/plain", 415),
    ("key", "post", "/api/v1/leads/{lead}/reassign/", b"<x/>", "application/xml", 415),
    ("key", "post", "/api/v1/leads/{lead}/reassign/", SURROGATE_KEY, "application/json", 400),
    ("key", "get", "/api/v1/leads/{lead}/touches/?page=abc", None, None, 404),
    ("key", "post", "/api/v1/routing/dry-run/", b'{"values": {"\\udfff": 1}}', "application/json", 400),
    ("key", "post", "/api/v1/routing/dry-run/", b"x", "text/plain", 415),
    ("key", "get", "/api/v1/routing/rejection-reasons/", None, None, 200),
    ("anonymous", "get", "/api/v1/nurture/sequences/", None, None, 401),
    ("key", "post", "/api/v1/signals/", b"<x/>", "application/xml", 415),
    ("key", "post", "/api/v1/signals/", b"{", "application/json", 400),
    ("key", "post", "/api/v1/leads/batch/", b'[{"email": "a@b.example"}, {"email": "x"}]', "application/json", 207),
    ("key", "post", "/api/v1/leads/batch/", b"[]", "application/json", 400),
    ("key", "post", "/api/v1/leads/batch/", b"<x/>", "application/xml", 415),
    ("anonymous", "post", "/api/v1/leads/batch/", b"[]", "application/json", 401),
    ("read_only", "post", "/api/v1/leads/batch/", b"[]", "application/json", 403),
]


@pytest.mark.parametrize("who, method, url, body, content_type, status", CASES)
def test_every_status_an_operation_answers_is_documented(schema, tenant, who, method, url, body, content_type,
                                                         status):
    clients = {"key": lambda: key_client(tenant), "anonymous": APIClient,
               "read_only": lambda: key_client(tenant, scopes=[ApiScope.LEADS_READ])}
    url = url.format(lead=LeadFactory(tenant=tenant).id)
    kwargs = {"data": body, "content_type": content_type} if body is not None else {}
    response = getattr(clients[who](), method)(url, **kwargs)
    assert response.status_code == status, response.content[:300]
    assert str(status) in documented(schema, method, url)


def test_shared_answers_are_documented_on_every_operation(schema):
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses, where = set(operation["responses"]), {p["in"] for p in operation.get("parameters", [])}
            label = f"{method.upper()} {template}"
            if "requestBody" in operation:
                assert {"400", "415"} <= responses, label
            if "path" in where:
                assert "404" in responses, label
            if where:
                assert "414" in responses, label
            schemes = {name for requirement in operation.get("security") or [] for name in requirement}
            if schemes & {"apiKeyAuth", "cookieAuth"}:
                assert {"401", "403"} <= responses, label
            if "apiKeyAuth" in schemes and not template.startswith("/api/v1/notifications/"):
                assert "429" in responses, label  # the per-key throttle


def test_an_assignment_without_a_strategy_is_allowed_by_the_schema(schema, tenant):
    strategy = schema["components"]["schemas"]["Assignment"]["properties"]["strategy"]
    enums = [schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]["enum"] for ref in strategy["oneOf"]]
    assert "" in [value for enum in enums for value in enum]
    lead = LeadFactory(tenant=tenant)
    assignment = Assignment.objects.unscoped().create(tenant=tenant, lead=lead, trigger=Trigger.CAPTURE, strategy="",
                                                      actor_kind=SYSTEM.kind, actor_name=SYSTEM.name)
    assert AssignmentSerializer(assignment).data["strategy"] == ""
