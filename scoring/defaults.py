"""The default scoring model every tenant starts with: seed 002's tables, rule by rule."""
from __future__ import annotations

from leads.signal_catalog import builtin_signal

from .models import Category, Operator

# A regex (PostgreSQL syntax: \m and \M are word boundaries) because "President" is C-level but
# "Vice President" is not.
C_LEVEL = (r"\m(chief|ceo|cfo|cto|coo|cmo|cio|ciso|cro|cpo|founder|co-founder|owner|managing partner)\M"
           r"|(?<!vice[ -])\mpresident\M")
VP_DIRECTOR = ["vp", "svp", "evp", "avp", "vice president", "director", "head of"]
MANAGER = ["manager", "lead", "supervisor", "team lead"]

# Starting points for marketing ops to edit; seed 002 names the tiers, the tenant names the lists.
TARGET_INDUSTRIES = ["Software", "SaaS", "Technology", "Information Technology", "Internet"]
ADJACENT_INDUSTRIES = ["Financial Services", "Fintech", "Professional Services", "Telecommunications",
                       "Media", "E-commerce", "Consulting"]
PRIMARY_MARKETS = ["US", "CA"]  # ISO 3166-1 alpha-2, the form countries are stored in
STUDENT_EMAIL_DOMAIN = r"(\.edu|\.ac\.[a-z]{2}|\.edu\.[a-z]{2}|student\.[a-z.]+)$"

# (name, category, field, operator, value, points, exclusive_group, extra)
FIT_RULES = [
    ("Title: C-level", Category.DEMOGRAPHIC, "job_title", Operator.REGEX, C_LEVEL, 25, "title", {}),
    ("Title: VP/Director", Category.DEMOGRAPHIC, "job_title", Operator.KEYWORDS, VP_DIRECTOR, 20, "title", {}),
    ("Title: Manager", Category.DEMOGRAPHIC, "job_title", Operator.KEYWORDS, MANAGER, 10, "title", {}),
    ("Title: Individual contributor", Category.DEMOGRAPHIC, "job_title", Operator.NOT_BLANK, None, 5, "title", {}),
    ("Company size: 500+ employees", Category.FIRMOGRAPHIC, "company_size", Operator.RANGE, {"min": 500}, 20,
     "company_size", {}),
    ("Company size: 100-499", Category.FIRMOGRAPHIC, "company_size", Operator.RANGE, {"min": 100, "max": 499}, 15,
     "company_size", {}),
    ("Company size: 20-99", Category.FIRMOGRAPHIC, "company_size", Operator.RANGE, {"min": 20, "max": 99}, 10,
     "company_size", {}),
    ("Company size: <20", Category.FIRMOGRAPHIC, "company_size", Operator.RANGE, {"min": 1, "max": 19}, 5,
     "company_size", {}),
    ("Industry: target", Category.FIRMOGRAPHIC, "industry", Operator.IN_LIST, TARGET_INDUSTRIES, 15, "industry", {}),
    ("Industry: adjacent", Category.FIRMOGRAPHIC, "industry", Operator.IN_LIST, ADJACENT_INDUSTRIES, 10,
     "industry", {}),
    ("Geography: primary market", Category.DEMOGRAPHIC, "country", Operator.IN_LIST, PRIMARY_MARKETS, 10, "", {}),
]

# (signal type, name, category); the points are the catalog's seed 002 weights.
_SIGNAL_RULE_NAMES = [
    ("pricing_page_view", "Web: pricing page view", Category.BEHAVIORAL),
    ("product_page_view", "Web: product page view", Category.BEHAVIORAL),
    ("blog_post_view", "Web: blog post view", Category.BEHAVIORAL),
    ("multi_page_session", "Web: 3+ pages/session", Category.BEHAVIORAL),
    ("email_open", "Email: open", Category.ENGAGEMENT),
    ("email_click", "Email: click", Category.ENGAGEMENT),
    ("whitepaper_download", "Content: whitepaper download", Category.BEHAVIORAL),
    ("webinar_registration", "Content: webinar registration", Category.ENGAGEMENT),
    ("webinar_attendance", "Content: webinar attendance", Category.ENGAGEMENT),
    ("case_study_download", "Content: case study download", Category.BEHAVIORAL),
    ("demo_request", "Direct: demo request", Category.BEHAVIORAL),
    ("contact_form", "Direct: contact form", Category.BEHAVIORAL),
    ("free_trial_signup", "Direct: free trial signup", Category.BEHAVIORAL),
]
SIGNAL_RULES = [(signal_type, name, category, builtin_signal(signal_type).default_points)
                for signal_type, name, category in _SIGNAL_RULE_NAMES]

NEGATIVE_RULES = [
    # (name, category, field/signal, operator, value, points, extra)
    ("Email: unsubscribe", Category.ENGAGEMENT, "unsubscribe", Operator.SIGNAL, None,
     builtin_signal("unsubscribe").default_points, {"cap": 20}),
    ("Negative: 30+ days inactive", Category.ENGAGEMENT, "days_inactive", Operator.RANGE, {"min": 30}, -15, {}),
    ("Negative: competitor email domain", Category.FIRMOGRAPHIC, "email_domain", Operator.IN_LIST, [], -30,
     {"disqualifies": True, "exclusive_group": "email_kind"}),
    ("Negative: student email", Category.DEMOGRAPHIC, "email_domain", Operator.REGEX, STUDENT_EMAIL_DOMAIN, -10,
     {"exclusive_group": "email_kind"}),
    ("Negative: free email", Category.DEMOGRAPHIC, "is_personal_email", Operator.IS_TRUE, None, -10,
     {"exclusive_group": "email_kind"}),
]

# (key, name, min, max, action, auto_mql)
BANDS = [
    ("cold", "Cold", 0, 20, "Awareness content, retargeting", False),
    ("warm", "Warm", 21, 40, "Nurture sequence", False),
    ("mql", "MQL", 41, 60, "Marketing nurture + BDR notification", True),
    ("sal", "SAL", 61, 80, "BDR outreach within 24h", True),
    ("sql", "SQL", 81, 100, "AE engagement, demo scheduling", True),
]
