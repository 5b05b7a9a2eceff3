"""GET /readyz: 200 only with the database, the broker and a worker with a loaded model answering."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from tests.inference_fixtures import celery_sending_to, queued_messages


@pytest.fixture(autouse=True)
def short_wait(settings):
    settings.SKINPORTAL_READYZ_TIMEOUT = 1.5


def test_ready_when_a_worker_with_the_model_answers(worker_factory, client, model_dir):
    from inference.artifact import load_artifact

    worker_factory()

    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert body["checks"]["worker"]["model_version"] == load_artifact(model_dir, verify=False).model_version
    assert response["Cache-Control"].startswith("max-age=0")


def test_not_ready_without_a_worker(transactional_db, redis_broker, client):
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["worker"]
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert "no inference worker answered" in body["checks"]["worker"]["error"]


def test_a_burst_of_requests_sends_one_ping(transactional_db, redis_broker, client):
    first = client.get("/readyz")
    second = client.get("/readyz")

    assert first.status_code == second.status_code == 503
    assert second.json() == first.json()
    assert queued_messages(redis_broker) == 1  # no worker here: the one ping is still queued


def test_not_ready_when_the_worker_cannot_load_the_model(worker_factory, client, tmp_path):
    worker_factory(SKINPORTAL_MODEL_DIR=str(tmp_path / "no-model"), expect_model=False)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["worker"]
    assert "could not load the model" in response.json()["checks"]["worker"]["error"]


def test_not_ready_when_the_broker_is_down(db, client):
    with celery_sending_to("redis://127.0.0.1:1/0"):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker", "worker"]
    assert body["checks"]["broker"]["error"] == "the message broker is not reachable"
    assert "127.0.0.1" not in response.content.decode()  # no internals in a public answer


def test_not_ready_when_the_database_is_down(db, client, monkeypatch):
    def no_database():
        raise DatabaseError("connection refused")

    with monkeypatch.context() as patched, celery_sending_to("redis://127.0.0.1:1/0"):
        patched.setattr("skinportal.readiness.connection.cursor", no_database)
        response = client.get("/readyz")

    assert response.status_code == 503
    assert "database" in response.json()["failed"]
