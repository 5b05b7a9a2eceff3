"""Telling people: a notification row per recipient, and its email sent by the ``notifications`` queue."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.language import for_user
from accounts.models import Clinic, User
from diagnosis.models import Case

from .models import Notification, notification_texts

logger = logging.getLogger(__name__)

EMAIL_TASK = "notifications.email_send"  # triage.tasks.email_send, routed to the notifications queue


def specialists_serving(clinic: Clinic):
    return User.objects.filter(role=User.Role.SPECIALIST, is_active=True, clinics=clinic)


def clinic_staff_of(clinic: Clinic):
    return User.objects.filter(role=User.Role.CLINIC_STAFF, is_active=True, clinics=clinic)


def notify(*, recipients, kind: str, case: Case | None, params: dict, url: str = "") -> list[Notification]:
    """One notification per recipient, emailed after the transaction commits (never in the request).

    ``params``: the facts its sentences need (see ``triage.models.notification_texts``); each
    reader sees them in their own language. The site-language wording is stored beside them.
    """
    with translation.override(settings.LANGUAGE_CODE):
        title, body = notification_texts(kind, params)
    rows = Notification.objects.bulk_create(
        [
            Notification(recipient=user, kind=kind, case=case, title=title[:200], body=body, params=params, url=url)
            for user in recipients
        ]
    )
    ids = [row.pk for row in rows]  # PostgreSQL and SQLite both return the new rows' ids
    transaction.on_commit(lambda: _enqueue_emails(ids), robust=True)
    return rows


def _enqueue_emails(ids: list[int]) -> None:
    for notification_id in ids:
        try:
            current_app.send_task(EMAIL_TASK, args=(notification_id,), retry_policy={"max_retries": 1})
        except Exception:  # the broker is down: the portal notification stands; the email is lost
            logger.warning("could not queue the email of notification %s", notification_id, exc_info=True)
            break


def case_url(case: Case) -> str:
    return reverse("web:case-detail", args=[case.pk])


def referral_url(referral) -> str:
    return reverse("triage:referral-detail", args=[referral.pk])


def notification_email_send(*, notification_id: int) -> bool:
    """Email one notification to its recipient, once; False when there is nothing to send.

    The email says only that something happened and links to the portal: no patient
    details travel by email.
    """
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update().select_related("recipient").filter(pk=notification_id).first()
        )
        if notification is None or notification.emailed_at is not None or not notification.recipient.email:
            return False
        link = f"{settings.SKINPORTAL_PUBLIC_URL.rstrip('/')}{notification.url}" if notification.url else ""
        with for_user(notification.recipient):
            title, text = notification.texts()
            subject = gettext("Skin Portal: %(title)s") % {"title": title}
            open_it = gettext("Open it in Skin Portal: %(link)s") % {"link": link}
            body = f"{title}.\n\n{text}\n\n{open_it}\n"
        send_mail(
            subject=subject,
            message=body.replace("\n\n\n", "\n\n"),
            from_email=None,
            recipient_list=[notification.recipient.email],
        )
        Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
    return True
