"""Clinical writes: case submission, photos, a patient moving clinic, closing a case. Each is audited.

A patient's own record (registration, consent, corrections) is ``patients.services``."""

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
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Clinic
from accounts.permissions import can_submit_clinical_records
from accounts.services import audit_record
from patients.models import Patient
from patients.services import DUPLICATE_IDENTIFIER, can_write_for_clinic
from photos.uploads import CleanImage, image_validate, request_budget_check
from skinportal.text import NOTES_MAX_LENGTH, clean_text
from skinportal.unavailable import STORAGE_ERRORS, StorageUnavailable

from . import dispatch
from .models import Case, Lesion, LesionImage, Prediction
from .selectors import case_list_for
from .signals import case_refer, case_submitted, patient_moved
from .summary import stored_checklist_reason
from .transitions import IN_SPECIALIST_HANDS, case_transition, photos_accepted
from .vocabulary import SIGN_FIELDS

logger = logging.getLogger(__name__)


def _store_image_file(clean: CleanImage) -> str:
    """Write the re-encoded bytes under a fresh random name; return the storage name."""
    field = LesionImage._meta.get_field("file")
    name = field.generate_filename(None, f"upload.{clean.extension}")
    return default_storage.save(name, ContentFile(clean.content))


def submitted_files_discard(case: Case) -> None:
    """Delete the photo files of a case just written by case_submit whose transaction the caller
    is rolling back (the rows go with it, the files would not): the rows in hand, no query.
    Without them the hourly lesion_files_orphaned_delete removes the files."""
    cache = getattr(case, "_prefetched_objects_cache", {}).get("images")
    if cache is not None:
        _delete_files([image.file.name for image in cache])


def _delete_files(names: Sequence[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete stored file %s", name)


def _photos_validate(images: Sequence[UploadedFile], image_kinds: Sequence[str] | None) -> list[tuple[CleanImage, str]]:
    """Decode and clean every photo before anything is written; all the reasons at once."""
    if not images:
        raise ValidationError({"images": _("Attach at least one photo of the lesion.")})
    if len(images) > settings.UPLOAD_MAX_FILES:
        raise ValidationError(
            {
                "images": ngettext(
                    "Attach at most %(count)s photo per case.",
                    "Attach at most %(count)s photos per case.",
                    settings.UPLOAD_MAX_FILES,
                )
                % {"count": settings.UPLOAD_MAX_FILES}
            }
        )
    kinds = list(image_kinds or [])
    if len(kinds) > len(images):
        raise ValidationError({"image_kinds": _("More image kinds than images.")})
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
    return list(zip(cleaned, kinds, strict=True))


def _photos_store(*, case: Case, photos: list[tuple[CleanImage, str]], actor, stored: list[str]) -> list[LesionImage]:
    """Write the photos' files and rows (one INSERT for all of them); every stored file name
    goes into ``stored`` for clean-up. A storage that refuses a write (full, unreachable) raises
    StorageUnavailable: the request is answered 503 with Retry-After."""
    rows = []
    now = timezone.now()
    for clean, kind in photos:
        try:
            name = _store_image_file(clean)
        except STORAGE_ERRORS as exc:
            raise StorageUnavailable(f"storing photo {len(stored) + 1} of {len(photos)}: {exc}") from exc
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
            # "Last sent to the queue" for the sweeper: the message goes out on commit, so the
            # row is written with it and the enqueue needs no UPDATE afterwards.
            analysis_updated_at=now,
        )
        # The case and the uploader are the objects in hand: no query to prove they exist. A new
        # photo is never withdrawn, so the withdrawal constraint (a query per photo to check it
        # here) is left to the database.
        image.full_clean(exclude=["case", "uploaded_by"], validate_constraints=False)
        rows.append(image)
    rows = LesionImage.objects.bulk_create(rows)
    for image in rows:
        related_rows_known(image, "predictions", [])  # a new photo has no prediction yet
    return rows


def related_rows_known(instance, name: str, rows: list) -> None:
    """Tell the ORM which rows ``instance.<name>`` holds, as prefetch_related would, so that
    reading them (a serializer, a template) costs no query: for rows this request just wrote."""
    queryset = getattr(instance, name).get_queryset()
    queryset._result_cache = list(rows)
    queryset._prefetch_done = True
    if not hasattr(instance, "_prefetched_objects_cache"):
        instance._prefetched_objects_cache = {}
    instance._prefetched_objects_cache[name] = queryset  # a reverse foreign key's cache is its accessor name


def _queue_after_commit(case_id: int, image_ids: Sequence[int] | None = None) -> None:
    # Runs after the commit: robust, so a failure to queue is logged (the sweeper queues the
    # case later) instead of deleting the files of a committed case. With the new photos'
    # ids in hand (written with their "sent" time), the enqueue neither reads nor updates them.
    ids = list(image_ids) if image_ids is not None else None

    def send() -> None:
        with dispatch.photos_just_written(case_id=case_id, image_ids=ids):
            dispatch.case_analysis_enqueue(case_id=case_id)

    transaction.on_commit(send, robust=True)


def case_submit(
    *,
    actor,
    patient: Patient,
    body_site: str,
    images: Sequence[UploadedFile],
    image_kinds: Sequence[str] | None = None,
    notes: str = "",
    duration: str = Case.Duration.UNKNOWN,
    diameter_mm: int | None = None,
    lesion: Lesion | None = None,
    lesion_label: str = "",
    request: HttpRequest | None = None,
    **signs: bool,
) -> Case:
    """Create a case with its photos in one transaction, then queue it for analysis.

    Every photo is validated before anything is written. If any write fails, no rows and
    no files remain. Files stored inside a transaction that an outer caller later rolls
    back are left without a row; ``lesion_files_orphaned_delete`` (hourly, from beat) removes those.
    A case whose weighted 7-point checklist scores ``Case.CHECKLIST_REFERRAL_SCORE`` or more is
    referred at once as urgent, whatever the model will say.
    ``lesion`` continues one of the patient's lesions; without it the case starts a new lesion
    (named ``lesion_label``). ``signs`` are the history and signs ticked, by the names of
    ``vocabulary.CASE_SIGNS``, true when ticked.
    """
    unknown = set(signs) - set(SIGN_FIELDS)
    if unknown:
        raise TypeError(f"case_submit() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    if not can_write_for_clinic(actor, patient.clinic_id, patient=patient):
        raise PermissionDenied(_("You cannot submit cases for this patient."))
    if not patient.consent_given:
        raise ValidationError({"patient": _("The patient's consent is not recorded; it is required to submit a case.")})
    notes = clean_text(notes, field="notes", multiline=True)
    if len(notes) > NOTES_MAX_LENGTH:
        raise ValidationError({"notes": _("Notes are at most %(count)s characters.") % {"count": NOTES_MAX_LENGTH}})
    if lesion is not None and lesion.patient_id != patient.pk:
        raise ValidationError({"lesion": _("This lesion belongs to another patient.")})
    photos = _photos_validate(images, image_kinds)

    stored: list[str] = []
    try:
        with transaction.atomic():
            if lesion is None:
                lesion = Lesion(
                    patient=patient,
                    body_site=body_site,
                    label=clean_text(lesion_label, field="lesion_label"),
                    created_by=actor,
                )
                lesion.full_clean(exclude=["patient", "created_by"])
                lesion.save()
                new_lesion = True
            else:
                new_lesion = False
            case = Case(
                patient=patient,
                lesion=lesion,
                body_site=body_site,
                notes=notes,
                duration=duration,
                diameter_mm=diameter_mm,
                **{field: bool(signs.get(field, False)) for field in SIGN_FIELDS},
                submitted_by=actor,
                status=Case.Status.SUBMITTED,
            )
            # The patient, lesion and submitter are the objects in hand: no query to prove they exist.
            case.full_clean(exclude=["patient", "lesion", "submitted_by"])
            case.save()
            rows = _photos_store(case=case, photos=photos, actor=actor, stored=stored)
            # The response is built from what was just written (diagnosis.apis), not read back.
            related_rows_known(case, "images", rows)
            audit_record(
                actor=actor,
                action="case.create",
                obj=case,
                request=request,
                details={
                    "images": len(photos),
                    "body_site": body_site,
                    "checklist_score": case.checklist_score,
                    "lesion": lesion.pk,
                },
            )
            case_submitted.send(sender=Case, case=case, actor=actor, new_lesion=new_lesion)
            if case.checklist_score >= Case.CHECKLIST_REFERRAL_SCORE:
                case_refer(
                    case,
                    source="checklist",
                    urgency="urgent",
                    reason=stored_checklist_reason(case),
                    actor=actor,
                    request=request,
                    details={"checklist_score": case.checklist_score},
                )
            _queue_after_commit(case.pk, [row.pk for row in rows])
    except BaseException:
        _delete_files(stored)
        raise
    return case


def case_photos_add(
    *,
    actor,
    case: Case,
    images: Sequence[UploadedFile],
    image_kinds: Sequence[str] | None = None,
    request: HttpRequest | None = None,
    requested: bool = False,
) -> list[LesionImage]:
    """Add photos to a case (a retake, another view, or photos a specialist asked for:
    ``requested``); they are analysed as usual.

    Whether the case takes photos is ``transitions.photos_accepted``, checked on the case row
    locked inside the transaction, after the photos are decoded: a photo posted while the
    specialist sends the answer is refused, never stored after the answer. A case with its own
    result goes back to analysis; a case a specialist asked about keeps its status (its risk and
    summary are brought up to date when the new photos are scored).
    """
    if not can_write_for_clinic(actor, case.patient.clinic_id, patient=case.patient):
        raise PermissionDenied(_("You cannot add photos to this case."))
    photos = _photos_validate(images, image_kinds)
    stored: list[str] = []
    try:
        with transaction.atomic():
            locked = Case.objects.select_for_update().get(pk=case.pk)
            if not photos_accepted(locked.status, requested=requested):
                if locked.status in (Case.Status.REVIEWED, Case.Status.CLOSED):
                    message = _("This case has been answered; start a new case for new photos.")
                elif locked.status in IN_SPECIALIST_HANDS:
                    message = _("A specialist has this case: send photos when the specialist asks for them.")
                else:
                    message = _("Wait for the analysis of the photos already sent.")
                raise ValidationError({"images": message}, code="photos_not_accepted")
            case.status = locked.status
            rows = _photos_store(case=case, photos=photos, actor=actor, stored=stored)
            if case.status in (Case.Status.ANALYSED, Case.Status.FAILED):
                case_transition(case=case, to_status=Case.Status.ANALYSING, actor=actor, request=request)
            audit_record(
                actor=actor,
                action="case.photos_add",
                obj=case,
                request=request,
                details={"images": [row.pk for row in rows], "status": case.status},
            )
            _queue_after_commit(case.pk)
    except BaseException:
        _delete_files(stored)
        raise
    return rows


def lesion_files_orphaned_delete(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete stored image and heatmap files that no row refers to; return how many.

    Such files appear when a transaction that stored them is rolled back by a caller
    further out. The grace period keeps files of transactions still in flight.
    """
    referenced = set(LesionImage.all_objects.values_list("file", flat=True))  # withdrawn photos are kept
    referenced |= set(Prediction.objects.exclude(heatmap="").exclude(heatmap=None).values_list("heatmap", flat=True))
    cutoff = time.time() - older_than.total_seconds()
    deleted = 0
    for folder in ("lesions", "heatmaps"):
        try:  # a folder, or a key prefix in the bucket (which "exists" only through its keys)
            filenames = default_storage.listdir(folder)[1]
        except FileNotFoundError:
            continue
        for filename in filenames:
            name = f"{folder}/{filename}"
            if name in referenced:
                continue
            if default_storage.get_modified_time(name).timestamp() > cutoff:
                continue
            default_storage.delete(name)
            deleted += 1
    return deleted


# A case that a specialist has and the clinic has not closed yet: its patient stays in its clinic.
WITH_A_SPECIALIST = frozenset(IN_SPECIALIST_HANDS - {Case.Status.CLOSED})


@transaction.atomic
def patient_clinic_move(*, actor, patient: Patient, clinic: Clinic, request: HttpRequest | None = None) -> Patient:
    """Move a patient (with their lesions and cases) to another clinic; administrators only.

    Refused while one of the patient's cases is with a specialist (referred, under review,
    waiting for the clinic's answer, or answered and not yet acknowledged): the referral, its
    messages and its notifications belong to the clinic that is handling it, and a specialist
    serving only that clinic is answering it. Once those cases are closed the patient can move;
    the apps built on diagnosis move what they keep per clinic (``signals.patient_moved``:
    triage moves the closed referrals and tells both clinics), in the same transaction.
    """
    if not (actor and actor.is_authenticated and actor.is_active and actor.is_administrator):
        raise PermissionDenied(_("Only administrators can move a patient to another clinic."))
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    old_clinic = locked.clinic
    if old_clinic.pk == clinic.pk:
        return patient
    if not clinic.is_active:
        raise ValidationError({"clinic": _("This clinic is not active.")})
    busy = list(
        Case.objects.select_for_update()
        .filter(patient=locked, status__in=WITH_A_SPECIALIST)
        .values_list("pk", flat=True)
    )
    if busy:
        raise ValidationError(
            {
                "clinic": _(
                    "A specialist is handling case %(cases)s of this patient: move the patient once "
                    "the clinic has acknowledged the answer."
                )
                % {"cases": ", ".join(str(pk) for pk in busy)}
            },
            code="patient_with_specialist",
        )
    if Patient.objects.filter(clinic=clinic, identifier__iexact=locked.identifier).exists():
        raise ValidationError({"identifier": ValidationError(DUPLICATE_IDENTIFIER, code="unique")})
    locked.clinic = clinic
    locked.save(update_fields=["clinic", "updated_at"])
    audit_record(
        actor=actor,
        action="patient.clinic_move",
        obj=locked,
        request=request,
        clinic=clinic,
        details={"old": {"clinic": old_clinic.pk}, "new": {"clinic": clinic.pk}},
    )
    patient_moved.send(sender=Patient, patient=locked, old_clinic=old_clinic, actor=actor, request=request)
    patient.clinic = clinic
    return patient


# The clinic closes a case no photo of which the model could read (analysis/safety_net.py
# refers it otherwise).
CLOSE_REASON_MAX_LENGTH = 1000


def case_awaiting_photo_close(*, actor, case: Case, reason: str, request: HttpRequest | None = None) -> Case:
    """Clinic staff close a case that waits for a usable photo, with a reason; it is then not referred.

    For staff of the case's clinic and administrators; the case must be waiting for a new photo
    (every photo turned back, no result). Audited with the reason.
    """
    if not can_submit_clinical_records(actor) or not case_list_for(user=actor).filter(pk=case.pk).exists():
        raise PermissionDenied(_("Only staff of the case's clinic can close it."))
    reason = clean_text(reason, field="reason", multiline=True)  # refuses NUL, direction and zero-width characters
    if not reason:
        raise ValidationError({"reason": _("Say why the case is closed without a result.")})
    if len(reason) > CLOSE_REASON_MAX_LENGTH:
        raise ValidationError(
            {"reason": _("At most %(count)s characters.") % {"count": CLOSE_REASON_MAX_LENGTH}}, code="max_length"
        )
    with transaction.atomic():
        current = Case.objects.select_for_update().get(pk=case.pk)
        if not current.awaiting_photo:
            raise ValidationError(
                {"status": _("Only a case waiting for a new photo can be closed without a result.")},
                code="invalid_transition",
            )
        case_transition(
            case=case,
            to_status=Case.Status.CLOSED,
            actor=actor,
            request=request,
            details={"without_result": True},
        )
        Case.objects.filter(pk=case.pk).update(closed_reason=reason)
        case.closed_reason = reason
        audit_record(
            actor=actor,
            action="case.close_without_result",
            obj=case,
            request=request,
            details={"reason": reason, "awaiting_photo_since": current.awaiting_photo_since.isoformat()},
        )
    return case
