"""The audit log: who read or changed what, when, and from where."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from accounts.models import AuditEvent
from accounts.services import audit_record, client_ip
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory


@pytest.fixture
def case(clinic_a, staff):
    return CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), submitted_by=staff)


def test_reading_a_case_records_actor_action_object_and_address(case, staff, client_for):
    response = client_for(staff).get(
        f"/api/v1/cases/{case.pk}/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="ClinicTablet/1.0"
    )

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="case.view")
    assert event.actor == staff
    assert (event.object_type, event.object_id) == ("case", str(case.pk))
    assert event.clinic == case.patient.clinic
    assert event.ip_address == "203.0.113.7"
    assert event.user_agent == "ClinicTablet/1.0"
    assert event.created_at is not None


def test_downloading_an_image_is_audited(case, staff, client_for):
    image = LesionImageFactory(case=case)

    client_for(staff).get(f"/media/lesions/{image.pk}/")

    assert AuditEvent.objects.filter(action="image.view", object_id=str(image.pk), actor=staff).count() == 1


def test_refused_read_of_other_clinics_case_writes_no_view_event(case, other_staff, client_for):
    assert client_for(other_staff).get(f"/api/v1/cases/{case.pk}/").status_code == 404

    assert not AuditEvent.objects.filter(action="case.view").exists()


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.SKINPORTAL_TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="10.9.9.9")

    assert client_ip(request) == "198.51.100.1"


def test_forwarded_for_is_used_behind_a_trusted_proxy(settings):
    settings.SKINPORTAL_TRUSTED_PROXIES = ["10.0.0.2"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.2")

    # The right-most address the trusted proxies did not add is the client; the left-most
    # one is whatever the client claimed and is not believed.
    assert client_ip(request) == "203.0.113.9"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    settings.SKINPORTAL_TRUSTED_PROXIES = ["10.0.0.2"]
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert client_ip(request) == "198.51.100.1"


def test_audit_record_without_request_or_object(staff):
    event = audit_record(actor=staff, action="report.export", details={"rows": 3})

    assert (event.object_type, event.object_id, event.ip_address) == ("", "", None)
    assert event.details == {"rows": 3}


def test_audit_log_is_read_only_in_admin(admin_user, case, client):
    audit_record(actor=admin_user, action="case.view", obj=case)
    event = AuditEvent.objects.get()
    client.force_login(admin_user)

    assert client.get("/admin/accounts/auditevent/").status_code == 200
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "case.view"


@pytest.mark.parametrize(
    "url",
    ["/api/v1/cases/{case}/", "/api/v1/patients/{patient}/", "/media/lesions/{image}/", "/cases/{case}/"],
)
def test_reaching_for_another_clinics_object_is_a_404_and_an_audit_event(
    case, other_staff, client_for, web_client, url
):
    image = LesionImageFactory(case=case)
    target = url.format(case=case.pk, patient=case.patient.pk, image=image.pk)
    client = web_client(other_staff) if not target.startswith(("/api/", "/media/")) else client_for(other_staff)

    response = client.get(target)

    assert response.status_code == 404
    event = AuditEvent.objects.get(action="access.denied")
    assert event.actor == other_staff
    assert event.details["path"] == target


def test_a_missing_object_is_a_404_without_a_denial_event(staff, client_for):
    assert client_for(staff).get("/api/v1/cases/987654/").status_code == 404
    assert not AuditEvent.objects.filter(action="access.denied").exists()
