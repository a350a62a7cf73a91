"""Notifications: in-app messages to users (new lead, SLA breach, aging), emailed at once when due.

A notification is a row written in the transaction of the step that caused it, so it exists
exactly when the step happened. `dedup_key` makes a re-run of an automated step notify once.
A notification due by email is sent right after that transaction commits (a Celery task enqueued
with `transaction.on_commit`, one per transaction); beat's `notification_emails_send`, every
minute, is the safety net for a task that was lost. Both claim-then-send with a status-guarded
update, so a re-run, the sweep or a second worker never sends the same notification twice.
The member's read state is theirs alone: `notification_mark_read` / `notifications_mark_all_read`.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from leadmgmt.db.bulk import instance_builder, rows_insert
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Membership, Role, Team

from .models import Assignment, Notification

log = logging.getLogger(__name__)

HOT_BANDS = frozenset({"sql", "hot"})  # bands whose new owner is also emailed (besides `lead.is_hot`)
EMAIL_BATCH = 100


def notify(
    *, tenant, user, kind: str, title: str, body: str = "", lead=None, email: bool = False, dedup_key: str = "",
    now: dt.datetime | None = None,
) -> Notification | None:
    """Write one in-app notification (emailed later when `email`); None when `dedup_key` was used already."""
    now = now or timezone.now()
    tenant_id, user_id, lead_id = getattr(tenant, "pk", tenant), getattr(user, "pk", user), getattr(lead, "pk", lead)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO routing_notification (tenant_id, user_id, kind, lead_id, title, body, created_at, "
            "email_due, dedup_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            [tenant_id, user_id, str(kind)[:32], lead_id, str(title)[:200], body, now, bool(email), str(dedup_key)[:120]],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    if email:
        _email_after_commit([row[0]])
    return Notification(id=row[0], tenant_id=tenant_id, user_id=user_id, kind=kind[:32], lead_id=lead_id,
                        title=title[:200], body=body, created_at=now, email_due=bool(email), dedup_key=dedup_key[:120])


def notifications_bulk(*, notifications: list[Notification]) -> None:
    """Insert many prepared notifications in one statement; rows whose dedup_key was used are skipped."""
    if notifications:
        rows_insert(notifications, ignore_conflicts=True)
        if any(n.email_due for n in notifications):
            _email_after_commit(None)  # ignore_conflicts leaves no ids: send whatever is due


def lead_label(lead) -> str:
    name = f"{lead.first_name} {lead.last_name}".strip()
    label = name or lead.email or lead.phone
    return f"{label} ({lead.company})" if lead.company else label


def _new_owner_message(assignment: Assignment) -> dict:
    lead = assignment.lead
    hot = bool(lead.is_hot) or (lead.band or "") in HOT_BANDS
    reason = assignment.reason or assignment.get_trigger_display()
    return {
        "tenant": assignment.tenant_id, "user": assignment.owner_id, "kind": "lead_assigned", "lead": lead,
        "email": hot, "title": f"{'Hot lead' if hot else 'New lead'}: {lead_label(lead)}",
        "body": "\n".join(line for line in (
            f"{lead_label(lead)} is now yours ({reason}).",
            f"Email: {lead.email}" if lead.email else "",
            f"Phone: {lead.phone}" if lead.phone else "",
            f"Score: {lead.score if lead.score is not None else '-'}",
            f"Respond by: {lead.sla_due_at:%Y-%m-%d %H:%M %Z}" if lead.sla_due_at else "",
        ) if line),
        "dedup_key": f"assignment:{assignment.pk}",
    }


def notify_new_owner(*, assignment: Assignment) -> Notification | None:
    """Tell the new owner about the lead in-app, and by email too when the lead is hot."""
    if assignment.owner_id is None:
        return None
    return notify(**_new_owner_message(assignment))


def notify_new_owners(*, assignments: list[Assignment], now: dt.datetime) -> None:
    """`notify_new_owner` for a batch of assignments, in one INSERT (the capture pipeline)."""
    notes = []
    new_notification = instance_builder(Notification)  # Notification(**values), cheaper by the hundred
    for assignment in assignments:
        if assignment.owner_id is None:
            continue
        message = _new_owner_message(assignment)
        notes.append(new_notification(
            tenant_id=message["tenant"], user_id=message["user"], kind=message["kind"], lead_id=assignment.lead_id,
            title=message["title"][:200], body=message["body"], created_at=now, email_due=message["email"],
            dedup_key=message["dedup_key"][:120]))
    notifications_bulk(notifications=notes)


def managers_for_many(*, tenant, user_ids) -> dict[int, list]:
    """For each user id: who hears about their leads (see `managers_for`). A fixed number of queries."""
    user_ids = {uid for uid in user_ids if uid is not None}
    User = get_user_model()
    teams = dict(Membership.objects.for_tenant(tenant.pk).filter(user_id__in=user_ids)
                 .values_list("user_id", "team_id"))
    team_ids = {t for t in teams.values() if t is not None}
    team_manager = dict(Team.objects.for_tenant(tenant.pk).filter(pk__in=team_ids, manager__isnull=False)
                        .values_list("pk", "manager_id"))
    # A team's manager must be an active member of this tenant: never alert another tenant's people.
    members = set(Membership.objects.for_tenant(tenant.pk).filter(user_id__in=set(team_manager.values()),
                                                       user__is_active=True).values_list("user_id", flat=True))
    team_manager = {tid: mid for tid, mid in team_manager.items() if mid in members}
    role_managers: dict[int, list[int]] = defaultdict(list)
    for uid, tid in (Membership.objects.for_tenant(tenant.pk).filter(team_id__in=team_ids, role=Role.MANAGER,
                                                           user__is_active=True)
                     .order_by("user_id").values_list("user_id", "team_id")):
        role_managers[tid].append(uid)
    admins = list(Membership.objects.for_tenant(tenant.pk).filter(role=Role.ADMIN, user__is_active=True)
                  .order_by("user_id").values_list("user_id", flat=True))
    chosen: dict[int, list[int]] = {}
    for uid in user_ids:
        tid = teams.get(uid)
        manager = team_manager.get(tid)
        if manager is not None and manager != uid:
            chosen[uid] = [manager]
        elif [m for m in role_managers.get(tid, []) if m != uid]:
            chosen[uid] = [m for m in role_managers[tid] if m != uid]
        else:
            chosen[uid] = [a for a in admins if a != uid] or admins
    users = User.objects.in_bulk({m for ms in chosen.values() for m in ms})
    return {uid: [users[m] for m in ms if m in users] for uid, ms in chosen.items()}


def managers_for(*, tenant, user) -> list:
    """Who is alerted about `user`'s leads: their team's manager, else the team's members with the
    manager role, else the tenant's admins (never the user themself when someone else exists)."""
    uid = getattr(user, "pk", user)
    if uid is None:
        return managers_for_many(tenant=tenant, user_ids=[-1]).get(-1, [])
    return managers_for_many(tenant=tenant, user_ids=[uid])[uid]


class _EmailBatch:
    """An on-commit callback: enqueue one email task for the due notifications of one transaction."""

    def __init__(self, ids: list[int] | None):
        self.ids = ids

    def add(self, ids: list[int] | None) -> None:
        self.ids = None if ids is None or self.ids is None else self.ids + ids

    def __call__(self) -> None:
        from .tasks import notification_emails_now_task  # the task module imports this one

        try:
            notification_emails_now_task.delay(notification_ids=self.ids)
        except Exception:  # noqa: BLE001 - broker down: the minute sweep sends them instead
            log.exception("notification emails: could not enqueue the immediate send")


def _email_after_commit(ids: list[int] | None) -> None:
    """Send these notifications (None: every due one) once the current transaction commits.

    Notifications due in the same transaction (and savepoint) share one task; one registered in a
    savepoint that rolls back is dropped with it, exactly like its row."""
    conn = transaction.get_connection()
    if conn.in_atomic_block:
        savepoints = set(conn.savepoint_ids)
        for sids, func, *_robust in reversed(conn.run_on_commit):
            if isinstance(func, _EmailBatch) and sids == savepoints:
                func.add(ids)
                return
    transaction.on_commit(_EmailBatch(ids))


def _claim(*, now: dt.datetime, limit: int, ids: list[int] | None = None) -> list[int]:
    """Mark up to `limit` due notifications (of `ids` when given) as emailed (SKIP LOCKED: concurrent
    senders split the work)."""
    only = " AND id = ANY(%s)" if ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE routing_notification SET emailed_at = %s WHERE id IN ("
            f" SELECT id FROM routing_notification WHERE email_due AND emailed_at IS NULL{only}"
            " ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED) AND emailed_at IS NULL RETURNING id",
            [now, *([list(ids)] if ids is not None else []), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def absolute_url(path: str) -> str:
    """A link for an email: the deployment's public base URL (`PUBLIC_BASE_URL`) and `path`."""
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _message(notification: Notification, address: str) -> EmailMessage:
    body = notification.body or notification.title
    links = []
    if notification.lead_id:
        links.append(f"Open the lead: {absolute_url(reverse('lead-page', kwargs={'lead_id': notification.lead_id}))}")
    links.append(f"All your notifications: {absolute_url(reverse('notifications'))}")
    workspace = f"Workspace: {notification.tenant.name}\n" if notification.tenant_id else ""
    body = f"{body}\n\n{workspace}" + "\n".join(links)
    return EmailMessage(subject=f"[leadmgmt] {notification.title}", body=body,
                        from_email=settings.DEFAULT_FROM_EMAIL, to=[address])


def notification_emails_send(*, now: dt.datetime | None = None, limit: int = EMAIL_BATCH,
                             ids: list[int] | None = None) -> int:
    """Email due notifications (only `ids` when given) once each; returns how many were sent.

    Each batch is claimed (emailed_at set) and committed before sending, so a re-run or another
    worker can never pick the same row; a notification whose sending fails is released again
    (status-guarded on the claim time) for the next run. A user without an email address is
    simply marked done.
    """
    with cross_tenant("sweep"):  # due notifications of every tenant, claimed and emailed
        now = now or timezone.now()
        sent = 0
        while True:
            with transaction.atomic():
                claimed = _claim(now=now, limit=limit, ids=ids)
            if not claimed:
                return sent
            rows = list(Notification.objects.unscoped().filter(pk__in=claimed).select_related("user", "tenant")
                        .order_by("pk"))
            failed: list[int] = []
            mail = get_connection(fail_silently=False)
            try:
                mail.open()
            except Exception:  # noqa: BLE001 - mail server unreachable: release the batch for the next run
                log.exception("notification emails: cannot reach the mail server")
                failed = claimed
                rows = []
            try:
                for notification in rows:
                    address = (notification.user.email or "").strip()
                    if not address:
                        continue
                    try:
                        mail.send_messages([_message(notification, address)])
                        sent += 1
                    except Exception:  # noqa: BLE001 - any SMTP/network failure: release it for the next run
                        log.exception("notification %s: email failed", notification.pk)
                        failed.append(notification.pk)
            finally:
                if rows:
                    mail.close()
            if failed:
                Notification.objects.unscoped().filter(pk__in=failed, emailed_at=now).update(emailed_at=None)
                return sent  # don't spin on a failing mail server; beat tries again in a minute
            if len(claimed) < limit:
                return sent


# --- the member's read state (personal, like an inbox's: not a business change, so not audited) -------


def notification_mark_read(*, notification: Notification, now: dt.datetime | None = None) -> bool:
    """Mark one notification read; a no-op when it already is. True when this call changed it."""
    now = now or timezone.now()
    changed = Notification.objects.for_tenant(notification.tenant_id).filter(
        pk=notification.pk, user_id=notification.user_id, read_at__isnull=True).update(read_at=now)
    if changed:
        notification.read_at = now
    return bool(changed)


def notifications_mark_all_read(*, tenant, user, now: dt.datetime | None = None) -> int:
    """Mark every unread notification of `user` in `tenant` read; returns how many changed."""
    return Notification.objects.for_tenant(getattr(tenant, "pk", tenant)).filter(user_id=getattr(user, "pk", user), read_at__isnull=True).update(read_at=now or timezone.now())
