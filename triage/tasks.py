"""Celery tasks of the referral workflow, on the ``notifications`` queue (never the inference one)."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import notifications, services


@shared_task(
    name="notifications.email_send",
    acks_late=True,
    autoretry_for=(SMTPException, OSError, OperationalError, InterfaceError),
    max_retries=5,
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    soft_time_limit=30,
    time_limit=60,
    ignore_result=True,
)
def email_send(notification_id: int) -> bool:
    return notifications.notification_email_send(notification_id=notification_id)


@shared_task(name="triage.claims_expire", acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def claims_expire() -> int:
    """Referrals whose claim lease ran out go back to the queue."""
    return services.referral_claims_expire()
