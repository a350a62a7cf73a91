"""The member's notification centre (`/notifications/`): the list, the top bar's bell, marking read, opening one.

Only the signed-in member's own notifications of the active tenant are ever read or changed: another
member's or another tenant's notification is the same 404 as a missing one. htmx requests get partials
(a row, the list) with the bell swapped out of band, so the count stays right without a reload.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leadmgmt.urls_safe import safe_next_url
from routing.notifications import notification_mark_read, notifications_mark_all_read

from .notification_selectors import notification_get_for_user, notification_list
from .views import workspace_required

PAGE_SIZE = 25
KIND_LABELS = {
    "lead_assigned": "New lead",
    "sla_breached": "SLA missed",
    "sla_breach": "SLA escalation",
    "lead_aging": "Untouched lead",
    "lead_aging_alert": "Aging alert",
    "handoff_unplaced": "Handoff not placed",
    "lead_unassigned": "Lead waiting in Unassigned",
}


def _htmx(request) -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-History-Restore-Request")


def _decorate(rows) -> list:
    rows = list(rows)
    for row in rows:
        row.kind_label = KIND_LABELS.get(row.kind, row.kind.replace("_", " ").capitalize())
    return rows


def _list_context(request, *, unread_only: bool, page_number) -> dict:
    page = Paginator(notification_list(tenant=request.tenant, user=request.user, unread_only=unread_only),
                     PAGE_SIZE).get_page(page_number)
    page.object_list = _decorate(page.object_list)
    query = urlencode({"show": "unread"}) if unread_only else ""
    list_url = reverse("notifications") + (f"?{query}&" if query else "?") + f"page={page.number}"
    return {"page": page, "unread_only": unread_only, "query": query, "list_url": list_url}


def _next_url(request) -> str:
    """Where a form posted from the list goes back to (the same filter and page), never off-site."""
    home = reverse("notifications")
    return safe_next_url(request, request.POST.get("next"), fallback=home, within=home)


@require_GET
@workspace_required
def notifications(request):
    """The member's notifications, newest first; `?show=unread` for the unread ones only."""
    context = _list_context(request, unread_only=request.GET.get("show") == "unread",
                            page_number=request.GET.get("page"))
    if _htmx(request):
        return render(request, "workspace/_notification_list.html", context)
    return render(request, "workspace/notifications.html", context)


@require_GET
@workspace_required
def notification_bell(request):
    """The top bar's bell with the unread count (polled by every workspace page)."""
    return render(request, "workspace/_notification_bell.html")


@require_POST
@workspace_required
def notification_read(request, notification_id: int):
    """Mark one notification read; htmx gets the row back, with the bell out of band."""
    notification = notification_get_for_user(tenant=request.tenant, user=request.user,
                                             notification_id=notification_id)
    notification_mark_read(notification=notification)
    if _htmx(request):
        return render(request, "workspace/_notification_item.html",
                      {"notification": _decorate([notification])[0], "bell_oob": True,
                       "next_url": _next_url(request)})
    return redirect(_next_url(request))


@require_POST
@workspace_required
def notifications_read_all(request):
    """Mark every notification of the member in this workspace read."""
    changed = notifications_mark_all_read(tenant=request.tenant, user=request.user)
    if _htmx(request):
        unread_only = request.POST.get("show") == "unread"
        context = _list_context(request, unread_only=unread_only, page_number=1)
        return render(request, "workspace/_notification_list.html", context | {"bell_oob": True, "read_all": True,
                                                                              "announce_read": changed})
    messages.success(request, f"Marked {changed} notification{'' if changed == 1 else 's'} read."
                     if changed else "Nothing to mark: every notification was read already.")
    return redirect(_next_url(request))


@require_GET
@workspace_required
def notification_open(request, notification_id: int):
    """Follow a notification's link: it is read from now on; to its lead's page, else back to the list."""
    notification = notification_get_for_user(tenant=request.tenant, user=request.user,
                                             notification_id=notification_id)
    notification_mark_read(notification=notification)
    if notification.lead_id:
        return redirect("lead-page", lead_id=notification.lead_id)
    return redirect("notifications")
