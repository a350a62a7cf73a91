"""Notifications: in-app messages to users (new lead, SLA breach, aging), emailed by beat when due.

A notification is a row written in the transaction of the step that caused it, so it exists
exactly when the step happened. `dedup_key` makes a re-run of an automated step notify once.
Emails are sent later by `notification_emails_send` (beat, every minute) through Django's
configured email backend; a claim-then-send, status-guarded update means a re-run or a second
worker never sends the same notification twice.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.utils import timezone

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
    return Notification(id=row[0], tenant_id=tenant_id, user_id=user_id, kind=kind[:32], lead_id=lead_id,
                        title=title[:200], body=body, created_at=now, email_due=bool(email), dedup_key=dedup_key[:120])


def notifications_bulk(*, notifications: list[Notification]) -> None:
    """Insert many prepared notifications in one statement; rows whose dedup_key was used are skipped."""
    if notifications:
        Notification.objects.unscoped().bulk_create(notifications, ignore_conflicts=True)


def lead_label(lead) -> str:
    name = f"{lead.first_name} {lead.last_name}".strip()
    label = name or lead.email or lead.phone
    return f"{label} ({lead.company})" if lead.company else label


def notify_new_owner(*, assignment: Assignment) -> Notification | None:
    """Tell the new owner about the lead in-app, and by email too when the lead is hot."""
    if assignment.owner_id is None:
        return None
    lead = assignment.lead
    hot = bool(lead.is_hot) or (lead.band or "") in HOT_BANDS
    reason = assignment.reason or assignment.get_trigger_display()
    return notify(
        tenant=assignment.tenant_id, user=assignment.owner_id, kind="lead_assigned", lead=lead, email=hot,
        title=f"{'Hot lead' if hot else 'New lead'}: {lead_label(lead)}",
        body=f"{lead_label(lead)} is now yours ({reason}).\nEmail: {lead.email}\nPhone: {lead.phone}\n"
             f"Score: {lead.score if lead.score is not None else '-'}"
             + (f"\nRespond by: {lead.sla_due_at:%Y-%m-%d %H:%M %Z}" if lead.sla_due_at else ""),
        dedup_key=f"assignment:{assignment.pk}",
    )


def managers_for_many(*, tenant, user_ids) -> dict[int, list]:
    """For each user id: who hears about their leads (see `managers_for`). A fixed number of queries."""
    user_ids = {uid for uid in user_ids if uid is not None}
    User = get_user_model()
    teams = dict(Membership.objects.unscoped().filter(tenant_id=tenant.pk, user_id__in=user_ids)
                 .values_list("user_id", "team_id"))
    team_ids = {t for t in teams.values() if t is not None}
    team_manager = dict(Team.objects.unscoped().filter(tenant_id=tenant.pk, pk__in=team_ids, manager__isnull=False)
                        .values_list("pk", "manager_id"))
    # A team's manager must be an active member of this tenant: never alert another tenant's people.
    members = set(Membership.objects.unscoped().filter(tenant_id=tenant.pk, user_id__in=set(team_manager.values()),
                                                       user__is_active=True).values_list("user_id", flat=True))
    team_manager = {tid: mid for tid, mid in team_manager.items() if mid in members}
    role_managers: dict[int, list[int]] = defaultdict(list)
    for uid, tid in (Membership.objects.unscoped().filter(tenant_id=tenant.pk, team_id__in=team_ids, role=Role.MANAGER,
                                                           user__is_active=True)
                     .order_by("user_id").values_list("user_id", "team_id")):
        role_managers[tid].append(uid)
    admins = list(Membership.objects.unscoped().filter(tenant_id=tenant.pk, role=Role.ADMIN, user__is_active=True)
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


def _claim(*, now: dt.datetime, limit: int) -> list[int]:
    """Mark up to `limit` due notifications as emailed (SKIP LOCKED: concurrent senders split the work)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE routing_notification SET emailed_at = %s WHERE id IN ("
            " SELECT id FROM routing_notification WHERE email_due AND emailed_at IS NULL"
            " ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED) AND emailed_at IS NULL RETURNING id",
            [now, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _message(notification: Notification, address: str) -> EmailMessage:
    body = notification.body or notification.title
    if notification.lead_id:
        body += f"\n\nLead: {notification.lead_id}"
    return EmailMessage(subject=f"[leadmgmt] {notification.title}", body=body,
                        from_email=settings.DEFAULT_FROM_EMAIL, to=[address])


def notification_emails_send(*, now: dt.datetime | None = None, limit: int = EMAIL_BATCH) -> int:
    """Email due notifications once each; returns how many were sent.

    Each batch is claimed (emailed_at set) and committed before sending, so a re-run or another
    worker can never pick the same row; a notification whose sending fails is released again
    (status-guarded on the claim time) for the next run. A user without an email address is
    simply marked done.
    """
    now = now or timezone.now()
    sent = 0
    while True:
        with transaction.atomic():
            ids = _claim(now=now, limit=limit)
        if not ids:
            return sent
        rows = list(Notification.objects.unscoped().filter(pk__in=ids).select_related("user").order_by("pk"))
        failed: list[int] = []
        mail = get_connection(fail_silently=False)
        try:
            mail.open()
        except Exception:  # noqa: BLE001 - mail server unreachable: release the batch for the next run
            log.exception("notification emails: cannot reach the mail server")
            failed = ids
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
        if len(ids) < limit:
            return sent
