"""The referral loop through the API: refer (model, checklist, clinic), claim, lease, ask for
information, answer with a photo, review, correct, acknowledge; notifications and email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditEvent
from analysis import services as analysis
from diagnosis import dispatch
from diagnosis.models import Case, LesionImage
from inference.preprocessing import CLASSES
from tests.factories import (
    CaseFactory,
    LesionImageFactory,
    PatientFactory,
    PredictionFactory,
    image_bytes,
    referral_row,
)
from triage import services, tasks
from triage.models import Notification, Referral, Review

Status = LesionImage.AnalysisStatus


def probabilities(**overrides: float) -> dict[str, float]:
    rest = (1.0 - sum(overrides.values())) / (len(CLASSES) - len(overrides))
    return {name: overrides.get(name, rest) for name in CLASSES}


@pytest.fixture
def queued(monkeypatch):
    """Cases handed to the broker, without a broker."""
    cases: list[int] = []
    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: cases.append(case_id))
    return cases


@pytest.fixture
def emails_queued(monkeypatch):
    """Notification ids whose email was sent to the notifications queue (no broker here)."""
    sent: list[tuple[str, tuple, str]] = []

    class FakeApp:
        def send_task(self, name, args=(), **kwargs):
            from skinportal.celery import app

            route = app.amqp.router.route({}, name, args)
            sent.append((name, tuple(args), route["queue"].name))

    monkeypatch.setattr("triage.notifications.current_app", FakeApp())
    return sent


@pytest.fixture
def analysed_case(clinic_a, staff):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    PredictionFactory(
        image=LesionImageFactory(case=case, analysis_status=Status.DONE),
        probabilities=probabilities(nv=0.8),
        top_class="nv",
    )
    return case


def refer(client, case, urgency="routine", reason="Grew quickly; patient worried."):
    return client.post(f"/api/v1/cases/{case.pk}/referral/", {"urgency": urgency, "reason": reason}, format="json")


def review_payload(**overrides):
    payload = {
        "diagnosis": "bkl",
        "diagnosis_text": "seborrhoeic keratosis",
        "agrees_with_model": False,
        "outcome": "monitor",
        "follow_up_months": 3,
        "message": "Benign-looking; photograph again in three months.",
        "private_note": "Low suspicion; asymmetric pigment network though.",
    }
    payload.update(overrides)
    return payload


# --- Referral -------------------------------------------------------------------------------
def test_a_high_risk_result_refers_the_case_to_the_specialists_serving_its_clinic(
    db, served_model, staff, specialist, specialist_b, clinic_a, emails_queued, django_capture_on_commit_callbacks
):
    image = LesionImageFactory(case=CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff)))
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(mel=min(0.95, served_model.artifact.thresholds["mel"] + 0.05)),
        top_class="mel",
        inference_ms=4,
    )

    with django_capture_on_commit_callbacks(execute=True):
        case = analysis.case_result_update(case_id=image.case_id)

    referral = Referral.objects.get(case=case)
    assert (referral.source, referral.urgency, referral.status) == ("model", "urgent", "open")
    assert referral.due_at == referral.referred_at + timedelta(hours=24)
    assert "melanoma" in referral.reason
    assert list(Notification.objects.values_list("recipient__username", "kind")) == [("sam", "referral_new")]
    assert emails_queued == [("notifications.email_send", (Notification.objects.get().pk,), "notifications")]


def test_a_checklist_of_three_refers_at_submission_as_urgent(db, client_for, staff, clinic_a, queued):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")

    response = client_for(staff).post(
        "/api/v1/cases/",
        {"patient": patient.pk, "body_site": "back", "changed_size": "true", "diameter_mm": "8", "images": [photo]},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "referred" and body["checklist_score"] == 3
    assert body["referral"]["source"] == "checklist" and body["referral"]["urgency"] == "urgent"
    assert "change in size (2)" in body["referral"]["reason"] and body["review"] is None


def test_a_checklist_of_two_is_not_referred(db, client_for, staff, clinic_a, queued):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")

    response = client_for(staff).post(
        "/api/v1/cases/",
        {"patient": patient.pk, "body_site": "back", "abcde_colour": "true", "images": [photo]},
        format="multipart",
    )

    assert response.json()["status"] == "submitted" and response.json()["referral"] is None


def test_clinic_refers_by_hand_whatever_the_model_said_and_a_second_referral_is_409(
    analysed_case, client_for, staff, specialist
):
    client = client_for(staff)

    response = refer(client, analysed_case, urgency="urgent")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["source"], body["urgency"], body["status"], body["overdue"]) == ("clinic", "urgent", "open", False)
    analysed_case.refresh_from_db()
    assert analysed_case.status == Case.Status.REFERRED and analysed_case.referred_at is not None
    assert refer(client, analysed_case).status_code == 409
    event = AuditEvent.objects.get(action="referral.create")
    assert event.actor == staff and event.details["urgency"] == "urgent"


def test_a_failed_analysis_never_blocks_a_referral(clinic_a, staff, client_for):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.FAILED)
    LesionImageFactory(case=case, analysis_status=Status.FAILED)

    assert refer(client_for(staff), case).status_code == 201


def test_a_referral_needs_a_reason_and_a_known_urgency(analysed_case, client_for, staff):
    client = client_for(staff)

    assert refer(client, analysed_case, reason="").status_code == 400
    assert refer(client, analysed_case, urgency="whenever").status_code == 400
    assert not Referral.objects.exists()


def test_only_the_referring_clinic_lowers_an_urgent_referral(analysed_case, client_for, staff, specialist):
    refer(client_for(staff), analysed_case, urgency="urgent")
    referral = Referral.objects.get()

    lowered_by_specialist = client_for(specialist).post(
        f"/api/v1/referrals/{referral.pk}/urgency/", {"urgency": "routine"}, format="json"
    )
    lowered_by_clinic = client_for(staff).post(
        f"/api/v1/referrals/{referral.pk}/urgency/", {"urgency": "routine"}, format="json"
    )

    assert lowered_by_specialist.status_code == 403
    assert lowered_by_clinic.status_code == 200
    referral.refresh_from_db()
    assert referral.urgency == "routine" and referral.due_at == referral.referred_at + timedelta(hours=72)


def _model_flagged_referral(clinic, staff) -> Referral:
    case = CaseFactory(
        patient=PatientFactory(clinic=clinic, created_by=staff), status=Case.Status.REFERRED, risk="high"
    )
    return referral_row(case=case, source="model", urgency="urgent")


def test_lowering_a_suspected_cancer_the_model_flagged_needs_a_reason_and_a_confirmation(clinic_a, staff, client_for):
    referral = _model_flagged_referral(clinic_a, staff)
    client = client_for(staff)
    url = f"/api/v1/referrals/{referral.pk}/urgency/"

    one_click = client.post(url, {"urgency": "routine"}, format="json")
    unconfirmed = client.post(url, {"urgency": "routine", "reason": "Seen by our GP: a known scar."}, format="json")
    assert one_click.status_code == 400 and "reason" in one_click.json()
    assert unconfirmed.status_code == 400 and "confirmed" in unconfirmed.json()
    referral.refresh_from_db()
    assert referral.urgency == "urgent"

    done = client.post(
        url, {"urgency": "routine", "reason": "Seen by our GP: a known scar.", "confirmed": True}, format="json"
    )

    assert done.status_code == 200
    referral.refresh_from_db()
    assert referral.urgency == "routine"
    event = AuditEvent.objects.get(action="referral.urgency")
    assert event.actor == staff
    assert event.details["reason"] == "Seen by our GP: a known scar." and event.details["confirmed"] is True
    assert (event.details["old"], event.details["new"], event.details["source"]) == ("urgent", "routine", "model")


def test_the_case_page_asks_why_before_lowering_a_model_flagged_referral(clinic_a, staff, web_client):
    referral = _model_flagged_referral(clinic_a, staff)
    client = web_client(staff)

    page = client.get(f"/cases/{referral.case_id}/").content.decode()
    assert "Why it can wait" in page and 'name="confirmed"' in page

    client.post(f"/referrals/{referral.pk}/urgency/", {"urgency": "routine"})
    referral.refresh_from_db()
    assert referral.urgency == "urgent"

    client.post(
        f"/referrals/{referral.pk}/urgency/", {"urgency": "routine", "reason": "A known scar.", "confirmed": "on"}
    )
    referral.refresh_from_db()
    assert referral.urgency == "routine"


# --- Queue and claim --------------------------------------------------------------------------
def test_the_queue_is_ordered_by_urgency_overdue_risk_and_waiting_time(clinic_a, staff, specialist, client_for):
    now = timezone.now()

    def referral(urgency, hours_ago, risk):
        case = CaseFactory(
            patient=PatientFactory(clinic=clinic_a, created_by=staff),
            status=Case.Status.REFERRED,
            referred_at=now - timedelta(hours=hours_ago),
            risk=risk,
        )
        return referral_row(case=case, source="model", urgency=urgency, reason="", referred_by=None, request=None)

    routine_old = referral("routine", 80, "moderate")  # overdue routine
    routine_high = referral("routine", 2, "high")
    routine_low = referral("routine", 3, "low")
    urgent_new = referral("urgent", 1, "low")
    urgent_overdue = referral("urgent", 30, "moderate")

    body = client_for(specialist).get("/api/v1/referrals/").json()

    assert [row["id"] for row in body["results"]] == [
        urgent_overdue.pk,
        urgent_new.pk,
        routine_old.pk,
        routine_high.pk,
        routine_low.pk,
    ]
    assert [row["overdue"] for row in body["results"]] == [True, False, True, False, False]
    overdue = client_for(specialist).get("/api/v1/referrals/?overdue=true").json()
    assert {row["id"] for row in overdue["results"]} == {urgent_overdue.pk, routine_old.pk}
    urgent = client_for(specialist).get("/api/v1/referrals/?urgency=urgent").json()
    assert {row["id"] for row in urgent["results"]} == {urgent_overdue.pk, urgent_new.pk}


def test_a_second_specialists_claim_is_409_and_mine_filters(analysed_case, client_for, staff, specialist, clinic_a):
    from tests.factories import UserFactory

    colleague = UserFactory(username="tom", role="specialist", clinics=[clinic_a])
    refer(client_for(staff), analysed_case)
    referral = Referral.objects.get()

    first = client_for(specialist).post(f"/api/v1/referrals/{referral.pk}/claim/")
    second = client_for(colleague).post(f"/api/v1/referrals/{referral.pk}/claim/")

    assert first.status_code == 200 and first.json()["status"] == "claimed" and first.json()["claimed_by"] == "sam"
    assert second.status_code == 409 and "sam" in second.json()["detail"]
    assert Case.objects.get(pk=analysed_case.pk).status == Case.Status.UNDER_REVIEW
    mine = client_for(specialist).get("/api/v1/referrals/?mine=true").json()
    assert [row["id"] for row in mine["results"]] == [referral.pk]
    assert client_for(colleague).get("/api/v1/referrals/?mine=true").json()["count"] == 0
    review = client_for(colleague).post(f"/api/v1/referrals/{referral.pk}/review/", review_payload(), format="json")
    assert review.status_code == 409


def test_an_expired_claim_returns_the_referral_to_the_queue(analysed_case, client_for, staff, specialist, clinic_a):
    from tests.factories import UserFactory

    colleague = UserFactory(username="tom", role="specialist", clinics=[clinic_a])
    refer(client_for(staff), analysed_case)
    referral = Referral.objects.get()
    client_for(specialist).post(f"/api/v1/referrals/{referral.pk}/claim/")
    Referral.objects.filter(pk=referral.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))

    # Open again at once for readers, and claimable by a colleague...
    assert client_for(colleague).get(f"/api/v1/referrals/{referral.pk}/").json()["status"] == "open"
    # ...and beat's sweep returns it formally.
    assert tasks.claims_expire() == 1
    referral.refresh_from_db()
    assert (referral.status, referral.claimed_by) == ("open", None)
    assert Case.objects.get(pk=analysed_case.pk).status == Case.Status.REFERRED
    assert AuditEvent.objects.filter(action="referral.claim_expired", actor=None).count() == 1
    assert client_for(colleague).post(f"/api/v1/referrals/{referral.pk}/claim/").status_code == 200
    assert (
        client_for(specialist)
        .post(f"/api/v1/referrals/{referral.pk}/review/", review_payload(), format="json")
        .status_code
        == 409
    )


def test_release_hands_the_referral_back(analysed_case, client_for, staff, specialist):
    refer(client_for(staff), analysed_case)
    referral = Referral.objects.get()
    client = client_for(specialist)
    client.post(f"/api/v1/referrals/{referral.pk}/claim/")

    response = client.post(f"/api/v1/referrals/{referral.pk}/release/")

    assert response.status_code == 200 and response.json()["status"] == "open"
    assert Case.objects.get(pk=analysed_case.pk).status == Case.Status.REFERRED
    assert client.post(f"/api/v1/referrals/{referral.pk}/release/").status_code == 409


# --- The whole loop ---------------------------------------------------------------------------
def test_the_whole_loop_through_the_api(
    analysed_case,
    client_for,
    staff,
    other_staff,
    specialist,
    specialist_b,
    queued,
    emails_queued,
    django_capture_on_commit_callbacks,
):
    clinic, doctor = client_for(staff), client_for(specialist)
    with django_capture_on_commit_callbacks(execute=True):
        referral_id = refer(clinic, analysed_case, urgency="urgent").json()["id"]
    original_referred_at = Referral.objects.get().referred_at

    # The specialist claims it and asks for more.
    assert doctor.post(f"/api/v1/referrals/{referral_id}/claim/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        asked = doctor.post(
            f"/api/v1/referrals/{referral_id}/request-information/",
            {"message": "Please send a close-up with a ruler beside it."},
            format="json",
        )
    assert asked.status_code == 201
    case = clinic.get(f"/api/v1/cases/{analysed_case.pk}/").json()
    assert case["status"] == "information_requested" and case["referral"]["status"] == "information_requested"

    # The clinic answers with a photo, which is queued for analysis like any other.
    photo = SimpleUploadedFile("ruler.jpg", image_bytes(320, 240), content_type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        answered = clinic.post(
            f"/api/v1/cases/{analysed_case.pk}/information/",
            {"message": "Close-up attached; 9 mm across.", "images": [photo], "image_kinds": ["close_up"]},
            format="multipart",
        )
    assert answered.status_code == 201, answered.content
    assert len(answered.json()["answer_image_ids"]) == 1
    assert queued == [analysed_case.pk]
    new_photo = LesionImage.objects.get(pk=answered.json()["answer_image_ids"][0])
    assert new_photo.analysis_status == Status.QUEUED and new_photo.kind == "close_up"
    referral = Referral.objects.get()
    assert referral.status == "open" and referral.referred_at == original_referred_at
    assert Case.objects.get(pk=analysed_case.pk).status == Case.Status.REFERRED

    # The specialist claims it again and answers.
    assert doctor.post(f"/api/v1/referrals/{referral_id}/claim/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        reviewed = doctor.post(f"/api/v1/referrals/{referral_id}/review/", review_payload(), format="json")
    assert reviewed.status_code == 201, reviewed.content
    assert reviewed.json()["private_note"].startswith("Low suspicion")
    assert reviewed.json()["model_top_class"] == "nv"

    # The clinic reads the answer without the private note, and closes the case.
    case = clinic.get(f"/api/v1/cases/{analysed_case.pk}/").json()
    assert case["status"] == "reviewed"
    assert case["review"]["outcome"] == "monitor" and case["review"]["follow_up_months"] == 3
    assert "private_note" not in case["review"] and "Low suspicion" not in str(case)
    referral_as_clinic = clinic.get(f"/api/v1/referrals/{referral_id}/").json()
    assert "private_note" not in referral_as_clinic["review"]
    assert doctor.get(f"/api/v1/referrals/{referral_id}/").json()["review"]["private_note"].startswith("Low")
    closed = clinic.post(
        f"/api/v1/cases/{analysed_case.pk}/acknowledge/", {"review": case["review"]["id"]}, format="json"
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (
        clinic.post(
            f"/api/v1/cases/{analysed_case.pk}/acknowledge/", {"review": case["review"]["id"]}, format="json"
        ).status_code
        == 409
    )

    # Notifications went to the right people only.
    received = set(Notification.objects.values_list("recipient__username", "kind"))
    assert received == {
        ("sam", "referral_new"),
        ("alice", "information_requested"),
        ("sam", "referral_returned"),
        ("alice", "review"),
    }
    assert not Notification.objects.filter(recipient__in=[other_staff, specialist_b]).exists()
    assert {queue for _, _, queue in emails_queued} == {"notifications"}
    assert len(emails_queued) == 4

    # Every step audited.
    actions = list(AuditEvent.objects.filter(object_type__in=["referral", "review"]).values_list("action", flat=True))
    for action in (
        "referral.create",
        "referral.claim",
        "referral.information_request",
        "referral.information_answer",
        "review.create",
    ):
        assert action in actions
    transitions = [
        (e.details["from"], e.details["to"])
        for e in AuditEvent.objects.filter(action="case.transition", object_id=str(analysed_case.pk)).order_by("pk")
    ]
    assert transitions == [
        ("analysed", "referred"),
        ("referred", "under_review"),
        ("under_review", "information_requested"),
        ("information_requested", "referred"),
        ("referred", "under_review"),
        ("under_review", "reviewed"),
        ("reviewed", "closed"),
    ]


def test_the_email_is_sent_by_the_notifications_task_once(analysed_case, client_for, staff, specialist, emails_queued):
    staff.email = "alice@clinic.example"
    staff.save(update_fields=["email"])
    referral = services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")
    services.referral_claim(actor=specialist, referral=referral)
    services.review_submit(
        actor=specialist,
        referral=referral,
        diagnosis="nv",
        agrees_with_model=True,
        outcome="discharge",
        message="A benign naevus.",
    )
    notification = Notification.objects.get(recipient=staff)

    assert tasks.email_send(notification.pk) is True
    assert tasks.email_send(notification.pk) is False  # a redelivered message sends nothing twice

    (email,) = mail.outbox
    assert email.to == ["alice@clinic.example"]
    assert f"Case {analysed_case.pk}" in email.subject
    assert analysed_case.patient.full_name not in email.body  # no patient details by email
    assert f"/cases/{analysed_case.pk}/" in email.body


def test_a_correction_supersedes_the_answer_and_both_are_kept(analysed_case, staff, specialist, client_for):
    referral = services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")
    services.referral_claim(actor=specialist, referral=referral)
    client = client_for(specialist)
    client.post(f"/api/v1/referrals/{referral.pk}/review/", review_payload(), format="json")

    corrected = client.post(
        f"/api/v1/referrals/{referral.pk}/review/",
        review_payload(diagnosis="mel", diagnosis_text="", outcome="urgent_appointment", follow_up_months=None),
        format="json",
    )

    assert corrected.status_code == 201, corrected.content
    first, second = Review.objects.order_by("pk")
    assert second.supersedes == first
    case = client_for(staff).get(f"/api/v1/cases/{analysed_case.pk}/").json()
    assert case["review"]["id"] == second.pk and case["review"]["outcome"] == "urgent_appointment"
    services.case_acknowledge(actor=staff, case=analysed_case, review_id=second.pk)
    late = client.post(f"/api/v1/referrals/{referral.pk}/review/", review_payload(), format="json")
    assert late.status_code == 409


def test_the_same_answer_sent_twice_is_one_answer_and_one_notice(analysed_case, staff, specialist, client_for):
    referral = services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")
    services.referral_claim(actor=specialist, referral=referral)
    client = client_for(specialist)

    first = client.post(f"/api/v1/referrals/{referral.pk}/review/", review_payload(), format="json")
    again = client.post(f"/api/v1/referrals/{referral.pk}/review/", review_payload(), format="json")

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert Review.objects.count() == 1 and Review.objects.get().supersedes is None
    assert Notification.objects.filter(kind=Notification.Kind.REVIEW).count() == 1
    services.case_acknowledge(actor=staff, case=analysed_case, review_id=first.json()["id"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "monitor", "follow_up_months": None}, "follow_up_months"),
        ({"outcome": "discharge", "follow_up_months": 3}, "follow_up_months"),
        ({"diagnosis": "other", "diagnosis_text": ""}, "diagnosis_text"),
        ({"message": ""}, "message"),
        ({"outcome": "wait and see"}, "outcome"),
    ],
)
def test_an_incomplete_review_is_400_and_changes_nothing(analysed_case, staff, specialist, client_for, change, field):
    referral = services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")
    services.referral_claim(actor=specialist, referral=referral)

    response = client_for(specialist).post(
        f"/api/v1/referrals/{referral.pk}/review/", review_payload(**change), format="json"
    )

    assert response.status_code == 400 and field in response.json()
    assert not Review.objects.exists()
    assert Referral.objects.get().status == "claimed"


def test_the_clinic_cannot_answer_when_nobody_asked(analysed_case, staff, client_for):
    services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")

    response = client_for(staff).post(
        f"/api/v1/cases/{analysed_case.pk}/information/", {"message": "Here you are"}, format="multipart"
    )

    assert response.status_code == 409


def test_a_closed_case_takes_no_more_photos(analysed_case, staff):
    from django.core.exceptions import ValidationError

    from diagnosis.services import case_photos_add

    Case.objects.filter(pk=analysed_case.pk).update(status=Case.Status.CLOSED)
    analysed_case.refresh_from_db()
    photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")

    with pytest.raises(ValidationError):
        case_photos_add(actor=staff, case=analysed_case, images=[photo])


def test_notifications_list_unread_and_mark_read(analysed_case, staff, specialist, client_for):
    services.referral_create(actor=staff, case=analysed_case, urgency="routine", reason="Worried")
    client = client_for(specialist)

    unread = client.get("/api/v1/notifications/?unread=true").json()
    assert unread["count"] == 1 and unread["results"][0]["unread"] is True
    notification_id = unread["results"][0]["id"]
    assert client.post(f"/api/v1/notifications/{notification_id}/read/").json()["unread"] is False
    assert client.get("/api/v1/notifications/?unread=true").json()["count"] == 0
    assert client_for(staff).post(f"/api/v1/notifications/{notification_id}/read/").status_code == 404


def test_service_metrics_count_open_overdue_time_to_answer_outcomes_and_agreement(
    clinic_a, staff, specialist, client_for
):
    now = timezone.now()
    for hours, diagnosis, outcome in ((10, "nv", "discharge"), (30, "mel", "biopsy"), (50, "nv", "monitor")):
        case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
        PredictionFactory(
            image=LesionImageFactory(case=case, analysis_status=Status.DONE),
            probabilities=probabilities(nv=0.7),
            top_class="nv",
        )
        referral = services.referral_create(actor=staff, case=case, urgency="routine", reason="x")
        Referral.objects.filter(pk=referral.pk).update(referred_at=now - timedelta(hours=hours))
        referral.refresh_from_db()
        services.referral_claim(actor=specialist, referral=referral)
        services.review_submit(
            actor=specialist,
            referral=referral,
            diagnosis=diagnosis,
            agrees_with_model=diagnosis == "nv",
            outcome=outcome,
            follow_up_months=6 if outcome == "monitor" else None,
            message="ok",
        )
    waiting = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    services.referral_create(actor=staff, case=waiting, urgency="urgent", reason="x")

    body = client_for(specialist).get("/api/v1/triage/metrics/").json()

    assert body["open"] == {"total": 1, "urgent": 1, "routine": 0, "overdue": 0, "waiting_for_clinic": 0}
    assert body["answered"] == 3 and body["answered_within_target"] == 3
    assert body["hours_to_answer_median"] == pytest.approx(30, abs=0.2)
    assert body["hours_to_answer_p90"] == pytest.approx(46, abs=0.2)
    assert body["outcomes"]["discharge"] == 1 and body["outcomes"]["biopsy"] == 1 and body["outcomes"]["monitor"] == 1
    assert body["agreement"]["model_classes"] == ["nv"]
    assert body["agreement"]["rows"] == [
        {"diagnosis": "mel", "counts": {"nv": 1}},
        {"diagnosis": "nv", "counts": {"nv": 2}},
    ]
    assert (body["agreement"]["agree"], body["agreement"]["total"]) == (2, 3)
    assert client_for(staff).get("/api/v1/triage/metrics/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_specialists_claiming_at_once_exactly_one_wins(clinic_a, staff, specialist):
    """A real race on PostgreSQL: two threads, two connections, one conditional update wins."""
    import threading

    from django.db import connection, connections

    from tests.factories import UserFactory
    from tests.inference_fixtures import service_missing

    if connection.vendor != "postgresql":
        service_missing("row locks need PostgreSQL (CI runs the suite on it)")
    colleague = UserFactory(username="tom", role="specialist", clinics=[clinic_a])
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    referral = services.referral_create(actor=staff, case=case, urgency="urgent", reason="Bleeding mole")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(user) -> None:
        try:
            barrier.wait()
            services.referral_claim(actor=user, referral=Referral.objects.get(pk=referral.pk))
            outcomes[user.username] = "won"
        except services.WorkflowConflict:
            outcomes[user.username] = "409"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(user,)) for user in (specialist, colleague)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["409", "won"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "won")
    referral.refresh_from_db()
    assert referral.claimed_by.username == winner and referral.status == "claimed"
    assert AuditEvent.objects.filter(action="referral.claim", object_id=str(referral.pk)).count() == 1
    assert (
        AuditEvent.objects.filter(action="case.transition", object_id=str(case.pk), details__to="under_review").count()
        == 1
    )


def test_notifications_about_a_case_go_with_access_to_the_case(specialist, clinic_a, staff, client_for):
    from triage.models import Notification

    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), referred=True, risk="high")
    about_case = Notification.objects.create(
        recipient=specialist, kind=Notification.Kind.REFERRAL_NEW, case=case, title="New referral: case 7"
    )
    general = Notification.objects.create(
        recipient=specialist, kind=Notification.Kind.FIELD_TURNED_BACK_HIGH, title="Many photos turned back"
    )
    client = client_for(specialist)
    assert client.get("/api/v1/notifications/").json()["count"] == 2

    specialist.clinics.remove(clinic_a)

    listed = client.get("/api/v1/notifications/").json()
    assert [item["id"] for item in listed["results"]] == [general.pk]
    assert client.post(f"/api/v1/notifications/{about_case.pk}/read/").status_code == 404


def referred_while_analysing(clinic, staff) -> tuple[Case, LesionImage, Referral]:
    """A case the clinic refers as routine while its photo is still being analysed."""
    case = CaseFactory(patient=PatientFactory(clinic=clinic, created_by=staff), status=Case.Status.ANALYSING)
    image = LesionImageFactory(case=case, analysis_status=Status.ANALYSING)
    referral = services.referral_create(actor=staff, case=case, urgency="routine", reason="Patient worried.")
    return case, image, referral


def scored(model, case: Case, image: LesionImage, **overrides: float) -> None:
    from analysis import services as analysis

    top = max(overrides, key=overrides.get)
    analysis.prediction_record(
        image=image,
        model_version=model.model_version,
        probabilities=probabilities(**overrides),
        top_class=top,
        inference_ms=3,
    )
    analysis.case_result_update(case_id=case.pk)


def test_a_referral_made_routine_before_the_model_flags_melanoma_becomes_urgent(
    db, served_model, clinic_a, staff, emails_queued, settings
):
    case, image, referral = referred_while_analysing(clinic_a, staff)
    assert referral.due_at == referral.referred_at + timedelta(hours=settings.SKINPORTAL_REFERRAL_TARGET_HOURS_ROUTINE)

    scored(served_model, case, image, mel=0.7)

    referral.refresh_from_db()
    assert referral.urgency == Referral.Urgency.URGENT
    assert referral.due_at == referral.referred_at + timedelta(hours=settings.SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT)
    raised = AuditEvent.objects.get(action="referral.urgency", object_id=str(referral.pk))
    assert raised.actor is None and raised.details["by"] == "model" and raised.details["new"] == "urgent"


def test_a_referral_a_person_lowered_from_urgent_is_not_raised_again_by_a_new_result(
    db, served_model, clinic_a, staff, emails_queued
):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSING)
    image = LesionImageFactory(case=case, analysis_status=Status.ANALYSING)
    referral = services.referral_create(actor=staff, case=case, urgency="urgent", reason="Bleeding.")
    services.referral_urgency_change(
        actor=staff, referral=referral, urgency="routine", reason="Seen by our GP: a bruise.", confirmed=True
    )

    scored(served_model, case, image, mel=0.7)

    referral.refresh_from_db()
    assert referral.urgency == Referral.Urgency.ROUTINE
    assert not AuditEvent.objects.filter(action="referral.urgency", details__by="model").exists()


def test_a_benign_new_result_leaves_a_routine_referral_routine(db, served_model, clinic_a, staff, emails_queued):
    case, image, referral = referred_while_analysing(clinic_a, staff)

    scored(served_model, case, image, nv=0.9)

    referral.refresh_from_db()
    assert referral.urgency == Referral.Urgency.ROUTINE
    assert not AuditEvent.objects.filter(action="referral.urgency").exists()


def test_an_audit_referral_made_urgent_gets_the_urgent_due_time(db, clinic_a, staff, emails_queued, settings):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    referral = services.referral_create(
        actor=None, case=case, urgency="routine", reason="Audit sample.", source=Referral.Source.AUDIT, sample_rate=0.05
    )
    assert referral.due_at == referral.referred_at + timedelta(days=settings.SKINPORTAL_AUDIT_DUE_DAYS)

    services.referral_urgency_change(actor=staff, referral=referral, urgency="urgent", reason="Bleeding since Monday.")

    referral.refresh_from_db()
    assert referral.due_at == referral.referred_at + timedelta(hours=settings.SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT)


def test_a_referral_opened_with_a_case_read_before_its_patient_moved_is_audited_under_the_new_clinic(
    db, clinic_a, clinic_b, staff, emails_queued
):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    assert case.patient.clinic == clinic_a  # read as the worker reads it, before the move
    type(case.patient).objects.filter(pk=case.patient_id).update(clinic=clinic_b)

    referral = services.referral_create(actor=None, case=case, urgency="urgent", reason="Melanoma 60%.", source="model")

    assert referral.clinic_id == clinic_b.pk
    moved = AuditEvent.objects.filter(object_type="case", object_id=str(case.pk)).latest("id")
    assert moved.clinic_id == clinic_b.pk
