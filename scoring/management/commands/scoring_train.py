"""`manage.py scoring_train SLUG [--json]`: train the tenant's learned model now (scoring.predictive), make it
current and re-score every lead with it. Prints what `GET /api/v1/scoring/predictive/` answers; with too little
closed history it says how much more is needed and exits non-zero."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from scoring.models import PredictiveStatus
from scoring.predictive.selectors import predictive_status
from scoring.predictive.services import predictive_train


class Command(BaseCommand):
    help = "Train a tenant's learned scoring model from its closed leads and re-score its leads."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the tenant's slug")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--no-rescore", action="store_true", help="store the model without re-scoring")

    def handle(self, *args, slug: str, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {slug!r}.")
        with tenant_scope(tenant):
            job = predictive_train(tenant=tenant, actor=Actor(kind="system", name="manage.py scoring_train"),
                                   rescore=not options["no_rescore"])
            result = predictive_status(tenant=tenant)
        if options["json"]:
            self.stdout.write(json.dumps(result))
        elif job.status == PredictiveStatus.READY:
            metrics = result["metrics"]
            self.stdout.write(f"{slug}: learned model v{job.version} trained on {job.closed_count} closed leads "
                              f"({job.won_count} won); held-out AUC {metrics.get('auc')}, calibration error "
                              f"{metrics.get('calibration_error')}.")
        if job.status != PredictiveStatus.READY:
            raise CommandError(job.message or f"Training ended {job.status}.")
