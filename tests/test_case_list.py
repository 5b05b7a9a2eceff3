"""Finding a case: the case list's filters, search and paging, and the dashboard tiles that open it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Case
from tests.factories import CaseFactory, PatientFactory, referral_row

URL = "/cases/"


def _ids(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'href="/cases/(\d+)/"', response.content.decode())}


@pytest.fixture
def cases(clinic_a, clinic_b, staff, other_staff):
    ada = PatientFactory(clinic=clinic_a, created_by=staff, full_name="Ada Mwangi", identifier="KE-100")
    ben = PatientFactory(clinic=clinic_a, created_by=staff, full_name="Ben Otieno", identifier="KE-200")
    other = PatientFactory(clinic=clinic_b, created_by=other_staff, full_name="Ada Elsewhere")
    made = {
        "waiting": CaseFactory(patient=ada, status=Case.Status.ANALYSING),
        "high": CaseFactory(patient=ada, status=Case.Status.ANALYSED, risk=Case.Risk.HIGH),
        "referred": CaseFactory(patient=ben, referred=True, risk=Case.Risk.HIGH),
        "failed": CaseFactory(patient=ben, status=Case.Status.FAILED),
        "low": CaseFactory(patient=ben, status=Case.Status.ANALYSED, risk=Case.Risk.LOW),
        "other_clinic": CaseFactory(patient=other, status=Case.Status.FAILED, risk=Case.Risk.HIGH),
    }
    old = timezone.now() - timedelta(days=40)
    Case.objects.filter(pk=made["low"].pk).update(created_at=old)
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"waiting", "high", "referred", "failed", "low"}),
        ("?status=awaiting", {"waiting"}),
        ("?status=with_specialist", {"referred"}),
        ("?status=failed", {"failed"}),
        ("?risk=high", {"high", "referred"}),
        ("?risk=none", {"waiting", "failed"}),
        ("?referral=referred", {"referred"}),
        ("?referral=not_referred", {"waiting", "high", "failed", "low"}),
        ("?q=ada", {"waiting", "high"}),
        ("?q=KE-200&risk=high", {"referred"}),
        ("?submitted_to={old}", {"low"}),
        ("?submitted_from={recent}", {"waiting", "high", "referred", "failed"}),
    ],
)
def test_filters_and_search_show_only_the_users_matching_cases(cases, staff, web_client, query, expected):
    today = timezone.localdate()
    query = query.format(old=(today - timedelta(days=30)).isoformat(), recent=(today - timedelta(days=1)).isoformat())

    response = web_client(staff).get(URL + query)

    assert response.status_code == 200
    assert _ids(response) == {cases[name].pk for name in expected}


def test_every_dashboard_tile_opens_the_cases_it_counts(cases, staff, web_client):
    client = web_client(staff)
    dashboard = client.get("/").content.decode()
    tiles = re.findall(r'<a class="tile-link" href="([^"]+)"><span class="tile-number">(\d+)</span>', dashboard)

    assert len(tiles) == 4
    for href, count in tiles:
        assert len(_ids(client.get(href.replace("&amp;", "&")))) == int(count), href


def test_the_list_pages_and_keeps_its_filters(clinic_a, staff, web_client):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    made = CaseFactory.create_batch(30, patient=patient, status=Case.Status.FAILED)
    client = web_client(staff)

    first = client.get(URL + "?status=failed")
    second = client.get(URL + "?status=failed&page=2")

    assert len(_ids(first)) == 25 and len(_ids(second)) == 5
    assert _ids(first) | _ids(second) == {case.pk for case in made}
    assert 'href="?status=failed&amp;page=2"' in first.content.decode()


def test_the_dashboard_links_to_all_cases_beyond_the_recent_twenty(clinic_a, staff, web_client):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    CaseFactory.create_batch(21, patient=patient)
    page = web_client(staff).get("/").content.decode()
    assert 'href="/cases/"' in page and "All 21 cases" in page


def test_the_urgency_filter_finds_referrals_by_their_urgency(clinic_a, staff, web_client):

    def referred(urgency):
        case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), referred=True)
        referral_row(case=case, source="model", urgency=urgency, reason="", referred_by=None, request=None)
        return case

    urgent, routine = referred("urgent"), referred("routine")
    never = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    client = web_client(staff)

    page = client.get(URL + "?urgency=urgent")
    assert page.status_code == 200 and _ids(page) == {urgent.pk}
    assert 'name="urgency"' in page.content.decode()
    assert _ids(client.get(URL + "?urgency=routine")) == {routine.pk}
    assert _ids(client.get(URL)) == {urgent.pk, routine.pk, never.pk}
    assert client.get(URL + "?urgency=soon").status_code == 400


@pytest.mark.parametrize(
    "query", ["?status=nonsense", "?submitted_from=2026-02-30", "?submitted_from=2026-03-02&submitted_to=2026-03-01"]
)
def test_bad_filters_are_a_400_that_says_why_and_lists_nothing(cases, staff, web_client, query):
    response = web_client(staff).get(URL + query)
    assert response.status_code == 400
    assert _ids(response) == set()
    assert "field-error" in response.content.decode()


def test_the_list_is_audited_with_its_filters(cases, staff, web_client):
    web_client(staff).get(URL + "?risk=high")
    event = AuditEvent.objects.filter(action="case.list", details__page="case-list").get()
    assert event.details["filters"] == {"risk": "high"}
    assert set(event.details["ids"]) == {cases["high"].pk, cases["referred"].pk}


def test_a_specialist_finds_only_referred_cases(cases, specialist, web_client):
    assert _ids(web_client(specialist).get(URL)) == {cases["referred"].pk}


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
