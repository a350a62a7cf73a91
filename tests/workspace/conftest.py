"""Fixtures of the UI tests: a tenant with the routing defaults (rejection taxonomy, SLA policies), reps,
and leads owned the way routing gives them (an Assignment and a running SLA clock)."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from routing.defaults import routing_defaults_create
from tests.support.factories import TeamFactory
from tests.support.workspace import person, signed_in_client


@pytest.fixture
def org(tenant):
    """Routing defaults of the tenant, an SDR team with its manager and two SDRs."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdrs = TeamFactory(tenant=tenant, name="SDRs")
    manager = person(tenant, role=Role.MANAGER, team=sdrs, username="manager@acme.test")
    return {
        "team": sdrs,
        "manager": manager,
        "rep": person(tenant, team=sdrs, username="rep@acme.test"),
        "rep2": person(tenant, team=sdrs, username="rep2@acme.test"),
    }


@pytest.fixture
def signed_in():
    """A Django test client signed in as `user`, with `tenant` (if given) chosen as the active workspace."""
    return signed_in_client
