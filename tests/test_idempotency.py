"""Idempotency-Key on case submission: a resent upload never creates a second case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from diagnosis.models import Case, IdempotencyRecord, LesionImage
from tests.factories import PatientFactory, UserFactory, image_bytes

URL = "/api/v1/cases/"


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr("diagnosis.dispatch.case_analysis_enqueue", lambda *, case_id: None)


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def payload(patient, *, body_site="back", colour=(180, 90, 60)):
    return {
        "patient": patient.pk,
        "body_site": body_site,
        "images": [SimpleUploadedFile("lesion.jpg", image_bytes(color=colour), content_type="image/jpeg")],
    }


def post(client, data, key):
    return client.post(URL, data, format="multipart", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_twice_gives_one_case_and_the_first_answer(staff, patient, client_for):
    client = client_for(staff)
    first = post(client, payload(patient), "3f0c6f7e-0000-4000-8000-000000000001")
    second = post(client, payload(patient), "3f0c6f7e-0000-4000-8000-000000000001")

    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Case.objects.count() == 1
    assert LesionImage.objects.count() == 1
    assert first.json()["id"] == Case.objects.get().pk


def test_same_key_with_a_different_body_is_422_and_creates_nothing(staff, patient, client_for):
    client = client_for(staff)
    assert post(client, payload(patient), "key-1").status_code == 201

    other_site = post(client, payload(patient, body_site="face"), "key-1")
    other_photo = post(client, payload(patient, colour=(20, 200, 20)), "key-1")

    assert other_site.status_code == 422, other_site.content
    assert other_photo.status_code == 422, other_photo.content
    assert "Idempotency-Key" in other_site.json()["detail"]
    assert Case.objects.count() == 1


def test_keys_belong_to_a_user(staff, patient, clinic_a, client_for):
    colleague = UserFactory(username="carol", role=staff.role, clinics=[clinic_a])
    mine = post(client_for(staff), payload(patient), "shared-key")
    theirs = post(client_for(colleague), payload(patient), "shared-key")

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert Case.objects.count() == 2


def test_a_refused_submission_keeps_nothing_so_the_corrected_one_goes_through(staff, patient, client_for):
    client = client_for(staff)
    bad = {**payload(patient), "images": [SimpleUploadedFile("bad.jpg", b"not a photo")]}
    assert post(client, bad, "retry-key").status_code == 400
    assert not IdempotencyRecord.objects.exists()

    good = post(client, payload(patient), "retry-key")
    assert good.status_code == 201
    assert Case.objects.count() == 1


def test_a_key_older_than_24_hours_is_free_again(staff, patient, client_for):
    client = client_for(staff)
    first = post(client, payload(patient), "old-key")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    again = post(client, payload(patient), "old-key")

    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert Case.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "é"])
def test_a_malformed_key_is_400(staff, patient, client_for, key):
    response = client_for(staff).post(URL, payload(patient), format="multipart", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400, response.content
    assert "idempotency_key" in response.json()
    assert Case.objects.count() == 0


def test_without_a_key_each_post_is_a_new_case(staff, patient, client_for):
    client = client_for(staff)
    assert client.post(URL, payload(patient), format="multipart").status_code == 201
    assert client.post(URL, payload(patient), format="multipart").status_code == 201
    assert Case.objects.count() == 2


def test_the_new_case_page_resent_with_its_key_gives_the_same_case(staff, patient, web_client):
    client = web_client(staff)
    url = f"/patients/{patient.pk}/cases/new/"

    def send(body_site="back"):
        data = {"body_site": body_site, "duration": "unknown", "images": payload(patient)["images"]}
        return client.post(url, data, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_IDEMPOTENCY_KEY="page-key-1")

    first, second = send(), send()
    assert first.status_code == second.status_code == 201, first.content
    assert first.json() == second.json()
    assert Case.objects.count() == 1
    assert send(body_site="face").status_code == 422
    assert Case.objects.count() == 1


@pytest.mark.parametrize("since", ["consent withdrawn", "allowance used up"])
def test_the_new_case_page_resent_after_its_case_was_created_gets_it_whatever_changed_since(
    staff, patient, web_client, settings, since
):
    client = web_client(staff)
    url = f"/patients/{patient.pk}/cases/new/"
    data = {"body_site": "back", "duration": "unknown", "images": payload(patient)["images"]}
    first = client.post(url, data, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_IDEMPOTENCY_KEY="page-key-2")
    assert first.status_code == 201, first.content
    if since == "consent withdrawn":
        type(patient).objects.filter(pk=patient.pk).update(consent_given=False)
    else:
        settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 1

    data = {"body_site": "back", "duration": "unknown", "images": payload(patient)["images"]}
    again = client.post(url, data, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_IDEMPOTENCY_KEY="page-key-2")

    assert again.status_code == 201 and again.json() == first.json()
    assert Case.objects.count() == 1


def test_a_first_send_with_a_key_is_still_refused_without_consent_or_allowance(staff, patient, web_client, settings):
    client = web_client(staff)
    url = f"/patients/{patient.pk}/cases/new/"

    def send(key):
        data = {"body_site": "back", "duration": "unknown", "images": payload(patient)["images"]}
        return client.post(url, data, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_IDEMPOTENCY_KEY=key)

    type(patient).objects.filter(pk=patient.pk).update(consent_given=False)
    refused = send("page-key-3")
    assert refused.status_code == 400 and "consent" in str(refused.json()["errors"])
    type(patient).objects.filter(pk=patient.pk).update(consent_given=True)
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 2  # the refused photo counted too
    assert send("page-key-4").status_code == 201
    assert send("page-key-5").status_code == 429
    assert Case.objects.count() == 1


def test_a_case_kept_on_the_phone_by_another_user_waits_for_its_own(staff, patient, web_client):
    """A draft sent while someone else is signed in on the phone is not submitted under their name."""
    data = {"body_site": "back", "duration": "unknown", "images": payload(patient)["images"]}
    response = web_client(staff).post(
        f"/patients/{patient.pk}/cases/new/",
        data,
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        HTTP_IDEMPOTENCY_KEY="draft-of-someone-else",
        HTTP_X_PORTAL_USER="somebody-else",
    )
    assert response.status_code == 409
    assert not Case.objects.exists() and not IdempotencyRecord.objects.exists()


def test_the_service_worker_is_served_from_the_root_with_the_assets_it_keeps(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    script = response.content.decode()
    assert script.startswith("var PRECACHE = [")
    assert '"/static/js/case-form.js"' in script and 'var OUTBOX_URL = "/static/js/outbox.js"' in script
    assert 'addEventListener("sync"' in script


def test_the_hourly_cleanup_deletes_only_answers_older_than_24_hours(staff, patient, client_for):
    from diagnosis.tasks import idempotency_records_expired_delete

    client = client_for(staff)
    post(client, payload(patient), "fresh")
    post(client, payload(patient), "stale")
    IdempotencyRecord.objects.filter(key="stale").update(created_at=timezone.now() - timedelta(hours=25))

    assert idempotency_records_expired_delete() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.django_db(transaction=True)
def test_two_sends_of_one_key_at_the_same_moment_make_one_case(staff, clinic_a):
    """The phone resends while the first upload is still being saved: the second waits and replays."""
    import threading
    import time

    from django.db import connection, connections

    from diagnosis import idempotency
    from tests.factories import CaseFactory
    from tests.inference_fixtures import service_missing

    if connection.vendor != "postgresql":
        service_missing("concurrent inserts need PostgreSQL (CI runs the suite on it)")
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    barrier = threading.Barrier(2)
    answers: list[idempotency.Answer] = []

    def create():
        case = CaseFactory(patient=patient)
        time.sleep(0.5)  # keeps the first transaction open while the second arrives
        return 201, {"id": case.pk}, case

    def send() -> None:
        try:
            barrier.wait()
            answers.append(idempotency.submission_once(user=staff, key="same", fingerprint="f" * 64, create=create))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answer.replayed for answer in answers) == [False, True]
    assert answers[0].body == answers[1].body
    assert Case.objects.count() == 1


def test_the_new_case_page_resent_after_its_case_was_deleted_is_told_for_good(staff, patient, web_client):
    client = web_client(staff)
    url = f"/patients/{patient.pk}/cases/new/"
    data = {"body_site": "back", "duration": "unknown", "images": payload(patient)["images"]}
    first = client.post(url, data, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_IDEMPOTENCY_KEY="page-key-6")
    Case.objects.filter(pk=first.json()["case"]).delete()

    data = {"body_site": "back", "duration": "unknown", "images": payload(patient)["images"]}
    again = client.post(url, data, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_IDEMPOTENCY_KEY="page-key-6")

    assert again.status_code == 410 and again.json()["errors"]["__all__"]
    assert not Case.objects.exists()
