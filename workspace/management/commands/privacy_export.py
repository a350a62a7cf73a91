"""`manage.py privacy_export --tenant SLUG EMAIL [--output FILE] [--actor USERNAME]`: a person's subject access
export (GDPR art. 15, CCPA), as JSON: to FILE (created readable by its owner only) or to standard output."""
from __future__ import annotations

import json
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leadmgmt.tenancy.roles import PRIVACY_EXPORT
from workspace.services.privacy import PrivacyRefused, person_export, privacy_actor


def tenant_get(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"No tenant with the slug {slug!r}.")
    return tenant


class Command(BaseCommand):
    help = "Export everything a tenant holds about the person with this email (subject access request), as JSON."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--output", help="Write the JSON to this file (mode 0600) instead of standard output.")
        parser.add_argument("--actor", help="The tenant admin who asked (audited); default: the platform operator.")

    def handle(self, *args, email: str, tenant: str, output: str | None, actor: str | None, **options):
        tenant_obj = tenant_get(tenant)
        try:
            with tenant_scope(tenant_obj):
                who = privacy_actor(tenant=tenant_obj, action=PRIVACY_EXPORT, username=actor,
                                    tool="manage.py privacy_export")
                export = person_export(tenant=tenant_obj, email=email, actor=who)
        except PrivacyRefused as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        text = json.dumps(export, indent=2, ensure_ascii=False)
        if not output:
            self.stdout.write(text)
            return
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        self.stderr.write(f"Wrote the export ({len(export['leads'])} lead(s)) to {output}.")
