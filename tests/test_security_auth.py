"""Sign-in: failures lock out per username and address, attempts are rate-limited per address,
sessions end when idle, and sign-ins, failures, lockouts and unlocks are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.sessions.models import Session
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from tests.factories import PASSWORD, PatientFactory, UserFactory

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def low_login_limits(settings):
    """Five attempts a minute per address; three failures per username and address lock out."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "5/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    settings.AXES_FAILURE_LIMIT = 3


def token_attempt(username: str, password: str = "wrong", address: str = "198.51.100.1", **headers):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=address, **headers
    )


def test_failures_lock_out_the_username_at_that_address_only(staff, low_login_limits):
    # The third failure is the one that locks out.
    statuses = [token_attempt(staff.username, address="198.51.100.1").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]

    locked = token_attempt(staff.username, PASSWORD, address="198.51.100.1")

    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/json"
    assert "Too many failed sign-in attempts" in locked.json()["detail"]
    # Someone else's guesses do not lock the real user out from where they work.
    assert token_attempt(staff.username, PASSWORD, address="203.0.113.7").status_code == 200
    assert AuditEvent.objects.filter(action="auth.lockout", details__username=staff.username).exists()


@pytest.mark.parametrize("spellings", [["ｐrobe", "p\U0001d42bobe", "PROBE"], ["ｐｒｏｂｅ", " probe ", "Probe"]])
def test_unicode_and_case_variants_of_a_username_share_its_failure_count(db, low_login_limits, spellings):
    UserFactory(username="probe")
    statuses = [token_attempt(spelling).status_code for spelling in spellings]

    assert statuses == [400, 400, 429]
    assert token_attempt("probe", PASSWORD).status_code == 429


def test_fullwidth_spelling_signs_in_on_the_web_as_the_user_it_normalises_to(db, client):
    probe = UserFactory(username="probe")

    response = client.post("/accounts/login/", {"username": "ｐrobe", "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(probe.pk)


def test_only_failures_count_and_success_resets_the_count(staff, low_login_limits, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "100/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    for _ in range(4):
        assert token_attempt(staff.username, PASSWORD).status_code == 200
        assert token_attempt(staff.username).status_code == 400
        assert token_attempt(staff.username).status_code == 400

    assert token_attempt(staff.username, PASSWORD).status_code == 200


def test_an_administrator_unlocks_a_locked_out_user_and_it_is_audited(staff, admin_user, client, low_login_limits):
    for _ in range(3):
        token_attempt(staff.username)
    assert token_attempt(staff.username, PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username=staff.username)
    client.force_login(admin_user)

    response = client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert token_attempt(staff.username, PASSWORD).status_code == 200
    unlock = AuditEvent.objects.get(action="auth.unlock")
    assert unlock.actor == admin_user
    assert unlock.details == {"username": staff.username, "address": "198.51.100.1"}


def test_token_attempts_from_one_address_are_rate_limited_across_usernames(db, low_login_limits):
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
    assert event.details == {"username": staff.username, "via": "api"}
    assert event.ip_address == "203.0.113.5"


def test_web_login_locks_out_and_says_so(staff, client, low_login_limits):
    for _ in range(2):
        response = client.post("/accounts/login/", {"username": staff.username, "password": "wrong"})
        assert response.status_code == 200
    assert client.post("/accounts/login/", {"username": staff.username, "password": "wrong"}).status_code == 429

    response = client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_login_locks_out(admin_user, client, low_login_limits):
    for _ in range(3):
        client.post("/admin/login/", {"username": admin_user.username, "password": "wrong"})

    response = client.post("/admin/login/", {"username": admin_user.username, "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_web_and_admin_sign_ins_failures_and_sign_outs_are_audited(staff, admin_user, client):
    client.post("/accounts/login/", {"username": staff.username, "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})
    client.post("/accounts/logout/")
    client.post("/admin/login/", {"username": admin_user.username, "password": PASSWORD})

    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert (failed.details, failed.ip_address) == ({"username": staff.username, "via": "web"}, "203.0.113.9")
    logins = AuditEvent.objects.filter(action="auth.login").order_by("id")
    assert [(event.actor, event.details["via"]) for event in logins] == [(staff, "web"), (admin_user, "admin")]
    assert AuditEvent.objects.filter(action="auth.logout", actor=staff).count() == 1


def test_web_session_ends_after_the_idle_timeout(staff, client, settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})
    assert client.get("/").status_code == 200
    # Every request moves the expiry on; a session idle past it is gone.
    session = Session.objects.get(session_key=client.session.session_key)
    assert session.expire_date > timezone.now() + timedelta(minutes=29)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


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
