"""Correcting a patient's details (audited with old and new values), phone and village."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.models import AuditEvent
from patients.models import Patient
from patients.services import patient_update
from tests.factories import CaseFactory, PatientFactory


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(
        clinic=clinic_a,
        created_by=staff,
        identifier="KE-1",
        full_name="Wanjiru Kamau",
        date_of_birth=datetime.date(1970, 3, 2),
    )


def _form(patient, **changes):
    data = {
        "identifier": patient.identifier,
        "full_name": patient.full_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "sex": patient.sex,
        "skin_type": patient.skin_type,
        "phone": patient.phone,
        "village": patient.village,
    }
    return {**data, **changes}


def test_staff_corrects_details_and_the_audit_keeps_old_and_new_values(patient, staff, web_client):
    client = web_client(staff)
    url = reverse("web:patient-edit", args=[patient.pk])
    assert client.get(url).status_code == 200

    response = client.post(
        url,
        _form(
            patient, full_name="Wanjiru Njeri", date_of_birth="1971-03-02", phone="+254 712 345 678", village="Kibera"
        ),
    )

    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.full_name, patient.date_of_birth) == ("Wanjiru Njeri", datetime.date(1971, 3, 2))
    assert (patient.phone, patient.village) == ("+254 712 345 678", "Kibera")
    event = AuditEvent.objects.get(action="patient.update", object_id=str(patient.pk))
    assert event.actor == staff
    assert event.details["changes"] == {
        "full_name": {"old": "Wanjiru Kamau", "new": "Wanjiru Njeri"},
        "date_of_birth": {"old": "1970-03-02", "new": "1971-03-02"},
        "phone": {"old": "", "new": "+254 712 345 678"},
        "village": {"old": "", "new": "Kibera"},
    }
    page = client.get(response["Location"]).content.decode()
    assert "Kibera" in page and 'href="tel:+254 712 345 678"' in page


def test_saving_without_changes_writes_no_audit_event(patient, staff, web_client):
    web_client(staff).post(reverse("web:patient-edit", args=[patient.pk]), _form(patient))
    assert not AuditEvent.objects.filter(action="patient.update").exists()


def test_a_number_already_used_is_an_error_on_the_field_with_a_link(patient, clinic_a, staff, web_client):
    other = PatientFactory(clinic=clinic_a, created_by=staff, identifier="KE-2")

    response = web_client(staff).post(reverse("web:patient-edit", args=[patient.pk]), _form(patient, identifier="KE-2"))

    assert response.status_code == 200
    assert response.context["form"].has_error("identifier", code="unique")
    assert reverse("web:patient-detail", args=[other.pk]).encode() in response.content
    patient.refresh_from_db()
    assert patient.identifier == "KE-1"


def test_another_clinics_patient_is_404_and_a_specialist_cannot_edit(
    patient, other_staff, specialist, web_client, client
):
    url = reverse("web:patient-edit", args=[patient.pk])
    assert web_client(other_staff).get(url).status_code == 404
    client.logout()
    CaseFactory(patient=patient, referred=True)
    assert web_client(specialist).get(url).status_code == 404  # specialists have no patient records


def test_the_service_refuses_fields_it_does_not_edit_and_other_clinics(patient, other_staff, staff):
    with pytest.raises(ValidationError):
        patient_update(actor=staff, patient=patient, consent_given=False)
    with pytest.raises(PermissionDenied):
        patient_update(actor=other_staff, patient=patient, full_name="X")
    assert Patient.objects.get(pk=patient.pk).full_name == "Wanjiru Kamau"


def test_registration_takes_phone_and_village_through_the_api(staff, client_for):
    response = client_for(staff).post(
        "/api/v1/patients/",
        {
            "identifier": "KE-9",
            "full_name": "Otieno Ouma",
            "date_of_birth": "1980-01-01",
            "sex": "male",
            "consent_given": True,
            "phone": "+254 700 000 000",
            "village": "Kisumu Ndogo",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["phone"], response.json()["village"]) == ("+254 700 000 000", "Kisumu Ndogo")


def test_withdrawing_consent_sits_below_the_case_list(patient, staff, web_client):
    page = web_client(staff).get(reverse("web:patient-detail", args=[patient.pk])).content.decode()
    assert page.index('value="false" class="button button-quiet">Withdraw consent') > page.index('class="history"')
