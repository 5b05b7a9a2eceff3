"""The admin goes through the services: moving a patient, consent, deleting clinical records,
and every change of a clinic or a user audited with its administrator and old and new values."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from accounts.models import AuditEvent, User
from diagnosis.models import Case, LesionImage, Prediction
from patients.models import Patient
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, referral_row
from triage.models import Referral


@pytest.fixture
def admin_client(admin_user, client):
    client.force_login(admin_user)
    return client


def action(client, url: str, name: str, ids, **extra):
    return client.post(url, {"action": name, ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], **extra})


def test_moving_a_patient_whose_case_a_specialist_handles_is_refused(admin_client, clinic_a, clinic_b):
    patient = PatientFactory(clinic=clinic_a)
    case = CaseFactory(patient=patient, referred=True)
    referral_row(case=case)

    action(admin_client, "/admin/patients/patient/", "move_to_clinic", [patient.pk], clinic=clinic_b.pk)

    patient.refresh_from_db()
    assert patient.clinic_id == clinic_a.pk
    assert Referral.objects.get().clinic_id == clinic_a.pk
    assert not AuditEvent.objects.filter(action="patient.clinic_move").exists()


def test_a_moved_patient_takes_the_closed_referrals_along(admin_client, admin_user, clinic_a, clinic_b):
    patient = PatientFactory(clinic=clinic_a)
    case = CaseFactory(patient=patient, referred=True)
    referral_row(case=case)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.CLOSED)

    action(admin_client, "/admin/patients/patient/", "move_to_clinic", [patient.pk], clinic=clinic_b.pk)

    patient.refresh_from_db()
    assert patient.clinic_id == clinic_b.pk
    assert Referral.objects.get().clinic_id == clinic_b.pk
    move = AuditEvent.objects.get(action="patient.clinic_move")
    assert move.actor == admin_user and move.details["old"] == {"clinic": clinic_a.pk}
    assert AuditEvent.objects.filter(action="referral.clinic_move").count() == 1


def test_the_patients_clinic_and_consent_are_not_edited_in_the_change_form(admin_client, clinic_a, clinic_b):
    patient = PatientFactory(clinic=clinic_a, consent_given=True)
    form = admin_client.get(f"/admin/patients/patient/{patient.pk}/change/").context["adminform"].form

    assert "clinic" not in form.fields and "consent_given" not in form.fields


def test_consent_is_recorded_through_an_admin_action_with_who_and_when(admin_client, admin_user, clinic_a):
    patient = PatientFactory(clinic=clinic_a, consent_given=True)

    action(admin_client, "/admin/patients/patient/", "consent_withdrawn_record", [patient.pk])

    patient.refresh_from_db()
    assert patient.consent_given is False and patient.consent_recorded_by == admin_user
    assert Patient.objects.get(pk=patient.pk).consent_recorded_at is not None


def test_photos_and_predictions_of_a_reviewed_case_cannot_be_deleted(admin_client, clinic_a):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a), status=Case.Status.REVIEWED, risk="high")
    prediction = PredictionFactory(image=LesionImageFactory(case=case))

    assert (
        admin_client.post(f"/admin/diagnosis/lesionimage/{prediction.image_id}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert admin_client.post(f"/admin/diagnosis/prediction/{prediction.pk}/delete/", {"post": "yes"}).status_code == 403
    action(admin_client, "/admin/diagnosis/lesionimage/", "delete_selected", [prediction.image_id], post="yes")

    assert LesionImage.objects.filter(pk=prediction.image_id).exists()
    assert Prediction.objects.filter(pk=prediction.pk).exists()


def test_a_clinic_change_in_the_admin_is_audited_with_old_and_new_values(admin_client, admin_user, clinic_a):
    url = f"/admin/accounts/clinic/{clinic_a.pk}/change/"
    data = {k: v for k, v in admin_client.get(url).context["adminform"].form.initial.items() if v is not None}
    data.pop("is_active", None)  # unticked

    admin_client.post(url, data)

    clinic_a.refresh_from_db()
    assert clinic_a.is_active is False
    event = AuditEvent.objects.get(action="clinic.admin_change")
    assert event.actor == admin_user
    assert event.details["changes"]["is_active"] == {"old": True, "new": False}


def test_a_password_an_administrator_sets_is_audited_with_the_administrator(admin_client, admin_user, staff):
    admin_client.post(
        f"/admin/accounts/user/{staff.pk}/password/",
        {"password1": "A-new-long-passphrase-42", "password2": "A-new-long-passphrase-42"},
    )

    staff.refresh_from_db()
    assert staff.check_password("A-new-long-passphrase-42")
    event = AuditEvent.objects.get(action="user.password_change", object_id=str(staff.pk))
    assert event.actor == admin_user


def test_a_users_role_and_status_changes_are_audited_with_old_and_new(admin_client, admin_user, staff):
    url = f"/admin/accounts/user/{staff.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {
        k: v for k, v in form.initial.items() if v is not None and k not in ("password", "groups", "user_permissions")
    }
    data["clinics"] = [c.pk for c in staff.clinics.all()]
    data["role"] = User.Role.SPECIALIST if hasattr(User, "Role") else "specialist"
    data.pop("is_active", None)
    for key in ("last_login", "date_joined"):
        value = form.initial.get(key)
        if value is not None:
            data[f"{key}_0"], data[f"{key}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
            data.pop(key, None)

    admin_client.post(url, data)

    event = AuditEvent.objects.get(action="user.admin_change", object_id=str(staff.pk))
    assert event.actor == admin_user
    assert event.details["changes"]["is_active"] == {"old": True, "new": False}
    assert event.details["changes"]["role"]["new"] == "specialist"
