"""Settings shared by every mode. Everything that differs between machines comes from the
environment; the defaults here are safe for development and are overridden in production.py."""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from clearinghouse.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = env("SECRET_KEY", "development-only-secret-key-do-not-use-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "clearinghouse",
    "partners",
    "consent",
    "clearinghouse.records",
    "clearinghouse.reconciliation",
    "telemetry",
]

MIDDLEWARE = [
    # First, so that every log record of the request carries its id.
    "clearinghouse.logs.RequestIdMiddleware",
    # Before anything reads the client's address (TRUSTED_PROXY_COUNT).
    "clearinghouse.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "clearinghouse.middleware.SecurityHeadersMiddleware",
    # Inside the headers above, outside everything that can answer an API request with an error.
    "clearinghouse.middleware.APIProblemsMiddleware",
    # Outside CommonMiddleware, so that its early answers (a refused Host: 400) carry it too.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "clearinghouse.middleware.FormContentTypeMiddleware",
    # Before the CSRF check, whose process_view reads a form's body.
    "clearinghouse.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last, so that it sees a view's exception first: PostgreSQL or Redis away is a 503.
    "clearinghouse.unavailable.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "clearinghouse.urls"
WSGI_APPLICATION = "clearinghouse.wsgi.application"

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
                "partners.context_processors.membership",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/clearinghouse"),
        conn_max_age=int(env("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:56379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "ch"),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

AUTH_USER_MODEL = "partners.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# --- Browser security headers (HSTS and secure cookies: production.py) --------------------------
# No inline script or style anywhere: templates link static files only.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("CONTENT_SECURITY_POLICY_REPORT_ONLY", False)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=()"
)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Reverse proxies in front of the web processes that append the client's address to
# X-Forwarded-For (0: none, the header is ignored; 1: one proxy, e.g. nginx; ...).
TRUSTED_PROXY_COUNT = int(env("TRUSTED_PROXY_COUNT", "0"))

# Partner staff and operator sign-in: failed attempts per account and per client address in a
# window, then refused (429) until it passes; password-reset e-mails per hour.
SIGN_IN_FAILURES_PER_ACCOUNT = int(env("SIGN_IN_FAILURES_PER_ACCOUNT", "5"))
SIGN_IN_FAILURES_PER_IP = int(env("SIGN_IN_FAILURES_PER_IP", "30"))
SIGN_IN_FAILURE_WINDOW_MINUTES = int(env("SIGN_IN_FAILURE_WINDOW_MINUTES", "15"))
PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = int(env("PASSWORD_RESETS_PER_ADDRESS_PER_HOUR", "3"))
PASSWORD_RESETS_PER_IP_PER_HOUR = int(env("PASSWORD_RESETS_PER_IP_PER_HOUR", "20"))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "mail"))
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Clearinghouse <no-reply@clearinghouse.localhost>")
# The absolute address used in e-mailed links (invitations, magic links).
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000")

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_RESULT_EXPIRES = 24 * 3600
# Nothing reads task results. Storing them would also make every enqueue subscribe to the
# result in Redis first, and while Redis is away that subscription retries for 20 s inside the
# request that enqueues (after its commit), where the enqueue must instead fail fast.
CELERY_TASK_IGNORE_RESULT = True
# Enqueueing after a commit gives up within about a second when Redis is away (the sweeps and
# outboxes deliver the work later), instead of holding the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task unacknowledged for this long is delivered again; longer than the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "3600")),
    # How long the lock that guards restoring unacknowledged tasks outlives a killed worker.
    "unacked_mutex_expire": int(env("CELERY_UNACKED_MUTEX_EXPIRE", "300")),
    # A worker sweeps for such tasks every interval x throttle seconds (kombu: 10 x 10).
    "unacked_restore_interval": int(env("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(env("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
    # Short socket timeouts: a Redis that does not answer fails an enqueue fast.
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_BEAT_SCHEDULE = {
    "partners-expire-invitations": {
        "task": "partners.expire_invitations",
        "schedule": 3600.0,
    },
    "reconciliation-incremental": {
        "task": "reconciliation.reconcile_all",
        "schedule": 300.0,
    },
    "reconciliation-announce-sweep": {
        "task": "reconciliation.announce_sweep",
        "schedule": 60.0,
    },
    "reconciliation-nightly-full": {
        "task": "reconciliation.reconcile_all",
        "schedule": crontab(hour=3, minute=15),
        "kwargs": {"full": True},
    },
    "consent-record-expiries": {
        "task": "consent.record_expiries",
        "schedule": 60.0,
    },
    "partners-retry-due-webhooks": {
        "task": "partners.retry_due_webhooks",
        "schedule": 60.0,
    },
    "consent-chase-notices": {
        "task": "consent.chase_notices",
        "schedule": 15 * 60.0,
    },
    "telemetry-maintain-partitions": {
        "task": "telemetry.maintain_partitions",
        "schedule": crontab(hour=2, minute=5),
    },
    "telemetry-no-data-rules": {
        "task": "telemetry.evaluate_no_data",
        "schedule": 5 * 60.0,
    },
    "consent-chain-access-log": {
        "task": "consent.chain_access_log",
        "schedule": 60.0,
        "kwargs": {"sweep": True},
    },
    "telemetry-sweep-pending-batches": {
        "task": "telemetry.sweep_pending_batches",
        "schedule": 60.0,
    },
    "telemetry-resolve-cleared-signals": {
        "task": "telemetry.resolve_cleared_signals",
        "schedule": 5 * 60.0,
    },
}

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "partners.api.authentication.ApiKeyAuthentication",
        "partners.api.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["partners.api.permissions.IsActivePartner"],
    "DEFAULT_THROTTLE_CLASSES": ["clearinghouse.common.api.throttling.CredentialRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Bounded before parsing: size, depth, strings, numbers (clearinghouse/common/api/bodies.py).
    "DEFAULT_PARSER_CLASSES": ["clearinghouse.common.api.bodies.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "clearinghouse.common.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clearinghouse.common.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# Requests per minute per API credential (or per staff user on the browsable API).
API_RATE_LIMIT_PER_MINUTE = int(env("API_RATE_LIMIT_PER_MINUTE", "1200"))

SPECTACULAR_SETTINGS = {
    "TITLE": "Clearinghouse API",
    "DESCRIPTION": (
        "Partner systems push interaction records and telemetry, read what their agreements and "
        "their customers' consent allow, and work discrepancies. Authenticate with "
        "`Authorization: Bearer <key>`. Errors are RFC 9457 `application/problem+json`. "
        "Every body is JSON (NDJSON where an ingest says so) of at most 16 levels of nesting; "
        "every string and key in it is valid Unicode without NUL; every date-time has a time "
        "zone and lies between 1900 and 9000; integers are 64-bit. A body over its endpoint's "
        "size limit is refused with 413 before it is read."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Every error answer documented as problem+json (clearinghouse/common/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clearinghouse.common.api.schema.problem_responses",
    ],
}

# Logs: "json" (one object a line) or "plain"; every record carries the request id and passes
# the secret-redacting filter (clearinghouse/logs.py). Workers log the same way.
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

WEBHOOKS_ALLOW_HTTP = False
# A worker's claim on a delivery lasts this long (longer than the delivery task's 60 s time
# limit); a killed worker's delivery is sent again after it by the minute sweep, which leaves a
# delivery alone for the grace after it came due (its own task is on the way).
WEBHOOK_CLAIM_LEASE_SECONDS = int(env("WEBHOOK_CLAIM_LEASE_SECONDS", "300"))
WEBHOOK_SWEEP_GRACE_SECONDS = int(env("WEBHOOK_SWEEP_GRACE_SECONDS", "30"))

# Invitations and password-reset links stay valid for this long.
INVITATION_TTL_HOURS = int(env("INVITATION_TTL_HOURS", "72"))
CSRF_FAILURE_VIEW = "clearinghouse.views.csrf_failure"

# --- Customer identity, encryption and receipts ------------------------------------------------
# Versioned keyrings as "version:base64key,version:base64key"; *_ID names the version used for new
# data. Older versions stay readable until they are removed (after `manage.py rotate_master_key`).
# Empty in development: keys are then derived from SECRET_KEY (production refuses that).
# `manage.py generate_keys` prints fresh values.
IDENTIFIER_HMAC_KEYS = env("IDENTIFIER_HMAC_KEYS", "")
IDENTIFIER_HMAC_KEY_ID = env("IDENTIFIER_HMAC_KEY_ID", "")
MASTER_KEYS = env("MASTER_KEYS", "")
MASTER_KEY_ID = env("MASTER_KEY_ID", "")
RECEIPT_SIGNING_KEYS = env("RECEIPT_SIGNING_KEYS", "")
RECEIPT_SIGNING_KEY_ID = env("RECEIPT_SIGNING_KEY_ID", "")
# Phone numbers without a leading + are read in this region (ISO 3166 code); empty: refused.
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", "")

# Customer dashboard sign-in
MAGIC_LINK_TTL_MINUTES = int(env("MAGIC_LINK_TTL_MINUTES", "15"))
MAGIC_LINKS_PER_ADDRESS_PER_HOUR = int(env("MAGIC_LINKS_PER_ADDRESS_PER_HOUR", "5"))
MAGIC_LINKS_PER_IP_PER_HOUR = int(env("MAGIC_LINKS_PER_IP_PER_HOUR", "30"))
CUSTOMER_SESSION_MINUTES = int(env("CUSTOMER_SESSION_MINUTES", "60"))

# Records per ingest request (JSON array or NDJSON).
RECORDS_MAX_BATCH = int(env("RECORDS_MAX_BATCH", "10000"))
# Request bodies: an ingest's (records, readings; streamed), any other API body (parsed whole),
# and a page's form. Larger bodies are refused with 413 before they are read.
INGEST_MAX_BODY_BYTES = int(env("INGEST_MAX_BODY_BYTES", str(256 * 1024 * 1024)))
API_MAX_BODY_BYTES = int(env("API_MAX_BODY_BYTES", str(8 * 1024 * 1024)))
PAGE_MAX_BODY_BYTES = int(env("PAGE_MAX_BODY_BYTES", str(6 * 1024 * 1024)))

# Telemetry: readings per request, default raw-reading retention (days), and the loyalty points
# the retailer's webhook suggests as goodwill when a customer accepts a proactive check.
TELEMETRY_MAX_BATCH = int(env("TELEMETRY_MAX_BATCH", "50000"))
TELEMETRY_RETENTION_DAYS = int(env("TELEMETRY_RETENTION_DAYS", "365"))
TELEMETRY_GOODWILL_POINTS = int(env("TELEMETRY_GOODWILL_POINTS", "500"))
# Seconds between a partner's read and the ledger entry of its access-log row (a burst of reads
# is chained by one task).
ACCESS_CHAIN_DELAY_SECONDS = float(env("ACCESS_CHAIN_DELAY_SECONDS", "1"))
# Minutes a live service signal's condition must stay cleared before it is resolved (0: never;
# the signal only shows since when its condition has cleared).
TELEMETRY_SIGNAL_CLEAR_MINUTES = int(env("TELEMETRY_SIGNAL_CLEAR_MINUTES", "60"))

# Reconciliation: how far apart a sale and its registration may be (days), how long a sale may
# wait for its registration, how long a service case may stay open, the default warranty.
RECON_DATE_TOLERANCE_DAYS = int(env("RECON_DATE_TOLERANCE_DAYS", "14"))
RECON_REGISTRATION_GRACE_DAYS = int(env("RECON_REGISTRATION_GRACE_DAYS", "30"))
RECON_SERVICE_SLA_DAYS = int(env("RECON_SERVICE_SLA_DAYS", "14"))
RECON_DEFAULT_WARRANTY_MONTHS = int(env("RECON_DEFAULT_WARRANTY_MONTHS", "24"))
RECON_DEBOUNCE_SECONDS = int(env("RECON_DEBOUNCE_SECONDS", "10"))

# Cards on the portal dashboard, contributed by the layers above partners/.
PORTAL_DASHBOARD_PANELS = [
    "clearinghouse.records.selectors.dashboard_panel",
    "clearinghouse.reconciliation.selectors.dashboard_panel",
]

# Prompts on the customer's dashboard overview, from the layers above consent/ (callables of
# ``customer_id`` returning [{"text": …, "kind": …}]).
CUSTOMER_PROMPTS_PROVIDERS = [
    "clearinghouse.reconciliation.selectors.customer_prompts",
    "telemetry.prompts.pending_for_customer",
]
