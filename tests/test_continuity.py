"""Continuity of care: a lesion followed over visits, follow-ups that come due, the referral
letter as PDF and the FHIR export."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from dateutil.relativedelta import relativedelta
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditEvent
from continuity import services as continuity_services
from continuity import tasks as continuity_tasks
from continuity.fhir import bundle_validate
from continuity.models import FollowUp
from diagnosis import dispatch
from diagnosis.models import Case, Lesion, LesionImage
from inference.preprocessing import CLASSES
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, image_bytes
from triage import services as triage_services
from triage.models import Notification, Review


def probabilities(**overrides: float) -> dict[str, float]:
    rest = (1.0 - sum(overrides.values())) / (len(CLASSES) - len(overrides))
    return {name: overrides.get(name, rest) for name in CLASSES}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Cases and emails are handed to nobody: no broker in these tests."""
    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)

    class NoApp:
        def send_task(self, *args, **kwargs):
            return None

    monkeypatch.setattr("triage.notifications.current_app", NoApp())


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff, identifier="LES-042", full_name="Lena Sommer")


def _photo(name="lesion.jpg", color=(180, 120, 90)):
    return SimpleUploadedFile(name, image_bytes(color=color), content_type="image/jpeg")


def _case_via_api(client, patient, **extra):
    data = {"patient": patient.pk, "body_site": "back", "images": [_photo()], **extra}
    return client.post("/api/v1/cases/", data, format="multipart")


def _scored(case: Case, **probs) -> Case:
    """Give each photo of the case a model result."""
    for image in case.images.all():
        LesionImage.objects.filter(pk=image.pk).update(analysis_status=LesionImage.AnalysisStatus.DONE)
        PredictionFactory(image=image, probabilities=probabilities(**probs), top_class="nv", with_heatmap=True)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ANALYSED, risk=Case.Risk.LOW, analysed_at=timezone.now())
    return Case.objects.get(pk=case.pk)


def _reviewed(case: Case, *, staff, specialist, outcome="monitor", months=3, message="Benign naevus; see it again."):
    referral = triage_services.referral_create(actor=staff, case=case, urgency="routine", reason="Growing.")
    triage_services.referral_claim(actor=specialist, referral=referral)
    review = triage_services.review_submit(
        actor=specialist,
        referral=referral,
        diagnosis="nv",
        agrees_with_model=True,
        outcome=outcome,
        follow_up_months=months if outcome == "monitor" else None,
        message=message,
    )
    return review


# --- The lesion over visits -----------------------------------------------------------------
def test_a_lesion_followed_across_two_cases_shows_both_in_order(patient, staff, client_for, web_client):
    client = client_for(staff)
    first = _case_via_api(client, patient, lesion_label="mole left shoulder")
    assert first.status_code == 201, first.content
    lesion_id = first.json()["lesion"]
    second = _case_via_api(client, patient, lesion=lesion_id)
    assert second.status_code == 201, second.content
    assert second.json()["lesion"] == lesion_id
    other = _case_via_api(client, patient)  # omitted: a new lesion
    assert other.json()["lesion"] != lesion_id

    detail = client.get(f"/api/v1/lesions/{lesion_id}/").json()
    assert detail["label"] == "mole left shoulder"
    assert [case["id"] for case in detail["cases"]] == [first.json()["id"], second.json()["id"]]
    listing = client.get(f"/api/v1/patients/{patient.pk}/lesions/").json()
    assert [(row["id"], row["case_count"]) for row in listing["results"]] == [
        (lesion_id, 2),
        (other.json()["lesion"], 1),
    ]
    assert AuditEvent.objects.filter(action="lesion.view", object_id=str(lesion_id)).exists()

    page = web_client(staff).get(f"/lesions/{lesion_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index(f"Case {first.json()['id']}") < html.index(f"Case {second.json()['id']}")
    assert page["Cache-Control"] == "private, no-store"
    patient_page = web_client(staff).get(f"/patients/{patient.pk}/").content.decode()
    assert f'href="/lesions/{lesion_id}/"' in patient_page and "mole left shoulder" in patient_page
    compare = web_client(staff).get(f"/lesions/{lesion_id}/compare/").content.decode()
    for shown in (html, patient_page, compare):  # a Content-Security-Policy without inline scripts
        assert "<script>" not in shown and not re.search(r"\son[a-z]+=", shown)


def test_a_case_cannot_continue_another_patients_lesion(patient, clinic_a, staff, client_for):
    someone_else = PatientFactory(clinic=clinic_a, created_by=staff)
    their_lesion = CaseFactory(patient=someone_else, submitted_by=staff).lesion

    response = _case_via_api(client_for(staff), patient, lesion=their_lesion.pk)

    assert response.status_code == 400
    assert "lesion" in response.json()
    assert Case.objects.filter(patient=patient).count() == 0


def test_a_case_cannot_continue_another_clinics_lesion(patient, clinic_b, other_staff, staff, client_for):
    their_lesion = CaseFactory(patient=PatientFactory(clinic=clinic_b, created_by=other_staff)).lesion

    response = _case_via_api(client_for(staff), patient, lesion=their_lesion.pk)

    assert response.status_code == 404
    assert Case.objects.filter(patient=patient).count() == 0


def test_another_clinic_cannot_read_the_lesion(patient, staff, other_staff, client_for, web_client):
    lesion = CaseFactory(patient=patient, submitted_by=staff).lesion

    assert client_for(other_staff).get(f"/api/v1/lesions/{lesion.pk}/").status_code == 404
    assert client_for(other_staff).get(f"/api/v1/patients/{patient.pk}/lesions/").status_code == 404
    assert web_client(other_staff).get(f"/lesions/{lesion.pk}/").status_code == 404


def test_the_web_form_continues_a_lesion_picked_from_its_thumbnails(patient, staff, web_client):
    first = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=first)
    client = web_client(staff)

    form = client.get(f"/patients/{patient.pk}/cases/new/?lesion={first.lesion_id}").content.decode()
    assert f'value="{first.lesion_id}"' in form and "checked" in form
    response = client.post(
        f"/patients/{patient.pk}/cases/new/",
        {"body_site": "back", "duration": "unknown", "lesion": first.lesion_id, "images": [_photo()]},
    )

    assert response.status_code == 302, response.content[:500]
    assert Case.objects.filter(patient=patient).latest("pk").lesion_id == first.lesion_id


def test_the_lesion_page_shows_how_the_malignant_probabilities_moved(patient, staff, web_client):
    lesion_case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=lesion_case)
    _scored(lesion_case, mel=0.10)
    later = CaseFactory(patient=patient, submitted_by=staff, lesion=lesion_case.lesion)
    LesionImageFactory(case=later)
    _scored(later, mel=0.40)

    html = web_client(staff).get(f"/lesions/{lesion_case.lesion_id}/").content.decode()

    assert "+30.0 points" in html and "(was 10.0 %)" in html


def _turned_back(case: Case, *, kind: str = "close_up", mel: float = 0.028) -> LesionImage:
    """A photo the gate turned back: its prediction keeps probabilities for the record only."""
    image = LesionImageFactory(case=case, kind=kind, analysis_status=LesionImage.AnalysisStatus.DONE)
    PredictionFactory(
        image=image, probabilities=probabilities(mel=mel), top_class="nv", gate="not_skin", gate_score=9.8
    )
    return image


def test_a_turned_back_photo_gives_the_lesion_page_no_probability_and_no_trend(patient, staff, web_client):
    first = CaseFactory(patient=patient, submitted_by=staff)
    _turned_back(first, mel=0.028)
    Case.objects.filter(pk=first.pk).update(status=Case.Status.FAILED)
    later = CaseFactory(patient=patient, submitted_by=staff, lesion=first.lesion)
    LesionImageFactory(case=later, kind="close_up")
    _scored(later, mel=0.17)

    html = web_client(staff).get(f"/lesions/{first.lesion_id}/").content.decode()

    assert "2.8 %" not in html and "was 2.8" not in html and "points" not in html
    assert "17.0 %" in html and "first result" in html
    assert "the model did not read the photos" in html


def test_the_compare_view_opens_on_readable_photos_and_shows_no_result_of_a_turned_back_one(patient, staff, web_client):
    first = CaseFactory(patient=patient, submitted_by=staff)
    _turned_back(first, kind="overview", mel=0.028)
    readable = LesionImageFactory(case=first, kind="close_up", analysis_status=LesionImage.AnalysisStatus.DONE)
    PredictionFactory(image=readable, probabilities=probabilities(mel=0.05), top_class="nv")
    later = CaseFactory(patient=patient, submitted_by=staff, lesion=first.lesion)
    LesionImageFactory(case=later, kind="overview")
    LesionImageFactory(case=later, kind="close_up")
    _scored(later, mel=0.20)

    response = web_client(staff).get(f"/lesions/{first.lesion_id}/compare/")
    html = response.content.decode()

    assert response.context["pair"]["kind"] == "close_up"
    assert response.context["pair"]["before_image"].pk == readable.pk
    assert "2.8 %" not in html and "5.0 %" in html

    overviews = web_client(staff).get(f"/lesions/{first.lesion_id}/compare/?kind=overview").content.decode()
    assert "2.8 %" not in overviews and "turned back for a retake" in overviews


def test_a_turned_back_photo_gives_the_letter_and_the_fhir_export_no_result(patient, staff, client_for, web_client):
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.FAILED)
    _turned_back(case, mel=0.028)

    letter = web_client(staff).get(f"/cases/{case.pk}/letter/").content.decode()
    bundle = client_for(staff).get(f"/api/v1/cases/{case.pk}/fhir/").json()

    assert "2.8 %" not in letter and "No model result" in letter
    types = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert "Media" in types and "Observation" not in types and "Device" not in types
    bundle_validate(bundle)


# --- Follow-ups -----------------------------------------------------------------------------
def test_a_monitor_review_sets_the_lesions_follow_up_due_date(patient, staff, specialist):
    case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    review = _reviewed(case, staff=staff, specialist=specialist, months=3)

    follow_up = FollowUp.objects.get(lesion=case.lesion)
    assert follow_up.review == review
    assert follow_up.status == FollowUp.Status.DUE
    assert follow_up.due_on == timezone.localtime(review.created_at).date() + relativedelta(months=3)


def test_a_review_that_does_not_monitor_sets_no_follow_up(patient, staff, specialist):
    case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    _reviewed(case, staff=staff, specialist=specialist, outcome="discharge")

    assert not FollowUp.objects.exists()


def test_the_daily_task_notifies_once_on_the_due_date_and_never_twice(patient, staff, specialist):
    case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    _reviewed(case, staff=staff, specialist=specialist, months=3)
    follow_up = FollowUp.objects.get()
    Notification.objects.all().delete()

    assert continuity_services.follow_ups_due_notify(today=follow_up.due_on - datetime.timedelta(days=1)) == 0
    assert not Notification.objects.filter(kind=Notification.Kind.FOLLOW_UP_DUE).exists()

    assert continuity_services.follow_ups_due_notify(today=follow_up.due_on) == 1
    assert continuity_services.follow_ups_due_notify(today=follow_up.due_on) == 0
    assert continuity_services.follow_ups_due_notify(today=follow_up.due_on + datetime.timedelta(days=1)) == 0

    notes = Notification.objects.filter(kind=Notification.Kind.FOLLOW_UP_DUE)
    assert [(n.recipient, n.url) for n in notes] == [(staff, f"/lesions/{case.lesion_id}/")]
    assert patient.identifier not in notes[0].title and patient.full_name not in notes[0].title


def test_the_daily_task_is_routed_to_the_notifications_queue_and_scheduled_by_beat():
    from skinportal.celery import app

    route = app.amqp.router.route({}, continuity_tasks.follow_ups_due.name, ())
    assert route["queue"].name == "notifications"
    (entry,) = [e for e in app.conf.beat_schedule.values() if e["task"] == continuity_tasks.follow_ups_due.name]
    assert entry["options"]["queue"] == "notifications"


def test_a_new_case_on_the_lesion_completes_the_follow_up(patient, staff, specialist, client_for):
    case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    _reviewed(case, staff=staff, specialist=specialist, months=3)

    response = _case_via_api(client_for(staff), patient, lesion=case.lesion_id)

    follow_up = FollowUp.objects.get()
    assert follow_up.status == FollowUp.Status.COMPLETED
    assert follow_up.completed_by_id == response.json()["id"]
    assert continuity_services.follow_ups_due_notify(today=follow_up.due_on) == 0


def test_a_new_case_on_another_lesion_leaves_the_follow_up_due(patient, staff, specialist, client_for):
    case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    _reviewed(case, staff=staff, specialist=specialist, months=3)

    _case_via_api(client_for(staff), patient)

    assert FollowUp.objects.get().status == FollowUp.Status.DUE


def test_a_corrected_review_replaces_the_follow_up(patient, staff, specialist):
    case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    first = _reviewed(case, staff=staff, specialist=specialist, months=3)
    triage_services.review_submit(
        actor=specialist,
        referral=first.referral,
        diagnosis="nv",
        agrees_with_model=True,
        outcome=Review.Outcome.DISCHARGE,
        message="On second look: discharge.",
    )

    assert FollowUp.objects.get().status == FollowUp.Status.CANCELLED


def test_follow_up_list_filters_and_scoping(patient, staff, other_staff, specialist, client_for, web_client):
    due_case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    _reviewed(due_case, staff=staff, specialist=specialist, months=1)
    overdue_case = _scored(CaseFactory(patient=patient, submitted_by=staff))
    _reviewed(overdue_case, staff=staff, specialist=specialist, months=2)
    FollowUp.objects.filter(lesion=overdue_case.lesion).update(due_on=timezone.localdate() - datetime.timedelta(days=3))
    client = client_for(staff)

    rows = client.get("/api/v1/follow-ups/").json()["results"]
    assert {(row["lesion"], row["overdue"]) for row in rows} == {
        (due_case.lesion_id, False),
        (overdue_case.lesion_id, True),
    }
    assert set(rows[0]) >= {"lesion", "patient", "due_on", "overdue", "from_review"}
    overdue = client.get("/api/v1/follow-ups/?overdue=true").json()["results"]
    assert [row["lesion"] for row in overdue] == [overdue_case.lesion_id]
    before = client.get(f"/api/v1/follow-ups/?due_before={timezone.localdate().isoformat()}").json()["results"]
    assert [row["lesion"] for row in before] == [overdue_case.lesion_id]
    assert client.get("/api/v1/follow-ups/?due_before=soon").status_code == 400
    assert client.get("/api/v1/follow-ups/?overdue=maybe").status_code == 400
    assert client_for(other_staff).get("/api/v1/follow-ups/").json()["results"] == []

    dashboard = web_client(staff).get("/").content.decode()
    assert "Follow-ups" in dashboard and "overdue" in dashboard
    page = web_client(staff).get("/follow-ups/").content.decode()
    assert overdue_case.lesion.display_name in page


# --- The referral letter --------------------------------------------------------------------
def _pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_letter_pdf_of_a_reviewed_case_holds_the_patient_and_the_answer(
    patient, staff, specialist, other_staff, client_for
):
    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case)
    case = _scored(case)
    _reviewed(case, staff=staff, specialist=specialist, message="Seborrhoeic pattern, harmless.")

    response = client_for(staff).get(f"/api/v1/cases/{case.pk}/letter.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "private, no-store"
    assert response.content.startswith(b"%PDF")
    text = _pdf_text(response.content)
    assert "LES-042" in text
    assert "Seborrhoeic pattern, harmless." in text
    assert "not a diagnosis" in text
    assert AuditEvent.objects.filter(action="case.letter_pdf", object_id=str(case.pk)).exists()
    assert client_for(other_staff).get(f"/api/v1/cases/{case.pk}/letter.pdf").status_code == 404


def test_a_server_without_the_pdf_renderer_answers_503_not_500(patient, staff, client_for, monkeypatch):
    from continuity import letter

    def missing():
        raise letter.LetterUnavailable("The PDF of the letter cannot be made on this server now.")

    monkeypatch.setattr(letter, "_weasyprint", missing)
    case = CaseFactory(patient=patient, submitted_by=staff)

    response = client_for(staff).get(f"/api/v1/cases/{case.pk}/letter.pdf")

    assert response.status_code == 503
    assert "cannot be made" in response.json()["detail"]


def test_rendering_a_letter_leaves_truncated_photos_refused(patient, staff):
    """WeasyPrint loosens Pillow's truncated-image rule when imported; the letter puts it back."""
    from PIL import ImageFile

    from continuity.letter import letter_pdf

    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case)
    letter_pdf(case=case)

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_the_printable_letter_page(patient, staff, specialist, other_staff, web_client):
    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case)
    _reviewed(_scored(case), staff=staff, specialist=specialist, message="Fine to watch.")

    page = web_client(staff).get(f"/cases/{case.pk}/letter/")

    html = page.content.decode()
    assert page.status_code == 200 and "LES-042" in html and "Fine to watch." in html
    assert "<script>" not in html and " onclick=" not in html
    assert web_client(other_staff).get(f"/cases/{case.pk}/letter/").status_code == 404


# --- FHIR -----------------------------------------------------------------------------------
def test_the_fhir_export_of_a_reviewed_case_is_a_valid_bundle_whose_references_resolve(
    patient, staff, specialist, other_staff, client_for
):
    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case, kind=LesionImage.Kind.OVERVIEW)
    LesionImageFactory(case=case, kind=LesionImage.Kind.DERMOSCOPIC)
    case = _scored(case)
    _reviewed(case, staff=staff, specialist=specialist, message="Monitor it.")

    response = client_for(staff).get(f"/api/v1/cases/{case.pk}/fhir/")

    assert response.status_code == 200
    bundle = response.json()
    bundle_validate(bundle)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    resources = [entry["resource"] for entry in bundle["entry"]]
    types = [resource["resourceType"] for resource in resources]
    for expected in (
        "Patient",
        "Organization",
        "Consent",
        "ServiceRequest",
        "Task",
        "Device",
        "Provenance",
        "DiagnosticReport",
    ):
        assert expected in types
    assert types.count("Media") == 2 and types.count("Observation") == 2
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}

    def references(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference":
                    yield value
                else:
                    yield from references(value)
        elif isinstance(node, list):
            for item in node:
                yield from references(item)

    refs = list(references(bundle))
    assert refs and set(refs) <= full_urls
    by_type = {resource["resourceType"]: resource for resource in resources}
    assert by_type["Patient"]["identifier"][0]["value"] == "LES-042"
    assert by_type["DiagnosticReport"]["conclusion"] == "Monitor it."
    assert by_type["Task"]["status"] == "completed"
    observation = by_type["Observation"]
    assert len(observation["component"]) == len(CLASSES)
    assert observation["derivedFrom"][0]["reference"] in {
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"
    }
    media = by_type["Media"]
    assert "data" not in media["content"] and "/media/lesions/" in media["content"]["url"]
    assert AuditEvent.objects.filter(action="case.fhir_export", object_id=str(case.pk)).exists()
    assert client_for(other_staff).get(f"/api/v1/cases/{case.pk}/fhir/").status_code == 404


def test_the_fhir_export_is_built_from_fhir_resources_models(patient, staff, specialist):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    from fhir.resources.R4B.patient import Patient as FhirPatient

    from continuity.fhir import bundle_json, case_bundle

    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case)
    case = _scored(case)
    _reviewed(case, staff=staff, specialist=specialist)

    bundle = case_bundle(case=case, absolute=lambda path: f"https://portal.example{path}")
    reduced = case_bundle(case=case, absolute=lambda path: path, shows_patient_identity=False)

    assert isinstance(bundle, Bundle)
    resources = {type(entry.resource) for entry in bundle.entry}
    assert {FhirPatient, DiagnosticReport} <= resources
    (person,) = [entry.resource for entry in reduced.entry if isinstance(entry.resource, FhirPatient)]
    assert person.name is None and str(person.birthDate) == str(patient.date_of_birth.year)
    as_json = bundle_json(bundle)
    assert as_json["resourceType"] == "Bundle"
    task = next(e["resource"] for e in as_json["entry"] if e["resource"]["resourceType"] == "Task")
    assert "for" in task and "for_fhir" not in task  # FHIR's own names, not Python's


def test_the_fhir_export_of_an_unreferred_case_validates(patient, staff, client_for):
    case = CaseFactory(patient=patient, submitted_by=staff)
    LesionImageFactory(case=case)

    bundle = client_for(staff).get(f"/api/v1/cases/{case.pk}/fhir/").json()

    bundle_validate(bundle)
    assert "ServiceRequest" not in {entry["resource"]["resourceType"] for entry in bundle["entry"]}


def test_the_fhir_export_is_written_in_the_sites_language_whatever_the_readers(patient, staff, specialist, client_for):
    case = CaseFactory(patient=patient, submitted_by=staff, body_site=Case.BodySite.BACK)
    LesionImageFactory(case=case)
    case = _scored(case)
    _reviewed(case, staff=staff, specialist=specialist)
    staff.language = "fr"
    staff.save(update_fields=["language"])

    english = client_for(staff).get(f"/api/v1/cases/{case.pk}/fhir/", HTTP_ACCEPT_LANGUAGE="en-gb").json()
    french = client_for(staff).get(f"/api/v1/cases/{case.pk}/fhir/", HTTP_ACCEPT_LANGUAGE="fr").json()

    def texts(bundle):
        found = []

        def walk(node):
            if isinstance(node, dict):
                found.extend(value for key, value in node.items() if key == "text" and isinstance(value, str))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(bundle)
        return found

    assert texts(french) == texts(english)
    assert {"Back", "Outcome: Monitor: photograph it again later (photograph again in 3 months)"} <= set(texts(french))
    assert "Diagnosis: Melanocytic nevus" in texts(french)


# --- Existing cases -------------------------------------------------------------------------
def test_every_case_has_a_lesion_of_its_patient(patient, staff):
    case = CaseFactory(patient=patient, submitted_by=staff)

    assert isinstance(case.lesion, Lesion) and case.lesion.patient == patient


@pytest.mark.django_db
def test_the_new_endpoints_are_in_the_openapi_schema(client):
    paths = set(client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"])

    assert {
        "/api/v1/patients/{id}/lesions/",
        "/api/v1/lesions/{id}/",
        "/api/v1/follow-ups/",
        "/api/v1/cases/{id}/letter.pdf",
        "/api/v1/cases/{id}/fhir/",
    } <= paths


def test_existing_cases_each_get_a_lesion_of_their_own(transactional_db):
    """The data migration: cases submitted before lesions existed get one each, of their patient and site."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("diagnosis", "0007_lesion")])
    apps = executor.loader.project_state([("diagnosis", "0007_lesion")]).apps
    user = apps.get_model("accounts", "User").objects.create(username="old", role="clinic_staff")
    clinic = apps.get_model("accounts", "Clinic").objects.create(name="Old clinic")
    old_patient = apps.get_model("diagnosis", "Patient").objects.create(
        clinic=clinic, identifier="OLD-1", full_name="Old Case", date_of_birth="1960-01-01", created_by=user
    )
    OldCase = apps.get_model("diagnosis", "Case")
    ids = [
        OldCase.objects.create(patient=old_patient, body_site=site, submitted_by=user).pk for site in ("back", "face")
    ]

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    cases = Case.objects.filter(pk__in=ids).select_related("lesion").order_by("pk")
    assert [c.lesion.body_site for c in cases] == ["back", "face"]
    assert len({c.lesion_id for c in cases}) == 2
    assert all(c.lesion.patient_id == old_patient.pk for c in cases)
