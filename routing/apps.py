"""App config for routing: rules, strategies, assignments, SLA policies and escalations."""
from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects routing to scoring's band events)
