"""The model in the field page in a real browser (Debian's Chromium via Playwright): at 360 px
it reads without sideways scrolling, its charts are drawn, and nothing is blocked by the
Content-Security-Policy."""

from __future__ import annotations

import os

import pytest

from accounts.models import User
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory, UserFactory
from tests.test_browser_triage import sign_in
from tests.test_field_figures import answered

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def test_the_field_page_fits_a_phone_and_draws_its_charts(live_server, transactional_db, clinic_a, browser_page):
    UserFactory(username="fieldadmin", role=User.Role.ADMINISTRATOR)
    specialist = UserFactory(username="fieldderm", role=User.Role.SPECIALIST, clinics=[clinic_a])
    for _ in range(30):
        answered(clinic_a, specialist, referred=True, diagnosis="mel", top_class="mel")
    for diagnosis in ["bcc"] * 2 + ["nv"] * 20:
        answered(clinic_a, specialist, referred=False, diagnosis=diagnosis, sample_rate=0.5, kind="close_up")
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a))
    for gate in ["ok"] * 8 + ["blurred", "not_skin"]:
        PredictionFactory(image=LesionImageFactory(case=case), model_version="field-test-v1", gate=gate)
    page = browser_page
    page.set_viewport_size({"width": 360, "height": 800})

    sign_in(page, live_server.url, "fieldadmin")
    page.goto(live_server.url + "/model/field/")

    assert page.get_by_role("heading", name="The model in the field").is_visible()
    assert page.locator("svg.chart").count() >= 5
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.csp_violations == []
    if path := os.environ.get("SKINPORTAL_FIELD_SCREENSHOT"):
        page.screenshot(path=path, full_page=True)
