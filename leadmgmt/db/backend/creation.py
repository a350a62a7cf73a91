"""Test databases are created, migrated and dropped by the tables' owner; tests then run as the app role."""
from django.db.backends.postgresql import creation


class DatabaseCreation(creation.DatabaseCreation):
    def create_test_db(self, *args, **kwargs):
        from .base import owner_mode

        with owner_mode(self.connection):
            return super().create_test_db(*args, **kwargs)

    def destroy_test_db(self, *args, **kwargs):
        from .base import owner_mode

        with owner_mode(self.connection):
            return super().destroy_test_db(*args, **kwargs)
