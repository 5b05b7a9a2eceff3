"""Personas and clients shared by the tests.

clinic_a / clinic_b: two clinics; staff works in A, other_staff in B; specialist serves
both clinics and sees their referred cases only; specialist_b serves clinic B only;
admin_user sees everything; api_client is anonymous; client_for and web_client sign a
given persona in to the API and to the web pages.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connections
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import User
from tests.chromium import CHROMIUM, chromium_launch
from tests.factories import ClinicFactory, UserFactory

# Registered here, once: pytest only rewrites the asserts of plugins named in the root conftest.
pytest_plugins = ["tests.inference_fixtures"]


@pytest.fixture(autouse=True)
def fresh_cache():
    """Sign-in attempt rates (accounts.throttling) live in the cache: none carry over between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test stores files in its own empty MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(name="Clinic A")


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(name="Clinic B")


@pytest.fixture
def staff(clinic_a):
    return UserFactory(username="alice", role=User.Role.CLINIC_STAFF, clinics=[clinic_a])


@pytest.fixture
def other_staff(clinic_b):
    return UserFactory(username="bob", role=User.Role.CLINIC_STAFF, clinics=[clinic_b])


@pytest.fixture
def specialist(clinic_a, clinic_b):
    return UserFactory(username="sam", role=User.Role.SPECIALIST, clinics=[clinic_a, clinic_b])


@pytest.fixture
def specialist_b(clinic_b):
    return UserFactory(username="sue", role=User.Role.SPECIALIST, clinics=[clinic_b])


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", role=User.Role.ADMINISTRATOR, is_superuser=True, is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def client_for(db):
    """An API client signed in as the given user with a real API token."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            _, token = AuthToken.objects.create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    return make


@pytest.fixture
def web_client(client):
    """A Django test client signed in as the given user (None: anonymous)."""

    def make(user: User | None):
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def personas(staff, other_staff, specialist, specialist_b, admin_user):
    return {
        "anonymous": None,
        "staff": staff,
        "other_staff": other_staff,
        "specialist": specialist,
        "specialist_b": specialist_b,
        "admin": admin_user,
    }


@pytest.fixture
def browser_page():
    """A Chromium page (phone-sized viewport) driven by Playwright; needs Debian's chromium."""
    from tests.inference_fixtures import service_missing  # a plugin: imported after pytest registers it

    if not CHROMIUM.exists():
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        service_missing("Playwright is not installed (requirements-dev.txt)")
    with sync_api.sync_playwright() as playwright:
        browser = chromium_launch(playwright)
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(20_000)
        # Anything the Content-Security-Policy blocks is reported on the console.
        page.csp_violations = []
        page.on(
            "console",
            lambda message: (
                page.csp_violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        try:
            yield page
        finally:
            # The test's ORM calls ran while Playwright's event loop was current, which gives
            # them database connections of their own; close those here, or they outlive the
            # test and block dropping the test database.
            connections.close_all()
            context.close()
            browser.close()
