"""App config for nurture: sequences, steps, enrollments and messages."""
from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (readiness re-checks on scoring's band events)
