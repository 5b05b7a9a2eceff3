"""Names, identifiers and notes are normalised; dates of birth before 1900 are refused."""

from __future__ import annotations

import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis.models import Case
from patients.models import Patient
from skinportal.text import NOTES_MAX_LENGTH
from tests.factories import PatientFactory, image_bytes

PATIENTS = "/api/v1/patients/"


def payload(**changes):
    return {
        "identifier": "P-100",
        "full_name": "Zoë Ødegård",
        "date_of_birth": "1970-03-02",
        "sex": "female",
        "consent_given": True,
        **changes,
    }


def test_names_and_identifiers_are_stored_in_nfc(staff, clinic_a, client_for):
    decomposed = unicodedata.normalize("NFD", "Zoë Ødegård")
    assert decomposed != "Zoë Ødegård"

    response = client_for(staff).post(PATIENTS, payload(full_name=f"  {decomposed} "), format="json")

    assert response.status_code == 201
    assert Patient.objects.get().full_name == unicodedata.normalize("NFC", "Zoë Ødegård")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "Ada \u202eObi"),  # right-to-left override
        ("identifier", "P-\u2066100"),  # left-to-right isolate
        ("identifier", "P-1\u200b00"),  # zero-width space
        ("full_name", "Ada\ufeffObi"),  # byte-order mark
        ("identifier", "P-1\x0700"),  # a control character
    ],
)
def test_invisible_and_direction_changing_characters_are_refused(staff, clinic_a, client_for, field, value):
    response = client_for(staff).post(PATIENTS, payload(**{field: value}), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert Patient.objects.count() == 0


def test_identifiers_are_compared_case_insensitively_within_a_clinic(staff, clinic_a, clinic_b, client_for):
    PatientFactory(clinic=clinic_a, identifier="abc-7")
    PatientFactory(clinic=clinic_b, identifier="XYZ-1")

    duplicate = client_for(staff).post(PATIENTS, payload(identifier="ABC-7"), format="json")
    other_clinic_same_number = client_for(staff).post(PATIENTS, payload(identifier="xyz-1"), format="json")

    assert duplicate.status_code == 400
    assert "already registered" in duplicate.json()["identifier"][0]
    assert other_clinic_same_number.status_code == 201


def test_the_database_refuses_case_variants_of_an_identifier_too(clinic_a):
    from django.db import IntegrityError, transaction

    PatientFactory(clinic=clinic_a, identifier="abc-7")
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.create(
            clinic=clinic_a,
            identifier="ABC-7",
            full_name="X",
            date_of_birth="1970-01-01",
            created_by=PatientFactory(clinic=clinic_a).created_by,
        )


@pytest.mark.parametrize(("date", "status"), [("1899-12-31", 400), ("1900-01-01", 201)])
def test_dates_of_birth_before_1900_are_refused(staff, clinic_a, client_for, date, status):
    response = client_for(staff).post(PATIENTS, payload(date_of_birth=date), format="json")

    assert response.status_code == status
    if status == 400:
        assert "1900" in response.json()["date_of_birth"][0]


def test_notes_have_a_documented_maximum_length(staff, clinic_a, client_for):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)

    def submit(notes: str):
        photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")
        data = {"patient": patient.pk, "body_site": "back", "notes": notes, "images": [photo]}
        return client_for(staff).post("/api/v1/cases/", data, format="multipart")

    assert submit("x" * (NOTES_MAX_LENGTH + 1)).status_code == 400
    assert submit("Darker at one edge.\nItches at night.").status_code == 201
    assert submit("mole \u202eevil").status_code == 400
    assert Case.objects.count() == 1
    schema = client_for(staff).get("/api/schema/?format=json").json()
    notes = schema["components"]["schemas"]["CaseInputRequest"]["properties"]["notes"]
    # Notes may be empty: the schema offers text of the documented length, or nothing.
    assert max(branch.get("maxLength", 0) for branch in notes.get("oneOf", [notes])) == NOTES_MAX_LENGTH
