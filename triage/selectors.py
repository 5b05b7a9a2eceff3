"""Reads of referrals, reviews and notifications, scoped to the user.

Specialists see the referrals of the clinics they serve (``User.clinics``); clinic staff see
their own clinics' referrals; administrators see all; anyone else sees nothing. Another
clinic's referral is a 404, as for cases.
"""

from __future__ import annotations

from django.db.models import Case as When_
from django.db.models import F, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from diagnosis.models import LesionImage
from diagnosis.selectors import case_list_for

from .models import Notification, Referral, Review
from .workflow import OPEN_STATUSES, claim_is_live, effective_status  # the lease rule lives there

__all__ = ["OPEN_STATUSES", "claim_is_live", "effective_status"]


def _can_read(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def referral_list_for(*, user) -> QuerySet[Referral]:
    if not _can_read(user):
        return Referral.objects.none()
    referrals = Referral.objects.select_related(
        "case", "case__patient", "clinic", "claimed_by", "referred_by"
    ).prefetch_related(
        Prefetch("reviews", queryset=Review.objects.select_related("reviewer")),
        "information_requests",
        Prefetch("case__images", queryset=LesionImage.objects.prefetch_related("predictions")),
    )
    if user.is_administrator:
        return referrals
    if user.is_specialist or user.is_clinic_staff:
        return referrals.filter(clinic__in=user.clinics.filter(is_active=True))
    return referrals.none()


RISK_RANK = When_(
    When(case__risk="high", then=Value(3)),
    When(case__risk="moderate", then=Value(2)),
    When(case__risk="low", then=Value(1)),
    default=Value(0),
    output_field=IntegerField(),
)


def referral_queue_for(*, user, now=None) -> QuerySet[Referral]:
    """Open referrals in the order a specialist takes them.

    Urgent first; then overdue ones, the longest overdue first; then by the model's risk;
    then the longest waiting. A claim whose lease ran out counts as open.
    """
    now = now or timezone.now()
    return (
        referral_list_for(user=user)
        .filter(status__in=OPEN_STATUSES)
        .annotate(
            urgency_rank=When_(When(urgency=Referral.Urgency.URGENT, then=Value(1)), default=Value(0)),
            overdue_rank=When_(When(due_at__lt=now, then=Value(1)), default=Value(0)),
            overdue_since=When_(When(due_at__lt=now, then=F("due_at")), default=None),
            risk_rank=RISK_RANK,
        )
        .order_by(
            "-urgency_rank",
            "-overdue_rank",
            F("overdue_since").asc(nulls_last=True),
            "-risk_rank",
            "referred_at",
            "pk",
        )
    )


def notification_list_for(*, user) -> QuerySet[Notification]:
    """The user's own notifications; one about a case only while they may still read the case
    (removed from its clinic since, or the patient moved to another clinic: gone, as the case is)."""
    if not _can_read(user):
        return Notification.objects.none()
    notifications = Notification.objects.filter(recipient=user).select_related("case")
    if user.is_administrator:
        return notifications
    readable = case_list_for(user=user).prefetch_related(None).select_related(None).values("pk")
    return notifications.filter(Q(case__isnull=True) | Q(case__in=readable))


def unread_count_for(*, user) -> int:
    return notification_list_for(user=user).filter(read_at__isnull=True).count()


def is_overdue(referral: Referral, now=None) -> bool:
    now = now or timezone.now()
    return referral.status in OPEN_STATUSES and referral.due_at < now
