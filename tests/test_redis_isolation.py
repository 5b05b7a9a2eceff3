"""The tests use a Redis they started themselves, never a developer's (tests/inference_fixtures.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_the_tests_redis_is_a_private_server_in_a_temporary_folder(redis_server, redis_broker, tmp_path_factory):
    import redis

    with redis.Redis.from_url(redis_broker) as client:
        folder = Path(client.config_get("dir")["dir"]).resolve()
        port = int(client.info("server")["tcp_port"])
        assert client.config_get("save")["save"] == ""  # nothing written to disk
    assert folder.is_relative_to(tmp_path_factory.getbasetemp().resolve())
    assert redis_broker.startswith(f"redis://127.0.0.1:{port}/")
    assert port != 6379


def test_redis_url_in_the_environment_is_not_used_by_the_tests(redis_server, monkeypatch):
    # Whatever a developer's shell exports, the tests' server is the one they started.
    for name in ("REDIS_URL", "SKINPORTAL_TEST_REDIS_URL", "CELERY_BROKER_URL"):
        value = os.environ.get(name)
        if value:
            assert not value.startswith(redis_server), name
    source = (Path(__file__).parent / "inference_fixtures.py").read_text()
    assert 'os.environ.get("REDIS_URL")' not in source and "SKINPORTAL_TEST_REDIS_URL" not in source


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_an_empty_database(redis_broker, run):
    import redis

    with redis.Redis.from_url(redis_broker) as client:
        assert client.dbsize() == 0
        client.set("left-behind", run)
