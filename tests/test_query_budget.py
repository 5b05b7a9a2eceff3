"""SQL query budgets: the upload, the case detail, the case list and the referral queue each run
a bounded number of queries, whatever the number of cases, photos or predictions.

A regression (a query per row, a re-read of what was just written) fails here before it
costs every clinic CPU. The budgets are counted on the database the suite runs on (SQLite
by default, PostgreSQL in CI); transaction statements (BEGIN, COMMIT, SAVEPOINT) count too.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from diagnosis.models import Case
from tests.factories import (
    CaseFactory,
    LesionImageFactory,
    PatientFactory,
    PredictionFactory,
    image_bytes,
)
from triage.services import referral_create

UPLOAD_BUDGET = 8
# Reads whose answer grows with the rows shown: a fixed number of queries for 1 or 6 rows.
CASE_DETAIL_BUDGET = 12
CASE_LIST_BUDGET = 16  # the web page adds the session, its save and the header counts
REFERRAL_QUEUE_BUDGET = 16


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from diagnosis import dispatch

    monkeypatch.setattr(dispatch, "image_analysis_enqueue", lambda *, image_ids, mark_sent=True: len(image_ids))


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def scored_case(patient, *, photos: int = 2, referred: bool = False) -> Case:
    case = CaseFactory(patient=patient, status=Case.Status.ANALYSED)
    for _ in range(photos):
        image = LesionImageFactory(case=case, analysis_status="done")
        PredictionFactory(image=image, with_heatmap=True)
        PredictionFactory(image=image)  # an earlier model version's result is kept too
    if referred:
        referral_create(actor=case.submitted_by, case=case, urgency="urgent", reason="Bled twice")
    return case


def queries_of(call) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code in (200, 201), getattr(response, "content", b"")[:500]
    return len(captured), [query["sql"][:140] for query in captured.captured_queries]


def test_an_upload_runs_at_most_eight_queries(client_for, staff, patient, django_capture_on_commit_callbacks):
    client = client_for(staff)
    photo = SimpleUploadedFile("lesion.jpg", image_bytes(200, 150), content_type="image/jpeg")
    client.post("/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": [photo]}, format="multipart")

    def upload():
        photo = SimpleUploadedFile("lesion.jpg", image_bytes(200, 150), content_type="image/jpeg")
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": [photo]}, format="multipart"
            )

    count, sql = queries_of(upload)
    assert count <= UPLOAD_BUDGET, "\n".join(sql)


def test_an_upload_of_several_photos_runs_the_same_queries_as_one(
    client_for, staff, patient, django_capture_on_commit_callbacks
):
    client = client_for(staff)

    def upload(photos: int):
        files = [SimpleUploadedFile(f"l{n}.jpg", image_bytes(200, 150), "image/jpeg") for n in range(photos)]
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": files}, format="multipart"
            )

    upload(1)
    one, _ = queries_of(lambda: upload(1))
    four, sql = queries_of(lambda: upload(4))
    assert four == one, "\n".join(sql)


def test_the_upload_answer_is_what_a_read_of_the_case_gives(client_for, staff, patient):
    client = client_for(staff)
    photo = SimpleUploadedFile("lesion.jpg", image_bytes(200, 150), content_type="image/jpeg")
    created = client.post(
        "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": [photo]}, format="multipart"
    ).json()

    assert client.get(f"/api/v1/cases/{created['id']}/").json() == created


def test_case_detail_reads_a_fixed_number_of_queries(client_for, staff, patient):
    client = client_for(staff)
    small = scored_case(patient, photos=1, referred=True)
    large = scored_case(patient, photos=6, referred=True)
    client.get(f"/api/v1/cases/{small.pk}/")

    one, _ = queries_of(lambda: client.get(f"/api/v1/cases/{small.pk}/"))
    six, sql = queries_of(lambda: client.get(f"/api/v1/cases/{large.pk}/"))
    assert six == one and six <= CASE_DETAIL_BUDGET, "\n".join(sql)


def test_case_page_reads_a_fixed_number_of_queries(web_client, staff, patient):
    client = web_client(staff)
    small = scored_case(patient, photos=1, referred=True)
    large = scored_case(patient, photos=6, referred=True)
    client.get(f"/cases/{small.pk}/")

    one, _ = queries_of(lambda: client.get(f"/cases/{small.pk}/"))
    six, sql = queries_of(lambda: client.get(f"/cases/{large.pk}/"))
    assert six == one, "\n".join(sql)


@pytest.mark.parametrize("path", ["/api/v1/cases/", "/cases/"])
def test_case_list_reads_a_fixed_number_of_queries(client_for, web_client, staff, patient, path):
    client = client_for(staff) if path.startswith("/api/") else web_client(staff)
    scored_case(patient, referred=True)
    client.get(path)
    one, _ = queries_of(lambda: client.get(path))
    for n in range(5):
        scored_case(patient, referred=n % 2 == 0)
    six, sql = queries_of(lambda: client.get(path))
    assert six == one and six <= CASE_LIST_BUDGET, "\n".join(sql)


@pytest.mark.parametrize("path", ["/api/v1/referrals/", "/referrals/"])
def test_referral_queue_reads_a_fixed_number_of_queries(client_for, web_client, specialist, patient, path):
    client = client_for(specialist) if path.startswith("/api/") else web_client(specialist)
    scored_case(patient, referred=True)
    client.get(path)
    one, _ = queries_of(lambda: client.get(path))
    for _ in range(5):
        scored_case(patient, referred=True)
    six, sql = queries_of(lambda: client.get(path))
    assert six == one and six <= REFERRAL_QUEUE_BUDGET, "\n".join(sql)
