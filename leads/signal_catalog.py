"""The built-in catalog of behavioural signal types (seed 002's engagement table) and type lookup.

Integrations send these names in `POST /api/v1/signals/`; a tenant adds its own names as
`SignalType` rows. `default_points` is seed 002's default weight, the starting point of the
scoring model (scoring owns the weights a tenant actually uses).
"""
from __future__ import annotations

from dataclasses import dataclass

from .models import SignalType


@dataclass(frozen=True)
class SignalDefinition:
    name: str
    label: str
    category: str  # web | email | content | direct
    default_points: int


BUILTIN_SIGNALS: tuple[SignalDefinition, ...] = (
    SignalDefinition("pricing_page_view", "Pricing page view", "web", 20),
    SignalDefinition("product_page_view", "Product page view", "web", 10),
    SignalDefinition("blog_post_view", "Blog post view", "web", 3),
    # Any other page; the tracker may also report a whole visit as `multi_page_session`
    # (seed 002: "3+ pages/session", +5) with `properties.page_count`.
    SignalDefinition("page_view", "Page view", "web", 0),
    SignalDefinition("multi_page_session", "Session of 3+ pages", "web", 5),
    SignalDefinition("email_open", "Email open", "email", 2),
    SignalDefinition("email_click", "Email click", "email", 5),
    SignalDefinition("unsubscribe", "Unsubscribe", "email", -20),
    SignalDefinition("whitepaper_download", "Whitepaper download", "content", 10),
    SignalDefinition("case_study_download", "Case study download", "content", 15),
    SignalDefinition("webinar_registration", "Webinar registration", "content", 15),
    SignalDefinition("webinar_attendance", "Webinar attendance", "content", 20),
    SignalDefinition("demo_request", "Demo request", "direct", 30),
    SignalDefinition("contact_form", "Contact form", "direct", 25),
    SignalDefinition("free_trial_signup", "Free trial signup", "direct", 25),
)

BUILTIN_SIGNAL_NAMES: frozenset[str] = frozenset(s.name for s in BUILTIN_SIGNALS)
_BY_NAME = {s.name: s for s in BUILTIN_SIGNALS}


def builtin_signal(name: str) -> SignalDefinition | None:
    return _BY_NAME.get(name)


def signal_type_names(*, tenant) -> frozenset[str]:
    """Every type name the tenant may send: the built-in catalog plus its own `SignalType` rows."""
    custom = SignalType.objects.for_tenant(tenant).values_list("name", flat=True)
    return BUILTIN_SIGNAL_NAMES | frozenset(custom)
