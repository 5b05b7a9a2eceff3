"""Recording a patient's consent after registration, and withdrawing it: service, API, web page."""

from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape

from accounts.models import AuditEvent
from patients.forms import CONSENT_WORDING
from patients.services import patient_consent_record
from tests.factories import CaseFactory, PatientFactory, image_bytes

pytestmark = pytest.mark.django_db


def consent_url(patient) -> str:
    return f"/api/v1/patients/{patient.pk}/consent/"


@pytest.fixture
def unconsented(clinic_a, staff):
    """A clinic A patient registered without consent."""
    return PatientFactory(
        clinic=clinic_a,
        created_by=staff,
        consent_given=False,
        consent_recorded_at=None,
        consent_recorded_by=None,
    )


@pytest.fixture
def consented(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def consent_events(patient):
    return AuditEvent.objects.filter(action="patient.consent", object_id=str(patient.pk))


# --- Service ---------------------------------------------------------------------------------
def test_staff_records_consent_for_their_clinics_patient(staff, unconsented):
    patient = patient_consent_record(actor=staff, patient=unconsented, consent_given=True)

    unconsented.refresh_from_db()
    assert patient.consent_given is True
    assert unconsented.consent_given is True
    assert unconsented.consent_recorded_by == staff
    assert unconsented.consent_recorded_at is not None
    event = consent_events(unconsented).get()
    assert event.actor == staff
    assert event.details == {"consent_given": True, "previous": False}


def test_withdrawing_consent_is_recorded_and_audited(staff, admin_user, consented):
    patient_consent_record(actor=admin_user, patient=consented, consent_given=False)

    consented.refresh_from_db()
    assert consented.consent_given is False
    assert consented.consent_recorded_by == admin_user
    assert consented.consent_recorded_at is not None
    assert consent_events(consented).get().details == {"consent_given": False, "previous": True}


def test_staff_cannot_record_consent_for_other_clinics_patient(other_staff, unconsented):
    with pytest.raises(PermissionDenied):
        patient_consent_record(actor=other_staff, patient=unconsented, consent_given=True)

    unconsented.refresh_from_db()
    assert unconsented.consent_given is False
    assert not consent_events(unconsented).exists()


def test_specialist_cannot_record_consent(specialist, unconsented):
    with pytest.raises(PermissionDenied):
        patient_consent_record(actor=specialist, patient=unconsented, consent_given=True)

    unconsented.refresh_from_db()
    assert unconsented.consent_given is False


# --- API -------------------------------------------------------------------------------------
def test_consent_recorded_through_the_api_lets_a_case_be_submitted(staff, unconsented, client_for):
    client = client_for(staff)
    case_payload = {
        "patient": unconsented.pk,
        "body_site": "back",
        "images": [SimpleUploadedFile("lesion.jpg", image_bytes(), content_type="image/jpeg")],
    }
    assert client.post("/api/v1/cases/", case_payload, format="multipart").status_code == 400

    response = client.post(consent_url(unconsented), {"consent_given": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["consent_given"] is True
    assert response.json()["consent_recorded_at"] is not None
    assert response["Cache-Control"] == "private, no-store"
    case_payload["images"] = [SimpleUploadedFile("lesion.jpg", image_bytes(), content_type="image/jpeg")]
    assert client.post("/api/v1/cases/", case_payload, format="multipart").status_code == 201


def test_consent_withdrawn_through_the_api_refuses_new_cases(staff, consented, client_for):
    client = client_for(staff)

    response = client.post(consent_url(consented), {"consent_given": False}, format="json")

    assert response.status_code == 200
    assert response.json()["consent_given"] is False
    case_payload = {
        "patient": consented.pk,
        "body_site": "back",
        "images": [SimpleUploadedFile("lesion.jpg", image_bytes(), content_type="image/jpeg")],
    }
    refused = client.post("/api/v1/cases/", case_payload, format="multipart")
    assert refused.status_code == 400
    assert "consent" in refused.json()["patient"][0]


@pytest.mark.parametrize("body", [{}, {"consent_given": "yes"}, {"consent_given": 1}, {"consent_given": None}])
def test_consent_must_be_said_as_true_or_false(staff, unconsented, client_for, body):
    response = client_for(staff).post(consent_url(unconsented), body, format="json")

    assert response.status_code == 400
    assert "consent_given" in response.json()
    unconsented.refresh_from_db()
    assert unconsented.consent_given is False
    assert not consent_events(unconsented).exists()


def test_staff_cannot_record_consent_for_other_clinics_patient_through_api(other_staff, unconsented, client_for):
    response = client_for(other_staff).post(consent_url(unconsented), {"consent_given": True}, format="json")

    assert response.status_code == 404
    unconsented.refresh_from_db()
    assert unconsented.consent_given is False


def test_specialist_of_a_referred_case_may_not_change_consent(specialist, consented, client_for):
    CaseFactory(patient=consented, referred=True)

    response = client_for(specialist).post(consent_url(consented), {"consent_given": False}, format="json")

    assert response.status_code == 404  # specialists have no patient records
    consented.refresh_from_db()
    assert consented.consent_given is True
    assert not consent_events(consented).exists()


def test_consent_endpoint_is_in_the_openapi_schema(tmp_path):
    schema_file = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema_file))

    schema = yaml.safe_load(schema_file.read_text())
    operation = schema["paths"]["/api/v1/patients/{id}/consent/"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][request_schema]["required"] == ["consent_given"]
    assert "200" in operation["responses"]


# --- Web page --------------------------------------------------------------------------------
def test_patient_page_offers_staff_to_record_consent(web_client, staff, unconsented):
    page = web_client(staff).get(reverse("web:patient-detail", args=[unconsented.pk])).content.decode()

    assert escape(str(CONSENT_WORDING)) in page
    assert reverse("web:patient-consent", args=[unconsented.pk]) in page
    assert "Record consent" in page
    assert "An administrator can record consent" not in page


def test_staff_records_consent_on_the_patient_page(web_client, staff, unconsented):
    client = web_client(staff)

    response = client.post(reverse("web:patient-consent", args=[unconsented.pk]), {"consent_given": "true"})

    assert response.status_code == 302
    assert response["Location"] == reverse("web:patient-detail", args=[unconsented.pk])
    unconsented.refresh_from_db()
    assert unconsented.consent_given is True
    assert unconsented.consent_recorded_by == staff
    assert consent_events(unconsented).get().actor == staff
    page = client.get(response["Location"]).content.decode()
    assert "Withdraw consent" in page
    assert reverse("web:case-create", args=[unconsented.pk]) in page


def test_staff_withdraws_consent_on_the_patient_page(web_client, staff, consented):
    client = web_client(staff)
    url = reverse("web:patient-consent", args=[consented.pk])

    # One tap asks again; nothing is recorded until the withdrawal is confirmed.
    question = client.post(url, {"consent_given": "false"})
    assert question.status_code == 200
    assert b"Yes, withdraw consent" in question.content
    consented.refresh_from_db()
    assert consented.consent_given is True and not consent_events(consented).exists()

    response = client.post(url, {"consent_given": "false", "confirm": "yes"})

    assert response.status_code == 302
    consented.refresh_from_db()
    assert consented.consent_given is False
    page = client.get(response["Location"]).content.decode()
    assert "Withdrawn" in page
    assert "Record consent" in page
    assert reverse("web:case-create", args=[consented.pk]) not in page


def test_unknown_consent_value_changes_nothing(web_client, staff, unconsented):
    response = web_client(staff).post(reverse("web:patient-consent", args=[unconsented.pk]), {"consent_given": "on"})

    assert response.status_code == 302
    unconsented.refresh_from_db()
    assert unconsented.consent_given is False
    assert not consent_events(unconsented).exists()


def test_specialist_sees_no_consent_buttons_and_cannot_post_them(web_client, specialist, unconsented):
    CaseFactory(patient=unconsented, referred=True)
    client = web_client(specialist)

    page = client.get(reverse("web:patient-detail", args=[unconsented.pk]))
    response = client.post(reverse("web:patient-consent", args=[unconsented.pk]), {"consent_given": "true"})

    assert page.status_code == 404  # specialists have no patient pages
    assert response.status_code == 404
    unconsented.refresh_from_db()
    assert unconsented.consent_given is False


def test_staff_cannot_record_consent_for_other_clinics_patient_on_the_web(web_client, other_staff, unconsented):
    response = web_client(other_staff).post(
        reverse("web:patient-consent", args=[unconsented.pk]), {"consent_given": "true"}
    )

    assert response.status_code == 404
    unconsented.refresh_from_db()
    assert unconsented.consent_given is False


def test_anonymous_consent_post_goes_to_sign_in(client, unconsented):
    response = client.post(reverse("web:patient-consent", args=[unconsented.pk]), {"consent_given": "true"})

    assert response.status_code == 302
    assert "login" in response["Location"]
    unconsented.refresh_from_db()
    assert unconsented.consent_given is False


def test_consent_cannot_be_changed_with_get(web_client, staff, unconsented):
    response = web_client(staff).get(reverse("web:patient-consent", args=[unconsented.pk]))

    assert response.status_code == 405


@pytest.mark.parametrize("body", [{}, {"other": "x"}])
def test_a_consent_form_without_the_answer_is_refused_not_read_as_a_withdrawal(staff, consented, client_for, body):
    events_before = consent_events(consented).count()
    response = client_for(staff).post(consent_url(consented), body, format="multipart")

    assert response.status_code == 400
    assert "consent_given" in response.json()
    consented.refresh_from_db()
    assert consented.consent_given is True
    assert consent_events(consented).count() == events_before
