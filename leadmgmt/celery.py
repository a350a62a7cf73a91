"""The Celery application: configured from Django settings (CELERY_ namespace), tasks autodiscovered."""
import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadmgmt.settings")

app = Celery("leadmgmt", task_cls="leadmgmt.tenancy.task_base:TenantContextTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work. django_celery_beat's DatabaseScheduler copies these entries into its tables at
# start-up (admins can pause them there); each task is a cheap scan of a database column.
app.conf.beat_schedule = {
    # Signals whose processing task was lost (broker down, worker killed) and pending signals
    # whose lead has arrived since.
    "leads.signals-sweep": {"task": "leads.tasks.signals_sweep_task", "schedule": 60.0},
    # Intake Idempotency-Key answers are replayed for 24 hours; older ones are deleted hourly.
    "leads.idempotency-purge": {"task": "leads.tasks.idempotency_purge_task", "schedule": 3600.0},
    # The Scoring Agent's daily pass: decay, inactivity penalty, archiving of leads cold for too long.
    "scoring.decay": {"task": "scoring.tasks.scoring_decay_task", "schedule": crontab(hour=3, minute=15)},
    "scoring.events-sweep": {"task": "scoring.tasks.score_events_sweep_task", "schedule": 60.0},
    # The learned model (scoring.predictive) trains again on the month's new outcomes: the 1st, 04:30.
    "scoring.predictive-train": {"task": "scoring.tasks.predictive_train_monthly_task",
                                 "schedule": crontab(day_of_month=1, hour=4, minute=30)},
    # The SLA Agent: breaches and the escalation ladder (each step once per breach), aging of
    # untouched leads, and the emails of due notifications.
    "routing.sla-enforce": {"task": "routing.sla_tasks.sla_enforce_task", "schedule": 60.0},
    "routing.aging-check": {"task": "routing.sla_tasks.aging_check_task", "schedule": 900.0},
    "routing.notification-emails": {"task": "routing.sla_tasks.notification_emails_task", "schedule": 60.0},
    # The Routing Agent: leads captured over a minute ago whose routing task was lost get routed.
    "routing.sweep": {"task": "routing.tasks.routing_sweep_task", "schedule": 60.0},
    # The capture pipeline: new leads still pending after CAPTURE_PIPELINE_SWEEP_AFTER_SECONDS (their task
    # was lost to a killed worker or a Redis restart) are handed to a worker again.
    "workspace.capture-pipeline-sweep": {"task": "workspace.tasks.capture_pipeline_sweep_task", "schedule": 10.0},
    # CSV imports still running with no chunk committed for IMPORT_SWEEP_AFTER_SECONDS (their task was lost).
    "workspace.imports-sweep": {"task": "workspace.tasks.imports_sweep_task", "schedule": 60.0},
    # The Nurture Agent: enrols, exits (readiness → routing), pauses while a rep works the lead, and
    # sends due sequence steps, at most once each, within each tenant's rate limit.
    "nurture.agent": {"task": "nurture.tasks.nurture_agent_task", "schedule": 60.0},
    # Outbound webhooks: retries that are due, deliveries whose task was lost, endpoints failing for days.
    "webhooks.deliveries-sweep": {"task": "leadmgmt.webhooks.tasks.webhook_deliveries_sweep_task", "schedule": 60.0},
    "webhooks.log-purge": {"task": "leadmgmt.webhooks.tasks.webhook_log_purge_task", "schedule": 3600.0},
}
