"""`manage.py duplicates_detect SLUG [--json]`: find the tenant's possible duplicates among all its leads (same
phone, or same name at the same account) for the merge review queue. New leads are checked as they arrive (the
capture pipeline); this is for the leads that were there before, or after changing many leads at once. Safe to
run again: a pair is recorded once, and a dismissed one stays dismissed."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.models import DuplicatePair, DuplicateStatus
from leads.services.duplicates import duplicate_pairs_detect


class Command(BaseCommand):
    help = "Record the possible duplicates (same phone, or same name at the same account) of a tenant's leads."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the tenant's slug")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, slug: str, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {slug!r}.")
        with tenant_scope(tenant):
            found = duplicate_pairs_detect(tenant=tenant)
            open_pairs = DuplicatePair.objects.for_tenant(tenant).filter(status=DuplicateStatus.OPEN).count()
        result = {"tenant": slug, "new_pairs": found, "open_pairs": open_pairs}
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(f"{slug}: {found} new possible duplicate pair(s); {open_pairs} open for review.")
