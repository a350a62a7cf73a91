"""Settings for leadmgmt, read from the environment (one module for every deployment)."""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if env_bool("LEADMGMT_PRODUCTION"):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. In production (LEADMGMT_PRODUCTION=1) it is required: "
            "set it to a long random string, e.g. `openssl rand -hex 32`; it signs sessions and "
            "nurture links, so keep it secret and stable."
        )
    # `make run` and tests: a random key generated once per install under the data dir (0600).
    from leadmgmt.secret_key import local_secret_key

    SECRET_KEY = local_secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "leadmgmt.tenancy",
    "leadmgmt.audit",
    "leadmgmt.webhooks",
    "leads",
    "scoring",
    "routing",
    "nurture",
    "workspace",
]

MIDDLEWARE = [
    # First: X-Forwarded-* headers count only from TRUSTED_PROXIES (see leadmgmt/proxies.py).
    "leadmgmt.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header of every answer (see the Content-Security-Policy block below).
    "csp.middleware.CSPMiddleware",
    # Serves collectstatic output (admin, Swagger UI) from gunicorn itself: no CDN, no extra server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "leadmgmt.tenancy.middleware.TenantMiddleware",
    # Last: answers a locked-out sign-in with the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "leadmgmt.urls"
WSGI_APPLICATION = "leadmgmt.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "leadmgmt.tenancy.context_processors.tenant",
                "workspace.context_processors.live_updates",  # the bell's unread count, the poll interval
            ],
        },
    },
]

# --- Database: PostgreSQL only (DATABASE_URL; `make run` / `make test` start an embedded one) ---
DATABASE_URL = env("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Use `make run` / `make test`, which start embedded "
        "PostgreSQL and Redis when it is unset, or export a postgres:// URL."
    )
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("leadmgmt runs on PostgreSQL only")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Row-level security (leadmgmt/db): DATABASE_URL's login owns the tables and runs migrations only; the app
# connects to the same database as DATABASE_APP_USER, a role without SUPERUSER or BYPASSRLS that `migrate`
# creates and grants (leadmgmt/db/roles.py). Every transaction carries the tenant in context.
DATABASES["default"].update({
    "ENGINE": "leadmgmt.db.backend",
    "OWNER_USER": DATABASES["default"]["USER"],
    "OWNER_PASSWORD": DATABASES["default"]["PASSWORD"],
    "USER": env("DATABASE_APP_USER", "leadmgmt_app"),
    "PASSWORD": env("DATABASE_APP_PASSWORD", ""),
    # A server-side cursor (QuerySet.iterator()) is declared in a statement of its own, which the
    # tenant setting cannot travel with; iterator() reads in chunks client-side instead.
    "DISABLE_SERVER_SIDE_CURSORS": True,
})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True  # the Django 6 default, opted into now

# --- Redis: broker, cache (throttling) ---
REDIS_URL = env("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set (see DATABASE_URL above)")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "leadmgmt"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in lockout (django-axes), the same on /accounts/login/ and /admin/login/: after
# LOGIN_FAILURE_LIMIT wrong passwords for one username from one IP, that pair is refused for
# LOGIN_COOLOFF_MINUTES (the lockout page, 429); a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "leadmgmt.proxies.client_ip"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_VERBOSE = False
# Password reset requests: at most this many per email address and per client IP per hour.
PASSWORD_RESET_LIMIT_PER_HOUR = env_int("PASSWORD_RESET_LIMIT_PER_HOUR", 5)
# Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-* headers are believed; empty: none.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR range") from None
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/queue/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

# Django itself refuses bodies above this; the intake view enforces its own, smaller limit (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- REST framework ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "leadmgmt.tenancy.authentication.ApiKeyAuthentication",
        "leadmgmt.tenancy.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["leadmgmt.tenancy.permissions.HasTenant"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "leadmgmt.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "leadmgmt.api_schema.AutoSchema",  # documents the implied 400/401/403/404/414/415/429
    "EXCEPTION_HANDLER": "leadmgmt.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "intake_form": env("INTAKE_RATE_PER_FORM", "600/min"),
        "intake_ip": env("INTAKE_RATE_PER_IP", "60/min"),
        "api_key": env("API_RATE_PER_KEY", "6000/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Per-IP throttles use leadmgmt.proxies.client_ip (X-Forwarded-For only from TRUSTED_PROXIES).
}

SPECTACULAR_SETTINGS = {
    "TITLE": "leadmgmt API",
    "DESCRIPTION": "Lead capture, signals and lead management for one tenant.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Enum names in the OpenAPI schema (several models have a `status`/`kind` field).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "LeadStatusEnum": "leads.models.LeadStatus",
    "LeadStageEnum": "leads.models.LeadStage",
    "TouchKindEnum": "leads.models.TouchKind",
    "ActivityKindEnum": "leads.models.ActivityKind",
    "SignalResultStatusEnum": "leads.services.signals.SignalStatus",
    "DuplicateStatusEnum": "leads.models.DuplicateStatus",
    "DuplicateTierEnum": "leads.models.DuplicateTier",
    "OpportunityStageEnum": "leads.models.OpportunityStage",
    "OutcomeResultEnum": "leads.models.OutcomeResult",
    "OutcomeItemStatusEnum": "workspace.services.outcomes.OutcomeStatus",
    "WebhookDeliveryStatusEnum": "leadmgmt.webhooks.models.DeliveryStatus",
}
# No call to swagger.io's online validator from the docs page (no network beyond the app).
SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"] = {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None}

# --- Intake ---
INTAKE_MAX_BODY_BYTES = env_int("INTAKE_MAX_BODY_BYTES", 64 * 1024)
INTAKE_MAX_ATTRIBUTES_BYTES = env_int("INTAKE_MAX_ATTRIBUTES_BYTES", 16 * 1024)
INTAKE_IDEMPOTENCY_TTL_HOURS = 24
INTAKE_HONEYPOT_FIELD = "website_url"
# Batch intake of integrations and ad platforms (POST /api/v1/leads/batch/): one transaction per batch.
INTAKE_BATCH_MAX_ITEMS = env_int("INTAKE_BATCH_MAX_ITEMS", 1000)
INTAKE_BATCH_MAX_BODY_BYTES = env_int("INTAKE_BATCH_MAX_BODY_BYTES", 4 * 1024 * 1024)
DEFAULT_PHONE_REGION = env("DEFAULT_PHONE_REGION", "US")
# CSV import (POST /api/v1/imports/): the largest file and the most data rows accepted, and the rows written
# per transaction by the run (its progress moves chunk by chunk; a killed run resumes after the last one).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 50 * 1024 * 1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 200_000)
IMPORT_CHUNK_ROWS = env_int("IMPORT_CHUNK_ROWS", 1000)
# Rows between two refreshes of the lead tables' planner statistics during an import (leads.statistics).
IMPORT_ANALYZE_ROWS = env_int("IMPORT_ANALYZE_ROWS", 20_000)
# POST …/preview/ answers a file of at most this many rows with its dry run (200); a bigger one's dry run goes to a
# worker (202, state `previewing`, progress in GET …/imports/{id}/), as the import pages always do.
IMPORT_PREVIEW_INLINE_ROWS = env_int("IMPORT_PREVIEW_INLINE_ROWS", 5000)
# A running import with no chunk committed for this long lost its task (a killed worker): beat's sweep (every
# minute) hands it to a worker again, which resumes after the last committed chunk.
IMPORT_SWEEP_AFTER_SECONDS = env_int("IMPORT_SWEEP_AFTER_SECONDS", 120)

# --- Signals API (POST /api/v1/signals/) ---
SIGNALS_MAX_BATCH = env_int("SIGNALS_MAX_BATCH", 1000)
SIGNALS_MAX_BODY_BYTES = env_int("SIGNALS_MAX_BODY_BYTES", 4 * 1024 * 1024)
SIGNALS_MAX_PROPERTIES_BYTES = env_int("SIGNALS_MAX_PROPERTIES_BYTES", 8 * 1024)
SIGNALS_MAX_FUTURE_SKEW_SECONDS = env_int("SIGNALS_MAX_FUTURE_SKEW_SECONDS", 300)
# --- Outcome sync (`POST /api/v1/outcomes/`; its body limit is the signals API's) ---
OUTCOMES_MAX_BATCH = env_int("OUTCOMES_MAX_BATCH", 1000)
# The beat sweep re-enqueues signals of known leads still unprocessed after this long.
SIGNALS_SWEEP_AFTER_SECONDS = env_int("SIGNALS_SWEEP_AFTER_SECONDS", 120)
# The capture pipeline (workspace/services/pipeline.py): leads claimed per worker transaction, and how long a
# new lead may wait before the sweep (beat, every 10 s) hands it to a worker again (its task was lost).
CAPTURE_PIPELINE_BATCH = env_int("CAPTURE_PIPELINE_BATCH", 300)
CAPTURE_PIPELINE_SWEEP_AFTER_SECONDS = env_int("CAPTURE_PIPELINE_SWEEP_AFTER_SECONDS", 10)
# While a tenant's pipeline task waits in the queue, new captures do not enqueue another (the waiting task
# claims their leads too); after this many seconds without the task starting, a capture enqueues again.
CAPTURE_PIPELINE_QUEUED_SECONDS = env_int("CAPTURE_PIPELINE_QUEUED_SECONDS", 5)

# --- Scoring ---
# A whole-tenant re-score (publish, daily decay) runs this many id slices side by side, each on
# its own connection: about one per CPU core of the database server.
SCORING_SLICES = env_int("SCORING_SLICES", 2)

# --- Celery (json only, time limits, late acks: tasks are idempotent) ---
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
# kombu's Redis transport, repaired so a Redis restart does not stop the workers (leadmgmt/broker.py).
CELERY_BROKER_TRANSPORT = "leadmgmt.broker:Transport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# How long Redis waits before handing an unacknowledged message to another worker: a late-acked task
# whose worker was killed (deploy, OOM, lost host) runs again this long after it was taken. Minutes,
# not an hour, so lost work comes back quickly; above the hard time limit, so a task still running is
# never handed out a second time. A redelivery is harmless anyway: every task that must not be lost is
# idempotent (status-guarded updates, unique constraints) and also covered by a sweep over a database
# column (signals, scoring events, routing, SLA clocks, notification emails, nurture steps).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 60}
# Queues. Beat's periodic work, the SLA Agent's and the notification emails run on a queue of their own
# (`make run` and docker-compose start a worker for it), so a backlog of captures, signals or re-scores
# on the default queue never delays an SLA escalation. Every other task goes to the default queue.
# A task is routed by its registered name, so a name listed here before its task exists routes it too;
# tests/leadmgmt/test_task_queues.py holds every task of beat's schedule (leadmgmt/celery.py) to this list.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_PERIODIC_QUEUE = "periodic"
CELERY_TASK_ROUTES = {name: {"queue": CELERY_PERIODIC_QUEUE} for name in (
    # beat's schedule
    "leads.tasks.signals_sweep_task",
    "leads.tasks.idempotency_purge_task",
    "scoring.tasks.scoring_decay_task",
    "scoring.tasks.score_events_sweep_task",
    "scoring.tasks.predictive_train_monthly_task",
    "routing.sla_tasks.sla_enforce_task",
    "routing.sla_tasks.aging_check_task",
    "routing.sla_tasks.notification_emails_task",
    "routing.tasks.routing_sweep_task",
    "nurture.tasks.nurture_agent_task",
    "workspace.tasks.capture_pipeline_sweep_task",
    "workspace.tasks.imports_sweep_task",
    "leadmgmt.webhooks.tasks.webhook_deliveries_sweep_task",
    "leadmgmt.webhooks.tasks.webhook_log_purge_task",
    # enqueued on commit, SLA and notifications: a band change tightening a running SLA clock, the
    # emails of an escalation or an assignment notice
    "routing.tasks.sla_clock_tighten_task",
    "routing.tasks.notification_emails_now_task",
)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Email ---
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)  # seconds; a hung mail server must not hang the workers
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "leadmgmt <noreply@localhost>")
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")

# --- Nurture emails ---
# The address people reach the app at: unsubscribe, click-through and open-pixel links in emails use it.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
# Links in nurture emails stop working (a clear 4xx page) after this many days.
NURTURE_LINK_MAX_AGE_DAYS = env_int("NURTURE_LINK_MAX_AGE_DAYS", 365)

# --- Privacy requests ---
# The pepper of the hashed list of people erased at their request (leads.ErasedContact: sha256 of the pepper and
# the normalised email). Set it once per deployment to a long random string (`openssl rand -hex 32`), keep it
# secret and never change it: a new pepper forgets every erased person (they could be imported and mailed again).
# Unset, it is derived from the secret key, so rotating DJANGO_SECRET_KEY would then forget them: set it.
PRIVACY_HASH_PEPPER = env("PRIVACY_HASH_PEPPER", "") or "derived-from-secret-key:" + SECRET_KEY
# --- Outbound webhooks ---
# A request to an endpoint gives up after this many seconds (and counts as a failed attempt).
WEBHOOK_TIMEOUT_SECONDS = max(env_int("WEBHOOK_TIMEOUT_SECONDS", 10), 1)
# Failed deliveries are retried with exponential backoff (base doubling per attempt, capped, ±20 % jitter)
# for this many hours after the event; then the delivery is given up (an admin can "send again").
WEBHOOK_RETRY_HOURS = max(env_int("WEBHOOK_RETRY_HOURS", 24), 1)
WEBHOOK_RETRY_BASE_SECONDS = max(env_int("WEBHOOK_RETRY_BASE_SECONDS", 30), 1)
WEBHOOK_RETRY_MAX_SECONDS = max(env_int("WEBHOOK_RETRY_MAX_SECONDS", 4 * 3600), 1)
# An endpoint whose every attempt failed for this many days is disabled and the tenant's admins are told.
WEBHOOK_DISABLE_AFTER_DAYS = max(env_int("WEBHOOK_DISABLE_AFTER_DAYS", 3), 1)
# After a secret rotation, requests carry a signature with the previous secret too, for this many hours.
WEBHOOK_SECRET_GRACE_HOURS = max(env_int("WEBHOOK_SECRET_GRACE_HOURS", 24), 0)
# Endpoints whose host resolves to a loopback, private or link-local address are refused (the app's own network,
# cloud metadata services): set this only where receivers are meant to be internal (local development, tests).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
# Delivered and given-up deliveries (the delivery log) and their events are deleted after this many days.
WEBHOOK_LOG_RETENTION_DAYS = max(env_int("WEBHOOK_LOG_RETENTION_DAYS", 30), 1)
# Deliveries one worker leases at a time (one per endpoint and lead: order per lead).
WEBHOOK_CLAIM_BATCH = max(env_int("WEBHOOK_CLAIM_BATCH", 50), 1)

# --- Live pages ---
# How often open queues, Unassigned and the notification bell ask for fresh rows (seconds).
LIVE_POLL_SECONDS = max(env_int("LIVE_POLL_SECONDS", 15), 1)

# --- Content-Security-Policy (django-csp) ---
# Every page runs only our own files: scripts and styles come from static/ (no inline <script> or <style>, no
# style="" or on*="" attributes, no javascript: links, no eval: htmx runs with allowEval off, see base.html),
# nothing is loaded from or sent to another host, no page may be framed, and forms post only to this site.
# Images may be data: URLs (the top bar's bell in app.css, the API docs' icons). One page loosens it, beside
# its view: the ReDoc page (leadmgmt/views.py `api_redoc`) lets ReDoc's bundle add nonce'd <style> elements
# (styled-components writes its CSS at run time) and start its search worker from a blob: URL.
# tests/leadmgmt/browser/test_csp.py visits every page of every role and fails on any refusal.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Security headers when served over TLS in production ---
if env_bool("LEADMGMT_PRODUCTION"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
