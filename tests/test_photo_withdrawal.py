"""A photo of an answered case is withdrawn in the admin with a reason: kept, never deleted,
audited, and no longer counted on any page, in the API, the letter or the FHIR export."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEvent
from analysis.services import image_withdraw
from diagnosis import dispatch
from diagnosis.models import Case, LesionImage, Prediction
from inference.classes import CLASSES
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory
from triage import services as triage_services

URL = "/admin/diagnosis/lesionimage/"
MODEL_VERSION = "ham10000-mobilenetv2-v1"  # a shipped artifact: its thresholds score the result


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)

    class NoApp:
        def send_task(self, *args, **kwargs):
            return None

    monkeypatch.setattr("triage.notifications.current_app", NoApp())


@pytest.fixture
def admin_client(admin_user, client):
    client.force_login(admin_user)
    return client


def _probabilities(top: str) -> dict[str, float]:
    return {code: (0.94 if code == top else 0.01) for code in CLASSES}


def _case_with_photos(clinic, staff, tops=("mel", "nv")) -> tuple[Case, list[LesionImage]]:
    patient = PatientFactory(clinic=clinic, created_by=staff)
    case = CaseFactory(patient=patient, submitted_by=staff)
    images = [LesionImageFactory(case=case) for _ in tops]
    for image, top in zip(images, tops, strict=True):
        LesionImage.objects.filter(pk=image.pk).update(analysis_status=LesionImage.AnalysisStatus.DONE)
        PredictionFactory(image=image, probabilities=_probabilities(top), top_class=top, model_version=MODEL_VERSION)
    Case.objects.filter(pk=case.pk).update(
        status=Case.Status.ANALYSED, risk=Case.Risk.HIGH, summary="Melanoma 94%.", analysed_at=timezone.now()
    )
    return Case.objects.get(pk=case.pk), images


def _answered(case: Case, staff, specialist) -> Case:
    referral = triage_services.referral_create(actor=staff, case=case, urgency="urgent", reason="Dark.")
    triage_services.referral_claim(actor=specialist, referral=referral)
    triage_services.review_submit(
        actor=specialist,
        referral=referral,
        diagnosis="nv",
        agrees_with_model=False,
        outcome="discharge",
        message="A naevus; the first photo was of another lesion.",
    )
    return Case.objects.get(pk=case.pk)


def test_an_administrator_withdraws_a_photo_of_an_answered_case_with_a_reason(
    admin_client, admin_user, clinic_a, staff, specialist, client_for
):
    case, (wrong, kept) = _case_with_photos(clinic_a, staff)
    case = _answered(case, staff, specialist)

    response = admin_client.post(
        URL, {"action": "withdraw", ACTION_CHECKBOX_NAME: [str(wrong.pk)], "reason": "Photo of another patient."}
    )

    assert response.status_code == 302
    wrong = LesionImage.all_objects.get(pk=wrong.pk)
    assert wrong.withdrawn_at is not None and wrong.withdrawn_by == admin_user
    assert wrong.withdrawn_reason == "Photo of another patient."
    assert Prediction.objects.filter(image=wrong).exists()  # kept for the record
    event = AuditEvent.objects.get(action="image.withdraw")
    assert event.actor == admin_user and event.details["reason"] == "Photo of another patient."
    assert event.details["case_risk"] == Case.Risk.HIGH
    case.refresh_from_db()
    assert case.status == Case.Status.REVIEWED  # the answer stands
    assert case.risk != Case.Risk.HIGH  # the melanoma photo no longer makes the result
    assert AuditEvent.objects.filter(action="case.result_refresh", details__photo_withdrawn=True).exists()
    api_case = client_for(staff).get(f"/api/v1/cases/{case.pk}/").json()
    assert [image["id"] for image in api_case["images"]] == [kept.pk]
    assert client_for(staff).get(f"/media/lesions/{wrong.pk}/").status_code == 404
    bundle = client_for(staff).get(f"/api/v1/cases/{case.pk}/fhir/").json()
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds.count("Media") == 1 and kinds.count("Observation") == 1


def test_withdrawing_needs_a_reason_an_answered_case_and_another_photo(admin_user, clinic_a, staff, specialist):
    case, (first, second) = _case_with_photos(clinic_a, staff)

    with pytest.raises(ValidationError):
        image_withdraw(actor=admin_user, image=first, reason="Wrong patient.")  # not answered yet
    case = _answered(case, staff, specialist)
    with pytest.raises(ValidationError):
        image_withdraw(actor=admin_user, image=first, reason="   ")
    image_withdraw(actor=admin_user, image=first, reason="Wrong patient.")
    with pytest.raises(ValidationError):
        image_withdraw(actor=admin_user, image=second, reason="Blurred.")  # the last photo stays

    assert LesionImage.all_objects.filter(case=case).count() == 2
    assert AuditEvent.objects.filter(action="image.withdraw").count() == 1


def test_only_an_administrator_withdraws_a_photo(clinic_a, staff, specialist):
    from django.core.exceptions import PermissionDenied

    case, (first, _second) = _case_with_photos(clinic_a, staff)
    _answered(case, staff, specialist)

    with pytest.raises(PermissionDenied):
        image_withdraw(actor=specialist, image=first, reason="Wrong patient.")


def test_a_photo_is_not_withdrawn_while_another_of_the_case_is_being_analysed(admin_user, clinic_a, staff, specialist):
    case, (first, second) = _case_with_photos(clinic_a, staff)
    case = _answered(case, staff, specialist)
    LesionImage.objects.filter(pk=second.pk).update(analysis_status=LesionImage.AnalysisStatus.QUEUED)

    with pytest.raises(ValidationError, match="still being analysed"):
        image_withdraw(actor=admin_user, image=first, reason="Wrong patient.")

    first.refresh_from_db()
    assert first.withdrawn_at is None
    LesionImage.objects.filter(pk=second.pk).update(analysis_status=LesionImage.AnalysisStatus.DONE)
    assert image_withdraw(actor=admin_user, image=first, reason="Wrong patient.").withdrawn_at is not None
