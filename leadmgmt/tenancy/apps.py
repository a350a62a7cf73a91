"""App config for tenancy: tenants, teams, memberships, API keys."""
from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _grant_app_role(sender, using="default", **kwargs) -> None:
    """After every migrate (and flush), as the owner: the app role exists and may use the new tables."""
    from leadmgmt.db.roles import ensure_app_role

    ensure_app_role(using)


class TenancyConfig(AppConfig):
    name = "leadmgmt.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from . import lockouts  # noqa: F401 (audits sign-in lockouts)

        post_migrate.connect(_grant_app_role, sender=self, dispatch_uid="leadmgmt.grant_app_role")
