"""Reads of follow-ups, scoped to the user: clinic staff see their clinics', administrators all."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import FollowUp


def follow_up_list_for(*, user) -> QuerySet[FollowUp]:
    if not (user is not None and user.is_authenticated and user.is_active):
        return FollowUp.objects.none()
    follow_ups = FollowUp.objects.select_related(
        "lesion", "lesion__patient", "lesion__patient__clinic", "review", "review__referral"
    )
    if user.is_administrator:
        return follow_ups
    if user.is_clinic_staff:
        return follow_ups.filter(lesion__patient__clinic__in=user.clinics.filter(is_active=True))
    return follow_ups.none()
