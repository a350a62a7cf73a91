"""Root URLs: admin, API v1, OpenAPI schema and docs, health, UI."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from . import admin_site, views  # noqa: F401 (admin branding)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.health, name="health"),
    path("readyz", views.ready, name="ready"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("workspace.dashboard_urls")),
    path("manager/", include("workspace.manager_urls")),
    path("api/v1/", include("leads.api_urls")),
    path("api/v1/", include("scoring.api_urls")),
    path("api/v1/", include("routing.api_urls")),
    path("api/v1/", include("nurture.api_urls")),
    path("api/v1/", include("workspace.api_urls")),
    path("api/v1/", include("leadmgmt.webhooks.api_urls")),
    path("n/", include("nurture.public_urls")),  # links in nurture emails: unsubscribe, click, open pixel
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.api_docs, name="api-docs"),  # Swagger UI and ReDoc, under the CSP (leadmgmt/views.py)
    path("api/redoc/", views.api_redoc, name="api-redoc"),
    path("", include("workspace.ui_urls")),  # issue 5: sign-in, tenant switch, My queue, lead page
]

handler404 = "leadmgmt.views.not_found"
handler500 = "leadmgmt.views.server_error"
