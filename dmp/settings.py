"""One settings module for every environment, driven by environment variables.

The embedded default (no variable set) is what `make run` uses: SQLite, Celery tasks run
eagerly, e-mail and SMS printed to the console. Production sets DMP_ENV=production and must
then provide every secret; a missing or malformed value fails loudly at start-up. Any
variable may also be given as NAME_FILE, the path of a file holding the value (Docker/K8s
secrets).
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

# Secrets may come from NAME_FILE (the path of a file holding the value) instead of NAME.
for _name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_URL",
              "DOCUMENT_ENCRYPTION_KEYS", "SEARCH_INDEX_KEYS", "SMS_API_KEY",
              "AUDIT_HMAC_KEYS", "AUDIT_SIGNING_KEY", "DMP_S3_ACCESS_KEY_ID", "DMP_S3_SECRET_ACCESS_KEY"):
    if f"{_name}_FILE" in os.environ and _name not in os.environ:
        os.environ[_name] = Path(os.environ[f"{_name}_FILE"]).read_text().strip()

DMP_ENV = env.str("DMP_ENV", default="development")
if DMP_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DMP_ENV must be development, test or production, not {DMP_ENV!r}")
PRODUCTION = DMP_ENV == "production"

# Development keys are public on purpose: production refuses to start without real ones.
_DEV_SECRET = "dev-only-insecure-secret-key-never-use-in-production-0123456789abcdef"  # noqa: S105
_DEV_FILE_KEY = "cEAkdVjlC30FWN5v9oGo4zG8MtpsIvAQ2iZZA0VUp-Q="
_DEV_SEARCH_KEY = "dev-only-search-index-key-never-use-in-production-0123456789"  # noqa: S105
_DEV_AUDIT_HMAC_KEY = "dev-only-audit-hmac-key-never-use-in-production-0123456789"  # noqa: S105
_DEV_AUDIT_SIGNING_KEY = "ZGV2LW9ubHktYXVkaXQtc2lnbmluZy1rZXktMDAwMDA="  # noqa: S105 - 32 bytes, base64

SECRET_KEY = env.str("SECRET_KEY") if PRODUCTION else env.str("SECRET_KEY", default=_DEV_SECRET)
# Off everywhere unless asked (DEBUG=true): `make run` shows a stale link's 404 and a fault's 500
# as production does, never Django's technical page with the settings and the request.
DEBUG = env.bool("DEBUG", default=False)
_LOCAL_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS") if PRODUCTION else env.list("ALLOWED_HOSTS", default=_LOCAL_HOSTS)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Document files are encrypted at rest with these Fernet keys; the first one encrypts, all of
# them decrypt, so keys can be rotated by putting the new one first.
DOCUMENT_ENCRYPTION_KEYS = (
    env.list("DOCUMENT_ENCRYPTION_KEYS")
    if PRODUCTION
    else env.list("DOCUMENT_ENCRYPTION_KEYS", default=[_DEV_FILE_KEY])
)
if PRODUCTION and (SECRET_KEY == _DEV_SECRET or _DEV_FILE_KEY in DOCUMENT_ENCRYPTION_KEYS):
    raise ImproperlyConfigured("Production must not run on the development keys.")
for _key in DOCUMENT_ENCRYPTION_KEYS:
    # A malformed key must stop start-up, not the first document upload.
    try:
        Fernet(_key.encode())
    except ValueError as _error:
        raise ImproperlyConfigured("DOCUMENT_ENCRYPTION_KEYS holds a malformed Fernet key.") from _error

# The documents' search index (dmp/search_index.py) holds HMACs of the words under these keys,
# never the words: the first key indexes, every key is looked up, so the key can be rotated
# by putting a new one first and running `manage.py reindex_documents`. Apart from the
# Fernet keys: the index key is used on every search, the Fernet keys only to read.
SEARCH_INDEX_KEYS = (
    env.list("SEARCH_INDEX_KEYS") if PRODUCTION else env.list("SEARCH_INDEX_KEYS", default=[_DEV_SEARCH_KEY])
)
if not SEARCH_INDEX_KEYS or any(len(_key) < 32 for _key in SEARCH_INDEX_KEYS):
    raise ImproperlyConfigured("SEARCH_INDEX_KEYS needs keys of at least 32 characters.")
if PRODUCTION and _DEV_SEARCH_KEY in SEARCH_INDEX_KEYS:
    raise ImproperlyConfigured("Production must not run on the development keys.")

# The access ledger (dmp/audit.py, docs/audit.md "The access ledger"). Each audit entry
# carries an HMAC of its hash under the first AUDIT_HMAC_KEYS key (all of them verify: put a
# new key first to rotate); the database never holds these keys, so whoever holds it cannot
# forge an entry. Checkpoints over the chain heads are signed with the Ed25519 private key
# AUDIT_SIGNING_KEY (32 bytes, base64; `manage.py audit_checkpoint --public-key` prints the
# public key) and appended to files in AUDIT_CHECKPOINT_DIR, which production makes
# append-only and ships to WORM storage.
AUDIT_HMAC_KEYS = (
    env.list("AUDIT_HMAC_KEYS") if PRODUCTION else env.list("AUDIT_HMAC_KEYS", default=[_DEV_AUDIT_HMAC_KEY])
)
if not AUDIT_HMAC_KEYS or any(len(_key) < 32 for _key in AUDIT_HMAC_KEYS):
    raise ImproperlyConfigured("AUDIT_HMAC_KEYS needs keys of at least 32 characters.")
if PRODUCTION and _DEV_AUDIT_HMAC_KEY in AUDIT_HMAC_KEYS:
    raise ImproperlyConfigured("Production must not run on the development keys.")
AUDIT_SIGNING_KEY = (
    env.str("AUDIT_SIGNING_KEY") if PRODUCTION else env.str("AUDIT_SIGNING_KEY", default=_DEV_AUDIT_SIGNING_KEY)
)
if PRODUCTION and AUDIT_SIGNING_KEY == _DEV_AUDIT_SIGNING_KEY:
    raise ImproperlyConfigured("Production must not run on the development keys.")
try:
    if len(base64.b64decode(AUDIT_SIGNING_KEY, validate=True)) != 32:
        raise ValueError("not 32 bytes")
except ValueError as _error:
    raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be 32 random bytes in base64 (an Ed25519 key).") from _error
AUDIT_CHECKPOINT_DIR = Path(
    env.str("AUDIT_CHECKPOINT_DIR")
    if PRODUCTION
    else env.str("AUDIT_CHECKPOINT_DIR", default=str(BASE_DIR / "var" / "audit-checkpoints"))
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "guardian",
    "rest_framework",
    "drf_spectacular",
    "dmp",
    "portal_patient",
    "portal_pro",
    "social_workers",
]

MIDDLEWARE = [
    # /healthz and /readyz answer here, before anything reads a session or redirects (dmp/probes.py).
    "dmp.probes.ProbesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so static files keep their caching and pass untouched (dmp/headers.py).
    "csp.middleware.CSPMiddleware",
    "dmp.headers.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The account's stored language wins over the browser's (after authentication).
    "dmp.accounts.middleware.PreferredLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "dmp.accounts.middleware.AccountGateMiddleware",
    # A service's refusal raised in a view answers 404, in this one place (dmp/http.py).
    "dmp.http.AccessRefusedMiddleware",
    # The database, Redis or the Celery broker away: 503 and "try again in a minute", not 500.
    # Outages met in a middleware reach dmp.views.error_500 and error_400 (dmp/unavailable.py).
    "dmp.unavailable.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "dmp.urls"
WSGI_APPLICATION = "dmp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dmp.accounts.context_processors.account",
            ],
            # `ltr` and `isolate` (dmp/templatetags/bidi.py) in every template: a fragment left
            # unisolated in a right-to-left page is garbled, so using them must cost nothing.
            "builtins": ["dmp.templatetags.bidi"],
        },
    },
]

# Every form field is rendered by templates/forms/field.html (dmp/forms.py).
FORM_RENDERER = "dmp.forms.FormRenderer"

# Production has no embedded default: a missing DATABASE_URL or EMAIL_URL stops start-up.
_EMBEDDED_DB = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db("DATABASE_URL") if PRODUCTION else env.db("DATABASE_URL", default=_EMBEDDED_DB)}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
# A connection kept between requests is checked before a request uses it (a restarted database).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: a page's queries are short, and PostgreSQL compiles one whose estimated
    # cost is high (18 ms of compiling for a 0.1 ms lookup, seen by the scale harness).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded demo serves a handful of people at once. With SQLite's defaults a
    # transaction that reads before it writes (a row added under the record's lock) fails at
    # once with "database is locked" when another request is writing. WAL lets readers go on
    # while one request writes; IMMEDIATE takes the write lock when the transaction begins, so
    # a second writer waits for it, up to `timeout` seconds, instead of failing
    # (tests/test_embedded_demo.py, docs/deployment.md).
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Redis down must not stop logins (the limiter's counts live here): the cache then uses a
    # table of the database until Redis is back (dmp/cache.py). Short socket timeouts: a Redis
    # host that does not answer costs a second, not a hung request.
    CACHES = {"default": {
        "BACKEND": "dmp.cache.DegradingRedisCache", "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }}
elif PRODUCTION:
    raise ImproperlyConfigured("REDIS_URL is required in production (cache, Celery broker).")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: eager in the embedded default so nothing else has to run; a real broker otherwise.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task survives a worker crash: it is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # late acks: a worker holds one message at a time, not four
CELERY_TIMEZONE = "Europe/Paris"
# Periodic tasks, sent by the one `celery -A dmp beat` process (docs/deployment.md).
CELERY_BEAT_SCHEDULE = {
    "purge-record-exports": {"task": "dmp.tasks.purge_record_exports", "schedule": crontab(hour=3, minute=30)},
    # The outbox's safety net: notifications whose send was never queued, failed ones due for
    # another try, and those stuck in "sending" past their lease (a worker died).
    "send-due-notifications": {"task": "dmp.tasks.send_due_notifications", "schedule": 60.0},
    "release-withheld-documents": {"task": "dmp.tasks.release_withheld_documents", "schedule": 300.0},
    "expire-break-glass": {"task": "dmp.tasks.expire_break_glass", "schedule": 300.0},
    "destroy-expired-records": {"task": "dmp.tasks.destroy_expired_records", "schedule": crontab(hour=3, minute=0)},
    "import-reimbursement-inbox": {"task": "dmp.tasks.import_reimbursement_inbox", "schedule": crontab(minute=15)},
    # Signs the chain heads changed in the last minute: the window in which the newest audit
    # entries could be deleted unnoticed (docs/audit.md "The access ledger").
    "audit-checkpoint": {"task": "dmp.tasks.audit_checkpoint", "schedule": 60.0},
}

# Notifications (dmp/notifications.py): each one is tried at most NOTIFICATION_MAX_ATTEMPTS
# times, waiting NOTIFICATION_RETRY_BASE_SECONDS × 2^(attempt-1) between tries (capped at 6 h),
# then kept as "dead" in admin for a person to act on. A worker owns a row it is sending for
# NOTIFICATION_LEASE_SECONDS; past that the row is taken as stuck and sent again, same key.
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=8)
NOTIFICATION_RETRY_BASE_SECONDS = env.int("NOTIFICATION_RETRY_BASE_SECONDS", default=60)
NOTIFICATION_LEASE_SECONDS = env.int("NOTIFICATION_LEASE_SECONDS", default=300)
if NOTIFICATION_MAX_ATTEMPTS < 1 or NOTIFICATION_RETRY_BASE_SECONDS < 1 or NOTIFICATION_LEASE_SECONDS < 1:
    raise ImproperlyConfigured("NOTIFICATION_MAX_ATTEMPTS, _RETRY_BASE_SECONDS and _LEASE_SECONDS must be >= 1.")

# The insurer's reimbursement feed (docs/reimbursement_feed.md). Files dropped in
# REIMBURSEMENT_FEED_DIR are imported by beat, then moved to its done/ folder; empty: no inbox.
# REIMBURSEMENT_HISTORY_SOURCE is where the 24 months of a record given a NIR come from:
# "generator" (realistic made-up lines, development only), a directory holding <NIR>.jsonl
# files, or empty (they arrive through the inbox like any other line).
REIMBURSEMENT_FEED_DIR = env.str("REIMBURSEMENT_FEED_DIR", default="")
REIMBURSEMENT_HISTORY_SOURCE = env.str(
    "REIMBURSEMENT_HISTORY_SOURCE", default="generator" if DMP_ENV == "development" else ""
)
if PRODUCTION and REIMBURSEMENT_HISTORY_SOURCE == "generator":
    raise ImproperlyConfigured("REIMBURSEMENT_HISTORY_SOURCE=generator makes up data: never in production.")

AUTH_USER_MODEL = "dmp.User"
# Our subclasses of Django's and allauth's backends refuse superusers where they are not
# allowed, at login and on every request of a session already open (dmp/accounts/backends.py).
AUTHENTICATION_BACKENDS = [
    "dmp.accounts.backends.ModelBackend",
    "dmp.accounts.backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No superuser in production: administration is delegated per organisation to operators
# (django-guardian object permissions granted by `manage.py admin_scope`). A superuser account
# cannot log in there, and `check --deploy` fails while one exists. Development and tests keep
# them (the embedded default has no scopes to grant yet).
SUPERUSERS_ALLOWED = not PRODUCTION
# The address of the service as people type it, for links sent by e-mail (account activation).
SITE_URL = env.str("SITE_URL", default=f"https://{ALLOWED_HOSTS[0]}" if PRODUCTION else "http://localhost:8000")
# How long the link that activates a new professional's account stays valid.
PASSWORD_RESET_TIMEOUT = env.int("ACCOUNT_ACTIVATION_SECONDS", default=7 * 24 * 3600)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if DMP_ENV == "test":
    # Argon2 is deliberately slow; tests create hundreds of users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_ADAPTER = "dmp.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"login": "dmp.accounts.forms.LoginForm", "change_password": "dmp.accounts.forms.ChangePasswordForm"}
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_EMAIL_VERIFICATION = "none"  # e-mail addresses are typed at the counter with the person
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False  # the current session stays; every other one ends
ACCOUNT_PREVENT_ENUMERATION = True
# Patients: a one-time code by SMS or e-mail at every login (dmp.accounts.stages).
ACCOUNT_LOGIN_BY_CODE_ENABLED = False  # no password-less login: the code comes after the password
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = env.int("LOGIN_CODE_TIMEOUT_SECONDS", default=5 * 60)
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 3  # then the code is void and the login starts again
ACCOUNT_LOGIN_BY_CODE_MAX_RESEND_COUNT = 2
LOGIN_CODE_LENGTH = 6
# A counter reset waiting for its proofs (the codes read back, a second agent's approval)
# expires after this many minutes: the person is at the counter, not coming back tomorrow.
COUNTER_RESET_MINUTES = env.int("COUNTER_RESET_MINUTES", default=15)
if not 1 <= COUNTER_RESET_MINUTES <= 120:
    raise ImproperlyConfigured("COUNTER_RESET_MINUTES must be between 1 and 120.")
# Lockout that cannot be aimed (dmp/accounts/lockout.py, docs/security.md). Wrong passwords
# count per (account, address): the first LOGIN_FREE_FAILURES cost nothing, then each next
# attempt from that address for that account waits 2, 4, 8 ... seconds, up to
# LOGIN_DELAY_MAX_SECONDS, refused unchecked meanwhile; the count is kept
# LOGIN_DELAY_MEMORY_HOURS after the last failure and a right password resets it. allauth's
# limiter (the only limiter: django-axes is not installed) adds a ceiling per account,
# whatever the address (NIST SP 800-63B: at most 100 failures), which the delays make
# unreachable from one address, and a high limit per address (a reception centre puts many
# people behind one). Wrong one-time and authenticator codes count under the same limits.
LOGIN_FREE_FAILURES = env.int("LOGIN_FREE_FAILURES", default=3)
LOGIN_DELAY_MAX_SECONDS = env.int("LOGIN_DELAY_MAX_SECONDS", default=3600)
LOGIN_DELAY_MEMORY_HOURS = env.int("LOGIN_DELAY_MEMORY_HOURS", default=24)
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=100)
LOGIN_ACCOUNT_WINDOW_HOURS = env.int("LOGIN_ACCOUNT_WINDOW_HOURS", default=24)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=300)
LOGIN_ADDRESS_WINDOW_MINUTES = env.int("LOGIN_ADDRESS_WINDOW_MINUTES", default=60)
if min(LOGIN_FREE_FAILURES, LOGIN_DELAY_MAX_SECONDS, LOGIN_DELAY_MEMORY_HOURS, LOGIN_FAILURES_PER_ACCOUNT,
       LOGIN_ACCOUNT_WINDOW_HOURS, LOGIN_FAILURES_PER_ADDRESS, LOGIN_ADDRESS_WINDOW_MINUTES) < 1:
    raise ImproperlyConfigured("The LOGIN_* lockout settings must all be >= 1.")
if LOGIN_FAILURES_PER_ACCOUNT > 100:
    raise ImproperlyConfigured("LOGIN_FAILURES_PER_ACCOUNT must be <= 100 (NIST SP 800-63B).")
# Record searches per professional per hour (pro portal and FHIR `Patient?`): enough for a busy
# day, too few to walk through a population by name and date of birth. Counted by the same
# allauth limiter as the logins (dmp/accounts/lockout.py `record_search_allowed`).
RECORD_SEARCHES_PER_HOUR = env.int("RECORD_SEARCHES_PER_HOUR", default=60)
if RECORD_SEARCHES_PER_HOUR < 1:
    raise ImproperlyConfigured("RECORD_SEARCHES_PER_HOUR must be >= 1.")
# Requests per API token per hour (dmp/api/throttling.py): practice software has its own limit,
# per token, generous for a practice's day; it is not bound by the humans' record-search limit.
API_TOKEN_REQUESTS_PER_HOUR = env.int("API_TOKEN_REQUESTS_PER_HOUR", default=10_000)
if API_TOKEN_REQUESTS_PER_HOUR < 1:
    raise ImproperlyConfigured("API_TOKEN_REQUESTS_PER_HOUR must be >= 1.")
# Searches of the professionals by name per account per hour (a patient choosing whom to give
# access, block or make médecin traitant; dmp/accounts/lockout.py `professional_search_allowed`).
PROFESSIONAL_SEARCHES_PER_HOUR = env.int("PROFESSIONAL_SEARCHES_PER_HOUR", default=30)
if PROFESSIONAL_SEARCHES_PER_HOUR < 1:
    raise ImproperlyConfigured("PROFESSIONAL_SEARCHES_PER_HOUR must be >= 1.")
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"{LOGIN_FAILURES_PER_ADDRESS}/{LOGIN_ADDRESS_WINDOW_MINUTES}m/ip,"
                    f"{LOGIN_FAILURES_PER_ACCOUNT}/{LOGIN_ACCOUNT_WINDOW_HOURS}h/key",
    "login": "60/m/ip",
    "record_search": f"{RECORD_SEARCHES_PER_HOUR}/1h/user",
    "professional_search": f"{PROFESSIONAL_SEARCHES_PER_HOUR}/1h/user",
}
MFA_ADAPTER = "dmp.accounts.adapter.MFAAdapter"

# Second factor for professionals, counter agents and administrators: an authenticator app
# (TOTP) with recovery codes, enrolled before anything else is reachable (dmp.accounts).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="DMP")

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

REST_FRAMEWORK = {
    # Practice software presents an API token (Bearer); the browser's session works too.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dmp.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Professionals with a second factor only, whatever authenticated the request.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "dmp.api.permissions.ProfessionalWithSecondFactor",
    ],
    # The OpenAPI 3 description of the API (drf-spectacular), served at /fhir/openapi.json.
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "DMP – FHIR R4 API for practice software",
    "DESCRIPTION": "HL7 FHIR R4 (application/fhir+json) under /fhir/. Authentication: an API token "
                   "(`Authorization: Bearer dmp_…`) created in the professional portal. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/fhir",
    # Only the FHIR API is described.
    "PREPROCESSING_HOOKS": ["dmp.api.fhir.metadata.fhir_endpoints_only"],
}

LANGUAGE_CODE = "fr"
LANGUAGES = [
    ("fr", _("French")),
    ("en", _("English")),
    ("ar", _("Arabic")),
    ("ru", _("Russian")),
    ("uk", _("Ukrainian")),
    ("sq", _("Albanian")),
    ("fa", _("Persian")),
]
# The clinician portal, the API's messages and the admin are written in these two only
# (DOMAIN.md §7); patients, representatives and counter agents have all seven.
CLINICIAN_LANGUAGES = ("fr", "en")
LOCALE_PATHS = [BASE_DIR / "locale"]
# Numeric dates of ar and fa without direction marks (dmp/formats/ar/formats.py says why).
FORMAT_MODULE_PATH = ["dmp.formats"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("DOCUMENT_STORAGE_ROOT", default=BASE_DIR / "var" / "documents")
# Where the encrypted document files live: a folder (the embedded default; several servers
# need it shared) or an S3-compatible object store shared by every server (docs/deployment.md,
# "Choosing the object store"). Encrypted by us either way (docs/storage.md).
DMP_STORAGE = env.str("DMP_STORAGE", default="filesystem")
if DMP_STORAGE == "filesystem":
    _DOCUMENT_STORAGE: dict = {"BACKEND": "dmp.storage.EncryptedFileSystemStorage"}
elif DMP_STORAGE == "s3":
    _s3_object_parameters = {"ContentType": "application/octet-stream"}  # ciphertext, whatever the name
    if env.str("DMP_S3_SERVER_SIDE_ENCRYPTION", default=""):  # optional: the files are encrypted already
        _s3_object_parameters["ServerSideEncryption"] = env.str("DMP_S3_SERVER_SIDE_ENCRYPTION")
    _DOCUMENT_STORAGE = {"BACKEND": "dmp.storage_s3.EncryptedS3Storage", "OPTIONS": {
        "bucket_name": env.str("DMP_S3_BUCKET"),
        "endpoint_url": env.str("DMP_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("DMP_S3_REGION", default="") or None,
        # Unset: boto3 finds credentials itself (instance role, AWS_* variables, ~/.aws).
        "access_key": env.str("DMP_S3_ACCESS_KEY_ID", default="") or None,
        "secret_key": env.str("DMP_S3_SECRET_ACCESS_KEY", default="") or None,
        "location": env.str("DMP_S3_PREFIX", default=""),
        "addressing_style": env.str("DMP_S3_ADDRESSING_STYLE", default="") or None,
        "object_parameters": _s3_object_parameters,
    }}
else:
    raise ImproperlyConfigured(f"DMP_STORAGE must be filesystem or s3, not {DMP_STORAGE!r}")
STORAGES = {
    # Document files: encrypted at rest, never served directly (no MEDIA_URL route).
    "default": _DOCUMENT_STORAGE,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production, whitenoise serves from the app folders directly (no collectstatic).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=20 * 1024 * 1024)
# Files that cannot hurt (dmp/file_safety.py): each document is opened in a child process
# with these limits before anything else reads it; over any of them it is refused.
DOCUMENT_MAX_PAGES = env.int("DOCUMENT_MAX_PAGES", default=200)
DOCUMENT_MAX_DECOMPRESSED_BYTES = env.int("DOCUMENT_MAX_DECOMPRESSED_BYTES", default=100 * 1024 * 1024)
DOCUMENT_MAX_PIXELS = env.int("DOCUMENT_MAX_PIXELS", default=50_000_000)
DOCUMENT_CHECK_SECONDS = env.int("DOCUMENT_CHECK_SECONDS", default=10)
DOCUMENT_CHECK_MEMORY_MB = env.int("DOCUMENT_CHECK_MEMORY_MB", default=1024)
if min(DOCUMENT_MAX_PAGES, DOCUMENT_MAX_DECOMPRESSED_BYTES, DOCUMENT_MAX_PIXELS, DOCUMENT_CHECK_SECONDS) < 1 \
        or DOCUMENT_CHECK_MEMORY_MB < 256:
    raise ImproperlyConfigured("DOCUMENT_MAX_* and DOCUMENT_CHECK_SECONDS must be >= 1, "
                               "DOCUMENT_CHECK_MEMORY_MB >= 256.")
# The antivirus: ClamAV's clamd, tcp://host:port or unix:///path/to/clamd.ctl. Every document
# is scanned before it is stored; unreachable means refused ("try again"), never unscanned.
# Mandatory in production; empty elsewhere: no scan.
CLAMD_ADDRESS = env.str("CLAMD_ADDRESS", default="")
CLAMD_TIMEOUT_SECONDS = env.int("CLAMD_TIMEOUT_SECONDS", default=30)
if PRODUCTION and not CLAMD_ADDRESS:
    raise ImproperlyConfigured("CLAMD_ADDRESS is required in production: every document is scanned by clamd.")
if CLAMD_ADDRESS and not re.fullmatch(r"tcp://[^/:]+:\d{1,5}|tcp://\[[0-9a-fA-F:.]+\]:\d{1,5}|(unix://)?/\S+",
                                      CLAMD_ADDRESS):
    raise ImproperlyConfigured("CLAMD_ADDRESS must be tcp://host:port or unix:///path/to/clamd.ctl.")

EMAIL_CONFIG = env.email_url("EMAIL_URL") if PRODUCTION else env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="DMP <no-reply@localhost>")
SMS_BACKEND = env.str("SMS_BACKEND", default="dmp.sms.ConsoleSmsBackend")
SMS_API_URL = env.str("SMS_API_URL", default="https://api.brevo.com/v3/transactionalSMS/send")
SMS_API_KEY = env.str("SMS_API_KEY", default="")
SMS_SENDER = env.str("SMS_SENDER", default="DMP")
SMS_TIMEOUT_SECONDS = env.int("SMS_TIMEOUT_SECONDS", default=10)
_TEST_SMS_BACKENDS = {"dmp.sms.ConsoleSmsBackend", "dmp.sms.MemorySmsBackend", "dmp.sms.RedisTestSmsBackend"}
if PRODUCTION and SMS_BACKEND in _TEST_SMS_BACKENDS:
    # Patients' login codes go by SMS: printing them on a server's console locks patients out.
    raise ImproperlyConfigured("Production needs a real SMS_BACKEND (e.g. dmp.sms.BrevoSmsBackend).")
if SMS_BACKEND == "dmp.sms.BrevoSmsBackend" and not SMS_API_KEY:
    raise ImproperlyConfigured("SMS_API_KEY is required by dmp.sms.BrevoSmsBackend.")

# The request header that carries the client's address when a reverse proxy sets it
# (e.g. HTTP_X_REAL_IP); empty: REMOTE_ADDR. Only set it behind a proxy that overwrites it,
# or clients could write any address into the audit log.
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="")

# Access rules with a duration (DOMAIN.md §4).
BREAK_GLASS_DURATION_HOURS = env.int("BREAK_GLASS_DURATION_HOURS", default=4)

# Security headers. The production values pass `manage.py check --deploy`.
# Sessions end after this long idle (requests renew them, at most once a minute): patients 30
# minutes, professionals, counter agents and administrators 15 (dmp.accounts.middleware).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=30 * 60)
CLINICAL_SESSION_IDLE_SECONDS = env.int("CLINICAL_SESSION_IDLE_SECONDS", default=15 * 60)
# Saved when changed only: the renewal changes it once a minute (`renew_idle_timeout`).
SESSION_SAVE_EVERY_REQUEST = False
# Read from the cache (Redis, shared by every server), written to both, the database row being
# the one that lasts: a page saves the session's query, and a Redis lost or flushed only costs a
# read from the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles, fonts and fetches from this origin
# only, no inline script or style, no event-handler attribute, no plugin, no framing, forms
# posted here only. Images may also be `data:` URIs: the authenticator's QR code at second
# factor enrolment is one. A view that sets its own policy keeps it (document files:
# `sandbox`). CSP_REPORT_URI: where browsers report violations (empty: nowhere); not kept as
# a CSP_* setting, which django-csp 4 takes for its former configuration and refuses.
_csp_report_uri = env.str("CSP_REPORT_URI", default="")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
        **({"report-uri": [_csp_report_uri]} if _csp_report_uri else {}),
    },
}
# Browser features no page of this site uses, switched off for every page (dmp/headers.py).
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "bluetooth", "camera", "display-capture", "encrypted-media", "geolocation",
    "gyroscope", "hid", "idle-detection", "magnetometer", "microphone", "midi", "payment",
    "picture-in-picture", "publickey-credentials-get", "screen-wake-lock", "serial", "usb",
    "xr-spatial-tracking",
))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SILENCED_SYSTEM_CHECKS: list[str] = []

# Logs never carry medical content: only ids, actions and outcomes are logged (see dmp/audit).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's request logger prints the request on 500s; keep it to the status line.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # WeasyPrint narrates every rendering step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # The signed audit checkpoints: a copy outside the database, whatever LOG_LEVEL says.
        "dmp.audit.checkpoint": {"level": "INFO"},
    },
}
ADMINS: list[tuple[str, str]] = []  # no error e-mails: they would carry request data
ADMIN_URL = env.str("ADMIN_URL", default="admin/")
