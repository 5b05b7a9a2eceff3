"""Production settings: refuse to start with debug on or a missing or insecure secret key.

Demo accounts are refused too: accounts/checks.py (system check), skinportal/wsgi.py and
the worker start (skinportal/celery.py).
"""

import warnings

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
DEBUG = False

# No default: a missing DJANGO_SECRET_KEY stops the process here.
SECRET_KEY = env("DJANGO_SECRET_KEY")
# Django's own rule (security.W009): at least 50 characters, at least 5 different ones, not
# Django's generated insecure prefix; and none of the usual placeholders.
_INSECURE_PREFIXES = ("django-insecure", "change-me", "changeme", "secret", "test-only")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.lower().startswith(_INSECURE_PREFIXES):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is insecure: use at least 50 random characters, e.g. "
        "python -c 'from django.core.management.utils import get_random_secret_key as k; print(k())'"
    )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if "*" in ALLOWED_HOSTS:
    warnings.warn(
        "DJANGO_ALLOWED_HOSTS contains '*': any Host header is accepted (password-reset links and "
        "absolute URLs can be pointed at another site). Name the portal's host names.",
        RuntimeWarning,
        stacklevel=1,
    )
SKINPORTAL_REFUSE_DEMO_USERS = True
# /api/schema/ and /api/docs/ for signed-in users only (skinportal/schema_access.py).
SKINPORTAL_API_DOCS_NEED_SIGN_IN = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    **STORAGES,  # noqa: F405 - photos in MEDIA_ROOT, or the S3 bucket when SKINPORTAL_S3_BUCKET is set (base.py)
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
