"""The referral's state machine (triage/workflow.py): one door for every status change, the lease
rule in one place, one way to refer, the answer's rules in one place, photos checked under the
case's lock, and an acknowledgement tied to the answer read."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis import dispatch
from diagnosis import services as diagnosis_services
from diagnosis.models import Case, LesionImage
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, image_bytes
from triage import services, workflow
from triage.models import Referral, Review

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)


@pytest.fixture
def analysed_case(clinic_a, staff):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    PredictionFactory(
        image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE),
        top_class="nv",
    )
    return case


@pytest.fixture
def claimed(analysed_case, staff, specialist):
    referral = services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")
    return services.referral_claim(actor=specialist, referral=referral)


def answer(**overrides):
    data = {
        "diagnosis": "nv",
        "agrees_with_model": True,
        "outcome": "discharge",
        "message": "Benign naevus.",
    }
    data.update(overrides)
    return data


def photo():
    return SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")


# --- One door -------------------------------------------------------------------------------
def _code(path: Path) -> str:
    return path.read_text()


def test_only_the_workflow_module_writes_a_referrals_status():
    writes = re.compile(r"(\.status\s*=\s*Referral\.Status|update\([^)]*\bstatus=Referral\.Status|_claim_end\()")
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("triage", "diagnosis", "continuity", "monitoring")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path.name != "workflow.py" and writes.search(_code(path))
    ]
    assert offenders == []


def test_the_lease_rule_is_stated_in_the_workflow_module_only():
    lease_reads = re.compile(r"claim_expires_at(__lte|__gt|\s*[<>]=?)")
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("triage", "continuity", "monitoring")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path.name != "workflow.py" and lease_reads.search(_code(path))
    ]
    assert offenders == []


def test_diagnosis_never_moves_a_case_to_referred_itself():
    """One way to refer: diagnosis's rules send case_referred; triage.referral_create moves the case."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "diagnosis").rglob("*.py")
        if "migrations" not in path.parts
        and re.search(r"case_transition\([^)]*to_status\s*=\s*Case\.Status\.REFERRED", _code(path))
    ]
    assert offenders == []


def test_a_checklist_referral_goes_through_referral_create(staff, clinic_a):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    case = diagnosis_services.case_submit(
        actor=staff,
        patient=patient,
        body_site="back",
        images=[photo()],
        changed_size=True,
        changed_shape=True,
    )
    assert case.checklist_score >= Case.CHECKLIST_REFERRAL_SCORE
    referral = Referral.objects.get(case=case)
    assert referral.source == "checklist" and case.status == Case.Status.REFERRED
    event = AuditEvent.objects.get(action="referral.create")
    assert event.details["step"] == "refer"


def test_every_step_of_the_table_names_who_and_what():
    assert set(workflow.STEPS) >= {
        "refer",
        "claim",
        "release",
        "expire",
        "request_information",
        "answer_information",
        "review",
        "correct",
        "acknowledge",
    }
    for step in workflow.STEPS.values():
        assert step.source and step.who and step.action


# --- The lease ------------------------------------------------------------------------------
def test_a_lapsed_lease_reads_open_on_the_referral_and_referred_on_the_case(claimed, analysed_case, staff, client_for):
    Referral.objects.filter(pk=claimed.pk).update(claim_expires_at=timezone.now() - timedelta(minutes=1))
    clinic = client_for(staff)

    case = clinic.get(f"/api/v1/cases/{analysed_case.pk}/").json()
    referral = clinic.get(f"/api/v1/referrals/{claimed.pk}/").json()

    assert referral["status"] == "open"
    assert case["status"] == "referred" and case["referral"]["status"] == "open"


def test_a_lapsed_lease_reads_referred_on_the_case_page(claimed, analysed_case, staff, client):
    Referral.objects.filter(pk=claimed.pk).update(claim_expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(staff)

    page = client.get(f"/cases/{analysed_case.pk}/").content.decode()

    assert 'status-referred"' in page and 'status-under_review"' not in page


def test_the_expiry_sweep_moves_case_and_referral_together(claimed, analysed_case):
    Referral.objects.filter(pk=claimed.pk).update(claim_expires_at=timezone.now() - timedelta(minutes=1))

    assert services.referral_claims_expire() == 1

    claimed.refresh_from_db()
    analysed_case.refresh_from_db()
    assert (claimed.status, analysed_case.status) == ("open", "referred")
    event = AuditEvent.objects.get(action="referral.claim_expired")
    assert event.details["old"]["status"] == "lapsed" and event.details["new"]["status"] == "open"


# --- The answer's rules ---------------------------------------------------------------------
def test_the_service_refuses_months_for_an_outcome_other_than_monitor(claimed, specialist):
    with pytest.raises(ValidationError) as refused:
        services.review_submit(actor=specialist, referral=claimed, follow_up_months=6, **answer())

    assert "follow_up_months" in refused.value.message_dict
    assert not Review.objects.exists()


def test_the_review_page_shows_the_services_refusal_of_months(claimed, specialist, client):
    client.force_login(specialist)
    data = {**answer(), "agrees_with_model": "true", "follow_up_months": "6"}

    response = client.post(f"/referrals/{claimed.pk}/review/", data)

    assert response.status_code == 400
    assert "Only for the outcome monitor." in response.content.decode()
    assert not Review.objects.exists()


def test_the_api_and_the_service_give_the_same_error_for_other_without_text(claimed, specialist, client_for):
    response = client_for(specialist).post(
        f"/api/v1/referrals/{claimed.pk}/review/", answer(diagnosis="other", diagnosis_text=""), format="json"
    )

    assert response.status_code == 400
    assert response.json()["diagnosis_text"] == ["Describe the diagnosis."]


# --- Photos ---------------------------------------------------------------------------------
def test_a_photo_posted_while_the_answer_is_sent_is_refused(claimed, analysed_case, staff, specialist, monkeypatch):
    """The clinic's copy of the case was read before the answer; the answer lands while the photo decodes."""
    stale = Case.objects.select_related("patient").get(pk=analysed_case.pk)
    decode = diagnosis_services._photos_validate

    def decode_while_the_specialist_answers(images, kinds):
        decoded = decode(images, kinds)
        services.review_submit(actor=specialist, referral=claimed, **answer())
        return decoded

    monkeypatch.setattr(diagnosis_services, "_photos_validate", decode_while_the_specialist_answers)
    before = LesionImage.objects.count()

    with pytest.raises(ValidationError):
        diagnosis_services.case_photos_add(actor=staff, case=stale, images=[photo()])

    assert LesionImage.objects.count() == before


def test_a_case_a_specialist_holds_takes_no_photos_on_the_page_or_through_the_service(
    claimed, analysed_case, staff, client
):
    client.force_login(staff)
    page = client.get(f"/cases/{analysed_case.pk}/").content.decode()
    assert f"/cases/{analysed_case.pk}/photos/" not in page

    with pytest.raises(ValidationError):
        diagnosis_services.case_photos_add(actor=staff, case=analysed_case, images=[photo()])


# --- Acknowledge ----------------------------------------------------------------------------
def test_acknowledging_an_answer_corrected_since_is_refused(claimed, analysed_case, staff, specialist, client_for):
    first = services.review_submit(actor=specialist, referral=claimed, **answer())
    clinic = client_for(staff)
    read = clinic.get(f"/api/v1/cases/{analysed_case.pk}/").json()["review"]["id"]
    assert read == first.pk
    services.review_submit(
        actor=specialist, referral=claimed, **answer(outcome="biopsy", message="On second look: biopsy.")
    )

    response = clinic.post(f"/api/v1/cases/{analysed_case.pk}/acknowledge/", {"review": read}, format="json")

    assert response.status_code == 409
    assert Case.objects.get(pk=analysed_case.pk).status == Case.Status.REVIEWED
    latest = Review.objects.latest("pk").pk
    closed = clinic.post(f"/api/v1/cases/{analysed_case.pk}/acknowledge/", {"review": latest}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_the_case_page_acknowledges_the_answer_it_shows(claimed, analysed_case, staff, specialist, client):
    shown = services.review_submit(actor=specialist, referral=claimed, **answer())
    client.force_login(staff)
    page = client.get(f"/cases/{analysed_case.pk}/").content.decode()
    assert f'name="review" value="{shown.pk}"' in page

    services.review_submit(actor=specialist, referral=claimed, **answer(outcome="biopsy", message="Biopsy."))
    client.post(f"/cases/{analysed_case.pk}/acknowledge/", {"review": shown.pk})

    assert Case.objects.get(pk=analysed_case.pk).status == Case.Status.REVIEWED


# --- Text -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["Worried \u202egnorw", "Wor\u200bried"])
def test_the_referral_reason_refuses_invisible_and_direction_characters(analysed_case, staff, text):
    with pytest.raises(ValidationError) as refused:
        services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason=text)
    assert "reason" in refused.value.message_dict
    assert not Referral.objects.exists()


def test_the_review_and_the_questions_refuse_invisible_characters(claimed, analysed_case, staff, specialist):
    with pytest.raises(ValidationError):
        services.review_submit(actor=specialist, referral=claimed, **answer(message="Benign\u200b."))
    with pytest.raises(ValidationError):
        services.review_submit(actor=specialist, referral=claimed, **answer(diagnosis_text="n\u202ev"))
    with pytest.raises(ValidationError):
        services.information_request(actor=specialist, referral=claimed, message="Another \u2066photo")
    services.information_request(actor=specialist, referral=claimed, message="Another photo, please.")
    with pytest.raises(ValidationError):
        services.information_answer(actor=staff, case=analysed_case, message="Here\u200d it is")
