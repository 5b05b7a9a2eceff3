"""Settings shared by every environment, configured from the environment (django-environ).

Defaults need nothing installed: SQLite under var/, media under var/media, console email
and a filesystem Celery broker under var/broker. See docs/settings.md for every variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A .env file beside manage.py is optional; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-local-development-only")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "skinportal.admin_site.PortalAdminConfig",  # django.contrib.admin, for administrators only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "patients",
    "diagnosis",
    "analysis",
    "triage",
    "continuity",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "skinportal.errors.AdminNulInQueryMiddleware",  # 400 for a NUL in an admin query string
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page language: the language cookie, else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's own language wins over the cookie and the browser (accounts/language.py).
    "accounts.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # A database that cannot be reached answers 503 with Retry-After, not 500.
    "skinportal.unavailable.DatabaseUnavailableMiddleware",
    # Last: turns a locked-out sign-in into the 429 page (accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "skinportal.urls"
WSGI_APPLICATION = "skinportal.wsgi.application"

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
                "triage.context_processors.notifications",
                "patients.disclosure.patient_disclosure",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: opening a PostgreSQL connection per request or task cost the upload
# more than its queries (a server process started each time). The health check (a ping when a
# kept connection is reused) lets a request after a database restart open a fresh one.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("DJANGO_CONN_HEALTH_CHECKS", default=True))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The zero-setup database must take a small clinic's concurrent writes: write-ahead
    # logging (readers never block the writer), a busy timeout instead of "database is
    # locked", and transactions that take the write lock when they begin.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SKINPORTAL_SQLITE_BUSY_TIMEOUT", default=20),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts --------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Client addresses for the audit log: X-Forwarded-For is honoured only when the direct
# peer (REMOTE_ADDR) is one of these reverse proxies.
SKINPORTAL_TRUSTED_PROXIES = env.list("SKINPORTAL_TRUSTED_PROXIES", default=[])

# --- Sign-in, sessions and API tokens (see docs/settings.md) --------------------------
AUTHENTICATION_BACKENDS = [
    # django-axes: failed sign-ins per username and address, lockout, reset on success.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SKINPORTAL_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SKINPORTAL_LOGIN_LOCKOUT_MINUTES", default=60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.attempted_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False
# Automatic logoff: a web session ends after this many minutes without a request.
SESSION_COOKIE_AGE = env.int("SKINPORTAL_SESSION_IDLE_MINUTES", default=30) * 60
SESSION_SAVE_EVERY_REQUEST = True
# API tokens (django-rest-knox): stored as digests, expire after TOKEN_IDLE hours without
# use and TOKEN_MAX_DAYS after issue whatever the use, revoked on logout, password change
# and deactivation (accounts/signals.py).
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.float("SKINPORTAL_TOKEN_IDLE_HOURS", default=12)),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": timedelta(days=env.float("SKINPORTAL_TOKEN_MAX_DAYS", default=7)),
    "MIN_REFRESH_INTERVAL": 60,
    "AUTH_HEADER_PREFIX": "Token",
    "USER_SERIALIZER": None,
    "TOKEN_LIMIT_PER_USER": None,
}

# --- Browser protections ---------------------------------------------------------------
# One Content-Security-Policy for every page: scripts and styles only from the portal's own
# static files (no inline script, no third-party origin), never framed. A page that needs
# more overrides it with django.views.decorators.csp, not by loosening this.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Cache -----------------------------------------------------------------------------
# Holds the sign-in attempt counts. Per process by default; with several web processes
# set CACHE_URL to a shared cache (e.g. redis://cache.internal:6379/1).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Internationalisation --------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
# The languages the portal is written in, complete: pages, forms, messages, emails,
# notifications, the risk summary and the letter (catalogues in locale/).
LANGUAGES = [
    ("en-gb", "English"),
    ("fr", "Français"),
    ("pt", "Português"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media ------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Clinical images are private: MEDIA_ROOT is never served as static files. Every image is
# streamed by an access-checked view (diagnosis:image-file), so MEDIA_URL is only a prefix.
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "/media/"
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
# Photos and heatmaps are read and written only through Django's storage API (default_storage
# and the models' FileFields): the web process, every worker and the sweeper use the same one.
# With SKINPORTAL_S3_BUCKET set they live in that S3-compatible bucket (AWS S3, MinIO, Ceph...),
# so workers on other machines need no shared folder; otherwise in MEDIA_ROOT. The bucket stays
# private: no ACL is set (the bucket's own, private, applies) and no URL to it is ever handed
# out; every photo is streamed by the access-checked views. Credentials: AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY from the environment (or any other way boto3 finds them).
SKINPORTAL_S3_BUCKET = env("SKINPORTAL_S3_BUCKET", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if SKINPORTAL_S3_BUCKET:
    from boto3.s3.transfer import TransferConfig

    _s3_endpoint = env("SKINPORTAL_S3_ENDPOINT_URL", default="") or None
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": SKINPORTAL_S3_BUCKET,
            "endpoint_url": _s3_endpoint,
            "region_name": env("SKINPORTAL_S3_REGION", default="") or None,
            # Path-style addressing for a service on its own host name (MinIO), virtual hosts on AWS.
            "addressing_style": "path" if _s3_endpoint else None,
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            # Names are random (lesions/<uuid4>.png): no existence check (one request) before each write.
            "file_overwrite": True,
            "max_memory_size": 8 * 1024 * 1024,
            # A photo is a few hundred KB, sent in one request: s3transfer's thread pool (started
            # for every file by default) cost the worker more than the upload itself.
            "transfer_config": TransferConfig(use_threads=False),
        },
    }

# --- Uploads ---------------------------------------------------------------------------
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env.int("UPLOAD_MAX_PIXELS", default=50_000_000)
UPLOAD_MAX_FILES = env.int("UPLOAD_MAX_FILES", default=10)
# What one request and one user may cost (photos/uploads.py): the pixels decoding a
# case's photos holds, together (time) and per photo (memory; JPEG counts at its reduced
# decoding size), the long side photos are
# stored at, the whole request body, and photos per user per hour.
UPLOAD_MAX_REQUEST_PIXELS = env.int("UPLOAD_MAX_REQUEST_PIXELS", default=32_000_000)
UPLOAD_MAX_DECODED_PIXELS = env.int("UPLOAD_MAX_DECODED_PIXELS", default=24_000_000)
UPLOAD_STORE_MAX_SIDE = env.int("UPLOAD_STORE_MAX_SIDE", default=2000)
UPLOAD_MAX_REQUEST_BYTES = env.int("UPLOAD_MAX_REQUEST_BYTES", default=64 * 1024 * 1024)
UPLOAD_MAX_PHOTOS_PER_HOUR = env.int("UPLOAD_MAX_PHOTOS_PER_HOUR", default=300)
# Django's own request limits must let a case with several photos through.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Room for the web form's photos and a few spare; each one can take UPLOAD_MAX_BYTES on disk.
DATA_UPLOAD_MAX_NUMBER_FILES = 2 * UPLOAD_MAX_FILES
# The first handler stops storing a file once it passes UPLOAD_MAX_BYTES, so an oversized
# upload costs one byte over the limit in memory or on disk, not its whole size.
FILE_UPLOAD_HANDLERS = [
    "photos.uploads.UploadSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- Email -----------------------------------------------------------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.org:587; the console by default.
_email = env.email_url("EMAIL_URL", default="consolemail://")
_smtp_options = {
    "host": _email.get("EMAIL_HOST"),
    "port": _email.get("EMAIL_PORT"),
    "username": _email.get("EMAIL_HOST_USER"),
    "password": _email.get("EMAIL_HOST_PASSWORD"),
    "use_tls": _email.get("EMAIL_USE_TLS", False),
    "use_ssl": _email.get("EMAIL_USE_SSL", False),
    "timeout": env.int("EMAIL_TIMEOUT", default=10),
}
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": _smtp_options if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Skin Portal <noreply@localhost>")

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",  # knox, one query per request
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "skinportal.api.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Sign-in attempts per client address (accounts.throttling); failures per username and
    # address lock out through django-axes (AXES_* above).
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": env("SKINPORTAL_LOGIN_RATE_IP", default="30/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# The schema and the docs page need a signed-in user (production sets it).
SKINPORTAL_API_DOCS_NEED_SIGN_IN = False
SPECTACULAR_SETTINGS = {
    "TITLE": "Skin Portal API",
    "DESCRIPTION": "Teledermatology for rural clinics: patients, cases, lesion images and model predictions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Open here; production asks for a signed-in user (SKINPORTAL_API_DOCS_NEED_SIGN_IN).
    "SERVE_PERMISSIONS": ["skinportal.schema_access.SchemaReader"],
    # Swagger UI from the portal's own static files (drf-spectacular-sidecar), pinned.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation documents its error answers (400, 401, 404, ...), not only success.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "diagnosis.schema.add_error_responses",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImageKindEnum": "diagnosis.models.LesionImage.Kind",
        "ImageAnalysisStatusEnum": "diagnosis.models.LesionImage.AnalysisStatus",
        "CaseStatusEnum": "diagnosis.models.Case.Status",
        "BodySiteEnum": "diagnosis.models.Case.BodySite",
        "ReferralStatusEnum": "triage.models.Referral.Status",
        "ReferralUrgencyEnum": "triage.models.Referral.Urgency",
        "ReferralSourceEnum": "triage.models.Referral.Source",
        "ReviewDiagnosisEnum": "triage.models.Review.Diagnosis",
        "ReviewOutcomeEnum": "triage.models.Review.Outcome",
        "NotificationKindEnum": "triage.models.Notification.Kind",
    },
}

# --- Celery ----------------------------------------------------------------------------
# Redis when configured; otherwise kombu's filesystem transport under var/broker so a
# newcomer can run a worker with nothing installed.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=None) or env("REDIS_URL", default=None)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = env.path("CELERY_BROKER_DIR", default=VAR_DIR / "broker")
    _queue_dir = Path(_broker_dir) / "queue"
    _processed_dir = Path(_broker_dir) / "processed"
    for _folder in (_queue_dir, _processed_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    # Producer and consumer share one folder: out for the web process is in for the worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE

# --- Inference -------------------------------------------------------------------------
# None means the inference package's default (shipped) artifact.
SKINPORTAL_MODEL_DIR = env("SKINPORTAL_MODEL_DIR", default=None)
# The sweeper (analysis/services.py): a queued photo nobody started on is sent again after
# REQUEUE seconds; a photo in analysis for STALE seconds was abandoned by its worker (keep it
# above the analysis task's hard time limit, 60 s in analysis/tasks.py); a photo fails after
# MAX_ATTEMPTS claims; beat sends the sweeper every SWEEP seconds.
SKINPORTAL_ANALYSIS_REQUEUE_SECONDS = env.float("SKINPORTAL_ANALYSIS_REQUEUE_SECONDS", default=60)
SKINPORTAL_ANALYSIS_STALE_SECONDS = env.float("SKINPORTAL_ANALYSIS_STALE_SECONDS", default=120)
SKINPORTAL_ANALYSIS_MAX_ATTEMPTS = env.int("SKINPORTAL_ANALYSIS_MAX_ATTEMPTS", default=8)
SKINPORTAL_ANALYSIS_SWEEP_SECONDS = env.float("SKINPORTAL_ANALYSIS_SWEEP_SECONDS", default=30)
# How long GET /readyz waits for an inference worker to answer its ping.
SKINPORTAL_READYZ_TIMEOUT = env.float("SKINPORTAL_READYZ_TIMEOUT", default=3)
# The longest a result poll may wait for a change (``Prefer: wait=N``, diagnosis/polling.py);
# below gunicorn's timeout, and each waiting poll holds a web thread.
SKINPORTAL_POLL_MAX_WAIT_SECONDS = env.float("SKINPORTAL_POLL_MAX_WAIT_SECONDS", default=20)

# --- Referrals (triage/) ----------------------------------------------------------------
# Target time from referral to a specialist's answer, by urgency; later ones are overdue.
SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT = env.float("SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT", default=24)
SKINPORTAL_REFERRAL_TARGET_HOURS_ROUTINE = env.float("SKINPORTAL_REFERRAL_TARGET_HOURS_ROUTINE", default=72)
# A specialist's claim on a referral lasts this long; then the referral goes back to the queue.
SKINPORTAL_REFERRAL_CLAIM_MINUTES = env.float("SKINPORTAL_REFERRAL_CLAIM_MINUTES", default=120)
# Beat returns expired claims to the queue this often (the queue treats them as open at once).
SKINPORTAL_REFERRAL_SWEEP_SECONDS = env.float("SKINPORTAL_REFERRAL_SWEEP_SECONDS", default=60)
# Nothing falls through (analysis/safety_net.py): a case whose photos were all turned back by
# the photo gate is referred to a specialist (source "unreadable") after this many hours
# without a usable photo, unless the clinic closes it with a reason.
SKINPORTAL_UNREADABLE_AFTER_HOURS = env.float("SKINPORTAL_UNREADABLE_AFTER_HOURS", default=24)
# The audit sample: this share of the cases the model did not refer is referred anyway
# (source "audit"), drawn from the case id; the referral keeps the rate for weighting.
SKINPORTAL_AUDIT_SAMPLE_RATE = env.float("SKINPORTAL_AUDIT_SAMPLE_RATE", default=0.05)
# An audit referral is routine work: its answer is due this many days after the referral.
SKINPORTAL_AUDIT_DUE_DAYS = env.float("SKINPORTAL_AUDIT_DUE_DAYS", default=14)
# Links in notification emails: the portal's public address, e.g. https://portal.example.org
SKINPORTAL_PUBLIC_URL = env("SKINPORTAL_PUBLIC_URL", default="http://localhost:8000")

# --- Production guard rails (production.py switches these on) ---------------------------
SKINPORTAL_REFUSE_DEMO_USERS = False

# --- Logging ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# The day's UV index on the dashboard (clinics/uv.py): Open-Meteo's forecast when it answers
# within the timeout, kept an hour per clinic; otherwise a clear-sky estimate. Empty URL:
# always the estimate (no network).
SKINPORTAL_UV_FORECAST_URL = env.str("SKINPORTAL_UV_FORECAST_URL", default="https://api.open-meteo.com")
SKINPORTAL_UV_FORECAST_TIMEOUT = env.float("SKINPORTAL_UV_FORECAST_TIMEOUT", default=2)
