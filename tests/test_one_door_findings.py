"""Findings of the rules-in-one-place review outside the referral's state machine: idempotent
replays for a user removed from the clinic, the old result of a referred case kept in the audit
log, invisible characters in every free text, and the proxy setting of the compose file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from analysis import services as analysis
from diagnosis import services
from diagnosis.models import Case, LesionImage
from inference.preprocessing import CLASSES
from patients import services as patient_services
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, image_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr("diagnosis.dispatch.case_analysis_enqueue", lambda *, case_id: None)


def photo():
    return SimpleUploadedFile("lesion.jpg", image_bytes(), content_type="image/jpeg")


def test_a_replay_for_a_user_removed_from_the_clinic_is_404_and_audited(staff, clinic_a, client_for):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    client = client_for(staff)
    data = {"patient": patient.pk, "body_site": "back"}
    first = client.post("/api/v1/cases/", {**data, "images": [photo()]}, format="multipart", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    staff.clinics.remove(clinic_a)

    again = client.post("/api/v1/cases/", {**data, "images": [photo()]}, format="multipart", HTTP_IDEMPOTENCY_KEY="k-1")

    assert again.status_code == 404
    assert str(first.json()["id"]) not in again.content.decode()
    assert AuditEvent.objects.filter(action="case.submit_replay_refused", actor=staff).exists()


def test_a_replay_after_the_case_was_deleted_is_404_and_shows_nothing_of_it(staff, clinic_a, client_for):
    patient = PatientFactory(clinic=clinic_a, created_by=staff, full_name="Ada Replay")
    client = client_for(staff)
    data = {"patient": patient.pk, "body_site": "back", "notes": "itching since spring"}
    first = client.post("/api/v1/cases/", {**data, "images": [photo()]}, format="multipart", HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == 201, first.content
    Case.objects.filter(pk=first.json()["id"]).delete()  # an administrator deletes it in the admin

    again = client.post("/api/v1/cases/", {**data, "images": [photo()]}, format="multipart", HTTP_IDEMPOTENCY_KEY="k-2")

    assert again.status_code == 404
    assert "itching since spring" not in again.content.decode()
    refused = AuditEvent.objects.get(action="case.submit_replay_refused", actor=staff)
    assert refused.details["case_deleted"] is True
    assert not Case.objects.exists()


def test_new_photos_on_a_referred_case_keep_its_old_result_in_the_audit_log(db, served_model, staff, clinic_a):
    case = CaseFactory(
        patient=PatientFactory(clinic=clinic_a, created_by=staff),
        referred=True,
        risk="high",
        summary="High risk: melanoma probability 60%.",
    )
    image = LesionImageFactory(case=case)
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=LesionImage.AnalysisStatus.ANALYSING)
    rest = 0.9 / (len(CLASSES) - 1)
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities={name: (0.1 if name == "mel" else rest) for name in CLASSES},
        top_class="nv",
        inference_ms=3,
    )

    analysis.case_result_update(case_id=case.pk)

    case.refresh_from_db()
    assert case.status == Case.Status.REFERRED and case.summary != "High risk: melanoma probability 60%."
    event = AuditEvent.objects.get(action="case.result_refresh", object_id=str(case.pk))
    assert event.details["old"]["risk"] == "high"
    assert event.details["old"]["summary"] == "High risk: melanoma probability 60%."


@pytest.mark.parametrize("field", ["phone", "village"])
def test_phone_and_village_refuse_direction_and_zero_width_characters(staff, clinic_a, field):
    with pytest.raises(ValidationError) as refused:
        patient_services.patient_create(
            actor=staff,
            clinic=clinic_a,
            identifier="P-77",
            full_name="Amina",
            date_of_birth="1980-01-01",
            sex="female",
            consent_given=True,
            **{field: "07\u200b12\u202e34"},
        )
    assert field in refused.value.message_dict


def test_a_patients_phone_edit_refuses_invisible_characters(staff, clinic_a):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    with pytest.raises(ValidationError):
        patient_services.patient_update(actor=staff, patient=patient, phone="0712\u2066345")


def test_the_lesion_label_refuses_invisible_characters(staff, clinic_a):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    with pytest.raises(ValidationError) as refused:
        services.case_submit(
            actor=staff, patient=patient, body_site="back", images=[photo()], lesion_label="mole\u200b on back"
        )
    assert "lesion_label" in refused.value.message_dict
    assert not Case.objects.exists()


def test_the_compose_file_sets_the_trusted_proxies_for_the_web_service():
    """Behind the README's proxy, without it every client shares the proxy's address (and its lockout)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "SKINPORTAL_TRUSTED_PROXIES" in compose["services"]["web"]["environment"]
