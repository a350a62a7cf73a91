"""App config for scoring: versioned scoring models, rules, bands and lead scores."""
from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (re-scores on the lead core's events)
