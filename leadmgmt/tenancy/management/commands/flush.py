"""`manage.py flush`, as the tables' owner: the app role may not truncate (TRUNCATE ignores row-level security)."""
from django.core.management.commands import flush
from django.db import connections

from leadmgmt.db.backend.base import owner_mode


class Command(flush.Command):
    def handle(self, **options):
        with owner_mode(connections[options["database"]]):
            return super().handle(**options)
