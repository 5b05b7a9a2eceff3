"""Personas and clients shared by the tests.

clinic_a / clinic_b: two clinics; staff works in A, other_staff in B; specialist sees
referred cases only; admin_user sees everything; api_client is anonymous; client_for and
web_client sign a given persona in to the API and to the web pages.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import User
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
def specialist(db):
    return UserFactory(username="sam", role=User.Role.SPECIALIST)


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
def personas(staff, other_staff, specialist, admin_user):
    return {
        "anonymous": None,
        "staff": staff,
        "other_staff": other_staff,
        "specialist": specialist,
        "admin": admin_user,
    }
