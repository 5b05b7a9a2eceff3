"""Celery tasks of the inference queue: thin, ids in, services in diagnosis.analysis called.

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
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import analysis, services

try:  # object storage (SKINPORTAL_S3_BUCKET): an unreachable or throttling S3 service
    from botocore.exceptions import BotoCoreError, ClientError

    STORAGE_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
except ImportError:  # pragma: no cover - botocore comes with django-storages[s3]
    STORAGE_ERRORS = ()

# Worth another try: the database or file storage hiccuped, or the task ran out of time.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, OSError, SoftTimeLimitExceeded, *STORAGE_ERRORS)


@shared_task(
    name="inference.image_analyse",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    max_retries=3,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    soft_time_limit=30,
    time_limit=60,
    ignore_result=True,
)
def image_analyse(self: Task, image_id: int) -> str:
    # A message redelivered after its worker died, or a retry of this very task, may take
    # over the claim its earlier run left behind.
    resume = bool(self.request.delivery_info and self.request.delivery_info.get("redelivered")) or bool(
        self.request.retries
    )
    return analysis.image_analyse(image_id=image_id, resume=resume)


@shared_task(name="inference.sweep", acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def sweep() -> dict[str, int]:
    return analysis.analysis_sweep()


@shared_task(
    name="inference.unreadable_cases_refer", acks_late=True, soft_time_limit=120, time_limit=180, ignore_result=True
)
def unreadable_cases_refer() -> int:
    """Cases that waited too long for a photo the model can read go to a specialist (safety_net.py)."""
    from . import safety_net

    return safety_net.cases_awaiting_photo_refer()


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
