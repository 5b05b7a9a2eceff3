"""Test settings: fast hashing, a throwaway media root, DATABASE_URL when CI sets one.

SQLite's test database is a file, not memory, so real worker processes can open it too
(tests/inference_fixtures.py). Nothing is sent to var/broker: the app publishes to an
in-memory broker unless a test points it at Redis (the ``redis_broker`` fixture).
"""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-any-deployment"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests replace this per test (tests/conftest.py); the default keeps stray writes out of var/.
MEDIA_ROOT = Path(tempfile.gettempdir()) / "skinportal-test-media"
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file per test run (the process id), so two runs side by side do not share one.
    _test_db = Path(tempfile.gettempdir()) / f"skinportal-test-{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
CELERY_TASK_ALWAYS_EAGER = False
# Static files are not collected for tests.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
# No test reaches the internet: tests of the forecast point this at a local fake server.
SKINPORTAL_UV_FORECAST_URL = ""
# No audit sample unless a test asks for one: a low-risk case stays "analysed" whatever its id.
SKINPORTAL_AUDIT_SAMPLE_RATE = 0.0
