"""Patient records, scoped to what the user may see.

A clinic's staff see its patients; administrators all; specialists none (they see a
patient's age, sex and skin type on the referred cases they answer: ``patients.disclosure``).
"""

from __future__ import annotations

from django.db.models import QuerySet, Value

from accounts.permissions import can_read

from .models import Patient


def patient_list_for(*, user) -> QuerySet[Patient]:
    """Patient records: a clinic's staff see its patients; specialists none (``patients.disclosure``):
    they see a patient's age, sex and skin type on the referred cases they answer, nothing more."""
    if not can_read(user):
        return Patient.objects.none()
    patients = Patient.objects.select_related("clinic")
    if user.is_administrator:
        return patients
    if user.is_clinic_staff:
        # in_clinic_of: the rows are in clinics this user works in, which is what submitting a
        # case for them needs (diagnosis.services), so the service does not ask again.
        return patients.filter(clinic__in=user.clinics.filter(is_active=True)).annotate(in_clinic_of=Value(user.pk))
    return patients.none()
