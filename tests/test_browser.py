"""A real browser (Debian's Chromium via Playwright) against the live test server.

A nurse signs in, registers a patient, photographs a lesion (a HAM10000 image plus a big
phone-sized photo the page must scale down before upload), submits the case, lands on
the case page, and sees the result appear there without reloading once the analysis has
written its prediction.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from accounts.models import User
from diagnosis.models import Case, LesionImage
from inference.preprocessing import CLASS_NAMES
from patients.models import Patient
from tests.factories import PASSWORD, CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, UserFactory
from tests.inference_fixtures import HAM10000_SAMPLE

# Playwright's sync API runs an event loop in this thread; the ORM calls made here are
# still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


pytestmark = pytest.mark.browser


@pytest.fixture
def lesion_photo() -> Path:
    """A real HAM10000 photo from the committed sample (tests/data/README.md)."""
    return sorted((HAM10000_SAMPLE / "images").glob("*.jpg"))[0]


@pytest.fixture
def big_phone_photo(tmp_path, lesion_photo) -> Path:
    """A 4000 × 3000 photo, the size a phone camera takes, made from the lesion image."""
    path = tmp_path / "IMG_0001.jpg"
    with Image.open(lesion_photo) as image:
        image.convert("RGB").resize((4000, 3000)).save(path, quality=90)
    return path


@pytest.fixture
def enqueued(monkeypatch):
    """Case ids handed to the analysis queue; the broker and worker are not part of this test."""
    import diagnosis.dispatch

    calls: list[int] = []
    monkeypatch.setattr(diagnosis.dispatch, "case_analysis_enqueue", lambda *, case_id: calls.append(case_id))
    return calls


def test_nurse_submits_a_case_from_the_phone_and_sees_the_result(
    live_server, transactional_db, clinic_a, browser_page, lesion_photo, big_phone_photo, enqueued
):
    nurse = UserFactory(username="nurse", role=User.Role.CLINIC_STAFF, clinics=[clinic_a])
    # The clinic's last case: an overview, then a photo through its dermatoscope.
    earlier = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=nurse), submitted_by=nurse)
    LesionImageFactory(case=earlier, kind=LesionImage.Kind.OVERVIEW)
    LesionImageFactory(case=earlier, kind=LesionImage.Kind.DERMOSCOPIC)
    page = browser_page

    # Signing in: anonymous visitors land on the login page, which has the policy.
    response = page.goto(live_server.url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    assert page.get_by_role("heading", name="Recent cases").is_visible()

    # Registering a patient with consent.
    page.get_by_role("link", name="Register patient").first.click()
    page.get_by_label("Patient number").fill("NUR-42")
    page.get_by_label("Full name").fill("Thandiwe Nkosi")
    page.get_by_label("Date of birth").fill("1961-07-03")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("The patient has given this consent.").check()
    page.get_by_role("button", name="Register patient").click()
    page.wait_for_url(re.compile(r"/patients/\d+/$"))
    patient = Patient.objects.get(identifier="NUR-42")
    assert patient.consent_given and patient.clinic == clinic_a

    # The new-case form: two photos, body site, history.
    page.get_by_role("link", name="New case").click()
    page.wait_for_url(re.compile(r"/cases/new/$"))
    camera = page.locator("#photo-camera")
    assert camera.get_attribute("capture") == "environment"
    camera.set_input_files(str(lesion_photo))
    page.locator("#photo-gallery").set_input_files(str(big_phone_photo))
    assert page.locator(".photo-item").count() == 2
    page.get_by_label("Body site").select_option(Case.BodySite.BACK)
    page.get_by_label("1–6 months").check()
    page.get_by_label("Recently changed").check()
    page.get_by_label("B: border irregular, ragged or blurred").check()
    page.get_by_label("Notes").fill("Darker at one edge since spring.")
    page.get_by_role("button", name="Submit case").click()

    page.wait_for_url(re.compile(r"/cases/\d+/$"))
    case = Case.objects.get(patient=patient)
    assert page.url.endswith(f"/cases/{case.pk}/")
    assert enqueued == [case.pk]
    assert case.recently_changed and case.abcde_border and case.duration == Case.Duration.MONTHS_1_6
    images = list(case.images.order_by("pk"))
    # Each photo started at the kind the clinic gave the same photo last time.
    assert [image.kind for image in images] == [LesionImage.Kind.OVERVIEW, LesionImage.Kind.DERMOSCOPIC]
    with Image.open(lesion_photo) as original:
        assert (images[0].width, images[0].height) == original.size  # small enough: sent as taken
    assert (images[1].width, images[1].height) == (1600, 1200)  # scaled in the browser
    assert page.locator("#result-card").get_by_text("Analysing").first.is_visible()

    # The worker finishes: the result card updates by itself.
    for image in images:
        image.analysis_status = LesionImage.AnalysisStatus.DONE
        image.save(update_fields=["analysis_status"])
        PredictionFactory(image=image, model_version="browser-test-model")
    Case.objects.filter(pk=case.pk).update(
        status=Case.Status.ANALYSED, risk=Case.Risk.LOW, summary="Low risk in the browser test."
    )
    result = page.locator("#result-card")
    result.get_by_text("Low risk in the browser test.").wait_for()
    assert result.get_by_text(CLASS_NAMES["nv"]).first.is_visible()
    assert result.locator("ul.probs").count() == 2
    assert page.locator("#result-card[data-pending='false']").count() == 1
    assert page.locator("#case-status").get_by_text("Analysed").is_visible()
    assert "analysis has finished" in page.locator("#result-announcer").text_content()
    # The pages' own scripts (photo scaling, live result) ran under the policy; nothing was blocked.
    assert page.csp_violations == []
