"""Test settings: fast hashing, a throwaway media root, DATABASE_URL when CI sets one."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-any-deployment"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests replace this per test (tests/conftest.py); the default keeps stray writes out of var/.
MEDIA_ROOT = Path(tempfile.gettempdir()) / "skinportal-test-media"
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
CELERY_TASK_ALWAYS_EAGER = False
# Static files are not collected for tests.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
