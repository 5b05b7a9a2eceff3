"""Patients API: registration, validation, listing and search."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from patients.models import Patient
from tests.factories import PatientFactory

URL = "/api/v1/patients/"


def payload(**overrides):
    data = {
        "identifier": "KAS-0042",
        "full_name": "Grace Mwangi",
        "date_of_birth": "1975-03-09",
        "sex": "female",
        "skin_type": "V",
        "consent_given": True,
    }
    data.update(overrides)
    return data


def test_staff_registers_patient_in_their_only_clinic(staff, clinic_a, client_for):
    response = client_for(staff).post(URL, payload(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["clinic"] == clinic_a.pk
    assert body["identifier"] == "KAS-0042"
    assert body["skin_type"] == "V"
    patient = Patient.objects.get(pk=body["id"])
    assert patient.created_by == staff
    assert patient.consent_recorded_by == staff
    assert patient.consent_recorded_at is not None
    assert AuditEvent.objects.filter(action="patient.create", object_id=str(patient.pk), actor=staff).exists()


def test_staff_in_two_clinics_must_choose_one(staff, clinic_a, clinic_b, client_for):
    staff.clinics.add(clinic_b)

    response = client_for(staff).post(URL, payload(), format="json")

    assert response.status_code == 400
    assert "clinic" in response.json()


def test_staff_cannot_register_patient_in_other_clinic(staff, clinic_b, client_for):
    response = client_for(staff).post(URL, payload(clinic=clinic_b.pk), format="json")

    assert response.status_code == 400
    assert response.json() == {"clinic": ["Unknown clinic."]}
    assert not Patient.objects.exists()


def test_specialist_cannot_register_patients(specialist, client_for):
    assert client_for(specialist).post(URL, payload(), format="json").status_code == 403


def test_patient_without_consent_can_be_registered_but_records_no_consent(staff, client_for):
    response = client_for(staff).post(URL, payload(consent_given=False), format="json")

    assert response.status_code == 201
    patient = Patient.objects.get()
    assert patient.consent_given is False
    assert patient.consent_recorded_at is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"date_of_birth": "09/03/1975"}, "date_of_birth"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"sex": "f"}, "sex"),
        ({"skin_type": "VII"}, "skin_type"),
        ({"identifier": ""}, "identifier"),
        ({"consent_given": None}, "consent_given"),
    ],
)
def test_invalid_patient_fields_give_a_message_per_field(staff, client_for, overrides, field):
    response = client_for(staff).post(URL, payload(**overrides), format="json")

    assert response.status_code == 400
    body = response.json()
    assert field in body and isinstance(body[field], list) and body[field][0]


def test_identifier_is_unique_within_a_clinic(staff, clinic_a, client_for):
    PatientFactory(clinic=clinic_a, identifier="KAS-0042")

    response = client_for(staff).post(URL, payload(), format="json")

    assert response.status_code == 400
    assert response.json() == {"identifier": ["A patient with this number is already registered in this clinic."]}


def test_same_identifier_is_allowed_in_another_clinic(staff, clinic_b, client_for):
    PatientFactory(clinic=clinic_b, identifier="KAS-0042")

    assert client_for(staff).post(URL, payload(), format="json").status_code == 201


def test_list_is_paginated_and_searchable(staff, clinic_a, client_for):
    PatientFactory(clinic=clinic_a, identifier="A-1", full_name="Amina Odhiambo")
    PatientFactory(clinic=clinic_a, identifier="B-2", full_name="Brian Otieno")
    client = client_for(staff)

    listing = client.get(URL).json()
    by_name = client.get(URL, {"search": "amina"}).json()
    by_identifier = client.get(URL, {"search": "b-2"}).json()

    assert set(listing) == {"count", "next", "previous", "results"}
    assert listing["count"] == 2
    assert [row["full_name"] for row in by_name["results"]] == ["Amina Odhiambo"]
    assert [row["identifier"] for row in by_identifier["results"]] == ["B-2"]


def test_patient_detail_is_audited(staff, clinic_a, client_for):
    patient = PatientFactory(clinic=clinic_a)

    response = client_for(staff).get(f"{URL}{patient.pk}/")

    assert response.status_code == 200
    assert response.json()["full_name"] == patient.full_name
    assert AuditEvent.objects.filter(action="patient.view", object_id=str(patient.pk), actor=staff).count() == 1
