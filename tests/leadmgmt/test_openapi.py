"""OpenAPI 3 schema at /api/schema/ and the docs pages, served without any CDN."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

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
                 "/api/v1/leads/{id}/history/", "/api/v1/leads/{id}/activities/", "/api/v1/leads/{id}/signals/"):
        assert path in paths, path
    signals = paths["/api/v1/signals/"]["post"]
    assert "202" in signals["responses"]
    request_schema = signals["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    one_of = schema["components"]["schemas"][request_schema]["oneOf"]
    assert {"type": "array", "items": one_of[0]} in one_of  # one object or a list of them
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
    html = APIClient().get("/api/docs/").content.decode()
    assert '"validatorUrl": null' in html
