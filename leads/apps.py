"""App config for leads: accounts, leads, touches, signals, activities, intake forms."""
from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (a new tenant's lead form and outcome taxonomy)
