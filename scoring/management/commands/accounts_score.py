"""`manage.py accounts_score SLUG [--json]`: recompute every account score of a tenant from its leads' fit and
engagement scores (scoring.account_scores). Scoring keeps account scores current as leads are scored; this is
for accounts that were there before, or after changing the account settings of the scoring model. Safe to run
again: an account whose score and parts are unchanged is not written."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.models import Account
from scoring.account_scores import accounts_score


class Command(BaseCommand):
    help = "Recompute the account scores of a tenant from its leads' fit and engagement scores."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the tenant's slug")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, slug: str, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {slug!r}.")
        with tenant_scope(tenant):
            changed = accounts_score(tenant=tenant)
            scored = Account.objects.for_tenant(tenant).filter(score__isnull=False).count()
        result = {"tenant": slug, "changed": changed, "scored_accounts": scored}
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(f"{slug}: {changed} account score(s) changed; {scored} account(s) scored.")
