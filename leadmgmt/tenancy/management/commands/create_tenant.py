"""`manage.py create_tenant SLUG --name NAME --admin-email EMAIL [--json]`: provision a tenant."""
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug

from leadmgmt.tenancy.models import Tenant
from leadmgmt.tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with an admin user, one lead form and one API key."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", default=None, help="Default: a generated one, printed once.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, slug, name, admin_email, admin_password, json: bool, **options):
        try:
            validate_slug(slug)
            validate_email(admin_email)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if not name.strip():
            raise CommandError("--name must not be blank")
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with slug '{slug}' already exists.")
        result = tenant_create(slug=slug, name=name.strip(), admin_email=admin_email, admin_password=admin_password)
        payload = {
            "tenant": result.tenant.slug,
            "form_key": result.form_key,
            "api_key": result.api_key,
            "admin_email": result.admin_email,
            "admin_password": result.admin_password,
        }
        if json:
            self.stdout.write(_dumps(payload))
        else:
            for key, value in payload.items():
                self.stdout.write(f"{key}: {value}")


def _dumps(payload) -> str:
    return json.dumps(payload)
