"""Celery tasks of the accounts app (notifications queue: light housekeeping)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="notifications.tokens_expired_delete", soft_time_limit=120, time_limit=180, ignore_result=True)
def tokens_expired_delete() -> int:
    """Expired API tokens (accounts/authentication.py checks only the token presented)."""
    from .authentication import tokens_expired_delete as delete

    return delete()
