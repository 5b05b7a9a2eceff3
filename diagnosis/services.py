"""Clinical writes: patients, case submission and case status changes. Each is audited."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Clinic
from accounts.services import audit_record

from .models import Case, LesionImage, Patient, Prediction
from .text import NOTES_MAX_LENGTH, clean_text
from .uploads import CleanImage, image_validate, request_budget_check

logger = logging.getLogger(__name__)


def _can_write_for_clinic(actor, clinic_id: int) -> bool:
    if not (actor and actor.is_authenticated and actor.is_active):
        return False
    if actor.is_administrator:
        return True
    return actor.is_clinic_staff and actor.clinics.filter(pk=clinic_id, is_active=True).exists()


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
    request: HttpRequest | None = None,
) -> Patient:
    """Register a patient in a clinic the actor works in."""
    if not _can_write_for_clinic(actor, clinic.pk):
        raise PermissionDenied("You cannot register patients in this clinic.")
    identifier = clean_text(identifier, field="identifier")
    full_name = clean_text(full_name, field="full_name")
    # Identifiers are compared case-insensitively within a clinic: "p-7" is "P-7" (an exact
    # duplicate is full_clean()'s unique-constraint error, as before).
    same_but_case = Patient.objects.filter(clinic=clinic, identifier__iexact=identifier).exclude(identifier=identifier)
    if same_but_case.exists():
        raise ValidationError(
            {"identifier": "A patient with this number is already registered in this clinic."}, code="unique"
        )
    now = timezone.now()
    patient = Patient(
        clinic=clinic,
        identifier=identifier,
        full_name=full_name,
        date_of_birth=date_of_birth,
        sex=sex,
        skin_type=skin_type or "",
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
            {"identifier": "A patient with this number is already registered in this clinic."},
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
        raise ValidationError({"consent_given": "Must be true or false."})
    if not _can_write_for_clinic(actor, patient.clinic_id):
        raise PermissionDenied("Only staff of the patient's clinic and administrators can record consent.")
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


def _store_image_file(clean: CleanImage) -> str:
    """Write the re-encoded bytes under a fresh random name; return the storage name."""
    field = LesionImage._meta.get_field("file")
    name = field.generate_filename(None, f"upload.{clean.extension}")
    return default_storage.save(name, ContentFile(clean.content))


def _delete_files(names: Sequence[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete stored file %s", name)


def case_submit(
    *,
    actor,
    patient: Patient,
    body_site: str,
    images: Sequence[UploadedFile],
    image_kinds: Sequence[str] | None = None,
    notes: str = "",
    duration: str = Case.Duration.UNKNOWN,
    recently_changed: bool = False,
    itching: bool = False,
    bleeding: bool = False,
    abcde_asymmetry: bool = False,
    abcde_border: bool = False,
    abcde_colour: bool = False,
    abcde_diameter: bool = False,
    abcde_evolving: bool = False,
    request: HttpRequest | None = None,
) -> Case:
    """Create a case with its photos in one transaction, then queue it for analysis.

    Every photo is validated before anything is written. If any write fails, no rows and
    no files remain. Files stored inside a transaction that an outer caller later rolls
    back are left without a row; ``lesion_files_orphaned_delete`` (hourly, from beat) removes those.
    """
    from .analysis import case_analysis_enqueue  # imported here: analysis imports these services

    if not _can_write_for_clinic(actor, patient.clinic_id):
        raise PermissionDenied("You cannot submit cases for this patient.")
    if not patient.consent_given:
        raise ValidationError({"patient": "The patient's consent is not recorded; it is required to submit a case."})
    if not images:
        raise ValidationError({"images": "Attach at least one photo of the lesion."})
    if len(images) > settings.UPLOAD_MAX_FILES:
        raise ValidationError({"images": f"Attach at most {settings.UPLOAD_MAX_FILES} photos per case."})
    notes = clean_text(notes, field="notes", multiline=True)
    if len(notes) > NOTES_MAX_LENGTH:
        raise ValidationError({"notes": f"Notes are at most {NOTES_MAX_LENGTH} characters."})
    kinds = list(image_kinds or [])
    if len(kinds) > len(images):
        raise ValidationError({"image_kinds": "More image kinds than images."})
    kinds += [LesionImage.Kind.OVERVIEW] * (len(images) - len(kinds))

    # What decoding all the photos would hold, from their headers: refused before any decode.
    try:
        request_budget_check(images)
    except ValidationError as exc:
        raise ValidationError({"images": exc.messages}) from None
    cleaned: list[CleanImage] = []
    errors: list[str] = []
    for position, upload in enumerate(images, start=1):
        try:
            cleaned.append(image_validate(upload))
        except ValidationError as exc:
            label = f"Image {position} ({os.path.basename(upload.name or '')})"
            errors.extend(f"{label}: {message}" for message in exc.messages)
    if errors:
        raise ValidationError({"images": errors})

    stored: list[str] = []
    try:
        with transaction.atomic():
            case = Case(
                patient=patient,
                body_site=body_site,
                notes=notes,
                duration=duration,
                recently_changed=recently_changed,
                itching=itching,
                bleeding=bleeding,
                abcde_asymmetry=abcde_asymmetry,
                abcde_border=abcde_border,
                abcde_colour=abcde_colour,
                abcde_diameter=abcde_diameter,
                abcde_evolving=abcde_evolving,
                submitted_by=actor,
                status=Case.Status.SUBMITTED,
            )
            case.full_clean()
            case.save()
            for clean, kind in zip(cleaned, kinds, strict=True):
                name = _store_image_file(clean)
                stored.append(name)
                image = LesionImage(
                    case=case,
                    file=name,
                    kind=kind,
                    sha256=clean.sha256,
                    width=clean.width,
                    height=clean.height,
                    content_type=clean.content_type,
                    uploaded_by=actor,
                )
                image.full_clean()
                image.save()
            audit_record(
                actor=actor,
                action="case.create",
                obj=case,
                request=request,
                details={"images": len(cleaned), "body_site": body_site},
            )
            # Runs after the commit, still inside this try: robust, so a failure to queue is
            # logged (the sweeper queues the case later) instead of deleting the files of a
            # committed case.
            transaction.on_commit(lambda: case_analysis_enqueue(case_id=case.pk), robust=True)
    except BaseException:
        _delete_files(stored)
        raise
    return case


def case_transition(
    *,
    case: Case,
    to_status: str,
    actor=None,
    request: HttpRequest | None = None,
    details: dict | None = None,
) -> Case:
    """Move a case to another status if Case.TRANSITIONS allows it; audited.

    The row is locked and the change is a conditional update on the status read under the
    lock, so two concurrent transitions cannot both start from the same status.
    """
    if to_status not in Case.Status.values:
        raise ValidationError({"status": f"Unknown status {to_status!r}."})
    with transaction.atomic():
        current = Case.objects.select_for_update().only("status").get(pk=case.pk)
        from_status = current.status
        if not current.can_transition_to(to_status):
            raise ValidationError(
                {"status": f"A case cannot go from {from_status} to {to_status}."},
                code="invalid_transition",
            )
        now = timezone.now()
        changes: dict = {"status": to_status, "updated_at": now}
        if to_status == Case.Status.REFERRED:
            changes["referred_at"] = now
        # The analysis result lands as analysed or, for a high-risk case, straight as referred.
        if to_status == Case.Status.ANALYSED or (
            to_status == Case.Status.REFERRED and from_status in (Case.Status.SUBMITTED, Case.Status.ANALYSING)
        ):
            changes["analysed_at"] = now
        updated = Case.objects.filter(pk=case.pk, status=from_status).update(**changes)
        if updated != 1:
            raise ValidationError(
                {"status": "The case changed at the same time; reload it and try again."},
                code="concurrent_transition",
            )
        for field, value in changes.items():
            setattr(case, field, value)
        audit_record(
            actor=actor,
            action="case.transition",
            obj=case,
            request=request,
            details={"from": from_status, "to": to_status, **(details or {})},
        )
    return case


def lesion_files_orphaned_delete(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete stored image and heatmap files that no row refers to; return how many.

    Such files appear when a transaction that stored them is rolled back by a caller
    further out. The grace period keeps files of transactions still in flight.
    """
    referenced = set(LesionImage.objects.values_list("file", flat=True))
    referenced |= set(Prediction.objects.exclude(heatmap="").exclude(heatmap=None).values_list("heatmap", flat=True))
    cutoff = time.time() - older_than.total_seconds()
    deleted = 0
    for folder in ("lesions", "heatmaps"):
        if not default_storage.exists(folder):
            continue
        for filename in default_storage.listdir(folder)[1]:
            name = f"{folder}/{filename}"
            if name in referenced:
                continue
            if default_storage.get_modified_time(name).timestamp() > cutoff:
                continue
            default_storage.delete(name)
            deleted += 1
    return deleted
