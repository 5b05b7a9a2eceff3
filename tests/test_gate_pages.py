"""The case page and the API for a photo the gate turned back, and for one not marked dermoscopic."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from diagnosis.models import Case, LesionImage
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, image_bytes


@pytest.fixture
def rejected_case(clinic_a, staff):
    case = CaseFactory(
        patient=PatientFactory(clinic=clinic_a, created_by=staff),
        submitted_by=staff,
        status=Case.Status.FAILED,
        summary="The photo was not read by the model: it looks out of focus.",
    )
    PredictionFactory(
        image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE),
        gate="blurred",
        gate_score=1.5,
        probabilities={"akiec": 0.91, "bcc": 0.02, "bkl": 0.02, "df": 0.01, "mel": 0.02, "nv": 0.01, "vasc": 0.01},
        top_class="akiec",
        balanced_class="df",
    )
    return case


def test_the_case_page_asks_for_a_new_photo_and_shows_no_probabilities(web_client, staff, rejected_case):
    content = web_client(staff).get(reverse("web:case-detail", args=[rejected_case.pk])).content.decode()

    assert "Retake this photo" in content
    assert "This photo looks out of focus. Hold the phone steady" in content
    assert "Model probabilities for photo" not in content
    # The stored 0.91 is shown nowhere, whatever ids, dates or tokens the page holds.
    assert not re.search(r"\b91(?:[.,]0)?\s?%|\b0[.,]91\b", content)
    assert reverse("web:case-photos-add", args=[rejected_case.pk]) in content


def test_the_api_gives_a_rejected_photo_a_reason_and_message_and_no_probabilities(client_for, staff, rejected_case):
    body = client_for(staff).get(f"/api/v1/cases/{rejected_case.pk}/").json()

    prediction = body["images"][0]["prediction"]
    assert prediction["status"] == "rejected" and prediction["reason"] == "blurred"
    assert prediction["message"].startswith("This photo looks out of focus")
    assert prediction["probabilities"] is None and prediction["top_class"] is None
    assert prediction["balanced_class"] is None


def test_a_new_photo_added_from_the_case_page_goes_to_analysis(
    web_client, staff, rejected_case, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("retake.jpg", image_bytes(), content_type="image/jpeg")
    with django_capture_on_commit_callbacks(execute=False):
        response = web_client(staff).post(
            reverse("web:case-photos-add", args=[rejected_case.pk]), {"images": upload, "image_kinds": "dermoscopic"}
        )

    assert response.status_code == 302
    rejected_case.refresh_from_db()
    assert rejected_case.status == Case.Status.ANALYSING
    added = rejected_case.images.order_by("-pk").first()
    assert added.kind == "dermoscopic" and added.analysis_status == LesionImage.AnalysisStatus.QUEUED


def test_a_specialist_cannot_add_photos_from_the_case_page(web_client, specialist, rejected_case):
    upload = SimpleUploadedFile("retake.jpg", image_bytes(), content_type="image/jpeg")
    response = web_client(specialist).post(reverse("web:case-photos-add", args=[rejected_case.pk]), {"images": upload})
    assert response.status_code == 404  # not referred: the specialist cannot see the case at all
    assert rejected_case.images.count() == 1


@pytest.fixture
def no_notifications(monkeypatch):
    """Referral notifications are handed to nobody: no broker in these tests."""

    class NoApp:
        def send_task(self, *args, **kwargs):
            return None

    monkeypatch.setattr("triage.notifications.current_app", NoApp())


@pytest.fixture
def referred_rejected_case(rejected_case, staff, no_notifications):
    from triage import services as triage_services

    triage_services.referral_create(actor=staff, case=rejected_case, urgency="routine", reason="Growing.")
    rejected_case.refresh_from_db()
    assert rejected_case.status == Case.Status.REFERRED
    return rejected_case


def test_a_referred_case_that_asks_for_a_retake_takes_one(web_client, staff, referred_rejected_case):
    case = referred_rejected_case
    content = web_client(staff).get(reverse("web:case-detail", args=[case.pk])).content.decode()
    assert "Retake this photo" in content
    assert reverse("web:case-photos-add", args=[case.pk]) in content

    upload = SimpleUploadedFile("retake.jpg", image_bytes(), content_type="image/jpeg")
    response = web_client(staff).post(reverse("web:case-photos-add", args=[case.pk]), {"images": upload})

    assert response.status_code == 302
    assert case.images.count() == 2
    case.refresh_from_db()
    assert case.status == Case.Status.REFERRED  # in the specialist's hands: it stays there


def test_the_review_page_shows_why_the_gate_turned_a_photo_back(web_client, specialist, referred_rejected_case):
    content = (
        web_client(specialist)
        .get(reverse("triage:referral-detail", args=[referred_rejected_case.referral.pk]))
        .content.decode()
    )
    assert "Turned back by the photo gate" in content
    assert "This photo looks out of focus. Hold the phone steady" in content
    assert "Model probabilities for photo" not in content
    assert not re.search(r"\b91(?:[.,]0)?\s?%|\b0[.,]91\b", content)


def test_a_result_from_a_photo_not_marked_dermoscopic_says_so(web_client, staff, clinic_a):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), submitted_by=staff)
    case.status = Case.Status.ANALYSED
    case.save()
    PredictionFactory(image=LesionImageFactory(case=case, kind="close_up", analysis_status="done"))
    PredictionFactory(image=LesionImageFactory(case=case, kind="dermoscopic", analysis_status="done"))

    content = web_client(staff).get(reverse("web:case-detail", args=[case.pk])).content.decode()

    assert content.count("not dermoscopic. The model was trained on dermoscopic images only") == 1
    assert "marked as close-up, not dermoscopic" in content


def test_the_new_case_form_starts_each_photo_at_the_kind_the_clinic_used_last(web_client, staff, clinic_a):
    patient = PatientFactory(clinic=clinic_a, created_by=staff, consent_given=True)
    url = reverse("web:case-create", args=[patient.pk])
    assert 'data-photo-kinds=""' in web_client(staff).get(url).content.decode()

    earlier = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=earlier, kind="dermoscopic")

    assert 'data-photo-kinds="dermoscopic"' in web_client(staff).get(url).content.decode()


def test_the_retake_form_starts_at_the_kind_of_the_photo_turned_back(web_client, staff, rejected_case):
    LesionImage.objects.filter(case=rejected_case).update(kind="close_up")
    content = web_client(staff).get(reverse("web:case-detail", args=[rejected_case.pk])).content.decode()
    assert '<option value="close_up" selected>' in content
