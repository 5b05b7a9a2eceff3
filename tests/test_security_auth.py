"""Sign-in: attempts are limited per address and per username; the audit trail survives."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from tests.factories import PASSWORD, PatientFactory, UserFactory

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def low_login_limits(settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "5/min", "login_user": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def token_attempt(username: str, password: str = "wrong", address: str = "198.51.100.1", **headers):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=address, **headers
    )


def test_token_attempts_for_one_username_are_limited_across_addresses(staff, low_login_limits):
    for number in range(3):
        assert token_attempt(staff.username, address=f"198.51.100.{number + 1}").status_code == 400

    response = token_attempt(staff.username, PASSWORD, address="198.51.100.99")

    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert "throttled" in response.json()["detail"]
    assert token_attempt("somebody-else", address="198.51.100.99").status_code == 400


def test_token_attempts_from_one_address_are_limited_across_usernames(db, low_login_limits):
    for number in range(5):
        assert token_attempt(f"guess{number}").status_code == 400

    assert token_attempt("guess-next").status_code == 429


def test_made_up_forwarded_for_does_not_reset_the_address_budget(db, low_login_limits, settings):
    settings.SKINPORTAL_TRUSTED_PROXIES = []
    for number in range(5):
        token_attempt(f"guess{number}", HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")

    assert token_attempt("guess-next", HTTP_X_FORWARDED_FOR="10.0.0.200").status_code == 429


def test_failed_token_attempt_is_audited(staff):
    token_attempt(staff.username, address="203.0.113.5")

    event = AuditEvent.objects.get(action="auth.token_failed")
    assert event.actor is None
    assert event.details == {"username": staff.username}
    assert event.ip_address == "203.0.113.5"


def test_web_login_is_limited_and_says_so(staff, client, low_login_limits):
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": staff.username, "password": "wrong"})
        assert response.status_code == 200

    response = client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_login_is_limited(admin_user, client, low_login_limits):
    for _ in range(3):
        client.post("/admin/login/", {"username": admin_user.username, "password": "wrong"})

    response = client.post("/admin/login/", {"username": admin_user.username, "password": PASSWORD})

    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_session_authenticated_api_write_needs_the_csrf_token(staff, clinic_a):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    payload = {"identifier": "X-1", "full_name": "A B", "date_of_birth": "1990-01-01", "sex": "male"}

    response = client.post("/api/v1/patients/", {**payload, "consent_given": True}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_deleting_a_user_keeps_their_name_on_the_audit_trail(clinic_a, client_for):
    nurse = UserFactory(username="temp-nurse", clinics=[clinic_a])
    patient = PatientFactory(clinic=clinic_a)
    client_for(nurse).get(f"/api/v1/patients/{patient.pk}/")
    nurse.auth_token.delete()

    nurse.delete()

    event = AuditEvent.objects.get(action="patient.view")
    assert event.actor is None
    assert event.actor_username == "temp-nurse"


def test_granting_clinic_access_and_deactivating_in_the_admin_is_audited(admin_user, clinic_a, clinic_b, client):
    nurse = UserFactory(username="new-nurse", clinics=[clinic_a])
    client.force_login(admin_user)
    change = client.get(f"/admin/accounts/user/{nurse.pk}/change/")
    form = change.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        clinics=[clinic_a.pk, clinic_b.pk],
        groups=[],
        user_permissions=[],
        last_login_0="",
        last_login_1="",
        date_joined_0="2026-01-01",
        date_joined_1="09:00:00",
    )

    response = client.post(f"/admin/accounts/user/{nurse.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    client.post("/admin/accounts/user/", {"action": "deactivate", "_selected_action": [nurse.pk], "index": 0})

    grant = AuditEvent.objects.get(action="user.clinics_change")
    assert (grant.actor, grant.object_id) == (admin_user, str(nurse.pk))
    assert grant.details == {"clinics": sorted([clinic_a.pk, clinic_b.pk])}
    assert AuditEvent.objects.filter(action="user.deactivate", object_id=str(nurse.pk)).count() == 1
