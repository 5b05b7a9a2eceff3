"""Bad input and failures in the API: a JSON 4xx with a message, never a 500 or an HTML page."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.models import Patient
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, image_bytes

PATIENTS_URL = "/api/v1/patients/"
CASES_URL = "/api/v1/cases/"


def patient_payload(**overrides) -> dict:
    payload = {
        "identifier": "P-77",
        "full_name": "Amina Test",
        "date_of_birth": "1985-03-02",
        "sex": "female",
        "consent_given": True,
    }
    payload.update(overrides)
    return payload


@pytest.mark.parametrize("value", ["yes", "1", 1, "on", "maybe"])
def test_consent_must_be_said_as_true_or_false(staff, clinic_a, client_for, value):
    response = client_for(staff).post(PATIENTS_URL, patient_payload(consent_given=value), format="json")

    assert response.status_code == 400
    assert response.json()["consent_given"] == ["Must be true or false."]
    assert not Patient.objects.exists()


def test_consent_given_as_a_form_word_is_accepted(staff, clinic_a, client_for):
    response = client_for(staff).post(PATIENTS_URL, patient_payload(consent_given="true"), format="multipart")

    assert response.status_code == 201, response.content
    assert Patient.objects.get().consent_given is True


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"patient": "²"}, "patient"),  # a digit to str.isdigit(), not to int()
        ({"patient": "1.5"}, "patient"),  # not an integer
        ({"status": "deleted"}, "status"),
    ],
)
def test_bad_case_list_filters_are_400(staff, client_for, query, field):
    response = client_for(staff).get(CASES_URL, query)

    assert response.status_code == 400
    assert field in response.json()


def test_patient_filter_cannot_reach_another_clinics_cases(staff, clinic_b, other_staff, client_for):
    other_case = CaseFactory(patient=PatientFactory(clinic=clinic_b, created_by=other_staff), submitted_by=other_staff)

    response = client_for(staff).get(CASES_URL, {"patient": other_case.patient_id})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_json_body_over_the_memory_limit_is_413_before_it_is_parsed(staff, clinic_a, client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = client_for(staff).post(
        PATIENTS_URL, json.dumps(patient_payload(full_name="x" * 5000)), content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "The request is too large."}


def test_multipart_fields_over_the_memory_limit_are_413(staff, clinic_a, client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    patient = PatientFactory(clinic=clinic_a)

    response = client_for(staff).post(
        CASES_URL,
        {
            "patient": patient.pk,
            "body_site": "back",
            "notes": "x" * 5000,
            "images": [SimpleUploadedFile("a.jpg", image_bytes())],
        },
        format="multipart",
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"


def test_too_many_form_fields_is_400(staff, clinic_a, client_for, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    patient = PatientFactory(clinic=clinic_a)

    response = client_for(staff).post(
        CASES_URL,
        {"patient": patient.pk, "body_site": "back", "image_kinds": ["overview"] * 10},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Too many fields in one request."}


def test_identifier_taken_by_a_concurrent_request_is_400_not_500(staff, clinic_a, client_for, monkeypatch):
    """full_clean() passed before the other request saved; the database's unique constraint decides."""
    PatientFactory(clinic=clinic_a, identifier="P-77")
    monkeypatch.setattr(Patient, "validate_constraints", lambda self, exclude=None: None)

    response = client_for(staff).post(PATIENTS_URL, patient_payload(), format="json")

    assert response.status_code == 400
    assert "already registered" in response.json()["identifier"][0]
    assert Patient.objects.filter(identifier="P-77").count() == 1


def test_unexpected_error_is_logged_and_answered_without_details(staff, client_for, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("secret connection string postgres://portal:hunter2@db")

    monkeypatch.setattr("patients.apis.patient_list_for", broken)

    with caplog.at_level(logging.ERROR, logger="diagnosis.apis"):
        response = client_for(staff).get(PATIENTS_URL)

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
    assert b"hunter2" not in response.content and b"Traceback" not in response.content
    assert any("hunter2" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "expected"),
    [
        ("delete", PATIENTS_URL, {}, 405),
        ("post", PATIENTS_URL, {"data": "x", "content_type": "text/plain"}, 415),
        ("post", PATIENTS_URL, {"data": "{not json", "content_type": "application/json"}, 400),
        ("post", CASES_URL, {"data": b"x", "content_type": "multipart/form-data"}, 400),
        ("get", "/api/v1/cases/abc/", {}, 404),
        ("get", "/media/lesions/abc/", {}, 404),
    ],
)
def test_api_errors_are_json(staff, client_for, method, url, kwargs, expected):
    response = getattr(client_for(staff), method)(url, **kwargs)

    assert response.status_code == expected
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_api_responses_with_patient_data_are_not_cached(staff, clinic_a, client_for):
    patient = PatientFactory(clinic=clinic_a)
    client = client_for(staff)

    for url in (PATIENTS_URL, f"{PATIENTS_URL}{patient.pk}/", CASES_URL):
        assert client.get(url)["Cache-Control"] == "private, no-store", url


def test_image_file_headers_are_private_and_safe(staff, clinic_a, client_for):
    image = LesionImageFactory(case=CaseFactory(patient=PatientFactory(clinic=clinic_a)))

    response = client_for(staff).get(f"/media/lesions/{image.pk}/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'inline; filename="lesion-{image.pk}.jpg"'


def test_search_with_a_null_character_is_400(staff, client_for):
    response = client_for(staff).get(PATIENTS_URL, {"search": "Jane\x00"})

    assert response.status_code == 400
    assert "search" in response.json()


def test_case_list_for_an_id_no_patient_can_have_is_empty_not_an_error(staff, client_for):
    # The schema says integer: a negative one, or one past the database's ids, names nobody.
    for value in ("-639", "9" * 30):
        response = client_for(staff).get("/api/v1/cases/", {"patient": value})
        assert response.status_code == 200
        assert response.json()["results"] == []


@pytest.mark.parametrize("page", ["", "x", "1.5"])
def test_a_page_that_is_not_a_number_is_a_404_not_the_first_page(staff, client_for, page):
    for url in ("/api/v1/cases/", "/api/v1/patients/"):
        assert client_for(staff).get(url, {"page": page}).status_code == 404
