"""What a specialist sees of a patient (patients.disclosure): age, sex, skin type, the body
site, the history, the photos and the model's result; never the name, date of birth, phone or
village, on any page, in the letter, the FHIR export or an email. Patient pages are a 404."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail

from continuity.fhir import bundle_validate
from diagnosis.models import Case, LesionImage
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory
from triage import services
from triage.models import Notification
from triage.notifications import notification_email_send

NAME, PHONE, VILLAGE = "Adaeze Okonkwo-Tiwari", "+234 803 555 0199", "Umuahia North"
BORN = datetime.date(1958, 4, 17)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    class NoApp:
        def send_task(self, *args, **kwargs):
            return None

    monkeypatch.setattr("triage.notifications.current_app", NoApp())


@pytest.fixture
def referred(clinic_a, staff):
    patient = PatientFactory(
        clinic=clinic_a,
        created_by=staff,
        identifier="PRIV-7",
        full_name=NAME,
        phone=PHONE,
        village=VILLAGE,
        date_of_birth=BORN,
        sex="female",
        skin_type="IV",
    )
    case = CaseFactory(patient=patient, submitted_by=staff, status=Case.Status.ANALYSED, notes="Bled once in May.")
    PredictionFactory(image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE))
    services.referral_create(actor=staff, case=case, urgency="urgent", reason="Bleeds when touched.")
    case.refresh_from_db()
    return case


def assert_no_identity(text: str) -> None:
    for detail in (NAME, "Okonkwo", PHONE, "555 0199", VILLAGE, "1958-04-17", "17 April 1958", "17 Apr 1958"):
        assert detail not in text, detail


def test_specialists_have_no_patient_pages(web_client, specialist, referred):
    client = web_client(specialist)
    patient = referred.patient

    assert client.get("/patients/").status_code == 404
    for url in (f"/patients/{patient.pk}/", f"/patients/{patient.pk}/edit/", f"/patients/{patient.pk}/cases/new/"):
        assert client.get(url).status_code == 404, url
    assert 'href="/patients/"' not in client.get("/").content.decode()


def test_staff_still_have_their_patient_pages(web_client, staff, referred):
    client = web_client(staff)
    assert client.get("/patients/").status_code == 200
    assert NAME in client.get(f"/patients/{referred.patient.pk}/").content.decode()
    assert NAME in client.get(f"/cases/{referred.pk}/").content.decode()


def test_the_case_lesion_and_review_pages_show_a_specialist_what_the_answer_needs_only(
    web_client, specialist, referred
):
    client = web_client(specialist)
    pages = {
        "dashboard": client.get("/").content.decode(),
        "case": client.get(f"/cases/{referred.pk}/").content.decode(),
        "lesion": client.get(f"/lesions/{referred.lesion_id}/").content.decode(),
        "queue": client.get("/referrals/").content.decode(),
        "review": client.get(f"/referrals/{referred.referral.pk}/").content.decode(),
        "letter": client.get(f"/cases/{referred.pk}/letter/").content.decode(),
    }
    for name, html in pages.items():
        assert_no_identity(html)
        assert f"/patients/{referred.patient.pk}/" not in html, name
    assert "PRIV-7" in pages["case"] and "female" in pages["case"] and "Fitzpatrick IV" in pages["case"]
    assert "Bled once in May." in pages["case"] and "Bleeds when touched." in pages["review"]
    assert "years" in pages["letter"] and "PRIV-7" in pages["letter"]


def test_a_specialist_cannot_find_a_case_by_the_patients_name(web_client, specialist, staff, referred):
    by_name = web_client(specialist).get("/cases/", {"q": "Okonkwo"}).content.decode()
    by_number = web_client(specialist).get("/cases/", {"q": "PRIV-7"}).content.decode()
    assert f"/cases/{referred.pk}/" not in by_name
    assert f"/cases/{referred.pk}/" in by_number


def test_the_letter_pdf_and_fhir_export_name_no_one_for_a_specialist(client_for, specialist, staff, referred):
    bundle = client_for(specialist).get(f"/api/v1/cases/{referred.pk}/fhir/").json()
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")

    assert "name" not in patient and patient["birthDate"] == "1958" and patient["gender"] == "female"
    assert_no_identity(str(bundle))
    bundle_validate(bundle)
    staff_bundle = client_for(staff).get(f"/api/v1/cases/{referred.pk}/fhir/").json()
    assert NAME in str(staff_bundle)


def test_emails_to_specialists_carry_no_patient_details(specialist, referred, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    specialist.email = "sam@example.org"
    specialist.save(update_fields=["email"])
    notification = Notification.objects.get(recipient=specialist)

    assert notification_email_send(notification_id=notification.pk)

    (email,) = mail.outbox
    assert email.to == ["sam@example.org"]
    assert_no_identity(email.subject + email.body)
    assert "PRIV-7" not in email.body
