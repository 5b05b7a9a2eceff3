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


# --- Long polls: ``Prefer: wait=N`` ----------------------------------------------------------
@pytest.fixture
def sleeps(monkeypatch):
    """The waits of a long poll, recorded instead of slept; ``then`` runs at the given one."""
    from diagnosis import polling

    class Sleeps(list):
        then: dict[int, object]

    recorded = Sleeps()
    recorded.then = actions = {}

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        if len(recorded) in actions:
            actions[len(recorded)]()

    monkeypatch.setattr(polling, "_sleep", sleep)
    return recorded


def test_api_long_poll_answers_as_soon_as_the_photo_is_scored(client_for, staff, pending_case, sleeps):
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    sleeps.then[3] = lambda: score(pending_case)

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10")

    assert response.status_code == 200 and response.json()["images"][0]["prediction"] is not None
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2] <= 0.25


def test_api_long_poll_is_not_ended_by_a_step_on_the_way_to_the_result(
    client_for, staff, pending_case, sleeps, settings
):
    settings.SKINPORTAL_POLL_MAX_WAIT_SECONDS = 0.05
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    # A worker takes the photo again (a retry): the version moves, but no result came.
    sleeps.then[1] = lambda: pending_case.images.update(analysis_updated_at=timezone.now())

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10")

    # Answered when the wait ran out, with what changed meanwhile.
    assert len(sleeps) > 1
    assert response.status_code == 200 and response["ETag"] != etag
    assert response.json()["images"][0]["prediction"] is None


def test_api_long_poll_from_before_a_step_still_waits_for_the_result(client_for, staff, pending_case, sleeps):
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    pending_case.images.update(analysis_updated_at=timezone.now())  # a worker took the photo meanwhile
    sleeps.then[2] = lambda: score(pending_case)

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10")

    assert len(sleeps) == 2
    assert response.status_code == 200 and response.json()["images"][0]["prediction"] is not None


def test_api_long_poll_without_an_etag_is_answered_at_once(client_for, staff, pending_case, sleeps):
    response = client_for(staff).get(f"/api/v1/cases/{pending_case.pk}/", HTTP_PREFER="wait=10")

    assert response.status_code == 200 and sleeps == []


def test_api_long_poll_answers_304_when_the_wait_runs_out_unaudited(client_for, staff, pending_case, settings):
    settings.SKINPORTAL_POLL_MAX_WAIT_SECONDS = 0.05
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    audits = AuditEvent.objects.count()

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=600")

    assert response.status_code == 304 and response["ETag"] == etag
    assert AuditEvent.objects.count() == audits


def test_api_long_poll_of_a_finished_case_answers_at_once(client_for, staff, pending_case, sleeps):
    Case.objects.filter(pk=pending_case.pk).update(status=Case.Status.ANALYSED)

    response = client_for(staff).get(f"/api/v1/cases/{pending_case.pk}/", HTTP_PREFER="wait=10")

    assert response.status_code == 200 and sleeps == []


def test_api_long_poll_of_another_clinics_case_is_404_at_once(client_for, staff, other_staff, pending_case, sleeps):
    etag = client_for(staff).get(f"/api/v1/cases/{pending_case.pk}/")["ETag"]

    response = client_for(other_staff).get(
        f"/api/v1/cases/{pending_case.pk}/", HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10"
    )

    assert response.status_code == 404 and sleeps == []


def test_result_card_long_poll_answers_with_the_new_card(web_client, staff, pending_case, sleeps):
    client = web_client(staff)
    url = f"/cases/{pending_case.pk}/result/"
    etag = client.get(url, **XHR)["ETag"]
    sleeps.then[2] = lambda: score(pending_case)

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10", **XHR)

    assert response.status_code == 200 and "Melanocytic nevus" in response.json()["html"]
    assert len(sleeps) == 2


def deactivate(user) -> None:
    from accounts.models import User

    User.objects.filter(pk=user.pk).update(is_active=False)


def test_an_account_deactivated_during_a_long_poll_is_not_answered_with_the_case(
    client_for, staff, pending_case, sleeps
):
    pending_case.notes = "lives with her daughter"
    pending_case.save(update_fields=["notes"])
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    sleeps.then[1] = lambda: (deactivate(staff), score(pending_case))

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10")

    assert response.status_code == 404
    assert "lives with her daughter" not in response.content.decode()


def test_an_account_deactivated_during_a_result_card_long_poll_gets_no_card(web_client, staff, pending_case, sleeps):
    client = web_client(staff)
    url = f"/cases/{pending_case.pk}/result/"
    etag = client.get(url, **XHR)["ETag"]
    sleeps.then[1] = lambda: (deactivate(staff), score(pending_case))

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10", **XHR)

    assert response.status_code == 404
    assert "Melanocytic nevus" not in response.content.decode()


def test_the_uploads_etag_is_the_one_a_poll_of_the_new_case_gets(
    client_for, staff, clinic_a, monkeypatch, django_capture_on_commit_callbacks, sleeps
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis import dispatch
    from tests.factories import image_bytes

    monkeypatch.setattr(dispatch, "image_analysis_enqueue", lambda *, image_ids, mark_sent=True: len(image_ids))
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    client = client_for(staff)
    photos = [SimpleUploadedFile(f"lesion{n}.jpg", image_bytes(200, 150), content_type="image/jpeg") for n in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        upload = client.post(
            "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": photos}, format="multipart"
        )
    assert upload.status_code == 201 and upload["ETag"].endswith('-2"')
    url = f"/api/v1/cases/{upload.json()['id']}/"

    assert client.get(url, HTTP_IF_NONE_MATCH=upload["ETag"]).status_code == 304
    # So the first long poll after an upload already waits for a result.
    case = Case.objects.get(pk=upload.json()["id"])
    image = case.images.first()
    sleeps.then[1] = lambda: (
        PredictionFactory(image=image),
        LesionImage.objects.filter(pk=image.pk).update(analysis_status="done", analysis_updated_at=timezone.now()),
    )
    answer = client.get(url, HTTP_IF_NONE_MATCH=upload["ETag"], HTTP_PREFER="wait=10")
    assert answer.status_code == 200 and len(sleeps) == 1 and answer["ETag"].endswith('-1"')


# --- Told, not asking: the worker announces a photo's outcome on the broker's Redis ----------
def test_a_long_poll_on_redis_is_woken_by_the_announcement_not_a_timer(
    client_for, staff, pending_case, redis_server, settings, monkeypatch
):
    from diagnosis import polling

    settings.CELERY_BROKER_URL = f"{redis_server}/0"
    monkeypatch.setattr(polling, "NOTIFIED_MAX_STEP", 60)  # only the message can end the wait early
    monkeypatch.setattr(polling, "_sleep", lambda seconds: pytest.fail("a notified wait checked on a timer"))
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]

    checks, woken = [], []
    real_version, real_await = polling.result_etag, polling._await_message

    def version(**kwargs):
        checks.append(1)
        answer = real_version(**kwargs)
        if len(checks) == 2:  # the check just after subscribing: the photo still waits; the
            score(pending_case)  # worker finishes it right after, and says so
            polling.result_changed(pending_case.pk)
        return answer

    def await_message(subscription, seconds):
        woken.append(real_await(subscription, seconds))
        return woken[-1]

    monkeypatch.setattr(polling, "result_etag", version)
    monkeypatch.setattr(polling, "_await_message", await_message)
    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=30")

    assert response.status_code == 200 and response.json()["images"][0]["prediction"] is not None
    # The request's own check, the check after subscribing, then one check after the message:
    # the wait was ended by the message, with no check while nothing happened.
    assert woken == [True] and len(checks) == 3


def test_a_result_stored_before_the_subscription_is_not_missed(
    client_for, staff, pending_case, redis_server, settings, monkeypatch
):
    from diagnosis import polling

    settings.CELERY_BROKER_URL = f"{redis_server}/0"
    monkeypatch.setattr(polling, "NOTIFIED_MAX_STEP", 60)
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    real_subscribe = polling._subscribe

    def subscribe(pk):  # the worker finishes between the request's check and its subscription
        score(pending_case)
        polling.result_changed(pending_case.pk)  # nobody listens yet: the message is lost
        return real_subscribe(pk)

    monkeypatch.setattr(polling, "_subscribe", subscribe)
    monkeypatch.setattr(polling, "_await_message", lambda *args: pytest.fail("waited for a message already sent"))
    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=30")

    assert response.status_code == 200 and response.json()["images"][0]["prediction"] is not None


def test_the_worker_announces_a_photos_outcome_only_once_committed(
    pending_case, redis_server, settings, django_capture_on_commit_callbacks
):
    import redis

    from analysis import services as analysis
    from diagnosis import polling

    settings.CELERY_BROKER_URL = f"{redis_server}/0"
    listener = redis.Redis.from_url(f"{redis_server}/0", socket_connect_timeout=2).pubsub(
        ignore_subscribe_messages=True
    )
    listener.subscribe(polling._channel(pending_case.pk))
    listener.get_message(timeout=2)  # the confirmation
    # A photo finished while another still waits: the case has no result yet, but a waiting
    # request wants to hear of every photo.
    LesionImageFactory(case=pending_case, analysis_status="queued")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            analysis.case_result_update(case_id=pending_case.pk)
        assert listener.get_message(timeout=0.2) is None  # not before the commit
        for callback in callbacks:
            callback()
        message = listener.get_message(timeout=5)
    finally:
        listener.close()
    assert message is not None and message["data"] == b"1"


def test_with_redis_down_a_long_poll_checks_on_a_timer_and_the_worker_carries_on(
    client_for, staff, pending_case, settings, sleeps
):
    from diagnosis import polling
    from tests.inference_fixtures import _free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    polling.result_changed(pending_case.pk)  # logged, not raised
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    sleeps.then[2] = lambda: score(pending_case)

    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=10")

    assert response.status_code == 200 and len(sleeps) == 2


def test_a_lost_announcement_costs_a_check_a_second_not_the_result(
    client_for, staff, pending_case, redis_server, settings, monkeypatch
):
    from diagnosis import polling

    settings.CELERY_BROKER_URL = f"{redis_server}/0"
    monkeypatch.setattr(polling, "NOTIFIED_MAX_STEP", 0.05)  # the periodic check, shortened for the test
    client = client_for(staff)
    url = f"/api/v1/cases/{pending_case.pk}/"
    etag = client.get(url)["ETag"]
    woken, real_await = [], polling._await_message

    def await_message(subscription, seconds):
        if not woken:
            score(pending_case)  # the worker stores the result, and its message never comes
        woken.append(real_await(subscription, seconds))
        return woken[-1]

    monkeypatch.setattr(polling, "_await_message", await_message)
    response = client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_PREFER="wait=30")

    assert woken == [False]  # no message: the check after the step found the result
    assert response.status_code == 200 and response.json()["images"][0]["prediction"] is not None
