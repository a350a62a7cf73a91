"""Project-level views: the landing page, a trivial JSON health check (the benchmark floor), the favicon."""
import functools
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


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
