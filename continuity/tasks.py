"""Celery tasks of continuity of care, on the ``notifications`` queue."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(
    name="notifications.follow_ups_due", acks_late=True, soft_time_limit=120, time_limit=180, ignore_result=True
)
def follow_ups_due() -> int:
    """Daily: the clinic's staff hear of each follow-up that came due, once."""
    return services.follow_ups_due_notify()
