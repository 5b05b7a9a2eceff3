"""Patient records: registration, consent, corrections. Each is audited.

Moving a patient to another clinic moves their cases too, so it is ``diagnosis.services.patient_clinic_move``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Clinic
from accounts.services import audit_record
from skinportal.text import clean_text

from .models import Patient


def can_write_for_clinic(actor, clinic_id: int, *, patient: Patient | None = None) -> bool:
    if not (actor and actor.is_authenticated and actor.is_active):
        return False
    if actor.is_administrator:
        return True
    if not actor.is_clinic_staff:
        return False
    # A patient loaded through patient_list_for(user=actor) by a clinic's staff is in one of
    # the actor's active clinics already: the selector's query proved it, no second query.
    if patient is not None and patient.clinic_id == clinic_id and getattr(patient, "in_clinic_of", None) == actor.pk:
        return True
    return actor.clinics.filter(pk=clinic_id, is_active=True).exists()


@transaction.atomic
def patient_create(
    *,
    actor,
    clinic: Clinic,
    identifier: str,
    full_name: str,
    date_of_birth,
    sex: str,
    skin_type: str = "",
    consent_given: bool,
    phone: str = "",
    village: str = "",
    request: HttpRequest | None = None,
) -> Patient:
    """Register a patient in a clinic the actor works in."""
    if not can_write_for_clinic(actor, clinic.pk):
        raise PermissionDenied(_("You cannot register patients in this clinic."))
    identifier = clean_text(identifier, field="identifier")
    full_name = clean_text(full_name, field="full_name")
    # Identifiers are compared case-insensitively within a clinic: "p-7" is "P-7".
    _identifier_check_free(clinic=clinic, identifier=identifier)
    now = timezone.now()
    patient = Patient(
        clinic=clinic,
        identifier=identifier,
        full_name=full_name,
        date_of_birth=date_of_birth,
        sex=sex,
        skin_type=skin_type or "",
        phone=clean_text(phone, field="phone"),
        village=clean_text(village, field="village"),
        consent_given=consent_given,
        consent_recorded_by=actor if consent_given else None,
        consent_recorded_at=now if consent_given else None,
        created_by=actor,
    )
    patient.full_clean()
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        # Another request registered the same number between full_clean() and save().
        raise ValidationError(
            {"identifier": DUPLICATE_IDENTIFIER},
            code="unique",
        ) from None
    audit_record(
        actor=actor,
        action="patient.create",
        obj=patient,
        request=request,
        details={"consent_given": consent_given},
    )
    return patient


@transaction.atomic
def patient_consent_record(
    *,
    actor,
    patient: Patient,
    consent_given: bool,
    request: HttpRequest | None = None,
) -> Patient:
    """Record that the patient has given, or has withdrawn, consent; audited either way.

    For staff of the patient's clinic and administrators. Who recorded it and when are
    kept with the patient; a withdrawal is recorded the same way, so no new case can be
    submitted afterwards. Cases already submitted are left as they are.
    """
    if not isinstance(consent_given, bool):
        raise ValidationError({"consent_given": _("Must be true or false.")})
    if not can_write_for_clinic(actor, patient.clinic_id):
        raise PermissionDenied(_("Only staff of the patient's clinic and administrators can record consent."))
    # Locked so that two recordings at the same time are audited in the order they happen.
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    previous = locked.consent_given
    now = timezone.now()
    locked.consent_given = consent_given
    locked.consent_recorded_by = actor
    locked.consent_recorded_at = now
    locked.updated_at = now
    locked.full_clean()
    locked.save(update_fields=["consent_given", "consent_recorded_by", "consent_recorded_at", "updated_at"])
    audit_record(
        actor=actor,
        action="patient.consent",
        obj=locked,
        request=request,
        details={"consent_given": consent_given, "previous": previous},
    )
    for field in ("consent_given", "consent_recorded_by", "consent_recorded_at", "updated_at"):
        setattr(patient, field, getattr(locked, field))
    return patient


DUPLICATE_IDENTIFIER = gettext_lazy("A patient with this number is already registered in this clinic.")


# What patient_update may change; the clinic and consent have their own ways.
PATIENT_EDITABLE_FIELDS = ("identifier", "full_name", "date_of_birth", "sex", "skin_type", "phone", "village")


def _identifier_check_free(*, clinic: Clinic, identifier: str, exclude_pk: int | None = None) -> None:
    """A duplicate number is an error on the identifier field (not the whole form)."""
    taken = Patient.objects.filter(clinic=clinic, identifier__iexact=identifier)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"identifier": ValidationError(DUPLICATE_IDENTIFIER, code="unique")})


@transaction.atomic
def patient_update(*, actor, patient: Patient, request: HttpRequest | None = None, **changes) -> Patient:
    """Correct a patient's details; audited with each changed field's old and new value.

    For staff of the patient's clinic and administrators. Only PATIENT_EDITABLE_FIELDS.
    """
    unknown = set(changes) - set(PATIENT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(
            {"__all__": _("These details cannot be changed here: %(fields)s.") % {"fields": ", ".join(sorted(unknown))}}
        )
    if not can_write_for_clinic(actor, patient.clinic_id):
        raise PermissionDenied(_("Only staff of the patient's clinic and administrators can change its details."))
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    diff: dict[str, dict[str, str]] = {}
    for field, value in changes.items():
        if field in ("identifier", "full_name", "phone", "village"):
            value = clean_text(value, field=field)
        elif isinstance(value, str):
            value = value.strip()
        if value is None:
            value = ""
        old = getattr(locked, field)
        if old != value:
            diff[field] = {"old": str(old), "new": str(value)}
            setattr(locked, field, value)
    if not diff:
        return patient
    if "identifier" in diff:
        _identifier_check_free(clinic=locked.clinic, identifier=locked.identifier, exclude_pk=locked.pk)
    locked.full_clean()
    try:
        with transaction.atomic():
            locked.save(update_fields=[*diff, "updated_at"])
    except IntegrityError:
        raise ValidationError({"identifier": ValidationError(DUPLICATE_IDENTIFIER, code="unique")}) from None
    audit_record(actor=actor, action="patient.update", obj=locked, request=request, details={"changes": diff})
    for field in [*diff, "updated_at"]:
        setattr(patient, field, getattr(locked, field))
    return patient
