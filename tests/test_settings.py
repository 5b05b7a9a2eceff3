"""Settings per environment: safe defaults locally, refusals in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.checks import check_no_demo_users, refuse_demo_users
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k7#Qz9!mR2@vL5wX8^nB3&cF6*hJ1(pT4)yD0-sG+eU_aZWq-Lr8%Vt"
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'debug': settings.DEBUG, 'engine': settings.DATABASES['default']['ENGINE'], "
    "'broker': settings.CELERY_BROKER_URL, 'media': str(settings.MEDIA_ROOT), "
    "'mailer': settings.MAILERS['default']['BACKEND'], 'secure': getattr(settings, 'SESSION_COOKIE_SECURE', False)}))"
)
OUR_VARIABLES = ("DJANGO_", "DATABASE_URL", "CELERY_", "REDIS_URL", "EMAIL_URL", "SKINPORTAL_", "UPLOAD_")


def run_with(settings_module: str, code: str = PROBE, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(OUR_VARIABLES)}
    clean.update({"DJANGO_SETTINGS_MODULE": settings_module, **env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def probe(settings_module: str, code: str = PROBE, **env: str) -> dict:
    result = run_with(settings_module, code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def probe_settings(settings_module: str, *names: str, **env: str) -> dict:
    """The named settings as a fresh process with this environment sees them."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}))"
    )
    return probe(settings_module, code, **env)


def assert_refused(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert words in result.stderr


def test_local_settings_need_nothing_installed():
    values = probe("skinportal.settings.local")

    assert values["debug"] is True
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["broker"] == "filesystem://"
    assert values["media"].endswith(os.path.join("var", "media"))
    assert values["mailer"] == "django.core.mail.backends.console.EmailBackend"


def test_database_and_broker_come_from_the_environment():
    values = probe(
        "skinportal.settings.local",
        DATABASE_URL="postgres://portal@db.internal:5432/skinportal",
        REDIS_URL="redis://cache.internal:6379/0",
    )

    assert values["engine"] == "django.db.backends.postgresql"
    assert values["broker"] == "redis://cache.internal:6379/0"


ANALYSIS_TIMINGS = {
    "SKINPORTAL_ANALYSIS_REQUEUE_SECONDS": 60,
    "SKINPORTAL_ANALYSIS_STALE_SECONDS": 120,
    "SKINPORTAL_ANALYSIS_MAX_ATTEMPTS": 8,
    "SKINPORTAL_ANALYSIS_SWEEP_SECONDS": 30,
    "SKINPORTAL_READYZ_TIMEOUT": 3,
}


def test_analysis_timings_have_their_documented_defaults():
    assert probe_settings("skinportal.settings.local", *ANALYSIS_TIMINGS) == ANALYSIS_TIMINGS


def test_analysis_timings_come_from_the_environment():
    chosen = {
        "SKINPORTAL_ANALYSIS_REQUEUE_SECONDS": 15,
        "SKINPORTAL_ANALYSIS_STALE_SECONDS": 300,
        "SKINPORTAL_ANALYSIS_MAX_ATTEMPTS": 3,
        "SKINPORTAL_ANALYSIS_SWEEP_SECONDS": 10,
        "SKINPORTAL_READYZ_TIMEOUT": 1.5,
    }

    values = probe_settings("skinportal.settings.local", *chosen, **{k: str(v) for k, v in chosen.items()})

    assert values == chosen


@pytest.mark.parametrize(
    "env", [{}, {"REDIS_URL": "redis://127.0.0.1:6379/0"}, {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}]
)
def test_tests_publish_to_an_in_memory_broker_not_to_var_broker_or_redis(env):
    """A test that wants a real broker asks for one (the redis_broker fixture)."""
    assert probe("skinportal.settings.test", **env)["broker"] == "memory://"


def test_sqlite_test_database_is_a_file_that_worker_processes_can_open(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip(f"the test database is {connection.vendor}")
    assert not connection.is_in_memory_db()
    assert Path(connection.settings_dict["NAME"]).is_file()


def test_postgresql_test_database_keeps_django_default_name():
    values = probe_settings(
        "skinportal.settings.test", "DATABASES", DATABASE_URL="postgres://portal@db.internal:5432/skinportal"
    )

    assert values["DATABASES"]["default"].get("TEST", {}).get("NAME") is None


def test_production_starts_with_a_strong_key_and_debug_off():
    values = probe("skinportal.settings.production", DJANGO_SECRET_KEY=GOOD_KEY, DJANGO_ALLOWED_HOSTS="portal.example")

    assert values["debug"] is False
    assert values["secure"] is True


def test_production_refuses_debug():
    result = run_with(
        "skinportal.settings.production",
        DJANGO_SECRET_KEY=GOOD_KEY,
        DJANGO_ALLOWED_HOSTS="portal.example",
        DJANGO_DEBUG="true",
    )

    assert_refused(result, "DJANGO_DEBUG must be off")


def test_production_refuses_missing_secret_key():
    result = run_with("skinportal.settings.production", DJANGO_ALLOWED_HOSTS="portal.example")

    assert_refused(result, "DJANGO_SECRET_KEY")


@pytest.mark.parametrize(
    "key",
    ["django-insecure-local-development-only", "short-key", "django-insecure-" + "x" * 60, "abcd" * 20],
)
def test_production_refuses_default_or_weak_secret_key(key):
    result = run_with("skinportal.settings.production", DJANGO_SECRET_KEY=key, DJANGO_ALLOWED_HOSTS="portal.example")

    assert_refused(result, "DJANGO_SECRET_KEY is insecure")


def test_production_warns_when_any_host_is_allowed():
    result = run_with("skinportal.settings.production", DJANGO_SECRET_KEY=GOOD_KEY, DJANGO_ALLOWED_HOSTS="*")

    assert result.returncode == 0, result.stderr
    assert "DJANGO_ALLOWED_HOSTS contains '*'" in result.stderr
    quiet = run_with(
        "skinportal.settings.production", DJANGO_SECRET_KEY=GOOD_KEY, DJANGO_ALLOWED_HOSTS="portal.example"
    )
    assert "DJANGO_ALLOWED_HOSTS" not in quiet.stderr


def test_env_files_stay_out_of_git_and_the_image():
    for ignore_file in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignore_file).read_text().split(), ignore_file


def test_production_refuses_demo_users(settings, db):
    settings.SKINPORTAL_REFUSE_DEMO_USERS = True
    UserFactory(username="demo-staff")

    with pytest.raises(ImproperlyConfigured, match="demo-staff"):
        refuse_demo_users()
    assert [error.id for error in check_no_demo_users()] == ["skinportal.E001"]
    with pytest.raises(SystemCheckError):
        call_command("check")


def test_demo_users_are_fine_outside_production(settings, db):
    settings.SKINPORTAL_REFUSE_DEMO_USERS = False
    UserFactory(username="demo-staff")

    refuse_demo_users()
    assert check_no_demo_users() == []


def test_production_without_demo_users_passes_the_check(settings, db):
    settings.SKINPORTAL_REFUSE_DEMO_USERS = True
    UserFactory(username="real-nurse")

    assert check_no_demo_users() == []


def test_production_serves_the_api_schema_and_docs_only_to_signed_in_users():
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.SKINPORTAL_API_DOCS_NEED_SIGN_IN)"
    )
    result = run_with(
        "skinportal.settings.production", code, DJANGO_SECRET_KEY=GOOD_KEY, DJANGO_ALLOWED_HOSTS="portal.example"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.django_db
def test_with_sign_in_required_the_schema_and_docs_refuse_anonymous_visitors(settings, client, client_for, staff):
    settings.SKINPORTAL_API_DOCS_NEED_SIGN_IN = True

    for path in ("/api/schema/", "/api/docs/"):
        assert client.get(path).status_code in (401, 403), path
        assert client_for(staff).get(path).status_code == 200, path
    client.force_login(staff)
    assert client.get("/api/docs/").status_code == 200  # a signed-in browser reads the docs page
    assert client.get("/api/docs/", {"script": ""}).status_code == 200


@pytest.mark.django_db
def test_outside_production_the_schema_stays_open(client):
    assert client.get("/api/schema/").status_code == 200
