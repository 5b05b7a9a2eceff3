"""A real browser (Debian's Chromium via Playwright): a specialist signs in, opens the queue,
claims a referral, looks at the heatmap, writes an answer; then the clinic's nurse reads the
answer on the case page and closes the case."""

from __future__ import annotations

import os
import re

import pytest

from accounts.models import User
from diagnosis.models import Case, LesionImage
from tests.factories import PASSWORD, CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, UserFactory
from triage import services
from triage.models import Referral, Review

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")


def assert_layer_over_photo(photo, layer, tolerance: float = 3) -> None:
    """Both boxes within a few pixels of each other, and the photo shown (not hidden under black)."""
    photo.evaluate("element => element.decode()")
    a, b = photo.bounding_box(), layer.bounding_box()
    assert a is not None and b is not None and a["width"] > 50
    for key in ("x", "y", "width", "height"):
        assert abs(a[key] - b[key]) <= tolerance, (key, a, b)
    assert photo.evaluate("element => element.complete && element.naturalWidth > 0")
    assert photo.evaluate("element => getComputedStyle(element).visibility") == "visible"
    assert float(photo.evaluate("element => getComputedStyle(element).opacity")) == 1


def test_specialist_answers_a_referral_and_the_clinic_closes_the_case(
    live_server, transactional_db, clinic_a, browser_page
):
    nurse = UserFactory(username="nurse", role=User.Role.CLINIC_STAFF, clinics=[clinic_a])
    UserFactory(username="derm", first_name="Dana", last_name="Ruiz", role=User.Role.SPECIALIST, clinics=[clinic_a])
    case = CaseFactory(
        patient=PatientFactory(clinic=clinic_a, created_by=nurse, identifier="NUR-7"),
        status=Case.Status.ANALYSED,
        risk=Case.Risk.MODERATE,
        summary="Moderate risk in the browser test.",
    )
    PredictionFactory(
        with_layer=True,
        image=LesionImageFactory(case=case, analysis_status=LesionImage.AnalysisStatus.DONE, width=640, height=480),
        top_class="nv",
    )
    services.referral_create(actor=nurse, case=case, urgency="urgent", reason="Bled twice this month.")
    page = browser_page

    # The specialist's queue.
    sign_in(page, live_server.url, "derm")
    page.get_by_role("link", name="Referrals").first.click()
    page.wait_for_url(live_server.url + "/referrals/")
    row = page.locator(".referral-row").first
    assert "Bled twice this month." in row.text_content() and "Urgent" in row.text_content()
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/referrals/\d+/$"))

    # Claim, look at the heatmap, answer.
    page.get_by_role("button", name="Claim for review").click()
    page.get_by_text("You hold this referral").first.wait_for()
    viewer = page.locator("[data-viewer]").first
    photo, layer = viewer.locator(".viewer-photo"), viewer.locator(".viewer-layer")
    assert float(layer.evaluate("element => getComputedStyle(element).opacity")) == 0  # off until asked for
    viewer.get_by_label("Heatmap", exact=True).check()
    # The heatmap lies over the photo, which stays where it was and visible under it.
    assert 0 < float(layer.evaluate("element => getComputedStyle(element).opacity")) < 1
    assert "/heatmap/" in layer.get_attribute("src") and "/heatmap/" not in photo.get_attribute("src")
    assert_layer_over_photo(photo, layer)
    page.get_by_role("button", name="Zoom in").first.click()
    assert_layer_over_photo(photo, layer)
    page.get_by_label("Diagnosis", exact=True).select_option("nv")
    page.get_by_label("Yes").check()
    page.get_by_label("Monitor: photograph it again later").check()
    page.get_by_label("Photograph again in (months)").fill("3")
    page.get_by_label("Message to the clinic").fill("A benign naevus. Photograph it again in three months.")
    page.get_by_label("Private note (never shown to the clinic)").fill("Some regression at the rim.")
    page.get_by_role("button", name="Send the answer to the clinic").click()
    page.wait_for_url(live_server.url + "/referrals/")
    assert page.get_by_text("Your answer is sent to the clinic.").is_visible()
    review = Review.objects.get()
    assert (review.diagnosis, review.outcome, review.follow_up_months) == ("nv", "monitor", 3)
    assert Referral.objects.get().status == Referral.Status.REVIEWED

    # The nurse sees the answer (not the private note), with the unread count, and closes the case.
    page.context.clear_cookies()
    sign_in(page, live_server.url, "nurse")
    assert page.locator(".count-unread").text_content().startswith("1")
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    answer = page.locator(".review-card")
    assert "Monitor: photograph it again later" in answer.text_content()
    assert "A benign naevus." in answer.text_content()
    assert "Photograph the lesion again by" in answer.text_content()
    assert "Some regression" not in page.content()
    page.get_by_role("button", name="I have read the answer: close the case").click()
    page.get_by_text("The answer is acknowledged and the case is closed.").wait_for()
    assert Case.objects.get(pk=case.pk).status == Case.Status.CLOSED
    assert page.locator("#case-status").get_by_text("Closed").is_visible()
