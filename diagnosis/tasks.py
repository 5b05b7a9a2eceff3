"""Housekeeping tasks of the inference queue and the workers' ping (the scoring tasks are in
analysis/tasks.py).

Every task here is named ``inference.*`` and routed to the ``inference`` queue
(skinportal/celery.py). Results are not kept, except for ``inference.ping``, whose short-
lived answer /readyz reads back.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from celery import Task, shared_task
from celery.app.backends import by_url
from django.conf import settings

from . import services


@shared_task(name="inference.orphaned_files_delete", soft_time_limit=300, time_limit=360, ignore_result=True)
def orphaned_files_delete() -> int:
    """Photo and heatmap files no row refers to (left by rolled-back transactions)."""
    return services.lesion_files_orphaned_delete()


@shared_task(
    name="inference.idempotency_records_expired_delete", soft_time_limit=120, time_limit=180, ignore_result=True
)
def idempotency_records_expired_delete() -> int:
    """Kept answers to Idempotency-Keys older than 24 hours (diagnosis/idempotency.py)."""
    from . import idempotency

    return idempotency.idempotency_records_expired_delete()


class _AnswerKeepingTask(Task):
    """A task whose result is kept (for a minute) in a store of its own, while the app keeps none."""

    @property
    def backend(self):
        return ping_backend()


@cache
def ping_backend():
    """Where ping answers go: the Redis the broker lives in, or a folder beside the filesystem broker."""
    from skinportal.celery import app

    broker = app.conf.broker_url or ""
    scheme = urlsplit(broker).scheme
    if scheme in ("redis", "rediss"):
        url = broker
    elif scheme == "filesystem":
        folder = Path(app.conf.broker_transport_options.get("data_folder_in", settings.VAR_DIR / "broker"))
        folder = folder.parent / "results"
        folder.mkdir(parents=True, exist_ok=True)
        url = f"file://{folder}"
    else:
        url = "rpc://"
    backend_cls, url = by_url(url, app.loader)
    return backend_cls(app=app, url=url, expires=60)


@shared_task(name="inference.ping", base=_AnswerKeepingTask, ignore_result=False, soft_time_limit=10, time_limit=20)
def ping() -> dict:
    """Which model this worker process serves (loading it if the start-up load failed)."""
    from inference.artifact import ArtifactError
    from inference.predictor import get_predictor

    answer = {"hostname": socket.gethostname(), "pid": os.getpid()}
    try:
        answer["model_version"] = get_predictor().model_version
    except ArtifactError as exc:
        answer.update(model_version=None, error=str(exc))
    return answer
