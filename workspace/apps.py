"""App config for the workspace, the top floor: rep and manager pages, lead lifecycle actions and their
API, dashboards, demo seeding, and the capture pipeline that chains scoring and routing."""
from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "workspace"
    verbose_name = "Workspace"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (a captured lead starts the score → route pipeline)
