"""Polling a case's result: an ETag from one small query, and 304 while nothing changed.

The case page's result card (``/cases/<id>/result/``) and the API's case detail while the
case awaits its result answer a poll that sends the ETag it holds with ``304 Not Modified``:
no photo, prediction or referral is read, nothing rendered, nothing audited (nothing shown).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Case, LesionImage
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


@pytest.fixture
def pending_case(clinic_a, staff):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    case = CaseFactory(patient=patient, status=Case.Status.ANALYSING)
    LesionImageFactory(case=case, analysis_status="analysing", analysis_updated_at=timezone.now())
    return case


def score(case: Case) -> None:
    image = case.images.get()
    PredictionFactory(image=image)
    LesionImage.objects.filter(pk=image.pk).update(analysis_status="done", analysis_updated_at=timezone.now())


def test_result_card_poll_is_answered_304_while_nothing_changed(web_client, staff, pending_case):
    client = web_client(staff)
    url = f"/cases/{pending_case.pk}/result/"
    first = client.get(url, **XHR)
    assert first.status_code == 200 and first["ETag"]
    audits = AuditEvent.objects.count()

    with CaptureQueriesContext(connection) as captured:
        again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"], **XHR)

    assert again.status_code == 304 and again["ETag"] == first["ETag"] and again.content == b""
    assert again["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.count() == audits
    statements = [query["sql"] for query in captured.captured_queries]
    # One query for the result's version; the rest is the session (read, and saved on each request).
    version_reads = [sql for sql in statements if "diagnosis_case" in sql]
    assert len(version_reads) == 1, statements
    assert not any(sql.lstrip().startswith("SELECT") and 'FROM "diagnosis_prediction"' in sql for sql in statements)


def test_result_card_poll_gets_the_new_card_once_the_photo_is_scored(web_client, staff, pending_case):
    client = web_client(staff)
    url = f"/cases/{pending_case.pk}/result/"
    first = client.get(url, **XHR)

    score(pending_case)
    after = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"], **XHR)

    assert after.status_code == 200 and after["ETag"] != first["ETag"]
    assert "Melanocytic nevus" in after.json()["html"]


def test_the_etag_is_the_readers_own(web_client, staff, admin_user, pending_case):
    url = f"/cases/{pending_case.pk}/result/"
    etag = web_client(staff).get(url, **XHR)["ETag"]
    web_client(None).logout()

    assert web_client(admin_user).get(url, HTTP_IF_NONE_MATCH=etag, **XHR).status_code == 200


def test_another_clinics_staff_get_404_whatever_etag_they_send(client, staff, other_staff, pending_case):
    url = f"/cases/{pending_case.pk}/result/"
    client.force_login(staff)
    etag = client.get(url, **XHR)["ETag"]
    client.force_login(other_staff)

    assert client.get(url, HTTP_IF_NONE_MATCH=etag, **XHR).status_code == 404


def test_api_case_detail_poll_is_answered_304_while_the_case_awaits_its_result(client_for, staff, pending_case):
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    first = client.get(url)
    assert first.status_code == 200 and first["ETag"]
    audits = AuditEvent.objects.count()

    again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and AuditEvent.objects.count() == audits

    score(pending_case)
    changed = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed.json()["images"][0]["prediction"] is not None


def test_api_case_detail_of_a_finished_case_has_no_etag(client_for, staff, pending_case):
    Case.objects.filter(pk=pending_case.pk).update(status=Case.Status.ANALYSED)

    response = client_for(staff).get(f"/api/v1/cases/{pending_case.pk}/", HTTP_IF_NONE_MATCH='"anything"')

    assert response.status_code == 200 and not response.has_header("ETag")


def test_api_case_detail_of_another_clinic_is_404_with_or_without_an_etag(client_for, staff, other_staff, pending_case):
    etag = client_for(staff).get(f"/api/v1/cases/{pending_case.pk}/")["ETag"]

    response = client_for(other_staff).get(f"/api/v1/cases/{pending_case.pk}/", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 404
