"""Project-level views: the landing page, a trivial JSON health check (the benchmark floor), the favicon, the API
docs pages, and the 404/500 handlers (JSON under /api/, the HTML pages elsewhere)."""
import functools
from pathlib import Path

from csp.constants import NONCE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


@require_GET
def health(request):
    """Liveness: answers without touching the database (also the framework floor in bench/)."""
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request):
    """Readiness: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ready"})


@require_GET
def home(request):
    return render(request, "home.html")


@functools.lru_cache(maxsize=1)
def _favicon_bytes() -> bytes | None:
    found = finders.find("favicon.ico") or Path(settings.STATIC_ROOT) / "favicon.ico"
    path = Path(found)
    return path.read_bytes() if path.is_file() else None


@require_GET
def favicon(request):
    """`/favicon.ico`, which browsers ask for by themselves: the app's own icon (static/favicon.ico)."""
    icon = _favicon_bytes()
    if icon is None:
        raise Http404("No favicon.")
    response = HttpResponse(icon, content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


# The API docs under the Content-Security-Policy (settings.CONTENT_SECURITY_POLICY). Swagger UI: the split view
# serves its start-up script as a file (`/api/docs/?script`) instead of inline. ReDoc (templates/drf_spectacular/
# redoc.html, static/js/redoc_init.js): its styled-components write <style> elements at run time, allowed by this
# request's nonce, and its search index runs in a worker started from a blob: URL; nothing else is loosened.
api_docs = SpectacularSwaggerSplitView.as_view(url_name="schema")
api_redoc = csp_update({"style-src": [NONCE], "worker-src": ["blob:"]})(SpectacularRedocView.as_view(url_name="schema"))


API_PREFIX = "/api/"


def _api_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"errors": {"detail": [message]}}, status=status)


def not_found(request, exception=None):
    """`handler404`: under /api/ (an unknown path, an id that is not a UUID) the API's JSON error shape;
    elsewhere the HTML page."""
    if request.path.startswith(API_PREFIX):
        return _api_error("Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """`handler500`: JSON under /api/ so API clients can parse every answer; the HTML page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _api_error("A server error occurred.", 500)
    return defaults.server_error(request)
