"""Project-level views: the landing page and a trivial JSON health check (the benchmark floor)."""
from django.db import connection
from django.http import JsonResponse
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
