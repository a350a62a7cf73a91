"""App config for tenancy: tenants, teams, memberships, API keys."""
from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "leadmgmt.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from . import lockouts  # noqa: F401 (audits sign-in lockouts)
