"""A French-speaking nurse submits a case in a real browser and reads the result in French.

Debian's Chromium (Playwright) against the live test server, with a real analysis worker
scoring the photo with the served model: the labels of the new-case form, the messages of
its script, the result card and the risk summary written by the worker are all in French.
"""

from __future__ import annotations

import os
import re

import pytest

from accounts.models import User
from diagnosis.models import Case
from patients.models import Patient
from tests.factories import PASSWORD, PatientFactory, UserFactory
from tests.i18n import untranslated
from tests.inference_fixtures import HAM10000_SAMPLE, wait_for

# Playwright's sync API runs an event loop in this thread; the ORM calls made here are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def test_a_french_speaking_nurse_submits_a_case_and_reads_the_result_in_french(
    live_server, transactional_db, clinic_a, browser_page, worker_factory
):
    worker_factory(concurrency=1)
    nurse = UserFactory(username="infirmiere", first_name="Aïssatou", last_name="Diallo", clinics=[clinic_a])
    nurse.role = User.Role.CLINIC_STAFF
    nurse.save()
    patient = PatientFactory(clinic=clinic_a, created_by=nurse, full_name="Mariama Sow", identifier="SN-0107")
    photo = sorted((HAM10000_SAMPLE / "images").glob("ISIC_*.jpg"))[0]
    page = browser_page

    # Signing in from the login page, then choosing French in the language menu.
    page.goto(live_server.url + "/")
    page.get_by_label("Username").fill("infirmiere")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    page.locator("summary", has_text="Aïssatou Diallo").click()
    page.locator("#language-menu").select_option("fr")
    page.locator("details.user-menu form.language-form button").click()
    page.wait_for_url(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    nurse.refresh_from_db()
    assert nurse.language == "fr"
    assert page.get_by_role("heading", name="Cas récents").is_visible()

    # The new-case form in French.
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Nouveau cas").click()
    page.wait_for_url(re.compile(r"/cases/new/$"))
    assert page.get_by_role("heading", name="Nouveau cas").is_visible()
    assert page.get_by_text("1. Photos de la lésion").is_visible()

    # Submitting without a photo: the page's own script answers in French.
    page.get_by_role("button", name="Soumettre le cas").click()
    errors = page.locator("#form-errors")
    errors.get_by_text("Photos : prenez ou choisissez au moins une photo de la lésion.").wait_for()
    assert errors.get_by_text("Localisation sur le corps : choisissez où se trouve la lésion.").is_visible()

    page.locator("#photo-camera").set_input_files(str(photo))
    page.locator(".photo-item").first.wait_for()
    assert page.locator(".photo-remove").first.get_attribute("aria-label") == "Retirer la photo 1"
    page.get_by_label("Localisation sur le corps").select_option(Case.BodySite.BACK)
    page.get_by_label("1 à 6 mois").check()
    page.get_by_label("Changement récent").check()
    page.get_by_label("C : couleur inégale (plusieurs teintes)").check()
    page.locator("#id_notes").fill("Plus foncé sur un bord depuis la saison des pluies.")
    page.get_by_role("button", name="Soumettre le cas").click()
    page.wait_for_url(re.compile(r"/cases/\d+/$"))
    case = Case.objects.get(patient=patient)

    # The worker scores the photo; the result card appears by itself, in French.
    wait_for(
        lambda: Case.objects.filter(pk=case.pk).exclude(status__in=["submitted", "analysing"]).exists(),
        timeout=180,
        message="the worker's result",
    )
    result = page.locator("#result-card[data-pending='false']")
    result.wait_for(timeout=60_000)
    case.refresh_from_db()
    assert case.summary_facts and case.summary  # the facts, and the English text for the API
    summary = page.locator("#result-card p.summary").text_content()
    assert summary.startswith(("Risque faible", "Risque modéré", "Risque élevé"))
    assert "pas un diagnostic" in summary
    assert page.locator("#result-card").get_by_text("Aide à la décision, pas un diagnostic.").is_visible()
    assert "L'analyse est terminée" in page.locator("#result-announcer").text_content()

    # Nothing on the result page is left in English (the panels other apps add are checked with them).
    own_parts = ("header.site-header", ".page-head", "#result-card", ".case-history", "footer")

    def own_html() -> str:
        return "".join(page.locator(selector).first.evaluate("e => e.outerHTML") for selector in own_parts)

    french = own_html()
    nurse.language = "en-gb"
    nurse.save(update_fields=["language"])
    page.reload()
    english = own_html()
    assert page.locator("html").get_attribute("lang") == "en-gb"
    data = [
        patient.full_name,
        patient.identifier,
        clinic_a.name,
        "Aïssatou Diallo",
        "infirmiere",
        case.notes,
        *(prediction.model_version for image in case.images.all() for prediction in image.predictions.all()),
    ]
    assert untranslated(english, french, "fr", data=data) == []
    assert Patient.objects.count() == 1
    assert page.csp_violations == []
