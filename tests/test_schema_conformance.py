"""Schemathesis against /api/schema/ with a clinic-staff token and with a specialist's, and every
check: no server errors, no answer the schema does not describe, no invalid input accepted.
The database holds cases in every state a response can describe (scored with and without a
heatmap, referred and open, claimed, asked for more, answered and corrected, followed up), so
the nullable fields are met both empty and filled. Bounded examples per operation, so it runs
in CI (50 to 85 s for both roles on two shared cores)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from diagnosis.models import Case, LesionImage
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory
from triage import services as triage_services

EXAMPLES = 25
# Requests whose validity depends on other data, which generated input cannot know: made-up
# credentials, a clinic or patient id that does not exist, photos that must decode. These are
# rightly refused with a documented 400, so "schema-valid input is accepted" cannot hold for
# them; every other check still does.
REFERENCES_OTHER_DATA = {
    ("POST", "/api/v1/auth/token/"),
    ("POST", "/api/v1/patients/"),
    ("POST", "/api/v1/cases/"),
}


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Django's WSGI handler closes the database connection after each request; inside a
    test transaction that connection must stay open (Django's test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _scored(case: Case, *, heatmap: bool) -> Case:
    for image in case.images.all():
        LesionImage.objects.filter(pk=image.pk).update(analysis_status=LesionImage.AnalysisStatus.DONE)
        PredictionFactory(image=image, with_heatmap=heatmap)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ANALYSED, risk=Case.Risk.LOW, analysed_at=timezone.now())
    return Case.objects.get(pk=case.pk)


def _case(patient, staff, *, photos: int = 1, heatmap: bool = True) -> Case:
    case = CaseFactory(patient=patient, submitted_by=staff)
    for _ in range(photos):
        LesionImageFactory(case=case)
    return _scored(case, heatmap=heatmap)


def _answer(specialist, referral, **extra):
    defaults = {
        "diagnosis": "nv",
        "agrees_with_model": True,
        "outcome": "monitor",
        "follow_up_months": 3,
        "message": "Benign naevus; see it again.",
    }
    return triage_services.review_submit(actor=specialist, referral=referral, **{**defaults, **extra})


@pytest.fixture(autouse=True)
def api_world(db, staff, specialist, clinic_a, settings, wsgi_keeps_the_test_connection, media_root):
    # Every generated request is a sign-in attempt or an upload somewhere: no limit may turn
    # the run into 429s the test did not ask about.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "100000/min"},
    }
    settings.AXES_ENABLED = False
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 0
    patient = PatientFactory(clinic=clinic_a, created_by=staff, consent_given=True)
    CaseFactory(patient=patient, submitted_by=staff)  # submitted: no result yet
    _case(patient, staff, heatmap=False)  # a result without a heatmap, not referred
    open_referral = triage_services.referral_create(
        actor=staff, case=_case(patient, staff), urgency="routine", reason="Growing."
    )
    claimed = triage_services.referral_create(actor=staff, case=_case(patient, staff), urgency="urgent", reason="Dark.")
    triage_services.referral_claim(actor=specialist, referral=claimed)
    asked = triage_services.referral_create(actor=staff, case=_case(patient, staff), urgency="routine", reason="Itchy.")
    triage_services.referral_claim(actor=specialist, referral=asked)
    triage_services.information_request(actor=specialist, referral=asked, message="A close-up, please.")
    answered = triage_services.referral_create(
        actor=staff, case=_case(patient, staff, photos=2), urgency="routine", reason="New."
    )
    triage_services.referral_claim(actor=specialist, referral=answered)
    first = _answer(specialist, answered)
    _answer(specialist, answered, outcome="discharge", follow_up_months=None, message="Corrected.")  # supersedes it
    assert open_referral.pk and first.pk


# The schema as the portal serves it (no database needed to generate it).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


def _token(client) -> str:
    return client._credentials["HTTP_AUTHORIZATION"]


@pytest.fixture
def staff_token(staff, client_for):
    return _token(client_for(staff))


@pytest.fixture
def specialist_token(specialist, client_for):
    return _token(client_for(specialist))


def _call_and_validate(case, token: str) -> None:
    excluded = []
    if (case.method, case.operation.path) in REFERENCES_OTHER_DATA:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"Authorization": token}, excluded_checks=excluded)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema_for_clinic_staff(case, staff_token):
    _call_and_validate(case, staff_token)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema_for_a_specialist(case, specialist_token):
    _call_and_validate(case, specialist_token)


def test_fields_that_can_be_empty_are_declared_nullable_and_text_rules_are_stated(client):
    components = client.get("/api/schema/?format=json").json()["components"]["schemas"]

    for component, field in (
        ("ReferralOutput", "claimed_by"),
        ("CaseReferral", "claimed_by"),
        ("ReviewOutput", "supersedes"),
        ("PredictionOutput", "heatmap_url"),
    ):
        assert components[component]["properties"][field].get("nullable") is True, (component, field)
    assert "private_note" not in components["ReviewWithNoteOutput"].get("required", [])  # specialists only
    message = components["ReviewInputRequest"]["properties"]["message"]
    assert "\\u202e" in message["pattern"] and "\\u0000" in message["pattern"]
