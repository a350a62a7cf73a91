"""Beat's periodic work has a queue and a worker of its own: a capture backlog never delays an SLA escalation.

Every task of beat's schedule, and the SLA and notification work they lead to, is routed to the periodic
queue; the capture pipeline, signals and re-scores stay on the default one. `make run` and
docker-compose start one worker per queue. On real workers, an SLA run enqueued behind 200 slow
default-queue tasks breaches its clock and sends its email within seconds, the backlog still waiting.
"""
from __future__ import annotations

import time

import pytest
import yaml
from django.conf import settings

from leadmgmt import devrun
from leadmgmt.celery import app as celery_app
from routing.models import EscalationAction, Notification, SlaClock
from routing.tasks import sla_enforce_task
from tests.support.sla import assigned_lead, sales_team, sla_policy
from tests.support.tasks import sleep_task
from tests.support.worker import queue_length, real_workers, wait_until

PERIODIC, DEFAULT = settings.CELERY_PERIODIC_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE
# Named in the routes before the task exists (a route by name needs no task): the capture pipeline's sweep.
ANNOUNCED = {"workspace.tasks.capture_pipeline_sweep_task"}


@pytest.fixture(autouse=True, scope="module")
def registered_tasks():
    """Every app's tasks module imported, as in a worker (the test process imports them lazily)."""
    celery_app.loader.import_default_modules()


def queue_of(task_name: str) -> str:
    """The queue a message for this task is sent to, by the app's own router."""
    return celery_app.amqp.router.route({}, task_name)["queue"].name


def test_the_queues_are_named_in_settings():
    assert (DEFAULT, PERIODIC) == ("celery", "periodic")
    assert celery_app.conf.task_default_queue == DEFAULT
    assert (devrun.DEFAULT_QUEUE, devrun.PERIODIC_QUEUE) == (DEFAULT, PERIODIC)


@pytest.mark.parametrize("entry", sorted(celery_app.conf.beat_schedule))
def test_every_task_of_beats_schedule_goes_to_the_periodic_queue(entry):
    assert queue_of(celery_app.conf.beat_schedule[entry]["task"]) == PERIODIC


@pytest.mark.parametrize("task_name", [
    "routing.tasks.sla_clock_tighten_task",  # a band change tightening a running SLA clock
    "routing.tasks.notification_emails_now_task",  # an escalation's or a hot lead's email
    "workspace.tasks.capture_pipeline_sweep_task",
])
def test_sla_and_notification_work_goes_to_the_periodic_queue(task_name):
    assert queue_of(task_name) == PERIODIC


@pytest.mark.parametrize("task_name", [
    "leads.tasks.lead_captured_task",  # the capture pipeline: score, then route
    "leads.tasks.signals_process_task",
    "scoring.tasks.leads_score_task",
    "scoring.tasks.leads_rescore_all_task",
    "scoring.tasks.score_events_dispatch_task",
    "routing.tasks.lead_route_task",
    "nurture.tasks.nurture_readiness_task",
])
def test_capture_signals_and_scoring_stay_on_the_default_queue(task_name):
    assert task_name in celery_app.tasks
    assert queue_of(task_name) == DEFAULT


def test_every_routed_name_is_a_registered_task_so_a_typo_cannot_send_one_to_the_default_queue():
    unknown = set(settings.CELERY_TASK_ROUTES) - set(celery_app.tasks) - ANNOUNCED
    assert unknown == set()
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} == {PERIODIC}


def test_the_visibility_timeout_is_minutes_and_outlasts_the_hard_time_limit():
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert settings.CELERY_TASK_TIME_LIMIT < timeout <= 10 * 60
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST


def worker_queues(argv: list[str]) -> tuple[str, str]:
    """(the -Q value, the --concurrency value) of a `celery worker` command line."""
    return argv[argv.index("-Q") + 1], argv[argv.index("--concurrency") + 1]


def test_make_run_starts_one_worker_per_queue_the_periodic_one_with_one_process(monkeypatch):
    monkeypatch.delenv("CELERY_PERIODIC_CONCURRENCY", raising=False)
    children = devrun.child_processes(devrun.parse_args(["--worker-concurrency", "3"]))
    workers = {c.name: c.argv for c in children if "worker" in c.argv}
    assert {name: worker_queues(argv) for name, argv in workers.items()} == {
        "worker": (DEFAULT, "3"), "periodic": (PERIODIC, "1")}
    nodes = [argv[argv.index("-n") + 1] for argv in workers.values()]
    assert len(set(nodes)) == 2
    assert [c.name for c in children] == ["web", "worker", "periodic", "beat"]


def test_docker_compose_runs_a_worker_per_queue_and_one_beat():
    services = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text())["services"]
    workers = {name: worker_queues(service["command"]) for name, service in services.items()
               if "worker" in (service.get("command") or [])}
    assert workers == {"worker": (DEFAULT, "${CELERY_WORKER_CONCURRENCY:-4}"),
                       "worker-periodic": (PERIODIC, "${CELERY_PERIODIC_CONCURRENCY:-1}")}
    assert [name for name, service in services.items() if "beat" in (service.get("command") or [])] == ["beat"]


BACKLOG = 200
TASK_SECONDS = 0.1  # the backlog alone keeps the default worker busy for 20 s or more
SLA_WITHIN = 3.0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_sla_escalation_runs_within_seconds_while_a_capture_backlog_waits(tenant, tmp_path):
    _team, manager, (rep,) = sales_team(tenant, reps=1)
    sla_policy(tenant, minutes=5, name="Hot", steps=[(1, 0, EscalationAction.ALERT_MANAGER)])
    lead, clock = assigned_lead(tenant, rep)  # assigned in 2025: its 5 minutes are long over
    # The workers run the app's settings; their emails go nowhere.
    email = {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}

    with real_workers(tmp_path, name="test-queues", env=email, include=("tests.support.tasks",)) as workers:
        default_queue, default_worker, default_log = workers[DEFAULT]
        _periodic_queue, periodic_worker, periodic_log = workers[PERIODIC]
        for _ in range(BACKLOG):
            sleep_task.delay(TASK_SECONDS)
        wait_until(lambda: queue_length(default_queue) < BACKLOG, default_worker, default_log,
                   "the default worker to start on the backlog")

        started = time.monotonic()
        sla_enforce_task.delay()
        alert = Notification.objects.unscoped().filter(lead=lead, user=manager, kind="sla_breach")
        wait_until(lambda: alert.filter(emailed_at__isnull=False).exists(), periodic_worker, periodic_log,
                   "the SLA run and its email", timeout=30)
        took = time.monotonic() - started
        still_waiting = queue_length(default_queue)

    assert SlaClock.objects.unscoped().get(pk=clock.pk).breached_at is not None
    # Breached, escalated and emailed within seconds, through the periodic queue; behind the backlog on
    # one queue it would have waited 20 s or more.
    assert took < SLA_WITHIN, f"the SLA run took {took:.1f}s"
    assert still_waiting > BACKLOG // 2, f"only {still_waiting} of {BACKLOG} backlog tasks were still waiting"
    # Each worker ran only its own queue's tasks (a task's log lines name it as `name[id]`).
    periodic_ran, default_ran = periodic_log.read_text(), default_log.read_text()
    assert "routing.sla_tasks.sla_enforce_task[" in periodic_ran and "sleep_task[" not in periodic_ran
    assert "tests.support.tasks.sleep_task[" in default_ran and "sla_enforce_task[" not in default_ran
