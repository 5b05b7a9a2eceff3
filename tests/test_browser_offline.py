"""A case survives a dropped connection: a real Chromium goes offline and comes back.

The nurse opens the new-case page, the signal goes, she submits a case with a photo: it is
kept on the phone ("waiting to upload", with a count in the header). She closes the page
and opens it again, still offline (the service worker serves it). When the connection
returns the case is sent by itself and arrives exactly once, with its photo.
"""

from __future__ import annotations

import os

import pytest
from django.db import connections

from accounts.models import User
from diagnosis.models import Case, IdempotencyRecord, LesionImage
from tests import test_browser
from tests.factories import PASSWORD, PatientFactory, UserFactory

# The fixtures of the first browser test: Chromium, a HAM10000 photo, the analysis queue.
lesion_photo = test_browser.lesion_photo
enqueued = test_browser.enqueued

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser

# The pages' Content-Security-Policy (script-src 'self') forbids eval. Playwright evaluates a
# wait_for_function expression with eval on every poll after the first, so an expression that
# is not true at once fails with an EvalError; written as a function it is evaluated once and
# then called. So every predicate below is a function.

# Resolves once the page is in the offline cache (wait_for_function cannot wait for a
# promise: a pending one is truthy). False after 15 s.
PAGE_KEPT = """path => new Promise(resolve => {
    const deadline = Date.now() + 15000;
    const check = () => caches.open("skinportal-pages-v1").then(c => c.match(path)).then(hit => {
        if (hit || Date.now() > deadline) resolve(!!hit); else setTimeout(check, 100);
    });
    check();
})"""


def test_a_case_submitted_offline_is_kept_and_sent_once_when_the_connection_returns(
    live_server,
    transactional_db,
    clinic_a,
    browser_page,
    lesion_photo,
    enqueued,
):
    nurse = UserFactory(username="nurse", role=User.Role.CLINIC_STAFF, clinics=[clinic_a])
    patient = PatientFactory(clinic=clinic_a, created_by=nurse, identifier="OFF-1", full_name="Amina Otieno")
    new_case = f"/patients/{patient.pk}/cases/new/"
    page = browser_page
    context = page.context

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")

    # Online: the page loads, the service worker takes over and keeps the page.
    page.goto(live_server.url + new_case)
    page.wait_for_function("() => document.documentElement.dataset.offlineReady === 'true'")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    assert page.evaluate(PAGE_KEPT, new_case)
    assert page.locator("#outbox").is_hidden()

    # The signal goes; the case is submitted anyway.
    context.set_offline(True)
    page.locator("#photo-camera").set_input_files(str(lesion_photo))
    page.get_by_label("Body site").select_option(Case.BodySite.FACE)
    page.get_by_label("Notes").fill("Submitted with no signal.")
    page.get_by_role("button", name="Submit case").click()
    page.locator("#upload-text").get_by_text("saved on this phone").wait_for()
    assert page.locator("#outbox-count").text_content() == "1"
    assert page.locator("#outbox").is_visible()
    assert not Case.objects.exists()

    # The tab is closed, and the page opened again while still offline.
    page.close()
    page = context.new_page()
    page.set_default_timeout(20_000)
    response = page.goto(live_server.url + new_case)
    assert response is not None and response.from_service_worker
    page.get_by_role("heading", name="New case").wait_for()
    page.wait_for_function("() => document.getElementById('outbox-count').textContent === '1'")
    page.locator("#outbox > summary").click()
    assert page.locator("#outbox-list").get_by_text("Amina Otieno (OFF-1)").is_visible()
    assert not Case.objects.exists()

    # The connection returns: the case is sent by itself, once, with its photo.
    context.set_offline(False)
    page.wait_for_function("() => document.getElementById('outbox').hidden === true")
    case = Case.objects.get()
    assert case.patient == patient and case.body_site == Case.BodySite.FACE
    assert case.notes == "Submitted with no signal."
    assert LesionImage.objects.filter(case=case).count() == 1
    assert IdempotencyRecord.objects.get().case == case
    assert enqueued == [case.pk]

    # Opening the page again sends nothing more: the draft is gone from the phone.
    page.reload()
    page.get_by_role("heading", name="New case").wait_for()
    drafts = page.evaluate("() => Outbox.list()")
    assert drafts == []
    assert Case.objects.count() == 1
    connections.close_all()


def test_signing_out_warns_about_waiting_cases_and_then_deletes_them(
    live_server,
    transactional_db,
    clinic_a,
    browser_page,
    lesion_photo,
    enqueued,
):
    nurse = UserFactory(username="nurse", role=User.Role.CLINIC_STAFF, clinics=[clinic_a])
    patient = PatientFactory(clinic=clinic_a, created_by=nurse, identifier="OFF-2", full_name="Baraka Mutua")
    page = browser_page
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")

    # The server cannot take the case now (503): it stays on the phone, waiting.
    def unavailable(route):
        if route.request.method == "POST":
            route.fulfill(status=503, body="busy")
        else:
            route.continue_()

    page.context.route("**/cases/new/", unavailable)
    page.goto(live_server.url + f"/patients/{patient.pk}/cases/new/")
    page.locator("#photo-camera").set_input_files(str(lesion_photo))
    page.get_by_label("Body site").select_option(Case.BodySite.HAND)
    page.get_by_role("button", name="Submit case").click()
    page.locator("#upload-text").get_by_text("saved on this phone").wait_for()
    assert page.locator("#outbox-count").text_content() == "1"

    # Signing out warns first; saying no keeps the nurse signed in and the case kept.
    dialogs: list[str] = []

    def answer(dialog, accept):
        dialogs.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.locator(".user-menu > summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_function("() => document.getElementById('outbox-count').textContent === '1'")
    assert dialogs and dialogs[0].startswith("1 case has not been uploaded yet")
    assert page.evaluate("() => Outbox.list().then(d => d.length)") == 1

    # Saying yes deletes the kept case from the phone and signs out.
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: "/accounts/" in url or url.endswith("/logout/"))
    assert len(dialogs) == 2
    page.goto(live_server.url + "/accounts/login/")
    assert page.evaluate("() => Outbox.list().then(d => d.length)") == 0
    assert not Case.objects.exists()
    connections.close_all()
