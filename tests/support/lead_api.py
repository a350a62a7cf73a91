"""Helpers of the lead API tests: URLs of a lead's action endpoints, an org of reps and a manager signed in, field errors."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.models import LeadStage
from routing.defaults import routing_defaults_create
from routing.models import Territory, Trigger
from routing.services.assign import lead_assign
from tests.support.routing import fresh, lead, rep, team

BANT = {"budget": "$50k", "authority": "VP Sales", "need": "Slow follow-up", "timeline": "Q3"}


def url(lead_, action) -> str:
    return f"/api/v1/leads/{lead_.pk}/{action}/"


@pytest.fixture
def api_org(tenant, client_for):
    """Routing defaults; East (manager, two SDRs), West (an SDR), AEs; each signed in over the API."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    east, aes, west = team(tenant, "East"), team(tenant, "AEs"), team(tenant, "West")
    people = {
        "manager": rep(tenant, east, role=Role.MANAGER),
        "sdr": rep(tenant, east),
        "sdr2": rep(tenant, east),
        "west_sdr": rep(tenant, west),
        "ae": rep(tenant, aes, role=Role.AE),
        "admin": rep(tenant, role=Role.ADMIN),
        "ops": rep(tenant, role=Role.MARKETING_OPS),
    }
    Territory.objects.unscoped().create(tenant=tenant, name="Everywhere", team=aes)
    clients = {name: client_for(user) for name, user in people.items()}
    return people, clients


def owned(tenant, owner, team_=None, **fields):
    fields.setdefault("stage", LeadStage.MQL)
    new = lead(tenant, **fields)
    lead_assign(lead=new, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE, team=team_)
    return fresh(new)


def errors(response) -> dict:
    return response.json()["errors"]
