"""The referral workflow's web pages: the queue, the review page, the case page's referral
panel, notifications and the service measures, each for the right people only."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from diagnosis.models import Case, LesionImage
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory
from triage import services
from triage.models import Referral, Review


@pytest.fixture
def referred(clinic_a, staff):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    PredictionFactory(image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE))
    services.referral_create(actor=staff, case=case, urgency="urgent", reason="Bleeds when touched.")
    return case


def test_queue_lists_the_referrals_of_served_clinics_only(web_client, specialist, specialist_b, referred):
    page = web_client(specialist).get("/referrals/")

    assert page.status_code == 200
    assert b"Bleeds when touched." in page.content and b"Urgent" in page.content
    assert page["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(action="referral.list", actor=specialist).exists()


def test_a_specialist_of_another_clinic_sees_an_empty_queue_and_404s(client, specialist_b, referred):
    client.force_login(specialist_b)
    referral = Referral.objects.get()

    assert b"Bleeds when touched." not in client.get("/referrals/").content
    assert client.get(f"/referrals/{referral.pk}/").status_code == 404
    assert client.post(f"/referrals/{referral.pk}/claim/").status_code == 404
    assert client.get(f"/cases/{referred.pk}/").status_code == 404


def test_queue_filters(web_client, specialist, referred):
    client = web_client(specialist)

    assert b"Bleeds" in client.get("/referrals/?urgency=urgent").content
    assert b"Bleeds" not in client.get("/referrals/?urgency=routine").content
    assert b"Bleeds" not in client.get("/referrals/?mine=on").content
    assert b"Bleeds" not in client.get("/referrals/?overdue=on").content


def test_claim_review_and_acknowledge_through_the_pages(client, staff, specialist, referred):
    referral = Referral.objects.get()
    client.force_login(specialist)
    detail = client.get(f"/referrals/{referral.pk}/")
    assert b"Claim for review" in detail.content

    client.post(f"/referrals/{referral.pk}/claim/")
    held = client.get(f"/referrals/{referral.pk}/")
    assert b"You hold this referral" in held.content and b"Send the answer to the clinic" in held.content

    incomplete = client.post(f"/referrals/{referral.pk}/review/", {"diagnosis": "nv", "outcome": "monitor"})
    assert incomplete.status_code == 400 and b"Say in how many months" in incomplete.content
    answered = client.post(
        f"/referrals/{referral.pk}/review/",
        {
            "diagnosis": "nv",
            "agrees_with_model": "true",
            "outcome": "monitor",
            "follow_up_months": "6",
            "message": "Benign; check again in six months.",
            "private_note": "Not for the clinic.",
        },
    )
    assert answered.status_code == 302
    assert Review.objects.get().follow_up_months == 6

    client.force_login(staff)
    case_page = client.get(f"/cases/{referred.pk}/")
    assert b"The specialist&#x27;s answer" in case_page.content or b"The specialist's answer" in case_page.content
    assert b"Benign; check again in six months." in case_page.content
    assert b"Photograph the lesion again by" in case_page.content
    assert b"Not for the clinic." not in case_page.content
    assert b"Analyse again" not in case_page.content
    client.post(f"/cases/{referred.pk}/acknowledge/", {"review": referred.referral.latest_review.pk})
    assert Case.objects.get(pk=referred.pk).status == Case.Status.CLOSED
    assert b"close the case" not in client.get(f"/cases/{referred.pk}/").content


def test_staff_refer_from_the_case_page(client, staff, clinic_a):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    client.force_login(staff)
    assert b"Refer to a specialist" in client.get(f"/cases/{case.pk}/").content

    missing_reason = client.post(f"/cases/{case.pk}/refer/", {"urgency": "routine", "reason": ""})
    assert missing_reason.status_code == 302 and not Referral.objects.exists()
    client.post(f"/cases/{case.pk}/refer/", {"urgency": "routine", "reason": "The patient is worried."})

    referral = Referral.objects.get()
    assert (referral.source, referral.urgency, referral.referred_by) == ("clinic", "routine", staff)
    page = client.get(f"/cases/{case.pk}/").content
    assert b"The patient is worried." in page and b"Refer to a specialist" not in page


def test_specialists_cannot_refer_or_acknowledge_from_the_pages(client, specialist, referred, clinic_a, staff):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    client.force_login(specialist)

    assert client.post(f"/cases/{case.pk}/refer/", {"urgency": "routine", "reason": "x"}).status_code == 404
    client.post(f"/cases/{referred.pk}/acknowledge/")
    assert Case.objects.get(pk=referred.pk).status == Case.Status.REFERRED


def test_notifications_page_marks_read_and_opens(client, specialist, referred):
    client.force_login(specialist)
    page = client.get("/notifications/")
    assert b"New urgent" in page.content and b"1 unread" in page.content
    notification = specialist.notifications.get()

    opened = client.post(f"/notifications/{notification.pk}/read/", {"open": "1"})

    assert opened.status_code == 302 and opened["Location"] == f"/referrals/{Referral.objects.get().pk}/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_service_measures_page_for_specialists_and_administrators_only(web_client, client, staff, specialist, referred):
    assert web_client(specialist).get("/service/").status_code == 200
    client.force_login(staff)
    assert client.get("/service/").status_code == 403


def test_the_clinics_answer_form_says_optional_once(web_client, staff, specialist, referred):
    referral = Referral.objects.get()
    services.referral_claim(actor=specialist, referral=referral)
    services.information_request(actor=specialist, referral=referral, message="A closer photo, please.")

    html = web_client(staff).get(f"/cases/{referred.pk}/").content.decode()

    assert 'More photos <span class="muted small">(optional)</span>' in html
    assert "(optional) <span" not in html and "(optional)</span></label>" in html
