"""Cases API and the case services: submission, output, analysis hand-off, status changes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import AuditEvent
from diagnosis.models import Case, LesionImage
from diagnosis.transitions import case_transition
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, image_bytes
from tests.inference_fixtures import service_missing

URL = "/api/v1/cases/"


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def photo(name: str = "lesion.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes(), content_type="image/jpeg")


def test_staff_submits_case_with_history_and_photos(
    staff, patient, client_for, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr("diagnosis.dispatch.case_analysis_enqueue", lambda *, case_id: enqueued.append(case_id))
    data = {
        "patient": patient.pk,
        "body_site": "upper extremity",
        "duration": "1_6_months",
        "recently_changed": "true",
        "bleeding": "true",
        "abcde_asymmetry": "true",
        "notes": "Grew over the rainy season.",
        "images": [photo("one.jpg"), photo("two.jpg")],
        "image_kinds": ["overview", "close_up"],
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(staff).post(URL, data, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    case = Case.objects.get(pk=body["id"])
    assert enqueued == [case.pk]
    assert body["status"] == "submitted"
    assert body["body_site"] == "upper extremity"
    assert body["duration"] == "1_6_months"
    assert (body["recently_changed"], body["bleeding"], body["abcde_asymmetry"], body["itching"]) == (
        True,
        True,
        True,
        False,
    )
    assert body["notes"] == "Grew over the rainy season."
    assert body["risk"] == "" and body["summary"] == ""
    assert [image["kind"] for image in body["images"]] == ["overview", "close_up"]
    first = body["images"][0]
    assert set(first) == {"id", "url", "width", "height", "kind", "analysis_status", "analysis_error", "prediction"}
    assert first["url"] == f"http://testserver/media/lesions/{first['id']}/"
    assert first["analysis_status"] == "queued"
    assert first["prediction"] is None
    assert case.submitted_by == staff
    assert AuditEvent.objects.filter(action="case.create", object_id=str(case.pk)).count() == 1


def test_analysis_is_not_enqueued_when_submission_fails(staff, patient, client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(staff).post(
            URL,
            {"patient": patient.pk, "body_site": "back", "images": [photo(), SimpleUploadedFile("bad.jpg", b"no")]},
            format="multipart",
        )

    assert response.status_code == 400
    assert callbacks == []


def test_case_for_patient_without_consent_is_refused(staff, clinic_a, client_for):
    patient = PatientFactory(clinic=clinic_a, consent_given=False, consent_recorded_at=None)

    response = client_for(staff).post(
        URL, {"patient": patient.pk, "body_site": "back", "images": [photo()]}, format="multipart"
    )

    assert response.status_code == 400
    assert "consent" in response.json()["patient"][0]
    assert not Case.objects.exists()


def test_case_without_images_is_refused(staff, patient, client_for):
    response = client_for(staff).post(URL, {"patient": patient.pk, "body_site": "back"}, format="multipart")

    assert response.status_code == 400
    assert "images" in response.json()


def test_unknown_body_site_is_refused(staff, patient, client_for):
    response = client_for(staff).post(
        URL, {"patient": patient.pk, "body_site": "elbow", "images": [photo()]}, format="multipart"
    )

    assert response.status_code == 400
    assert "body_site" in response.json()


def test_too_many_images_are_refused(staff, patient, client_for, settings):
    settings.UPLOAD_MAX_FILES = 2

    response = client_for(staff).post(
        URL, {"patient": patient.pk, "body_site": "back", "images": [photo(), photo(), photo()]}, format="multipart"
    )

    assert response.status_code == 400
    assert "at most 2" in response.json()["images"][0]


def test_case_output_includes_latest_prediction(staff, patient, client_for):
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSED, risk="low")
    image = LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE)
    PredictionFactory(image=image, model_version="old")
    latest = PredictionFactory(image=image, model_version="new", with_heatmap=True)

    response = client_for(staff).get(f"{URL}{case.pk}/")

    assert response.status_code == 200
    prediction = response.json()["images"][0]["prediction"]
    assert prediction["model_version"] == latest.model_version
    assert prediction["status"] == "done"
    assert set(prediction["probabilities"]) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert prediction["top_class"] == "nv"
    assert prediction["heatmap_url"] == f"http://testserver/media/lesions/{image.pk}/heatmap/"
    assert prediction["heatmap_layer"] is False  # the first version's heatmap: the photo with the map in it


@pytest.mark.parametrize(
    ("trait", "is_layer", "content_type"),
    [("with_layer", True, "image/png"), ("with_webp_layer", True, "image/webp"), ("with_heatmap", False, "image/png")],
)
def test_every_kind_of_stored_heatmap_is_served_and_said_to_be_a_layer_or_not(
    staff, patient, client_for, trait, is_layer, content_type
):
    case = CaseFactory(patient=patient, submitted_by=staff)
    image = LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE)
    prediction = PredictionFactory(image=image, **{trait: True})
    client = client_for(staff)

    answer = client.get(f"{URL}{case.pk}/").json()["images"][0]["prediction"]
    heatmap = client.get(answer["heatmap_url"])

    assert prediction.heatmap_is_layer is is_layer
    assert answer["heatmap_layer"] is is_layer
    assert heatmap.status_code == 200 and heatmap["Content-Type"] == content_type
    browser = Client()
    browser.force_login(staff)
    page = browser.get(f"/cases/{case.pk}/")
    assert page.status_code == 200
    page = page.content.decode()
    # a layer is laid over the photo in the viewer; a blended heatmap is offered as it is
    assert ("viewer-layer" in page) is is_layer


def test_case_list_filters_by_status(staff, patient, client_for):
    CaseFactory(patient=patient, submitted_by=staff)
    referred = CaseFactory(patient=patient, submitted_by=staff, referred=True)

    response = client_for(staff).get(URL, {"status": "referred"})

    assert [row["id"] for row in response.json()["results"]] == [referred.pk]


def test_case_list_does_not_query_per_case(staff, patient, client_for, django_assert_max_num_queries):
    for _ in range(5):
        PredictionFactory(image=LesionImageFactory(case=CaseFactory(patient=patient, submitted_by=staff)))
    client = client_for(staff)

    with django_assert_max_num_queries(10):
        response = client.get(URL)

    assert response.json()["count"] == 5


# --- case_transition -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path",),
    [
        (["analysing", "analysed", "referred", "under_review", "reviewed", "closed"],),
        (["analysing", "failed", "analysing", "analysed", "closed"],),
        (["failed", "referred", "under_review", "referred", "under_review", "information_requested", "referred"],),
        (["referred", "under_review", "reviewed", "closed"],),
        (["analysed", "analysing", "analysed"],),
    ],
)
def test_legal_status_paths_are_allowed(staff, patient, path):
    case = CaseFactory(patient=patient, submitted_by=staff)

    for status in path:
        case_transition(case=case, to_status=status, actor=staff)

    case.refresh_from_db()
    assert case.status == path[-1]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("submitted", "closed"),
        ("closed", "analysing"),
        ("closed", "referred"),
        ("under_review", "analysing"),
        ("referred", "analysing"),
        ("referred", "analysed"),
        ("reviewed", "analysing"),
        ("information_requested", "analysing"),
        ("submitted", "reviewed"),
    ],
)
def test_illegal_status_change_is_refused(staff, patient, start, target):
    case = CaseFactory(patient=patient, submitted_by=staff, status=start)

    with pytest.raises(ValidationError):
        case_transition(case=case, to_status=target, actor=staff)

    case.refresh_from_db()
    assert case.status == start


def test_transition_checks_stored_status_not_a_stale_copy(staff, patient):
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSED)
    stale = Case.objects.get(pk=case.pk)
    case_transition(case=case, to_status=Case.Status.CLOSED, actor=staff)

    with pytest.raises(ValidationError):
        case_transition(case=stale, to_status=Case.Status.REFERRED, actor=staff)

    case.refresh_from_db()
    assert case.status == Case.Status.CLOSED


def test_referral_sets_referred_at_and_is_audited(staff, patient):
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSED)

    case_transition(case=case, to_status=Case.Status.REFERRED, actor=staff)

    case.refresh_from_db()
    assert case.referred_at is not None
    event = AuditEvent.objects.get(action="case.transition", object_id=str(case.pk))
    assert event.details == {"from": "analysed", "to": "referred"}
    assert event.clinic == patient.clinic


def test_a_referral_back_in_the_queue_keeps_its_first_referral_time(staff, patient):
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSED)
    case_transition(case=case, to_status=Case.Status.REFERRED, actor=staff)
    referred_at = Case.objects.get(pk=case.pk).referred_at

    case_transition(case=case, to_status=Case.Status.UNDER_REVIEW)
    case_transition(case=case, to_status=Case.Status.REFERRED)

    case.refresh_from_db()
    assert case.referred_at == referred_at


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_from_the_same_status_let_only_one_win(staff, clinic_a):
    """Two requests race from 'analysed': closing and referring cannot both happen."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        service_missing("row locks need PostgreSQL (CI runs the suite on it)")
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(to_status: str) -> None:
        try:
            barrier.wait()
            case_transition(case=Case.objects.get(pk=case.pk), to_status=to_status, actor=staff)
            outcomes.append("ok")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(status,)) for status in ("closed", "referred")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["ok", "refused"]
    assert AuditEvent.objects.filter(action="case.transition", object_id=str(case.pk)).count() == 1
