"""Who gets what, for every endpoint and persona.

Another clinic's record, or a case not referred to a specialist, is a 404 (never a 403
that would confirm it exists); writing is for clinic staff and administrators only.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import (
    CaseFactory,
    LesionImageFactory,
    PatientFactory,
    PredictionFactory,
    image_bytes,
    referral_row,
)
from triage.models import Notification

ANON, STAFF, OTHER, SPEC, SPEC_B, ADMIN = "anonymous", "staff", "other_staff", "specialist", "specialist_b", "admin"


@pytest.fixture
def world(clinic_a, clinic_b, staff, other_staff, specialist, specialist_b):
    """Clinic A: a patient with a case, and a patient whose case was referred. Clinic B: one case.

    ``specialist`` serves both clinics, ``specialist_b`` clinic B only: a clinic A referral is a
    404 for the latter.
    """
    clinic_a.latitude, clinic_a.longitude = -1.2921, 36.8219  # for its UV index
    clinic_a.save(update_fields=["latitude", "longitude"])
    patient_a = PatientFactory(clinic=clinic_a, created_by=staff)
    case_a = CaseFactory(patient=patient_a, submitted_by=staff)
    image_a = PredictionFactory(with_heatmap=True, image=LesionImageFactory(case=case_a)).image

    patient_referred = PatientFactory(clinic=clinic_a, created_by=staff)
    case_referred = CaseFactory(patient=patient_referred, submitted_by=staff, referred=True)
    image_referred = PredictionFactory(with_heatmap=True, image=LesionImageFactory(case=case_referred)).image

    referral = referral_row(
        case=case_referred, source="model", urgency="routine", reason="High risk.", referred_by=None, request=None
    )
    notification = Notification.objects.create(recipient=staff, kind="review", case=case_referred, title="For alice")

    patient_b = PatientFactory(clinic=clinic_b, created_by=other_staff)
    case_b = CaseFactory(patient=patient_b, submitted_by=other_staff)
    image_b = PredictionFactory(with_heatmap=True, image=LesionImageFactory(case=case_b)).image
    return {
        "clinic_a": clinic_a,
        "patient_a": patient_a,
        "case_a": case_a,
        "image_a": image_a,
        "patient_referred": patient_referred,
        "case_referred": case_referred,
        "image_referred": image_referred,
        "patient_b": patient_b,
        "case_b": case_b,
        "image_b": image_b,
        "referral": referral,
        "notification": notification,
    }


def _patient_payload(world):
    return {
        "clinic": world["clinic_a"].pk,
        "identifier": "NEW-1",
        "full_name": "New Patient",
        "date_of_birth": "1980-01-31",
        "sex": "male",
        "consent_given": True,
    }


def _case_payload(world):
    return {
        "patient": world["patient_a"].pk,
        "body_site": "lower extremity",
        "images": [SimpleUploadedFile("lesion.jpg", image_bytes(), content_type="image/jpeg")],
    }


# endpoint -> (method, url builder, payload builder, {persona: expected status})
ENDPOINTS = {
    "patient-list": (
        "get",
        lambda w: "/api/v1/patients/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 200, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    "patient-detail": (
        "get",
        lambda w: f"/api/v1/patients/{w['patient_a'].pk}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-patient-detail": (
        "get",
        lambda w: f"/api/v1/patients/{w['patient_referred'].pk}/",
        None,
        # Specialists have no patient records, even of the cases referred to them (patients.disclosure).
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "patient-create-in-clinic-a": (
        "post",
        lambda w: "/api/v1/patients/",
        _patient_payload,
        {ANON: 401, STAFF: 201, OTHER: 400, SPEC: 403, SPEC_B: 403, ADMIN: 201},
    ),
    # Specialists never change consent, and see no patient record: 404.
    "patient-consent": (
        "post",
        lambda w: f"/api/v1/patients/{w['patient_a'].pk}/consent/",
        lambda w: {"consent_given": True},
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-patient-consent": (
        "post",
        lambda w: f"/api/v1/patients/{w['patient_referred'].pk}/consent/",
        lambda w: {"consent_given": False},
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "case-list": (
        "get",
        lambda w: "/api/v1/cases/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 200, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    "case-detail": (
        "get",
        lambda w: f"/api/v1/cases/{w['case_a'].pk}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-case-detail": (
        "get",
        lambda w: f"/api/v1/cases/{w['case_referred'].pk}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    "case-create-for-clinic-a-patient": (
        "post",
        lambda w: "/api/v1/cases/",
        _case_payload,
        {ANON: 401, STAFF: 201, OTHER: 400, SPEC: 403, SPEC_B: 403, ADMIN: 201},
    ),
    # A retake: new photos for an existing case. Specialists add none (403 before the lookup).
    "case-photos-add": (
        "post",
        lambda w: f"/api/v1/cases/{w['case_a'].pk}/images/",
        lambda w: {"images": [SimpleUploadedFile("retake.jpg", image_bytes(), content_type="image/jpeg")]},
        {ANON: 401, STAFF: 201, OTHER: 404, SPEC: 403, ADMIN: 201},
    ),
    # Closing a case waiting for a photo (analysis/safety_net.py): case_a is not waiting, so the
    # clinic's own staff get 400; specialists are refused before the lookup.
    "case-close": (
        "post",
        lambda w: f"/api/v1/cases/{w['case_a'].pk}/close/",
        lambda w: {"reason": "Seen at the hospital"},
        {ANON: 401, STAFF: 400, OTHER: 404, SPEC: 403, SPEC_B: 403, ADMIN: 400},
    ),
    "image-file": (
        "get",
        lambda w: f"/media/lesions/{w['image_a'].pk}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-image-file": (
        "get",
        lambda w: f"/media/lesions/{w['image_referred'].pk}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    "heatmap-file": (
        "get",
        lambda w: f"/media/lesions/{w['image_a'].pk}/heatmap/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-heatmap-file": (
        "get",
        lambda w: f"/media/lesions/{w['image_referred'].pk}/heatmap/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    # The referral workflow (triage/api_urls.py).
    "case-referral": (
        "post",
        lambda w: f"/api/v1/cases/{w['case_a'].pk}/referral/",
        lambda w: {"urgency": "routine", "reason": "Growing."},
        {ANON: 401, STAFF: 201, OTHER: 404, SPEC: 403, SPEC_B: 403, ADMIN: 201},
    ),
    "case-information-nothing-asked": (
        "post",
        lambda w: f"/api/v1/cases/{w['case_referred'].pk}/information/",
        lambda w: {"message": "Here it is."},
        {ANON: 401, STAFF: 409, OTHER: 404, SPEC: 403, SPEC_B: 403, ADMIN: 409},
    ),
    "case-acknowledge-unanswered": (
        "post",
        lambda w: f"/api/v1/cases/{w['case_referred'].pk}/acknowledge/",
        lambda w: {"review": 1},
        {ANON: 401, STAFF: 409, OTHER: 404, SPEC: 403, SPEC_B: 403, ADMIN: 409},
    ),
    "referral-list": (
        "get",
        lambda w: "/api/v1/referrals/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 200, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    "referral-detail": (
        "get",
        lambda w: f"/api/v1/referrals/{w['referral'].pk}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    "referral-claim": (
        "post",
        lambda w: f"/api/v1/referrals/{w['referral'].pk}/claim/",
        None,
        {ANON: 401, STAFF: 403, OTHER: 403, SPEC: 200, SPEC_B: 404, ADMIN: 403},
    ),
    "referral-release-unclaimed": (
        "post",
        lambda w: f"/api/v1/referrals/{w['referral'].pk}/release/",
        None,
        {ANON: 401, STAFF: 403, OTHER: 403, SPEC: 409, SPEC_B: 404, ADMIN: 409},
    ),
    "referral-review-unclaimed": (
        "post",
        lambda w: f"/api/v1/referrals/{w['referral'].pk}/review/",
        lambda w: {"diagnosis": "nv", "agrees_with_model": True, "outcome": "discharge", "message": "Benign."},
        {ANON: 401, STAFF: 403, OTHER: 403, SPEC: 409, SPEC_B: 404, ADMIN: 403},
    ),
    "referral-request-information-unclaimed": (
        "post",
        lambda w: f"/api/v1/referrals/{w['referral'].pk}/request-information/",
        lambda w: {"message": "A close-up, please."},
        {ANON: 401, STAFF: 403, OTHER: 403, SPEC: 409, SPEC_B: 404, ADMIN: 403},
    ),
    "referral-urgency-raise": (
        "post",
        lambda w: f"/api/v1/referrals/{w['referral'].pk}/urgency/",
        lambda w: {"urgency": "urgent"},
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    "notification-list": (
        "get",
        lambda w: "/api/v1/notifications/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 200, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    "notification-read": (
        "post",
        lambda w: f"/api/v1/notifications/{w['notification'].pk}/read/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 404},
    ),
    "triage-metrics": (
        "get",
        lambda w: "/api/v1/triage/metrics/",
        None,
        {ANON: 401, STAFF: 403, OTHER: 403, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    # The model in the field (monitoring/): specialists and administrators only.
    "model-performance": (
        "get",
        lambda w: "/api/v1/triage/model-performance/",
        None,
        {ANON: 401, STAFF: 403, OTHER: 403, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    "clinic-list": (
        "get",
        lambda w: "/api/v1/clinics/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 200, SPEC: 200, SPEC_B: 200, ADMIN: 200},
    ),
    "clinic-uv": (
        "get",
        lambda w: f"/api/v1/clinics/{w['clinic_a'].pk}/uv/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    # Revokes the caller's own token; everyone signed in may (tests/test_security_tokens.py).
    "token-logout": (
        "post",
        lambda w: "/api/v1/auth/logout/",
        None,
        {ANON: 401, STAFF: 204, OTHER: 204, SPEC: 204, SPEC_B: 204, ADMIN: 204},
    ),
    # Continuity of care (continuity/api_urls.py).
    "patient-lesions": (
        "get",
        lambda w: f"/api/v1/patients/{w['patient_a'].pk}/lesions/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-patient-lesions": (
        "get",
        lambda w: f"/api/v1/patients/{w['patient_referred'].pk}/lesions/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "lesion-detail": (
        "get",
        lambda w: f"/api/v1/lesions/{w['case_a'].lesion_id}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-lesion-detail": (
        "get",
        lambda w: f"/api/v1/lesions/{w['case_referred'].lesion_id}/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    "follow-up-list": (
        "get",
        lambda w: "/api/v1/follow-ups/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 200, SPEC: 403, SPEC_B: 403, ADMIN: 200},
    ),
    "case-letter-pdf": (
        "get",
        lambda w: f"/api/v1/cases/{w['case_a'].pk}/letter.pdf",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-case-letter-pdf": (
        "get",
        lambda w: f"/api/v1/cases/{w['case_referred'].pk}/letter.pdf",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
    "case-fhir": (
        "get",
        lambda w: f"/api/v1/cases/{w['case_a'].pk}/fhir/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 404, SPEC_B: 404, ADMIN: 200},
    ),
    "referred-case-fhir": (
        "get",
        lambda w: f"/api/v1/cases/{w['case_referred'].pk}/fhir/",
        None,
        {ANON: 401, STAFF: 200, OTHER: 404, SPEC: 200, SPEC_B: 404, ADMIN: 200},
    ),
}

MATRIX = [
    pytest.param(endpoint, persona, expected, id=f"{endpoint}-{persona}-{expected}")
    for endpoint, (_, _, _, expectations) in ENDPOINTS.items()
    for persona, expected in expectations.items()
]


@pytest.mark.parametrize(("endpoint", "persona", "expected"), MATRIX)
def test_access_matrix(endpoint, persona, expected, world, personas, client_for):
    method, url, payload, _ = ENDPOINTS[endpoint]
    client = client_for(personas[persona])
    kwargs = {}
    if payload is not None:
        kwargs = {"data": payload(world), "format": "multipart" if "images" in payload(world) else "json"}

    response = getattr(client, method)(url(world), **kwargs)

    assert response.status_code == expected, response.content[:300]
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json")


def _ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def test_staff_list_shows_only_their_clinics_patients(world, staff, client_for):
    response = client_for(staff).get("/api/v1/patients/")

    assert _ids(response) == {world["patient_a"].pk, world["patient_referred"].pk}


def test_staff_cannot_see_other_clinics_cases_in_list(world, other_staff, client_for):
    response = client_for(other_staff).get("/api/v1/cases/")

    assert _ids(response) == {world["case_b"].pk}


def test_specialist_sees_referred_cases_and_no_patient_records(world, specialist, client_for):
    client = client_for(specialist)

    assert _ids(client.get("/api/v1/cases/")) == {world["case_referred"].pk}
    assert _ids(client.get("/api/v1/patients/")) == set()


def test_specialist_sees_only_the_referrals_of_the_clinics_they_serve(world, specialist_b, client_for):
    client = client_for(specialist_b)

    assert _ids(client.get("/api/v1/cases/")) == set()
    assert _ids(client.get("/api/v1/referrals/")) == set()
    assert client.get(f"/api/v1/referrals/{world['referral'].pk}/").status_code == 404


def test_administrator_sees_every_case(world, admin_user, client_for):
    response = client_for(admin_user).get("/api/v1/cases/")

    assert _ids(response) == {world["case_a"].pk, world["case_referred"].pk, world["case_b"].pk}


def test_inactive_user_token_is_refused(world, staff, client_for):
    client = client_for(staff)
    staff.is_active = False
    staff.save(update_fields=["is_active"])

    assert client.get(f"/api/v1/cases/{world['case_a'].pk}/").status_code == 401


def test_staff_of_deactivated_clinic_sees_nothing(world, staff, client_for):
    world["clinic_a"].is_active = False
    world["clinic_a"].save(update_fields=["is_active"])

    response = client_for(staff).get(f"/api/v1/cases/{world['case_a'].pk}/")

    assert response.status_code == 404


def test_image_file_is_private_and_not_cached(world, staff, client_for):
    response = client_for(staff).get(f"/media/lesions/{world['image_a'].pk}/")

    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"


def test_heatmap_of_image_without_prediction_is_404(staff, clinic_a, client_for):
    image = LesionImageFactory(case=CaseFactory(patient=PatientFactory(clinic=clinic_a)))

    assert client_for(staff).get(f"/media/lesions/{image.pk}/heatmap/").status_code == 404


def test_stored_file_path_is_not_served_directly(world, staff, client_for):
    response = client_for(staff).get("/" + "media/" + world["image_a"].file.name)

    assert response.status_code == 404


def test_the_matrix_covers_every_api_route(world):
    """A new endpoint added to diagnosis/urls.py without a row above fails here."""
    from django.urls import resolve

    from clinics.urls import urlpatterns as clinic_urlpatterns
    from continuity.api_urls import urlpatterns as continuity_urlpatterns
    from diagnosis.urls import urlpatterns
    from monitoring.urls import urlpatterns as monitoring_urlpatterns
    from triage.api_urls import urlpatterns as triage_urlpatterns

    covered = {resolve(url(world)).route for _, url, _, _ in ENDPOINTS.values()}
    routes = {
        str(pattern.pattern)
        for pattern in [*urlpatterns, *triage_urlpatterns, *clinic_urlpatterns, *continuity_urlpatterns]
    }
    routes |= {str(pattern.pattern) for pattern in monitoring_urlpatterns if str(pattern.pattern).startswith("api/")}
    routes -= {"api/v1/auth/token/"}  # sign-in: test_security_auth

    assert routes - covered == set()
