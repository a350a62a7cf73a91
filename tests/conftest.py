"""Shared fixtures: tenants, users by role, API clients; Celery runs eagerly unless a test starts a worker."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from leadmgmt.celery import app as celery_app
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Role
from tests.support.factories import (
    LeadFormFactory,
    MembershipFactory,
    TenantFactory,
    UserFactory,
    api_key_for,
)

# Fixtures shared across apps: browser and page (Playwright on Debian's chromium), api_org (reps signed in over the API).
pytest_plugins = ["tests.support.browser", "tests.support.lead_api"]


@pytest.fixture(autouse=True)
def _test_harness_sees_every_tenant():
    """The suite's own set-up (factories) and checks read and write any tenant's rows: the `test_harness`
    path of leadmgmt/tenancy/cross_tenant.py. The code under test does not inherit it: requests (the
    tenant middleware), tasks (their task class) and `tenant_scope` blocks start without it, held by
    PostgreSQL's row-level security to their own tenant, exactly as in production."""
    with cross_tenant("test_harness"):
        yield


@pytest.fixture(autouse=True)
def _celery_eager():
    """In-process tasks by default; tests marked `worker` talk to a real worker process instead."""
    from celery._state import _set_task_join_will_block

    # Eager `.delay()` flips a process-global "inside a task" flag and restores it afterwards;
    # tests that capture from several threads can interleave those flips and leave it set.
    _set_task_join_will_block(False)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Test users get a cheap hash: PBKDF2's 1,000,000 iterations cost about half a second per user, which
    hundreds of tests pay several times over. What is under test never depends on the algorithm."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme-corp", name="Acme Corp")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def in_tenant(tenant):
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def lead_form(tenant):
    return LeadFormFactory(tenant=tenant, name="Website", allowed_origins=["https://www.acme-site.test"],
                           success_url="https://www.acme-site.test/thanks")


@pytest.fixture
def other_lead_form(other_tenant):
    return LeadFormFactory(tenant=other_tenant, name="Globex site")


@pytest.fixture
def api_key(tenant):
    return api_key_for(tenant)


@pytest.fixture
def api_client(api_key):
    _key, raw = api_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def member(tenant, role=Role.SDR, **kwargs):
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role, **kwargs)
    return user


@pytest.fixture
def make_member():
    return member


@pytest.fixture
def client_for():
    """An APIClient signed in (session) as `user`."""

    def _client(user):
        client = APIClient()
        client.force_login(user)
        return client

    return _client


@pytest.fixture
def service_data_dir():
    """A data dir for embedded services that the `pgserver` system user can reach.

    Run as root, pgserver starts postgres as its own unprivileged user, which cannot traverse
    pytest's 0700 `/tmp/pytest-of-root`; so this lives directly under the system temp dir.
    """
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="leadmgmt-embedded-"))
    path.chmod(0o755)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)
