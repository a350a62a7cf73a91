"""OpenAPI 3 schema at /api/schema/ and the docs pages, served without any CDN."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from leadmgmt.tenancy.models import Role
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db


class _AssetRefs(HTMLParser):
    """Collects every src/href of the page."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [value for name, value in attrs if name in {"src", "href"} and value]


def asset_refs(html: str) -> list[str]:
    parser = _AssetRefs()
    parser.feed(html)
    return parser.refs


def test_schema_is_openapi_3_with_the_signals_and_leads_endpoints():
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ("/api/v1/signals/", "/api/v1/leads/", "/api/v1/leads/{id}/", "/api/v1/leads/{id}/touches/",
                 "/api/v1/leads/{id}/history/", "/api/v1/leads/{id}/activities/", "/api/v1/leads/{id}/signals/",
                 "/api/v1/leads/batch/"):
        assert path in paths, path
    signals = paths["/api/v1/signals/"]["post"]
    assert "202" in signals["responses"]
    request_schema = signals["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    one_of = schema["components"]["schemas"][request_schema]["oneOf"]
    assert {"type": "array", "items": one_of[0]} in one_of  # one object or a list of them
    batch = paths["/api/v1/leads/batch/"]["post"]
    assert {"207", "400", "401", "403", "413", "415", "422", "429"} <= set(batch["responses"])
    lists = batch["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert lists[0]["type"] == "array" and (lists[0]["minItems"], lists[0]["maxItems"]) == (1, 1000)
    assert lists[1]["properties"]["leads"] == lists[0]  # a list of leads, or {"leads": [...]}
    lead_params = {p["name"] for p in paths["/api/v1/leads/"]["get"]["parameters"]}
    assert {"status", "stage", "owner", "source", "score_min", "score_max", "created_after", "created_before",
            "q", "ordering", "page", "page_size"} <= lead_params
    assert {"get", "patch"} <= set(paths["/api/v1/leads/{id}/"]) and "put" not in paths["/api/v1/leads/{id}/"]
    assert {"apiKeyAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_generation_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3.")


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_every_asset_from_the_app_itself(url):
    response = APIClient().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    refs = asset_refs(html)
    assert refs, "the page references no assets"
    external = [ref for ref in refs if re.match(r"^(https?:)?//", ref)]
    assert external == []
    local = [ref for ref in refs if ref.startswith("/static/")]
    assert local
    for ref in local:  # and each of them is actually served (sidecar package, no CDN)
        assert finders.find(ref.removeprefix("/static/")), ref
    assert not re.search(r"https?://(?!localhost)[^\s\"']*\.(?:js|css)", html)


def test_swagger_ui_does_not_call_the_online_validator():
    # the start-up script is a file of its own (`?script`), not inline: the Content-Security-Policy
    script = APIClient().get("/api/docs/", {"script": ""}).content.decode()
    assert '"validatorUrl": null' in script


def test_request_bodies_say_what_their_serializers_refuse(schema_json):
    components, paths = schema_json["components"]["schemas"], schema_json["paths"]
    assert components["PatchedLeadUpdateRequest"]["additionalProperties"] is False  # other fields are a 400
    assert components["DryRunInRequest"]["oneOf"] == [{"required": ["lead_id"]}, {"required": ["values"]}]
    leads = {p["name"]: p for p in paths["/api/v1/leads/"]["get"]["parameters"]}
    assert all(leads[name].get("allowEmptyValue") for name in ("updated_after", "score_min", "owner", "page"))
    assert "allowEmptyValue" not in leads["status"]  # `?status=` is an invalid choice
    assert leads["page_size"]["schema"]["minimum"] == 1
    assert leads["owner"]["schema"]["pattern"] == "^(me|none|[0-9]{1,18})$"  # anything else is a 400
    form = paths["/api/v1/leads/{id}/activities/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"type": "string", "maxLength": 0} in form["schema"]["properties"]["occurred_at"]["anyOf"]


def test_what_the_schema_says_of_bodies_is_what_the_api_does(tenant, api_client, make_member, client_for):
    lead = LeadFactory(tenant=tenant, owner=make_member(tenant))
    unknown = api_client.patch(f"/api/v1/leads/{lead.id}/", {"nickname": "Ada"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["errors"] == {"nickname": ["This field cannot be edited."]}
    both = api_client.post("/api/v1/routing/dry-run/", {"lead_id": str(lead.id), "values": {}}, format="json")
    assert both.status_code == 400
    admin = client_for(make_member(tenant, Role.ADMIN))
    empty_time = admin.post(f"/api/v1/leads/{lead.id}/activities/", {"kind": "call", "occurred_at": ""},
                            format="multipart")
    assert empty_time.status_code == 201, empty_time.content  # an empty field of a form post is null: now


@pytest.fixture
def schema_json():
    return APIClient().get("/api/schema/", {"format": "json"}).json()
