"""`manage.py privacy_erase --tenant SLUG EMAIL [--yes] [--actor USERNAME]`: erase a person at their request
(GDPR art. 17, CCPA). Asks for confirmation unless --yes; prints the hash and the per-table counts, never the
person's data."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.roles import PRIVACY_ERASE
from workspace.services.privacy import PrivacyRefused, person_erase, privacy_actor

from .privacy_export import tenant_get


class Command(BaseCommand):
    help = ("Erase the person with this email from a tenant: anonymise their leads, scrub them from every table, "
            "keep a hashed suppression entry. Cannot be undone.")

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument("--actor", help="The tenant admin who asked (audited); default: the platform operator.")

    def handle(self, *args, email: str, tenant: str, yes: bool, actor: str | None, **options):
        tenant_obj = tenant_get(tenant)
        try:
            with tenant_scope(tenant_obj):
                who = privacy_actor(tenant=tenant_obj, action=PRIVACY_ERASE, username=actor,
                                    tool="manage.py privacy_erase")
        except PrivacyRefused as exc:
            raise CommandError(str(exc)) from exc
        if not yes:
            answer = input(f"Erase this person from tenant {tenant_obj.slug}? This cannot be undone. Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Not erased.")
        try:
            result = person_erase(tenant=tenant_obj, email=email, actor=who)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        state = "was already erased" if result.already_erased else "erased"
        self.stdout.write(f"Person {result.email_hash[:16]}… {state} from {tenant_obj.slug}: "
                          f"{result.leads} lead(s) anonymised.")
        for table, count in sorted(result.counts.items()):
            self.stdout.write(f"  {table}: {count}")
