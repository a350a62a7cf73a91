"""App config for routing: rules, strategies, assignments, SLA policies and escalations."""
from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
