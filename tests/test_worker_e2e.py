"""End to end: photos uploaded through the API, scored by real ``celery worker`` processes over Redis.

Needs Redis and a database the worker processes can open (PostgreSQL as in CI, or SQLite in
a file); see tests/inference_fixtures.py. Real HAM10000 photos from the committed sample
(tests/data/README.md).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count
from django.test import override_settings
from PIL import Image

from analysis import services as analysis
from diagnosis.models import Case, LesionImage, Prediction
from inference.artifact import load_artifact
from inference.preprocessing import CLASSES
from tests.factories import PatientFactory
from tests.inference_fixtures import HAM10000_SAMPLE, celery_sending_to, queued_messages, wait_for

URL = "/api/v1/cases/"
FINISHED = (Case.Status.ANALYSED, Case.Status.REFERRED, Case.Status.FAILED)


def ham_photo_bytes(count: int) -> list[bytes]:
    """Real HAM10000 photos from the committed sample (tests/data/README.md)."""
    files = sorted((HAM10000_SAMPLE / "images").glob("ISIC_*.jpg"))
    assert len(files) >= count, f"the HAM10000 sample has {len(files)} photos, {count} needed"
    return [file.read_bytes() for file in files[:count]]


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def submit(client, patient, photos: list[bytes]) -> dict:
    files = [SimpleUploadedFile(f"lesion-{n}.jpg", data, content_type="image/jpeg") for n, data in enumerate(photos)]
    response = client.post(URL, {"patient": patient.pk, "body_site": "back", "images": files}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def case_finished(client, case_id: int) -> dict | None:
    body = client.get(f"{URL}{case_id}/").json()
    return body if body["status"] in FINISHED else None


def test_photos_uploaded_through_the_api_are_scored_by_a_worker_process(
    worker_factory, client_for, staff, patient, model_dir
):
    worker_factory()
    client = client_for(staff)

    created = submit(client, patient, ham_photo_bytes(2))
    body = wait_for(lambda: case_finished(client, created["id"]), timeout=60, message="the case result")

    version = load_artifact(model_dir, verify=False).model_version
    assert body["status"] in (Case.Status.ANALYSED, Case.Status.REFERRED)
    assert body["risk"] in ("low", "moderate", "high")
    assert "not a diagnosis" in body["summary"]
    for image in body["images"]:
        prediction = image["prediction"]
        assert image["analysis_status"] == "done"
        assert prediction["status"] == "done" and prediction["model_version"] == version
        assert set(prediction["probabilities"]) == set(CLASSES)
        assert abs(sum(prediction["probabilities"].values()) - 1.0) < 1e-5
        assert prediction["top_class"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
        heatmap = client.get(prediction["heatmap_url"])
        assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"
        with Image.open(io.BytesIO(b"".join(heatmap.streaming_content))) as overlay:
            assert overlay.format == "PNG" and overlay.mode == "P" and "transparency" in overlay.info
            assert overlay.size == (image["width"], image["height"])  # HAM10000 photos are under 640 px


def every_photo_scored_once() -> None:
    assert not LesionImage.objects.exclude(analysis_status=LesionImage.AnalysisStatus.DONE).exists()
    counts = LesionImage.objects.annotate(n=Count("predictions")).values_list("n", flat=True)
    assert set(counts) == {1}
    assert not Case.objects.exclude(status__in=(Case.Status.ANALYSED, Case.Status.REFERRED)).exists()


def all_done() -> bool:
    return not LesionImage.objects.exclude(analysis_status=LesionImage.AnalysisStatus.DONE).exists()


def swept_and_settled() -> bool:
    analysis.analysis_sweep()
    return not Case.objects.exclude(status__in=FINISHED).exists()


def test_worker_killed_with_sigkill_mid_flight_loses_nothing_and_scores_nothing_twice(
    worker_factory, client_for, staff, patient, settings
):
    client = client_for(staff)
    photos = ham_photo_bytes(10)
    for _ in range(6):  # queued while no worker runs: the worker starts with a backlog
        submit(client, patient, photos)
    total = LesionImage.objects.count()

    worker = worker_factory(concurrency=2)
    wait_for(lambda: Prediction.objects.exists(), timeout=60, interval=0.01, message="the first prediction")
    worker.kill(signal.SIGKILL)  # main process and pool children, no chance to clean up
    unfinished = LesionImage.objects.exclude(analysis_status=LesionImage.AnalysisStatus.DONE).count()
    assert 0 < unfinished < total, "the worker finished everything before it was killed"

    worker_factory(concurrency=2)
    # Photos the dead worker held stay "analysing" and their messages unacknowledged in
    # Redis; the sweeper (beat's job, called here with short timings) sends them again.
    settings.SKINPORTAL_ANALYSIS_STALE_SECONDS = 1
    settings.SKINPORTAL_ANALYSIS_REQUEUE_SECONDS = 1

    def swept_and_done() -> bool:
        analysis.analysis_sweep()
        return all_done()

    wait_for(swept_and_done, timeout=120, interval=1, message="every photo scored after the restart")
    wait_for(swept_and_settled, timeout=30, interval=1, message="every case settled")
    every_photo_scored_once()


def test_pool_process_killed_mid_task_is_redelivered_and_finished_without_the_sweeper(
    worker_factory, client_for, staff, patient
):
    client = client_for(staff)
    photos = ham_photo_bytes(10)
    for _ in range(4):
        submit(client, patient, photos)

    worker = worker_factory(concurrency=2)
    wait_for(lambda: Prediction.objects.exists(), timeout=60, interval=0.01, message="the first prediction")
    children = subprocess.run(
        ["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert children, worker.output()
    os.kill(int(children[0]), signal.SIGKILL)  # acks_late + reject_on_worker_lost: the message comes back

    wait_for(all_done, timeout=120, message="every photo scored")
    wait_for(lambda: not Case.objects.exclude(status__in=FINISHED).exists(), timeout=30, message="every case settled")
    every_photo_scored_once()


def test_case_submitted_while_the_broker_is_down_is_saved_and_scored_once_it_is_back(
    worker_factory, client_for, staff, patient, redis_broker, settings
):
    client = client_for(staff)
    with celery_sending_to("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        started = time.monotonic()
        created = submit(client, patient, ham_photo_bytes(2))
        assert time.monotonic() - started < 10  # the request does not hang on the dead broker
    case = Case.objects.get(pk=created["id"])
    assert case.status == Case.Status.SUBMITTED
    assert set(case.images.values_list("analysis_status", flat=True)) == {"queued"}
    assert queued_messages(redis_broker) == 0

    worker_factory()
    with override_settings(SKINPORTAL_ANALYSIS_REQUEUE_SECONDS=0):
        assert analysis.analysis_sweep()["sent"] == 2

    body = wait_for(lambda: case_finished(client, case.pk), timeout=60, message="the case result")
    assert body["status"] in (Case.Status.ANALYSED, Case.Status.REFERRED)
    assert all(image["prediction"] for image in body["images"])


def test_worker_whose_model_cannot_load_fails_photos_with_a_reason(
    worker_factory, client_for, staff, patient, tmp_path
):
    worker_factory(SKINPORTAL_MODEL_DIR=str(tmp_path / "no-model"), expect_model=False)
    client = client_for(staff)

    created = submit(client, patient, ham_photo_bytes(1))
    body = wait_for(lambda: case_finished(client, created["id"]), timeout=60, message="the case result")

    assert body["status"] == Case.Status.FAILED
    assert body["images"][0]["analysis_status"] == "failed"
    assert body["images"][0]["analysis_error"] == analysis.MODEL_UNAVAILABLE
