"""Turning a claimed Message into the email that goes over SMTP.

The stored message holds the rendered subject and plain-text body. Sending adds what depends on
the message's id: every http(s) link goes through a signed click-redirect, an open pixel closes the
HTML part, and the footer carries the tenant's name, postal address and a signed unsubscribe link
that needs no login. `List-Unsubscribe` (the https link) and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click` make one-click unsubscribe work in mail clients (RFC 8058).
"""
from __future__ import annotations

import re
from email.utils import formataddr, getaddresses, make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils.html import escape

from . import tokens
from .models import Message, NurtureSettings

_URL = re.compile(r"https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]", re.IGNORECASE)


def public_url(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def unsubscribe_url(message_id) -> str:
    return public_url(reverse("nurture-unsubscribe", args=[tokens.unsubscribe_token(message_id)]))


def click_url(message_id, url: str) -> str:
    return public_url(reverse("nurture-click", args=[tokens.click_token(message_id, url)]))


def open_url(message_id) -> str:
    return public_url(reverse("nurture-open", args=[tokens.open_token(message_id)]))


def _from_address(nurture: NurtureSettings | None, tenant_name: str) -> str:
    default_name, default_email = (getaddresses([settings.DEFAULT_FROM_EMAIL]) or [("", "")])[0]
    email = (nurture.from_email if nurture and nurture.from_email else default_email) or "noreply@localhost"
    name = (nurture.from_name if nurture and nurture.from_name else tenant_name) or default_name
    return formataddr((name, email))


def _footer_text(*, tenant_name: str, postal_address: str, unsubscribe: str) -> str:
    address = " · ".join(line.strip() for line in postal_address.splitlines() if line.strip())
    return (f"\n\n--\n{tenant_name} · {address}\n"
            f"You receive these emails because you gave {tenant_name} permission to send them.\n"
            f"Unsubscribe: {unsubscribe}\n")


def _html(*, body: str, message_id, tenant_name: str, postal_address: str, unsubscribe: str) -> str:
    paragraphs = []
    for block in re.split(r"\n\s*\n", body.strip()):
        parts, last = [], 0
        for match in _URL.finditer(block):
            parts.append(escape(block[last:match.start()]))
            url = match.group(0)
            parts.append(f'<a href="{escape(click_url(message_id, url))}">{escape(url)}</a>')
            last = match.end()
        parts.append(escape(block[last:]))
        paragraphs.append("<p>" + "".join(parts).replace("\n", "<br>\n") + "</p>")
    address = "<br>".join(escape(line.strip()) for line in postal_address.splitlines() if line.strip())
    return (
        '<!doctype html><html><body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;'
        'line-height:1.5;color:#1f2933;max-width:600px">'
        + "\n".join(paragraphs)
        + '<hr style="border:none;border-top:1px solid #d9e2ec;margin:24px 0 12px">'
        f'<p style="font-size:12px;color:#52606d">{escape(tenant_name)}<br>{address}<br>'
        f"You receive these emails because you gave {escape(tenant_name)} permission to send them. "
        f'<a href="{escape(unsubscribe)}" style="color:#52606d">Unsubscribe</a></p>'
        f'<img src="{escape(open_url(message_id))}" width="1" height="1" alt="" style="display:block;border:0">'
        "</body></html>"
    )


def _track_text(body: str, message_id) -> str:
    return _URL.sub(lambda m: click_url(message_id, m.group(0)), body)


def email_build(*, message: Message, nurture: NurtureSettings | None, tenant_name: str,
                connection=None) -> EmailMultiAlternatives:
    """The email of one claimed message: tracked links, open pixel, footer, RFC 8058 headers."""
    unsubscribe = unsubscribe_url(message.pk)
    postal_address = nurture.postal_address if nurture else ""
    from_address = _from_address(nurture, tenant_name)
    domain = getaddresses([from_address])[0][1].rpartition("@")[2] or "localhost"
    headers = {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Message-ID": make_msgid(idstring=message.pk.hex[:16], domain=domain),
        "X-Leadmgmt-Message-Id": str(message.pk),
        "Precedence": "bulk",
        "Auto-Submitted": "auto-generated",
    }
    text = _track_text(message.body_text, message.pk) + _footer_text(
        tenant_name=tenant_name, postal_address=postal_address, unsubscribe=unsubscribe)
    email = EmailMultiAlternatives(
        subject=message.subject, body=text, from_email=from_address, to=[message.to_email], headers=headers,
        reply_to=[nurture.reply_to] if nurture and nurture.reply_to else None, connection=connection)
    email.attach_alternative(_html(body=message.body_text, message_id=message.pk, tenant_name=tenant_name,
                                   postal_address=postal_address, unsubscribe=unsubscribe), "text/html")
    return email
