"""docker-compose.yml: workers that scale (``--scale worker=3``) and share no folder, photos in the object store."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PORTAL_SERVICES = ("web", "worker", "notifier", "beat")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_the_worker_service_can_be_scaled():
    worker = compose()["services"]["worker"]

    # A fixed container name or a published port would stop a second copy from starting.
    assert "container_name" not in worker and "ports" not in worker
    assert "-Q inference" in worker["command"]


def test_no_portal_service_needs_a_shared_folder_and_all_use_the_object_store():
    services = compose()["services"]

    for name in PORTAL_SERVICES:
        service = services[name]
        assert not service.get("volumes"), f"{name} mounts a volume"
        environment = service["environment"]
        assert environment["SKINPORTAL_S3_BUCKET"] and environment["SKINPORTAL_S3_ENDPOINT_URL"] == "http://store:9000"
        assert "DJANGO_MEDIA_ROOT" not in environment
        assert {"db", "redis", "bucket"} <= set(service["depends_on"])


def test_the_object_store_is_not_published_and_its_bucket_is_private():
    services = compose()["services"]

    assert "ports" not in services["store"]
    assert "anonymous set none" in " ".join(services["bucket"]["entrypoint"])
