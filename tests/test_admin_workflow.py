"""Django admin cannot bypass the case workflow: status, risk and predictions are read-only there."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from diagnosis.models import Case, Prediction
from tests.factories import CaseFactory, PatientFactory, PredictionFactory


@pytest.fixture
def referred_case(clinic_a):
    return CaseFactory(patient=PatientFactory(clinic=clinic_a), referred=True, risk="high", summary="High risk.")


def change_form_data(client, url: str) -> dict:
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    for formset in client.get(url).context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    return data


def test_admin_cannot_change_a_cases_status_risk_or_patient(admin_user, referred_case, clinic_a, client):
    other_patient = PatientFactory(clinic=clinic_a)
    client.force_login(admin_user)
    url = f"/admin/diagnosis/case/{referred_case.pk}/change/"
    data = change_form_data(client, url)
    data.update(status="closed", risk="low", patient=other_patient.pk, notes="Corrected by the administrator.")

    response = client.post(url, data)

    assert response.status_code == 302
    referred_case.refresh_from_db()
    assert (referred_case.status, referred_case.risk, referred_case.patient_id) == (
        Case.Status.REFERRED,
        "high",
        referred_case.patient.pk,
    )
    assert referred_case.notes == "Corrected by the administrator."
    event = AuditEvent.objects.get(action="case.admin_change", object_id=str(referred_case.pk))
    assert event.details["changes"] == {"notes": {"old": "", "new": "Corrected by the administrator."}}


def test_admin_cannot_edit_or_add_predictions(admin_user, client):
    prediction = PredictionFactory(top_class="nv")
    before = (prediction.top_class, prediction.probabilities)
    client.force_login(admin_user)
    url = f"/admin/diagnosis/prediction/{prediction.pk}/change/"

    assert client.get(url).status_code == 200  # read-only view
    response = client.post(url, {"top_class": "mel", "probabilities": '{"mel": 1.0}'})

    assert response.status_code == 403
    prediction.refresh_from_db()
    assert (prediction.top_class, prediction.probabilities) == before
    assert client.get("/admin/diagnosis/prediction/add/").status_code == 403
    assert Prediction.objects.count() == 1


def test_admin_cannot_add_a_case_without_photos(admin_user, client):
    client.force_login(admin_user)

    assert client.get("/admin/diagnosis/case/add/").status_code == 403


def test_admin_patient_change_is_audited_with_old_and_new_values(admin_user, clinic_a, client):
    patient = PatientFactory(clinic=clinic_a, full_name="Ada Obi")
    client.force_login(admin_user)
    url = f"/admin/patients/patient/{patient.pk}/change/"
    data = change_form_data(client, url)
    data.update(full_name="Ada Obi-Mensah", date_of_birth="1970-05-17")

    assert client.post(url, data).status_code == 302

    event = AuditEvent.objects.get(action="patient.admin_change", object_id=str(patient.pk))
    assert event.details["changes"]["full_name"] == {"old": "Ada Obi", "new": "Ada Obi-Mensah"}
