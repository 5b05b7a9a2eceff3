"""A real browser (Debian's Chromium via Playwright) on a phone 360 px wide: the clinic compares
two visits of one lesion side by side and switches both photos to the model's heatmap."""

from __future__ import annotations

import os
import re

import pytest

from accounts.models import User
from diagnosis.models import Case, LesionImage
from tests.factories import PASSWORD, CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, UserFactory

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def test_compare_view_shows_two_visits_at_the_same_size_on_a_360_px_phone(
    live_server, transactional_db, clinic_a, browser_page
):
    nurse = UserFactory(username="nurse", role=User.Role.CLINIC_STAFF, clinics=[clinic_a])
    patient = PatientFactory(clinic=clinic_a, created_by=nurse, identifier="CMP-1")
    first = CaseFactory(patient=patient, submitted_by=nurse, status=Case.Status.ANALYSED)
    later = CaseFactory(patient=patient, submitted_by=nurse, status=Case.Status.ANALYSED, lesion=first.lesion)
    # Photos of different sizes: the compare view still shows them at one size.
    for case, (width, height) in ((first, (64, 48)), (later, (120, 40))):
        PredictionFactory(
            with_heatmap=True,
            image=LesionImageFactory(
                case=case, width=width, height=height, analysis_status=LesionImage.AnalysisStatus.DONE
            ),
        )
    page = browser_page
    page.set_viewport_size({"width": 360, "height": 740})

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    page.goto(f"{live_server.url}/lesions/{first.lesion_id}/")
    page.get_by_role("link", name="Compare two visits").click()
    page.wait_for_url(re.compile(r"/lesions/\d+/compare/$"))

    photos = page.locator(".compare-photo")
    assert photos.count() == 2
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.compare-photo')).every(i => i.complete && i.naturalWidth > 0)"
    )
    before, after = photos.nth(0).bounding_box(), photos.nth(1).bounding_box()
    assert (before["width"], before["height"]) == (after["width"], after["height"])
    assert before["width"] > 100  # two usable photos, not thumbnails
    assert before["x"] + before["width"] <= after["x"]  # side by side
    assert after["x"] + after["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing spills sideways

    page.get_by_role("button", name="Show heatmap").click()
    toggle = page.get_by_role("button", name="Hide heatmap")
    assert toggle.get_attribute("aria-pressed") == "true"
    assert all("/heatmap/" in photos.nth(i).get_attribute("src") for i in range(2))
    toggle.click()
    assert page.get_by_role("button", name="Show heatmap").get_attribute("aria-pressed") == "false"
    assert all("/preview/" in photos.nth(i).get_attribute("src") for i in range(2))
    assert page.locator("script:not([src])").count() == 0
