"""`manage.py add_member SLUG EMAIL --role ROLE [--team NAME] [--capacity N] [--unavailable] [--json]`.

Creates or updates a user's membership of a tenant, for scripted onboarding. A new user gets a
generated password, printed once. An SDR or AE given no `--team` joins the tenant's default team
("Sales Development"), the team the default round-robin rule routes to. On an update, a capacity
not given keeps the current one, a team not given keeps the current one, and
the member is available unless `--unavailable` is given. Bad input is a message on stderr and exit
code 2, with nothing written.
"""
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from leadmgmt.tenancy.models import Membership, Role, Tenant
from leadmgmt.tenancy.services import membership_upsert

BAD_INPUT = 2


class Command(BaseCommand):
    help = "Create or update a user's membership of a tenant (role, team, capacity, availability) and print it."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The tenant's slug.")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Role.values)}.")
        parser.add_argument("--team", default=None, help="Team name (created when missing); SDRs and AEs default to the tenant's default team.")
        parser.add_argument("--capacity", type=int, default=None, help="Most open leads (0 or more).")
        parser.add_argument("--unavailable", action="store_true", help="Mark the member unavailable for routing.")
        parser.add_argument("--json", action="store_true", help="Print the membership as JSON.")

    def handle(self, *args, slug, email, role, team, capacity, unavailable, json: bool, **options):
        email = email.strip().lower()
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"'{email}' is not a valid email address.", returncode=BAD_INPUT) from exc
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug '{slug}'.", returncode=BAD_INPUT)
        if role not in Role.values:
            raise CommandError(f"Unknown role '{role}'; choose one of {', '.join(Role.values)}.", returncode=BAD_INPUT)
        if capacity is not None and capacity < 0:
            raise CommandError("--capacity must be 0 or more.", returncode=BAD_INPUT)
        if team is not None and not team.strip():
            raise CommandError("--team must not be blank.", returncode=BAD_INPUT)
        if capacity is None:  # an update keeps the current cap unless one is given
            capacity = (Membership.objects.for_tenant(tenant).filter(user__username=email)
                        .values_list("capacity", flat=True).first())
        try:
            membership, user_created, password = membership_upsert(
                tenant=tenant, email=email, role=role, team_name=team.strip() if team else None, capacity=capacity,
                is_available=not unavailable)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages), returncode=BAD_INPUT) from exc
        payload = {
            "tenant": tenant.slug,
            "email": membership.user.username,
            "role": membership.role,
            "team": membership.team.name if membership.team_id else None,
            "capacity": membership.capacity,
            "is_available": membership.is_available,
            "user_created": user_created,
        }
        if user_created:
            payload["password"] = password
        if json:
            self.stdout.write(_dumps(payload))
        else:
            for key, value in payload.items():
                self.stdout.write(f"{key}: {value}")


def _dumps(payload) -> str:
    return json.dumps(payload)
