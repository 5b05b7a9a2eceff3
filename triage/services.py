"""The referral workflow's writes: refer, claim, release, review, ask for and give information,
acknowledge, mark notifications read. Each one is audited with its old and new values, and
every case status change goes through ``diagnosis.transitions.case_transition``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEvent
from accounts.services import audit_record
from diagnosis.models import Case
from diagnosis.services import case_photos_add
from diagnosis.transitions import REFERABLE
from skinportal.text import clean_text

from . import workflow
from .models import InformationRequest, Notification, Referral, Review
from .notifications import case_url, clinic_staff_of, notify, referral_url, specialists_serving
from .signals import review_submitted
from .workflow import WorkflowConflict, claim_lease

__all__ = ["WorkflowConflict", "claim_lease"]


# --- Who may do what ------------------------------------------------------------------------
_active = workflow._active
_works_in = workflow.works_in
_serves = workflow.serves


def can_refer(user, case: Case) -> bool:
    return _works_in(user, case.patient.clinic_id)


def can_review(user, referral: Referral) -> bool:
    return _serves(user, referral.clinic_id)


# --- Helpers ----------------------------------------------------------------------------------
def target_hours(urgency: str) -> float:
    if urgency == Referral.Urgency.URGENT:
        return settings.SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT
    return settings.SKINPORTAL_REFERRAL_TARGET_HOURS_ROUTINE


_due = workflow._due


def _lock(referral: Referral) -> Referral:
    return workflow.referral_lock(referral.pk)


def _copy(target: Referral, source: Referral) -> Referral:
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


def model_top_class(case: Case) -> tuple[str, str]:
    """The model's most likely class for the case and the model version: the photo the model is
    surest about wins. ("", "") when no photo has a result."""
    best: tuple[float, str, str] | None = None
    for image in case.images.all():
        prediction = image.current_result  # None for a photo the gate turned back: not the model's answer
        if prediction is None or not prediction.probabilities:
            continue
        p = prediction.probabilities.get(prediction.top_class, 0.0)
        if best is None or p > best[0]:
            best = (p, prediction.top_class, prediction.model_version)
    return (best[1], best[2]) if best else ("", "")


# --- Referral ---------------------------------------------------------------------------------
def referral_create(
    *,
    actor,
    case: Case,
    urgency: str,
    reason: str,
    source: str = Referral.Source.CLINIC,
    sample_rate: float | None = None,
    case_details: dict | None = None,
    request: HttpRequest | None = None,
) -> Referral:
    """Refer a case: the one way in, for the clinic (its own reason and urgency, whatever the
    model said) and for the analysis rules in ``diagnosis`` (which send ``case_referred``, whose
    receiver in ``hooks.py`` calls this with their source: ``model``, ``checklist``,
    ``unreadable``, ``audit`` with the ``sample_rate`` it was drawn at).
    """
    if urgency not in Referral.Urgency.values:
        raise ValidationError({"urgency": _("Choose routine or urgent.")})
    reason = (reason or "").strip()
    if source == Referral.Source.CLINIC:
        if not can_refer(actor, case):
            raise PermissionDenied(_("Only staff of the case's clinic can refer it."))
        reason = clean_text(reason, field="reason", multiline=True)
        if not reason:
            raise ValidationError({"reason": _("Say why you are referring this case.")})
    with transaction.atomic():
        current = Case.objects.select_for_update().get(pk=case.pk)
        if current.referred_at is not None or Referral.objects.filter(case=current).exists():
            raise WorkflowConflict(_("This case is already referred."))
        if source == Referral.Source.CLINIC and current.status not in REFERABLE:
            raise ValidationError(
                {
                    "status": _("A case that is %(status)s cannot be referred.")
                    % {"status": current.get_status_display().lower()}
                },
                code="invalid_transition",
            )
        referral = workflow.referral_open(
            case=case,
            actor=actor,
            source=source,
            urgency=urgency,
            reason=reason,
            sample_rate=sample_rate,
            request=request,
            case_details=case_details,
        )
        notify(
            recipients=specialists_serving(referral.clinic),
            kind=Notification.Kind.REFERRAL_NEW,
            case=case,
            params={"case": case.pk, "clinic": referral.clinic.name, "urgency": str(urgency), "source": str(source)},
            url=referral_url(referral),
        )
    return referral


def lowering_needs_reason(referral: Referral) -> bool:
    """Lowering this referral to routine needs a reason and a confirmation: the model flagged it
    as a suspected cancer, and routine gives the specialist three times as long to answer."""
    return referral.source == Referral.Source.MODEL and referral.urgency == Referral.Urgency.URGENT


def referral_urgency_change(
    *,
    actor,
    referral: Referral,
    urgency: str,
    reason: str = "",
    confirmed: bool = False,
    request: HttpRequest | None = None,
) -> Referral:
    """Change the urgency; the due time follows. Only the referring clinic can lower an urgent one;
    a specialist serving the clinic may raise a routine one.

    Lowering a referral the model made urgent (a suspected cancer) takes a reason and an explicit
    confirmation, both kept in the audit log.
    """
    if urgency not in Referral.Urgency.values:
        raise ValidationError({"urgency": _("Choose routine or urgent.")})
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = _lock(referral)
        old = locked.urgency
        if locked.status == Referral.Status.REVIEWED:
            raise WorkflowConflict(_("This referral has been answered."))
        lowering = old == Referral.Urgency.URGENT and urgency == Referral.Urgency.ROUTINE
        if lowering and not _works_in(actor, locked.clinic_id):
            raise PermissionDenied(_("Only the referring clinic can lower the urgency of an urgent referral."))
        if not lowering and not (_works_in(actor, locked.clinic_id) or _serves(actor, locked.clinic_id)):
            raise PermissionDenied(_("You cannot change this referral."))
        flagged = lowering and lowering_needs_reason(locked)
        if flagged:
            errors = {}
            if not reason:
                errors["reason"] = _("Say why this suspected cancer can wait: the model flagged it as urgent.")
            if not confirmed:
                errors["confirmed"] = _("Confirm that the specialist may answer later than for an urgent referral.")
            if errors:
                raise ValidationError(errors)
        if old != urgency:
            locked.urgency = urgency
            locked.due_at = _due(locked.referred_at, urgency, locked.source)
            locked.save(update_fields=["urgency", "due_at", "updated_at"])
            details = {"case": locked.case_id, "old": old, "new": urgency}
            if reason:
                details["reason"] = reason
            if flagged:
                details.update(source=locked.source, confirmed=True)
            audit_record(actor=actor, action="referral.urgency", obj=locked, request=request, details=details)
    return _copy(referral, locked)


def referral_urgency_raise_for_result(*, case: Case) -> Referral | None:
    """A new result of a case already referred as routine (by the clinic while its photos were
    analysed, by the audit sample, or before a new photo) flags a class referred urgently: the
    referral becomes urgent and its due time follows, audited as the model's doing. An answered
    referral, one already urgent, and one a person lowered from urgent are left as they are.

    Called while the worker holds the case's row: the referral is changed by one conditional
    update, without taking its lock (which others take before the case's)."""
    referral = Referral.objects.filter(case=case).first()
    if referral is None or referral.urgency == Referral.Urgency.URGENT:
        return referral
    lowered = AuditEvent.objects.filter(
        action="referral.urgency", object_type="referral", object_id=str(referral.pk), details__new="routine"
    )
    if lowered.exists():
        return referral
    due_at = _due(referral.referred_at, Referral.Urgency.URGENT, referral.source)
    changed = (
        Referral.objects.filter(pk=referral.pk, urgency=Referral.Urgency.ROUTINE)
        .exclude(status=Referral.Status.REVIEWED)
        .update(urgency=Referral.Urgency.URGENT, due_at=due_at, updated_at=timezone.now())
    )
    if changed:
        referral.urgency, referral.due_at = Referral.Urgency.URGENT, due_at
        audit_record(
            actor=None,
            action="referral.urgency",
            obj=referral,
            details={
                "case": referral.case_id,
                "old": Referral.Urgency.ROUTINE,
                "new": Referral.Urgency.URGENT,
                "by": "model",
                "reason": (case.summary or "").split(". ")[0],
            },
        )
    return referral


# --- Claim ------------------------------------------------------------------------------------
def referral_claim(*, actor, referral: Referral, request: HttpRequest | None = None) -> Referral:
    """Take a referral for review: one specialist at a time, for the lease's length.

    Open, or a claim whose lease ran out: ``claim``; the actor's own claim: ``renew``. Two
    specialists claiming at once: one wins, the other gets ``WorkflowConflict``.
    """
    if not can_review(actor, referral):
        raise PermissionDenied(_("Only specialists serving the referring clinic can claim this referral."))
    with transaction.atomic():
        current = workflow.referral_lock(referral.pk)
        step = "renew" if current.status == Referral.Status.CLAIMED and current.claimed_by_id == actor.pk else "claim"
        locked = workflow.referral_transition(referral=current, step=step, actor=actor, request=request)
    return _copy(referral, locked)


def referral_release(*, actor, referral: Referral, request: HttpRequest | None = None) -> Referral:
    """The holder (or an administrator) hands the referral back to the queue; its waiting time keeps running."""
    locked = workflow.referral_transition(referral=referral, step="release", actor=actor, request=request)
    return _copy(referral, locked)


def referral_claims_expire(*, now=None) -> int:
    """Return to the queue every referral whose claim lease ran out (beat, ``triage.claims_expire``)."""
    now = now or timezone.now()
    returned = 0
    for pk in Referral.objects.filter(workflow.lapsed_q(now)).values_list("pk", flat=True):
        try:
            workflow.referral_transition(referral=Referral(pk=pk), step="expire", actor=None, now=now)
        except WorkflowConflict:
            continue  # renewed or finished meanwhile
        returned += 1
    return returned


# --- Review -----------------------------------------------------------------------------------
def review_submit(
    *,
    actor,
    referral: Referral,
    diagnosis: str,
    agrees_with_model: bool,
    outcome: str,
    message: str,
    diagnosis_text: str = "",
    follow_up_months: int | None = None,
    private_note: str = "",
    request: HttpRequest | None = None,
) -> Review:
    """The specialist's answer: ends the claim, moves the case to reviewed, tells the clinic.

    Final once written. While the clinic has not acknowledged it, the specialist who wrote the
    review in force may correct it: a new review that supersedes it; both are kept. The same
    answer sent again by its writer is the answer in force, returned as it is. The answer's
    rules are ``workflow.review_rules_check`` (months only for monitor: refused otherwise).
    """
    diagnosis_text = clean_text(diagnosis_text, field="diagnosis_text")
    message = clean_text(message, field="message", multiline=True)
    private_note = clean_text(private_note, field="private_note", multiline=True)
    workflow.review_rules_check(
        diagnosis=diagnosis,
        diagnosis_text=diagnosis_text,
        outcome=outcome,
        follow_up_months=follow_up_months,
        message=message,
    )
    with transaction.atomic():
        current = workflow.referral_lock(referral.pk)
        correcting = current.status == Referral.Status.REVIEWED
        superseded = current.latest_review if correcting else None
        answer = {
            "diagnosis": diagnosis,
            "diagnosis_text": diagnosis_text,
            "agrees_with_model": agrees_with_model,
            "outcome": outcome,
            "follow_up_months": follow_up_months,
            "message": message,
            "private_note": private_note,
        }
        if (
            superseded is not None
            and superseded.reviewer_id == actor.pk
            and all(getattr(superseded, name) == value for name, value in answer.items())
        ):
            # The same answer sent again (a double click, a resend after a lost response): no
            # correction, no second notice to the clinic; the answer in force is the answer.
            return superseded
        top_class, version = model_top_class(current.case)
        review = Review(
            referral=current,
            reviewer=actor,
            **answer,
            model_top_class=top_class,
            model_version=version,
            supersedes=superseded,
        )
        locked = workflow.referral_transition(
            referral=current,
            step="correct" if correcting else "review",
            actor=actor,
            request=request,
            writes={} if correcting else {"reviewed_at": timezone.now()},
        )
        review.referral = locked
        review.full_clean()
        review.save()
        audit_record(
            actor=actor,
            action="review.correct" if correcting else "review.create",
            obj=review,
            request=request,
            clinic=locked.clinic,
            details={
                "case": locked.case_id,
                "referral": locked.pk,
                "old": {"review": superseded.pk} if superseded else {"referral_status": Referral.Status.CLAIMED},
                "new": {
                    "diagnosis": review.diagnosis,
                    "diagnosis_text": review.diagnosis_text,
                    "agrees_with_model": review.agrees_with_model,
                    "model_top_class": review.model_top_class,
                    "outcome": review.outcome,
                    "follow_up_months": review.follow_up_months,
                    "message": review.message[:1000],
                    "private_note": bool(review.private_note),
                },
            },
        )
        notify(
            recipients=clinic_staff_of(locked.clinic),
            kind=Notification.Kind.REVIEW,
            case=locked.case,
            params={"case": locked.case_id, "outcome": str(review.outcome), "corrected": correcting},
            url=case_url(locked.case),
        )
        review_submitted.send(sender=Review, review=review, superseded=superseded, actor=actor, request=request)
    _copy(referral, locked)
    return review


# --- Information ------------------------------------------------------------------------------
def information_request(*, actor, referral: Referral, message: str, request: HttpRequest | None = None):
    """Instead of an answer, ask the clinic for more; the referral waits for the clinic, keeping its place."""
    message = clean_text(message, field="message", multiline=True)
    if not message:
        raise ValidationError({"message": _("Say what information you need.")})
    with transaction.atomic():
        locked = workflow.referral_transition(
            referral=referral,
            step="request_information",
            actor=actor,
            request=request,
            details={"message": message[:1000]},
        )
        asked = InformationRequest.objects.create(referral=locked, requested_by=actor, message=message[:4000])
        notify(
            recipients=clinic_staff_of(locked.clinic),
            kind=Notification.Kind.INFORMATION_REQUESTED,
            case=locked.case,
            params={"case": locked.case_id},
            url=case_url(locked.case),
        )
    _copy(referral, locked)
    return asked


def information_answer(
    *,
    actor,
    case: Case,
    message: str,
    images: Sequence[UploadedFile] = (),
    image_kinds: Sequence[str] | None = None,
    request: HttpRequest | None = None,
) -> InformationRequest:
    """The clinic answers a request for information, with text and optionally more photos.

    The photos are analysed like any other; the referral returns to the queue with its
    original referral time, so it keeps its place.
    """
    if not can_refer(actor, case):
        raise PermissionDenied(_("Only staff of the case's clinic can answer."))
    message = clean_text(message, field="message", multiline=True)
    if not message and not images:
        raise ValidationError({"message": _("Write an answer or add photos.")})
    with transaction.atomic():
        referral = Referral.objects.filter(case=case).first()
        if referral is None:
            raise WorkflowConflict(_("This case has no referral."))
        locked = _lock(referral)
        if locked.status != Referral.Status.INFORMATION_REQUESTED:
            raise WorkflowConflict(_("No question from the specialist is waiting for an answer."))
        asked = locked.information_requests.filter(answered_at__isnull=True).order_by("-requested_at").first()
        added = (
            case_photos_add(
                actor=actor,
                case=locked.case,
                images=images,
                image_kinds=image_kinds,
                request=request,
                requested=True,
            )
            if images
            else []
        )
        asked.answer = message[:4000]
        asked.answered_by = actor
        asked.answered_at = timezone.now()
        asked.answer_image_ids = [image.pk for image in added]
        asked.save(update_fields=["answer", "answered_by", "answered_at", "answer_image_ids"])
        locked = workflow.referral_transition(
            referral=locked,
            step="answer_information",
            actor=actor,
            request=request,
            details={"images": asked.answer_image_ids, "message": message[:1000]},
        )
        notify(
            recipients=specialists_serving(locked.clinic),
            kind=Notification.Kind.REFERRAL_RETURNED,
            case=locked.case,
            params={"case": locked.case_id, "clinic": locked.clinic.name, "photos": len(added)},
            url=referral_url(locked),
        )
    return asked


# --- Closing ----------------------------------------------------------------------------------
def case_acknowledge(*, actor, case: Case, review_id: int, request: HttpRequest | None = None) -> Case:
    """The clinic has read the specialist's answer ``review_id`` and acts on it: the case closes,
    read-only. A correction posted since the clinic read the answer is refused (the clinic reads
    the correction first), so an answer is never closed unread."""
    if not can_refer(actor, case):
        raise PermissionDenied(_("Only staff of the case's clinic can acknowledge the answer."))
    referral = Referral.objects.filter(case=case).first()
    if referral is None:
        raise WorkflowConflict(_("There is no specialist's answer to acknowledge."))
    locked = workflow.referral_transition(
        referral=referral,
        step="acknowledge",
        actor=actor,
        request=request,
        writes={"acknowledged_by": actor, "acknowledged_at": timezone.now()},
        details={"acknowledged_review": review_id},
        expect_review=review_id,
    )
    case.status = locked.case.status
    return case


def referrals_follow_patient(*, patient, old_clinic, actor, request: HttpRequest | None = None) -> int:
    """Receiver of ``diagnosis.signals.patient_moved``: the patient's (closed) referrals follow
    them to the new clinic, so the old clinic's staff no longer read them; audited."""
    moved = 0
    for referral in Referral.objects.select_for_update().filter(case__patient=patient).exclude(clinic=patient.clinic):
        Referral.objects.filter(pk=referral.pk).update(clinic=patient.clinic, updated_at=timezone.now())
        audit_record(
            actor=actor,
            action="referral.clinic_move",
            obj=referral,
            request=request,
            clinic=patient.clinic,
            details={"case": referral.case_id, "old": {"clinic": old_clinic.pk}, "new": {"clinic": patient.clinic_id}},
        )
        moved += 1
    return moved


def notification_mark_read(*, actor, notification: Notification) -> Notification:
    if notification.recipient_id != getattr(actor, "pk", None):
        raise PermissionDenied(_("Not your notification."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(*, actor) -> int:
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=timezone.now())
