"""Nothing falls through: a case with no photo the model could read reaches a person, and the
audit sample sends a share of the cases the model did not refer to the specialists.

The services run in this process (the real artifact is served for the thresholds); the same
paths through a real worker are in test_safety_net_worker.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from analysis import safety_net
from analysis import services as analysis
from diagnosis import services as diagnosis_services
from diagnosis.models import Case, LesionImage
from inference.preprocessing import CLASSES
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory
from triage.models import Notification, Referral

Status = LesionImage.AnalysisStatus


def probabilities(**overrides: float) -> dict[str, float]:
    rest = (1.0 - sum(overrides.values())) / (len(CLASSES) - len(overrides))
    return {name: overrides.get(name, rest) for name in CLASSES}


def score(image, model_version: str, *, gate: str = "ok", **overrides) -> None:
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=model_version,
        probabilities=probabilities(**(overrides or {"nv": 0.97})),
        top_class="nv",
        inference_ms=4,
        gate=gate,
        gate_score=9.0 if gate != "ok" else 0.1,
    )


@pytest.fixture
def case(clinic_a, staff):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    return CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSING)


def turned_back_case(case, version: str) -> Case:
    image = LesionImageFactory(case=case)
    score(image, version, gate="not_a_lesion")
    return analysis.case_result_update(case_id=case.pk)


def retake(case, version: str, *, gate: str = "not_a_lesion") -> Case:
    """The clinic adds a new photo (as case_photos_add does) and the worker scores it."""
    from diagnosis.transitions import case_transition

    case_transition(case=case, to_status=Case.Status.ANALYSING)
    image = LesionImageFactory(case=case)
    score(image, version, gate=gate)
    return analysis.case_result_update(case_id=case.pk)


# --- Waiting for a photo ------------------------------------------------------------------------
def test_a_case_whose_photos_are_all_turned_back_waits_for_a_new_photo_and_is_not_referred(
    served_model, case, specialist
):
    settled = turned_back_case(case, served_model.model_version)

    settled.refresh_from_db()
    assert settled.status == Case.Status.FAILED and settled.risk == ""
    assert settled.awaiting_photo and settled.awaiting_photo_since is not None
    assert not Referral.objects.filter(case=case).exists()


def test_a_retake_turned_back_again_refers_the_case_as_unreadable(served_model, case, specialist, specialist_b):
    turned_back_case(case, served_model.model_version)

    retake(case, served_model.model_version)

    case.refresh_from_db()
    referral = Referral.objects.get(case=case)
    assert case.status == Case.Status.REFERRED and case.referred_at is not None and not case.awaiting_photo
    assert referral.source == Referral.Source.UNREADABLE and referral.urgency == Referral.Urgency.ROUTINE
    assert referral.reason == safety_net.UNREADABLE_REASON and referral.sample_rate is None
    # Told to the specialists serving the clinic (sam serves clinic A; sue serves B only).
    assert Notification.objects.filter(recipient=specialist, case=case, kind="referral_new").exists()
    assert not Notification.objects.filter(recipient=specialist_b, case=case).exists()
    event = AuditEvent.objects.filter(action="case.transition", object_id=str(case.pk)).latest("pk")
    assert event.details["to"] == "referred" and event.details["source"] == "unreadable"


def test_a_retake_the_model_can_read_ends_the_wait(served_model, case):
    turned_back_case(case, served_model.model_version)

    retake(case, served_model.model_version, gate="ok")

    case.refresh_from_db()
    assert case.status == Case.Status.ANALYSED and case.risk == "low"
    assert case.awaiting_photo_since is None and not case.awaiting_photo


def test_analysing_the_same_photos_again_does_not_count_as_a_retake(served_model, case, staff):
    turned_back_case(case, served_model.model_version)

    analysis.case_reanalyse(case=case, actor=staff)
    analysis.image_analyse(image_id=case.images.get().pk)

    case.refresh_from_db()
    assert case.status == Case.Status.FAILED and case.awaiting_photo
    assert not Referral.objects.filter(case=case).exists()


def test_the_sweep_refers_a_case_left_without_a_usable_photo_for_the_set_hours(served_model, case, settings, clinic_a):
    settings.SKINPORTAL_UNREADABLE_AFTER_HOURS = 24
    turned_back_case(case, served_model.model_version)
    recent = CaseFactory(patient=case.patient, submitted_by=case.submitted_by, status=Case.Status.ANALYSING)
    turned_back_case(recent, served_model.model_version)
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(awaiting_photo_since=now - timedelta(hours=24, minutes=1))
    Case.objects.filter(pk=recent.pk).update(awaiting_photo_since=now - timedelta(hours=23))

    assert safety_net.cases_awaiting_photo_refer(now=now) == 1
    assert safety_net.cases_awaiting_photo_refer(now=now) == 0  # once only

    case.refresh_from_db()
    recent.refresh_from_db()
    assert case.status == Case.Status.REFERRED and Referral.objects.get(case=case).source == "unreadable"
    assert recent.status == Case.Status.FAILED and recent.awaiting_photo
    assert not Referral.objects.filter(case=recent).exists()


def test_the_sweep_task_is_thin_and_calls_the_service(served_model, case):
    from analysis.tasks import unreadable_cases_refer

    turned_back_case(case, served_model.model_version)
    Case.objects.filter(pk=case.pk).update(awaiting_photo_since=timezone.now() - timedelta(days=2))

    assert unreadable_cases_refer.run() == 1
    assert Referral.objects.get(case=case).source == "unreadable"


def test_a_case_whose_photos_failed_for_a_technical_reason_waits_for_a_photo_and_reaches_a_specialist(
    db, served_model, case
):
    image = LesionImageFactory(case=case)
    analysis.image_analysis_fail(image_id=image.pk, reason=analysis.PHOTO_UNREADABLE)
    analysis.case_result_update(case_id=case.pk)

    case.refresh_from_db()
    assert case.status == Case.Status.FAILED and case.awaiting_photo_since is not None
    assert safety_net.cases_awaiting_photo_refer() == 0  # not before the wait is over
    Case.objects.filter(pk=case.pk).update(awaiting_photo_since=timezone.now() - timedelta(days=2))
    assert safety_net.cases_awaiting_photo_refer() == 1
    assert Referral.objects.get(case=case).source == "unreadable"


# --- Closing with a reason ----------------------------------------------------------------------
def test_clinic_staff_close_a_waiting_case_with_a_reason_and_it_is_never_referred(served_model, case, staff):
    turned_back_case(case, served_model.model_version)

    diagnosis_services.case_awaiting_photo_close(actor=staff, case=case, reason="  Patient moved away  ")

    case.refresh_from_db()
    assert case.status == Case.Status.CLOSED and case.closed_reason == "Patient moved away"
    event = AuditEvent.objects.get(action="case.close_without_result", object_id=str(case.pk))
    assert event.actor == staff and event.details["reason"] == "Patient moved away"
    Case.objects.filter(pk=case.pk).update(awaiting_photo_since=timezone.now() - timedelta(days=3))
    assert safety_net.cases_awaiting_photo_refer() == 0
    assert not Referral.objects.filter(case=case).exists()


def test_closing_needs_a_reason(served_model, case, staff):
    from django.core.exceptions import ValidationError

    turned_back_case(case, served_model.model_version)

    with pytest.raises(ValidationError) as error:
        diagnosis_services.case_awaiting_photo_close(actor=staff, case=case, reason="   ")
    assert "reason" in error.value.message_dict
    case.refresh_from_db()
    assert case.status == Case.Status.FAILED


def test_only_a_case_waiting_for_a_photo_can_be_closed_this_way(served_model, case, staff):
    from django.core.exceptions import ValidationError

    image = LesionImageFactory(case=case)
    score(image, served_model.model_version)
    analysis.case_result_update(case_id=case.pk)

    with pytest.raises(ValidationError):
        diagnosis_services.case_awaiting_photo_close(actor=staff, case=case, reason="No longer needed")


def test_close_through_the_api_audits_and_answers_the_case(served_model, case, staff, client_for):
    turned_back_case(case, served_model.model_version)

    missing = client_for(staff).post(f"/api/v1/cases/{case.pk}/close/", {}, format="json")
    response = client_for(staff).post(f"/api/v1/cases/{case.pk}/close/", {"reason": "Lesion excised"}, format="json")

    assert missing.status_code == 400 and "reason" in missing.json()
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "closed" and body["closed_reason"] == "Lesion excised" and body["awaiting_photo"] is False


def test_close_through_the_api_is_404_for_another_clinic_and_403_for_a_specialist(
    served_model, case, other_staff, specialist, client_for
):
    turned_back_case(case, served_model.model_version)

    other = client_for(other_staff).post(f"/api/v1/cases/{case.pk}/close/", {"reason": "x"}, format="json")
    specialist_answer = client_for(specialist).post(f"/api/v1/cases/{case.pk}/close/", {"reason": "x"}, format="json")

    assert other.status_code == 404
    assert specialist_answer.status_code == 403
    case.refresh_from_db()
    assert case.status == Case.Status.FAILED


def test_close_on_the_case_page(served_model, case, staff, web_client):
    turned_back_case(case, served_model.model_version)
    client = web_client(staff)

    page = client.get(f"/cases/{case.pk}/")
    response = client.post(f"/cases/{case.pk}/close/", {"reason": "Seen in person at the hospital"})

    assert b"Close without a result" in page.content and b"goes to a specialist on" in page.content
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Case.Status.CLOSED and case.closed_reason == "Seen in person at the hospital"


# --- Listed where the clinic looks --------------------------------------------------------------
def test_needs_attention_lists_the_clinics_cases_waiting_for_a_usable_photo(
    served_model, case, staff, other_staff, client_for
):
    turned_back_case(case, served_model.model_version)
    scored = CaseFactory(patient=case.patient, submitted_by=staff, status=Case.Status.ANALYSING)
    score(LesionImageFactory(case=scored), served_model.model_version)
    analysis.case_result_update(case_id=scored.pk)

    mine = client_for(staff).get("/api/v1/cases/?needs_attention=true").json()
    everything = client_for(staff).get("/api/v1/cases/?needs_attention=false").json()
    theirs = client_for(other_staff).get("/api/v1/cases/?needs_attention=true").json()
    wrong = client_for(staff).get("/api/v1/cases/?needs_attention=maybe")

    assert [row["id"] for row in mine["results"]] == [case.pk]
    assert mine["results"][0]["awaiting_photo"] is True
    assert {row["id"] for row in everything["results"]} == {case.pk, scored.pk}
    assert theirs["results"] == []
    assert wrong.status_code == 400


def test_the_dashboard_lists_cases_waiting_for_a_new_photo(served_model, case, staff, other_staff, web_client):
    turned_back_case(case, served_model.model_version)

    page = web_client(staff).get("/").content.decode()

    assert "Waiting for a new photo" in page and f"/cases/{case.pk}/" in page
    filtered = web_client(staff).get("/cases/?status=awaiting_photo").content.decode()
    assert f"/cases/{case.pk}/" in filtered


def test_another_clinics_dashboard_does_not_list_them(served_model, case, other_staff, client):
    turned_back_case(case, served_model.model_version)
    client.force_login(other_staff)

    assert "Waiting for a new photo" not in client.get("/").content.decode()


# --- The audit sample ---------------------------------------------------------------------------
def test_the_audit_draw_is_reproducible_and_uniform():
    draws = [safety_net.audit_draw(case_id) for case_id in range(1, 4001)]

    assert draws == [safety_net.audit_draw(case_id) for case_id in range(1, 4001)]
    assert all(0 <= draw < 1 for draw in draws)
    assert 0.47 < sum(draw < 0.5 for draw in draws) / len(draws) < 0.53
    assert 0.035 < sum(draw < 0.05 for draw in draws) / len(draws) < 0.065
    assert not safety_net.audit_selects(1, 0.0) and all(safety_net.audit_selects(i, 1.0) for i in range(1, 50))


def test_with_the_audit_rate_at_one_a_low_risk_case_is_referred_as_an_audit(served_model, case, settings, specialist):
    settings.SKINPORTAL_AUDIT_SAMPLE_RATE = 1.0
    settings.SKINPORTAL_AUDIT_DUE_DAYS = 14
    score(LesionImageFactory(case=case), served_model.model_version)

    analysis.case_result_update(case_id=case.pk)

    case.refresh_from_db()
    referral = Referral.objects.get(case=case)
    assert case.status == Case.Status.REFERRED and case.risk == "low"
    assert referral.source == Referral.Source.AUDIT and referral.urgency == Referral.Urgency.ROUTINE
    assert referral.sample_rate == 1.0 and referral.is_audit
    assert referral.due_at - referral.referred_at == timedelta(days=14)
    event = AuditEvent.objects.get(action="referral.create", object_id=str(referral.pk))
    assert event.details["source"] == "audit" and event.details["sample_rate"] == 1.0


def test_with_the_audit_rate_at_zero_a_low_risk_case_is_not_referred(served_model, case, settings):
    settings.SKINPORTAL_AUDIT_SAMPLE_RATE = 0.0
    score(LesionImageFactory(case=case), served_model.model_version)

    analysis.case_result_update(case_id=case.pk)

    case.refresh_from_db()
    assert case.status == Case.Status.ANALYSED and not Referral.objects.filter(case=case).exists()


def test_the_audit_keeps_the_rate_in_effect_when_the_case_was_drawn(served_model, clinic_a, staff, settings):
    settings.SKINPORTAL_AUDIT_SAMPLE_RATE = 0.5
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    cases = [CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSING) for _ in range(12)]
    for case in cases:
        score(LesionImageFactory(case=case), served_model.model_version)
        analysis.case_result_update(case_id=case.pk)

    audited = {referral.case_id: referral.sample_rate for referral in Referral.objects.filter(source="audit")}
    assert audited == {case.pk: 0.5 for case in cases if safety_net.audit_draw(case.pk) < 0.5}
    for case in cases:
        case.refresh_from_db()
        assert case.status == (Case.Status.REFERRED if case.pk in audited else Case.Status.ANALYSED)


def test_a_high_risk_case_is_referred_by_the_model_not_audited(served_model, case, settings):
    settings.SKINPORTAL_AUDIT_SAMPLE_RATE = 1.0
    threshold = served_model.artifact.thresholds["mel"]
    score(LesionImageFactory(case=case), served_model.model_version, mel=min(0.95, threshold + 0.05))

    analysis.case_result_update(case_id=case.pk)

    referral = Referral.objects.get(case=case)
    assert referral.source == Referral.Source.MODEL and referral.sample_rate is None


def test_an_audit_referral_is_marked_in_the_queue_and_on_the_review_page(
    served_model, case, settings, specialist, web_client
):
    settings.SKINPORTAL_AUDIT_SAMPLE_RATE = 1.0
    score(LesionImageFactory(case=case), served_model.model_version)
    analysis.case_result_update(case_id=case.pk)
    referral = Referral.objects.get(case=case)
    client = web_client(specialist)

    queue = client.get("/referrals/").content.decode()
    review = client.get(f"/referrals/{referral.pk}/").content.decode()

    assert "badge-audit" in queue and "Audit sample" in queue
    assert "badge-audit" in review and "drawn for the audit sample" in review
