"""`manage.py migrate`, as the tables' owner: schema changes are the one thing the app role may not do."""
from django.core.management.commands import migrate
from django.db import connections

from leadmgmt.db.backend.base import owner_mode


class Command(migrate.Command):
    def handle(self, *args, **options):
        with owner_mode(connections[options["database"]]):
            return super().handle(*args, **options)
