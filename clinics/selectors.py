"""The clinics a user belongs to: staff their own active clinics, administrators every active one."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Clinic


def clinic_list_for(*, user) -> QuerySet[Clinic]:
    if user is None or not user.is_authenticated or not user.is_active:
        return Clinic.objects.none()
    if user.is_administrator:
        return Clinic.objects.filter(is_active=True)
    if user.is_clinic_staff:
        return user.clinics.filter(is_active=True)
    return Clinic.objects.none()
