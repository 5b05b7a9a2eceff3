"""Follow-ups: set by a "monitor" review, completed by a new case, notified once when due. Each audited."""

from __future__ import annotations

import logging

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.services import audit_record
from diagnosis.models import Case
from triage.models import Notification, Review
from triage.notifications import clinic_staff_of, notify

from .models import FollowUp

logger = logging.getLogger(__name__)


def follow_up_due_on(review: Review):
    """The date a monitored lesion is due to be photographed again (review date + N months)."""
    return (timezone.localtime(review.created_at) + relativedelta(months=review.follow_up_months)).date()


@transaction.atomic
def follow_up_from_review(*, review: Review, actor=None, request: HttpRequest | None = None) -> FollowUp | None:
    """The review in force decides the lesion's follow-up: "monitor" sets one, any other outcome none.

    An open follow-up of the lesion set by an earlier answer (a corrected review, or an
    older visit's) is replaced.
    """
    case = review.referral.case
    lesion_id = case.lesion_id
    for previous in FollowUp.objects.select_for_update().filter(lesion_id=lesion_id, status=FollowUp.Status.DUE):
        previous.status = FollowUp.Status.CANCELLED
        previous.closed_at = timezone.now()
        previous.save(update_fields=["status", "closed_at"])
        audit_record(
            actor=actor,
            action="follow_up.cancel",
            obj=previous,
            request=request,
            clinic=case.patient.clinic,
            details={"lesion": lesion_id, "replaced_by_review": review.pk, "due_on": previous.due_on.isoformat()},
        )
    if review.outcome != Review.Outcome.MONITOR or not review.follow_up_months:
        return None
    follow_up = FollowUp(lesion_id=lesion_id, review=review, due_on=follow_up_due_on(review))
    follow_up.full_clean(validate_constraints=False)
    follow_up.save()
    audit_record(
        actor=actor,
        action="follow_up.create",
        obj=follow_up,
        request=request,
        clinic=case.patient.clinic,
        details={"lesion": lesion_id, "case": case.pk, "review": review.pk, "due_on": follow_up.due_on.isoformat()},
    )
    return follow_up


@transaction.atomic
def follow_up_complete(*, case: Case, actor=None, request: HttpRequest | None = None) -> FollowUp | None:
    """A new case on a lesion completes the lesion's open follow-up (whether or not it is due yet)."""
    follow_up = (
        FollowUp.objects.select_for_update()
        .filter(lesion_id=case.lesion_id, status=FollowUp.Status.DUE)
        .exclude(review__referral__case=case)
        .first()
    )
    if follow_up is None:
        return None
    follow_up.status = FollowUp.Status.COMPLETED
    follow_up.completed_by = case
    follow_up.closed_at = timezone.now()
    follow_up.save(update_fields=["status", "completed_by", "closed_at"])
    audit_record(
        actor=actor,
        action="follow_up.complete",
        obj=follow_up,
        request=request,
        clinic=case.patient.clinic,
        details={"lesion": case.lesion_id, "case": case.pk, "due_on": follow_up.due_on.isoformat()},
    )
    return follow_up


def follow_ups_due_notify(*, today=None) -> int:
    """Tell the clinic's staff about each follow-up that has come due; each one once. Returns how many.

    Idempotent by construction: a follow-up is claimed by a conditional update of
    ``notified_at`` before its notification is written, in the same transaction, so two
    runs at once, or a task run again after a lost worker, notify once.
    """
    today = today or timezone.localdate()
    due = FollowUp.objects.filter(status=FollowUp.Status.DUE, due_on__lte=today, notified_at__isnull=True)
    sent = 0
    for follow_up_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            claimed = FollowUp.objects.filter(
                pk=follow_up_id, status=FollowUp.Status.DUE, notified_at__isnull=True
            ).update(notified_at=timezone.now())
            if not claimed:
                continue
            follow_up = FollowUp.objects.select_related("lesion__patient__clinic", "review__referral__case").get(
                pk=follow_up_id
            )
            lesion = follow_up.lesion
            clinic = lesion.patient.clinic
            latest_case = lesion.cases.order_by("-created_at", "-pk").first() or follow_up.review.referral.case
            # No patient details: the title is also the email's subject.
            notify(
                recipients=clinic_staff_of(clinic),
                kind=Notification.Kind.FOLLOW_UP_DUE,
                case=latest_case,
                params={"lesion": lesion.pk, "due_on": follow_up.due_on.isoformat()},
                url=reverse("continuity:lesion-detail", args=[lesion.pk]),
            )
            audit_record(
                actor=None,
                action="follow_up.notify",
                obj=follow_up,
                clinic=clinic,
                details={"lesion": lesion.pk, "due_on": follow_up.due_on.isoformat()},
            )
            sent += 1
    return sent
