"""Who sees what beyond the access matrix: several clinics, no clinic, inactive accounts, the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent, User
from tests.factories import CaseFactory, ClinicFactory, PatientFactory, UserFactory, image_bytes


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def three_clinics(clinic_a, clinic_b):
    clinic_c = ClinicFactory(name="Clinic C")
    cases = {
        clinic.name: CaseFactory(patient=PatientFactory(clinic=clinic)) for clinic in (clinic_a, clinic_b, clinic_c)
    }
    return clinic_c, cases


def test_staff_of_two_clinics_sees_both_and_not_a_third(clinic_a, clinic_b, three_clinics, client_for):
    _, cases = three_clinics
    nurse = UserFactory(username="two-clinics", clinics=[clinic_a, clinic_b])
    client = client_for(nurse)

    expected_cases = {cases["Clinic A"].pk, cases["Clinic B"].pk}
    assert ids(client.get("/api/v1/cases/")) == expected_cases
    assert ids(client.get("/api/v1/patients/")) == {cases["Clinic A"].patient_id, cases["Clinic B"].patient_id}
    assert client.get(f"/api/v1/cases/{cases['Clinic C'].pk}/").status_code == 404


def test_staff_without_a_clinic_sees_nothing_and_gets_clear_messages(three_clinics, client_for):
    _, cases = three_clinics
    loner = UserFactory(username="no-clinic", role=User.Role.CLINIC_STAFF)
    client = client_for(loner)

    assert ids(client.get("/api/v1/cases/")) == set()
    assert ids(client.get("/api/v1/patients/")) == set()
    created = client.post(
        "/api/v1/patients/",
        {"identifier": "N-1", "full_name": "A B", "date_of_birth": "1990-01-01", "sex": "male", "consent_given": True},
        format="json",
    )
    assert created.status_code == 400
    assert "clinic" in created.json()


def test_case_for_another_clinics_patient_looks_like_no_such_patient(staff, clinic_b, other_staff, client_for):
    theirs = PatientFactory(clinic=clinic_b, created_by=other_staff)
    client = client_for(staff)

    def submit(patient_id: int):
        photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")
        return client.post(
            "/api/v1/cases/", {"patient": patient_id, "body_site": "back", "images": [photo]}, format="multipart"
        )

    existing, missing = submit(theirs.pk), submit(theirs.pk + 1000)

    assert existing.status_code == missing.status_code == 400
    assert existing.json() == missing.json() == {"patient": ["Unknown patient."]}
    assert not theirs.cases.exists()


def test_deactivated_user_session_loses_api_access(staff, clinic_a, client):
    patient = PatientFactory(clinic=clinic_a)
    client.force_login(staff)
    staff.is_active = False
    staff.save(update_fields=["is_active"])

    response = client.get(f"/api/v1/patients/{patient.pk}/")

    assert response.status_code in (401, 403)
    assert "full_name" not in response.json()


def test_clinical_records_in_the_admin_are_for_administrators_only(clinic_a, client):
    """A clinic account given admin access and model permissions still cannot list every clinic's patients."""
    PatientFactory(clinic=clinic_a, full_name="Visible Nowhere")
    nurse = UserFactory(username="nurse-with-admin", clinics=[clinic_a], is_staff=True)
    nurse.user_permissions.set(Permission.objects.filter(content_type__app_label__in=("diagnosis", "patients")))
    client.force_login(nurse)

    refused = client.get("/admin/patients/patient/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
    assert b"Visible Nowhere" not in client.get("/admin/", follow=True).content


def test_admin_reads_of_patients_and_cases_are_audited(admin_user, clinic_a, client):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a))
    client.force_login(admin_user)

    assert client.get("/admin/patients/patient/").status_code == 200
    assert client.get(f"/admin/patients/patient/{case.patient_id}/change/").status_code == 200
    assert client.get(f"/admin/diagnosis/case/{case.pk}/change/").status_code == 200

    assert AuditEvent.objects.filter(action="patient.admin_list", actor=admin_user).count() == 1
    viewed = AuditEvent.objects.get(action="patient.admin_view")
    assert (viewed.object_id, viewed.clinic) == (str(case.patient_id), clinic_a)
    assert AuditEvent.objects.filter(action="case.admin_view", object_id=str(case.pk)).count() == 1
