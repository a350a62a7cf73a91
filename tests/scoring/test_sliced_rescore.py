"""A whole-tenant re-score outside a transaction runs in id slices side by side; same result as one statement."""
from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leads.models import Lead, Signal
from scoring.models import ScoreChange
from scoring.services import id_slices, leads_score, scoring_default_model_create
from tests.support.factories import LeadFactory, TenantFactory


def test_id_slices_cover_the_whole_uuid_space_without_overlap():
    assert id_slices(1) == [(None, None)]
    assert id_slices(2) == [(None, "80000000-0000-0000-0000-000000000000"),
                            ("80000000-0000-0000-0000-000000000000", None)]
    ranges = id_slices(3)
    assert len(ranges) == 3 and ranges[0][0] is None and ranges[-1][1] is None
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(2))


@pytest.mark.django_db(transaction=True)
def test_sliced_rescore_gives_the_same_scores_as_one_statement():
    tenant = TenantFactory(slug="sliced")
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    now = timezone.now()
    titles = ["CEO", "VP Sales", "Engineer", "Marketing Manager", ""]
    # Ids at both ends of the UUID space and on the slice boundary land in exactly one slice.
    edge_ids = [uuid.UUID(int=0), uuid.UUID(int=1 << 127), uuid.UUID(int=(1 << 128) - 1)]
    leads = [LeadFactory(tenant=tenant, id=edge_ids[i] if i < 3 else uuid.uuid4(), job_title=titles[i % 5],
                         company_size=[10, 150, 900][i % 3], last_activity_at=now) for i in range(30)]
    Signal.objects.unscoped().bulk_create([
        Signal(tenant=tenant, lead=lead, email=lead.email, type="pricing_page_view", occurred_at=now,
               received_at=now, processed_at=now)
        for lead in leads[::2]
    ])
    assert not connection.in_atomic_block
    sliced = leads_score(tenant=tenant, cause="manual", now=now, slices=3)
    assert sliced.updated == 30 and sliced.score_changes == 30
    by_slices = dict(Lead.objects.unscoped().filter(tenant=tenant).values_list("id", "score_breakdown"))
    scores = dict(Lead.objects.unscoped().filter(tenant=tenant).values_list("id", "score"))

    Lead.objects.unscoped().filter(tenant=tenant).update(score=None, score_breakdown=None, band="", lead_class="")
    single = leads_score(tenant=tenant, cause="manual", now=now, slices=1)
    assert single.updated == 30
    assert dict(Lead.objects.unscoped().filter(tenant=tenant).values_list("id", "score_breakdown")) == by_slices
    assert dict(Lead.objects.unscoped().filter(tenant=tenant).values_list("id", "score")) == scores
    assert ScoreChange.objects.unscoped().filter(tenant=tenant).count() == 60

    again = leads_score(tenant=tenant, cause="manual", now=now, slices=3)
    assert (again.updated, again.score_changes) == (0, 0)  # re-running changes nothing
