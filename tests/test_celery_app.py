"""The Celery app and how photos reach it: configuration, routing, enqueue on commit, model loading."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis import dispatch
from diagnosis.models import Case, LesionImage
from skinportal.celery import INFERENCE_QUEUE, app, refuse_demo_users_at_worker_start
from tests.factories import LesionImageFactory, PatientFactory, UserFactory, image_bytes
from tests.inference_fixtures import ROOT, celery_sending_to, queued_messages


def test_tasks_are_json_late_acknowledged_time_limited_and_on_the_inference_queue():
    import analysis.tasks  # noqa: F401  (what the worker's autodiscovery imports)
    import diagnosis.tasks  # noqa: F401

    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    for name in ("inference.image_analyse", "inference.sweep", "inference.ping", "inference.orphaned_files_delete"):
        task = app.tasks[name]
        assert task.soft_time_limit and task.time_limit and task.soft_time_limit < task.time_limit
        assert app.amqp.router.route({}, name)["queue"].name == INFERENCE_QUEUE
    analyse = app.tasks["inference.image_analyse"]
    assert analyse.acks_late and analyse.reject_on_worker_lost and analyse.max_retries == 3


@pytest.mark.parametrize(
    "task", ["inference.sweep", "inference.orphaned_files_delete", "inference.idempotency_records_expired_delete"]
)
def test_beat_sends_the_sweepers_to_the_inference_queue(task):
    (entry,) = [e for e in app.conf.beat_schedule.values() if e["task"] == task]
    assert entry["options"]["queue"] == INFERENCE_QUEUE and entry["schedule"] > 0


def test_the_model_is_not_loaded_when_the_app_is_imported():
    """The parent worker process imports everything before it forks; the model must not be in it."""
    probe = (
        "import django, json; django.setup(); "
        "from skinportal.celery import app; app.loader.import_default_modules(); "
        "import inference.predictor as p, sys; "
        "print(json.dumps({'loaded': p.get_predictor.cache_info().currsize, "
        "'tensorflow': 'tensorflow' in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"DJANGO_SETTINGS_MODULE": "skinportal.settings.test", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"loaded": 0, "tensorflow": False}


def test_worker_refuses_to_start_under_production_settings_with_demo_users(settings, db):
    settings.SKINPORTAL_REFUSE_DEMO_USERS = True
    UserFactory(username="demo-staff")

    # SystemExit, not ImproperlyConfigured: Celery logs and ignores an Exception from a signal handler.
    with pytest.raises(SystemExit, match="demo-staff"):
        refuse_demo_users_at_worker_start(sender=None)


def test_worker_starts_with_demo_users_outside_production(settings, db):
    settings.SKINPORTAL_REFUSE_DEMO_USERS = False
    UserFactory(username="demo-staff")

    refuse_demo_users_at_worker_start(sender=None)


def test_demo_user_refusal_runs_when_a_worker_starts():
    from celery.signals import worker_init

    assert refuse_demo_users_at_worker_start in worker_init._live_receivers(None)


def test_worker_process_hook_loads_the_model(served_model):
    from inference.predictor import get_predictor
    from skinportal.celery import load_model_in_worker_process

    get_predictor.cache_clear()
    load_model_in_worker_process()
    assert get_predictor.cache_info().currsize == 1


def test_submitted_case_is_queued_after_commit_one_message_per_photo(
    transactional_db, redis_broker, client_for, staff, clinic_a
):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    photos = [SimpleUploadedFile(f"{n}.jpg", image_bytes(), content_type="image/jpeg") for n in range(3)]

    response = client_for(staff).post(
        "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": photos}, format="multipart"
    )

    assert response.status_code == 201
    assert queued_messages(redis_broker) == 3
    assert not LesionImage.objects.filter(analysis_updated_at__isnull=True).exists()  # "last sent" recorded


def test_nothing_is_queued_when_the_submission_is_rolled_back(db, redis_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        LesionImageFactory()
    assert callbacks == [] and queued_messages(redis_broker) == 0


def test_broker_down_at_submit_saves_the_case_and_logs(transactional_db, client_for, staff, clinic_a, caplog):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    photo = SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")

    with celery_sending_to("redis://127.0.0.1:1/0"):
        response = client_for(staff).post(
            "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": [photo]}, format="multipart"
        )

    assert response.status_code == 201
    case = Case.objects.get(pk=response.json()["id"])
    assert case.images.get().analysis_status == LesionImage.AnalysisStatus.QUEUED
    assert "the sweeper will send it" in caplog.text


def test_enqueue_never_raises_into_the_request(db, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("anything at all")

    monkeypatch.setattr(dispatch, "image_analysis_enqueue", broken)
    dispatch.case_analysis_enqueue(case_id=12345)


@pytest.mark.parametrize("scheme", ["filesystem://", "redis://127.0.0.1:6379/3"])
def test_readiness_ping_keeps_its_answer_where_the_web_process_can_read_it(scheme, tmp_path):
    from diagnosis.tasks import ping

    options = {"data_folder_in": str(tmp_path / "queue")} if scheme.startswith("filesystem") else {}
    with celery_sending_to(scheme):
        app.conf.broker_transport_options = options
        backend = ping.backend
        assert type(backend).__name__ == ("FilesystemBackend" if scheme.startswith("filesystem") else "RedisBackend")
        assert app.tasks["inference.image_analyse"].backend is not backend  # everything else keeps nothing
