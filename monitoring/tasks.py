"""Celery tasks of the field monitoring, on the ``notifications`` queue (never the inference one)."""

from __future__ import annotations

from celery import shared_task

from . import alerts


@shared_task(name="notifications.field_alerts", acks_late=True, soft_time_limit=120, time_limit=180, ignore_result=True)
def field_alerts() -> int:
    """Field sensitivity and the turned-back share against their alert levels; each alert once."""
    return alerts.field_alerts_send()
