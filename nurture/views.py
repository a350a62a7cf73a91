"""Public pages of the links in nurture emails: unsubscribe, click-through redirect and open pixel.

No login and no session tenant: each link carries a signed token (nurture.tokens) naming its message,
and the message names the tenant, which is set as the current tenant while the services run. A forged,
altered or expired token gets a plain 4xx page (the pixel: the same transparent GIF as always, so it
tells nothing about the token) and writes nothing. GET and HEAD never change anything except the
tracking counters of a GET: link scanners that prefetch the unsubscribe page cannot unsubscribe anyone.
"""
from __future__ import annotations

import base64
import logging

from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from leadmgmt.tenancy.context import tenant_scope

from . import tokens
from .models import Suppression
from .selectors import message_for_link
from .services.tracking import (
    ALREADY_UNSUBSCRIBED,
    message_clicked,
    message_opened,
    message_unsubscribe,
)

log = logging.getLogger(__name__)

# A 1x1 transparent GIF (43 bytes; its one pixel is the transparent colour index).
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def _private(response: HttpResponse) -> HttpResponse:
    """Nothing of these answers may be cached or indexed, and the token in the URL must not leak on."""
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _invalid(request, *, purpose: str, expired: bool = False, status: int | None = None) -> HttpResponse:
    status = status or (410 if expired else 400)
    return _private(render(request, "nurture/public/link_invalid.html",
                           {"expired": expired, "purpose": purpose}, status=status))


def mask_email(email: str) -> str:
    """`ada.lovelace@acme.example` → `a**********e@acme.example`: recognisable to its owner, not to others."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    if len(local) <= 2:
        return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}"
    return f"{local[0]}{'*' * min(len(local) - 2, 10)}{local[-1]}@{domain}"


def _is_one_click(request) -> bool:
    """RFC 8058: the mail provider POSTs `List-Unsubscribe=One-Click` (form-encoded or multipart)."""
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return True
    if request.content_type == "multipart/form-data":  # its raw body can no longer be read
        return False
    return request.body.strip() == ONE_CLICK_BODY.encode()


@csrf_exempt  # RFC 8058 one-click POSTs come from mail providers without a CSRF cookie; the signed token guards it.
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    try:
        message_id = tokens.unsubscribe_token_read(token)
    except tokens.TokenInvalid as exc:
        return _invalid(request, purpose="unsubscribe", expired=exc.expired)
    message = message_for_link(message_id=message_id)
    if message is None:  # the lead (and its messages) was deleted since
        return _invalid(request, purpose="unsubscribe", status=404)
    tenant = message.tenant
    context = {"tenant_name": tenant.name, "masked_email": mask_email(message.to_email)}
    if request.method == "POST":
        one_click = _is_one_click(request)
        with tenant_scope(tenant):
            outcome = message_unsubscribe(message_id=message.pk, one_click=one_click)
        context.update(done=True, already=outcome == ALREADY_UNSUBSCRIBED)
    else:
        with tenant_scope(tenant):
            already = Suppression.objects.for_tenant(tenant).filter(email=message.to_email.lower()).exists()
        context.update(done=False, already=already)
    return _private(render(request, "nurture/public/unsubscribe.html", context))


@never_cache
@require_safe
def click(request, token):
    try:
        target = tokens.click_token_read(token)
    except tokens.TokenInvalid as exc:
        return _invalid(request, purpose="click", expired=exc.expired)
    if request.method == "GET":  # HEAD: a link checker, not a person
        message = message_for_link(message_id=target.message_id)
        if message is not None:
            try:
                with tenant_scope(message.tenant):
                    message_clicked(message_id=message.pk, url=target.url)
            except DatabaseError:
                # The person still gets where they wanted to go; the click is lost, not the visit.
                log.exception("nurture click of message %s not recorded", target.message_id)
    # The URL was signed by us with the message, so this is never an open redirect.
    return _private(HttpResponseRedirect(target.url))


@never_cache
@require_safe
def open_pixel(request, token):
    try:
        message_id = tokens.open_token_read(token)
    except tokens.TokenInvalid:
        message_id = None
    if message_id is not None and request.method == "GET":
        message = message_for_link(message_id=message_id)
        if message is not None:
            try:
                with tenant_scope(message.tenant):
                    message_opened(message_id=message.pk)
            except DatabaseError:
                log.exception("nurture open of message %s not recorded", message_id)
    return _private(HttpResponse(TRANSPARENT_GIF, content_type="image/gif"))
