"""App config for outbound webhooks."""
from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "leadmgmt.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from .services import emit  # noqa: F401 (forgets cached subscriptions when an endpoint is saved)
