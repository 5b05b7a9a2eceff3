"""Alerts to the administrators when the model looks worse in the field than it promised.

- **Sensitivity**: for a model version, at least ``SENSITIVITY_MIN_MALIGNANT`` malignant answers
  and the lower end of the 95% interval of its field sensitivity below ``SENSITIVITY_ALERT_BELOW``.
- **Turned back**: in a week (this one or the last), at least ``TURNED_BACK_MIN_PHOTOS`` photos
  scored by a version and more than ``TURNED_BACK_ALERT_ABOVE`` of them turned back by the gate.

Each is told once per condition: per model version and ISO week (a ``FieldAlert`` row under a
unique constraint claims it before any notification is written), in the portal and by email.
Beat sends ``notifications.field_alerts`` hourly; running it again tells nobody twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from diagnosis.models import LesionImage, Prediction
from triage.models import Notification, Referral
from triage.notifications import notify

from . import figures
from .models import FieldAlert
from .selectors import field_answers, turned_back_weeks

logger = logging.getLogger(__name__)

SENSITIVITY_ALERT_BELOW = 0.90
SENSITIVITY_MIN_MALIGNANT = 30
TURNED_BACK_ALERT_ABOVE = 0.10
TURNED_BACK_MIN_PHOTOS = 20


def iso_week(moment) -> str:
    year, week, _day = timezone.localtime(moment).isocalendar()
    return f"{year:04d}-W{week:02d}"


def administrators():
    return User.objects.filter(role=User.Role.ADMINISTRATOR, is_active=True)


def _send_once(*, kind: str, key: str, details: dict, notification_kind: str, params: dict) -> bool:
    """Claim the condition and tell the administrators; False when it was already told."""
    try:
        with transaction.atomic():
            alert = FieldAlert.objects.create(kind=kind, key=key, details=details)
            audit_record(
                actor=None, action="monitoring.alert", obj=alert, details={"kind": kind, "key": key, **details}
            )
            notify(
                recipients=administrators(),
                kind=notification_kind,
                case=None,
                params=params,
                url=reverse("monitoring:field"),
            )
    except IntegrityError:
        return False
    return True


def field_alerts_send(*, now=None) -> int:
    """Check every model version's field sensitivity and the recent weeks' turned-back share; alert once each."""
    now = now or timezone.now()
    week = iso_week(now)
    sent = 0
    every_referral = Referral.objects.select_related("case", "case__patient", "clinic").prefetch_related(
        "reviews", Prefetch("case__images", queryset=LesionImage.objects.prefetch_related("predictions"))
    )
    answers, _left_out = field_answers(every_referral)
    for version, members in figures.by_version(answers).items():
        estimate = figures.sensitivity(members)
        if estimate.answers >= SENSITIVITY_MIN_MALIGNANT and estimate.enough and estimate.low < SENSITIVITY_ALERT_BELOW:
            figures_now = {"version": version, "low": round(estimate.low, 4), "count": estimate.answers}
            sent += _send_once(
                kind=FieldAlert.Kind.SENSITIVITY_LOW,
                key=f"{version}:{week}",
                details={**figures_now, "value": round(estimate.value, 4), "week": week},
                notification_kind=Notification.Kind.FIELD_SENSITIVITY_LOW,
                params=figures_now,
            )
    recent = {iso_week(now), iso_week(now - timedelta(days=7))}
    for version, weeks in turned_back_weeks(
        Prediction.objects.filter(image__withdrawn_at__isnull=True), weeks=2, now=now
    ).items():
        for row in weeks:
            if row["iso_week"] not in recent or row["photos"] < TURNED_BACK_MIN_PHOTOS:
                continue
            if row["share"] > TURNED_BACK_ALERT_ABOVE:
                params = {
                    "version": version,
                    "week": row["iso_week"],
                    "share": round(row["share"], 4),
                    "count": row["turned_back"],
                    "photos": row["photos"],
                }
                sent += _send_once(
                    kind=FieldAlert.Kind.TURNED_BACK_HIGH,
                    key=f"{version}:{row['iso_week']}",
                    details=params,
                    notification_kind=Notification.Kind.FIELD_TURNED_BACK_HIGH,
                    params=params,
                )
    if sent:
        logger.info("field alerts sent: %s", sent)
    return sent
