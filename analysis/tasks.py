"""Celery tasks of the inference queue that score photos: thin, ids in, services in
analysis/services.py called.

Every task here is named ``inference.*`` and routed to the ``inference`` queue
(skinportal/celery.py); the names, not this module, are what the messages carry.
"""

from __future__ import annotations

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from skinportal.unavailable import STORAGE_ERRORS

from . import safety_net, services

# Worth another try: the database or file storage hiccuped (a full disk, an unreachable or
# throttling S3 service), or the task ran out of time.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, SoftTimeLimitExceeded, *STORAGE_ERRORS)


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
    return services.image_analyse(image_id=image_id, resume=resume)


@shared_task(name="inference.sweep", acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def sweep() -> dict[str, int]:
    return services.analysis_sweep()


@shared_task(
    name="inference.unreadable_cases_refer", acks_late=True, soft_time_limit=120, time_limit=180, ignore_result=True
)
def unreadable_cases_refer() -> int:
    """Cases that waited too long for a photo the model can read go to a specialist (safety_net.py)."""
    return safety_net.cases_awaiting_photo_refer()
