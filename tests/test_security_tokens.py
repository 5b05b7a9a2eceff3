"""API tokens: stored as digests, expire when idle and at a maximum age, revoked on logout,
password change and deactivation, and not shown in the admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from tests.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token/"
NEW_PASSWORD = "another long passphrase 42"


def issue(user) -> str:
    response = APIClient().post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    return response.json()["token"]


def status_with(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/patients/").status_code


def test_the_token_is_stored_only_as_a_digest(staff):
    token = issue(staff)

    stored = AuthToken.objects.get(user=staff)
    assert stored.digest == hash_token(token)
    assert token not in (stored.digest, stored.token_key)
    assert status_with(token) == 200


def test_tokens_are_not_listed_in_the_admin(staff, admin_user, client):
    issue(staff)
    client.force_login(admin_user)

    assert client.get("/admin/knox/authtoken/").status_code == 404
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_default_lifetimes_are_twelve_idle_hours_and_seven_days(staff):
    before = timezone.now()
    issue(staff)

    expiry = AuthToken.objects.get(user=staff).expiry
    assert before + timedelta(hours=12) <= expiry <= timezone.now() + timedelta(hours=12)
    from knox.settings import knox_settings

    assert knox_settings.AUTO_REFRESH_MAX_TTL == timedelta(days=7)


def test_an_idle_token_expires(staff):
    token = issue(staff)
    AuthToken.objects.filter(user=staff).update(expiry=timezone.now() - timedelta(seconds=1))

    assert status_with(token) == 401
    assert not AuthToken.objects.filter(user=staff).exists()


def test_use_keeps_a_token_alive_but_not_past_its_maximum_age(staff):
    token = issue(staff)
    soon = timezone.now() + timedelta(minutes=5)
    AuthToken.objects.filter(user=staff).update(expiry=soon)
    assert status_with(token) == 200
    assert AuthToken.objects.get(user=staff).expiry > timezone.now() + timedelta(hours=11)

    created = timezone.now() - timedelta(days=7) + timedelta(hours=2)
    AuthToken.objects.filter(user=staff).update(created=created, expiry=soon)
    assert status_with(token) == 200

    # Renewed only up to seven days after issue, not twelve hours on.
    assert AuthToken.objects.get(user=staff).expiry == created + timedelta(days=7)


def test_logout_revokes_the_token_it_is_sent_with(staff):
    token, other = issue(staff), issue(staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.post("/api/v1/auth/logout/").status_code == 204

    assert status_with(token) == 401
    assert status_with(other) == 200
    assert AuditEvent.objects.filter(action="auth.token_revoke", actor=staff).count() == 1


def test_logout_needs_a_signed_in_user(db):
    assert APIClient().post("/api/v1/auth/logout/").status_code == 401


def test_a_password_change_revokes_every_token(staff):
    tokens = [issue(staff), issue(staff)]

    staff.set_password("another long passphrase 42")
    staff.save()

    assert [status_with(token) for token in tokens] == [401, 401]
    assert AuditEvent.objects.filter(action="user.password_change", object_id=str(staff.pk)).exists()


def test_the_web_password_change_revokes_tokens_and_is_audited(staff, client):
    token = issue(staff)
    client.force_login(staff)

    response = client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert status_with(token) == 401
    event = AuditEvent.objects.get(action="user.password_change")
    assert event.actor == staff


def test_deactivation_revokes_every_token(staff, admin_user, client):
    token = issue(staff)
    client.force_login(admin_user)

    client.post("/admin/accounts/user/", {"action": "deactivate", "_selected_action": [staff.pk], "index": 0})

    assert status_with(token) == 401
    assert not AuthToken.objects.filter(user=staff).exists()


@pytest.mark.parametrize("header", ["Token", "Token abc def", "Token not-a-real-token-at-all"])
def test_malformed_or_unknown_tokens_are_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert client.get("/api/v1/patients/").status_code == 401
