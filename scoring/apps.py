"""App config for scoring: versioned scoring models, rules, bands and lead scores."""
from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
