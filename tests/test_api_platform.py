"""API plumbing: tokens, JSON errors, health check, schema and docs."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from tests.factories import PASSWORD


def test_token_is_issued_for_valid_credentials_and_works(staff, api_client):
    response = api_client.post("/api/v1/auth/token/", {"username": staff.username, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/patients/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.token", actor=staff).exists()


def test_token_is_refused_for_wrong_password_with_a_json_message(staff, api_client):
    response = api_client.post("/api/v1/auth/token/", {"username": staff.username, "password": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["non_field_errors"]


def test_token_is_refused_for_inactive_user(staff, api_client):
    staff.is_active = False
    staff.save(update_fields=["is_active"])

    response = api_client.post("/api/v1/auth/token/", {"username": staff.username, "password": PASSWORD}, format="json")

    assert response.status_code == 400


def test_session_login_works_for_the_api(staff, client):
    client.force_login(staff)

    assert client.get("/api/v1/cases/").status_code == 200


def test_unexpected_error_in_api_is_json_500(staff, client_for, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("diagnosis.apis.case_list_for", broken)

    response = client_for(staff).get("/api/v1/cases/")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}


def test_unknown_api_path_is_json_404(staff, client_for):
    response = client_for(staff).get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_healthz_needs_no_login_and_no_database(client):
    # No db fixture: pytest-django makes any database access fail this test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/patients/", "/api/v1/cases/", "/api/v1/cases/{id}/", "/api/v1/auth/token/"} <= set(paths)
    assert docs.status_code == 200


def test_web_login_page_and_logout_by_post(staff, client):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})
    assert response.status_code == 302

    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302


def test_a_database_outage_is_a_503_with_retry_after_not_a_500(staff, client_for, monkeypatch):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("patients.apis.patient_list_for", down)
    monkeypatch.setattr("diagnosis.views.patient_list_for", down)
    client = client_for(staff)

    api = client.get("/api/v1/patients/")
    client.force_login(staff)
    web = client.get("/patients/")

    for response in (api, web):
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
