"""Sending analysis work to the worker, by task name.

Services call these after their transaction commits; nothing here imports the tasks module
(which imports the services), and a broker fault is logged, never raised: the photo stays
queued and the sweeper (``analysis.services.analysis_sweep``) sends it later.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar

from celery import current_app
from django.utils import timezone

from .models import LesionImage

logger = logging.getLogger(__name__)

IMAGE_ANALYSE_TASK = "inference.image_analyse"  # analysis.tasks.image_analyse; routed to the inference queue
# A request that submits a case must not hang on a dead broker: one quick retry, then the sweeper.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def image_analysis_enqueue(*, image_ids: list[int], mark_sent: bool = True) -> int:
    """Send one message per photo; return how many were sent. Never raises for a broker fault.

    ``mark_sent``: record the time sent for the sweeper; photos written just now with that
    time (``case_submit``) need no second write.
    """
    sent: list[int] = []
    for image_id in image_ids:
        try:
            current_app.send_task(IMAGE_ANALYSE_TASK, args=(image_id,), retry_policy=PUBLISH_RETRY)
        except Exception:  # any broker or network fault: the photo stays queued for the sweeper
            logger.warning("could not queue image %s for analysis; the sweeper will send it", image_id, exc_info=True)
            break  # the broker is down for the others too
        sent.append(image_id)
    if sent and mark_sent:
        # "Last sent" for the sweeper, so it re-sends a photo at most once per requeue period.
        LesionImage.objects.filter(pk__in=sent, analysis_status=LesionImage.AnalysisStatus.QUEUED).update(
            analysis_updated_at=timezone.now()
        )
    return len(sent)


# case id -> ids of the photos the request has just written (with their "sent" time), while
# its on-commit enqueue runs: case_analysis_enqueue sends those without reading them back.
_just_written: ContextVar[dict[int, list[int]] | None] = ContextVar("photos_just_written", default=None)


@contextmanager
def photos_just_written(*, case_id: int, image_ids: list[int] | None):
    if image_ids is None:
        yield
        return
    token = _just_written.set({**(_just_written.get() or {}), case_id: image_ids})
    try:
        yield
    finally:
        _just_written.reset(token)


def case_analysis_enqueue(*, case_id: int) -> None:
    """Queue every queued photo of a case. Runs on commit of a request: it logs, never raises."""
    try:
        written = (_just_written.get() or {}).get(case_id)
        if written is not None:
            image_analysis_enqueue(image_ids=written, mark_sent=False)
            return
        image_ids = list(
            LesionImage.objects.filter(case_id=case_id, analysis_status=LesionImage.AnalysisStatus.QUEUED).values_list(
                "pk", flat=True
            )
        )
        image_analysis_enqueue(image_ids=image_ids)
    except Exception:  # the case is saved; the sweeper queues it later
        logger.exception("could not queue case %s for analysis; the sweeper will retry", case_id)
