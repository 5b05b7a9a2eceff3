"""The referral workflow's writes: refer, claim, release, review, ask for and give information,
acknowledge, mark notifications read. Each one is audited with its old and new values, and
every case status change goes through ``diagnosis.transitions.case_transition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record
from diagnosis.models import Case
from diagnosis.services import case_photos_add
from diagnosis.transitions import REFERABLE, case_transition

from .models import InformationRequest, Notification, Referral, Review
from .notifications import case_url, clinic_staff_of, notify, referral_url, specialists_serving
from .signals import review_submitted


class WorkflowConflict(Exception):
    """The referral is not in a state that allows this (already referred, claimed by someone else...)."""


# --- Who may do what ------------------------------------------------------------------------
def _active(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _works_in(user, clinic_id: int) -> bool:
    """Clinic staff of this clinic, or an administrator: the referring side."""
    if not _active(user):
        return False
    if user.is_administrator:
        return True
    return user.is_clinic_staff and user.clinics.filter(pk=clinic_id, is_active=True).exists()


def _serves(user, clinic_id: int) -> bool:
    """A specialist serving this clinic: the reviewing side."""
    return _active(user) and user.is_specialist and user.clinics.filter(pk=clinic_id, is_active=True).exists()


def can_refer(user, case: Case) -> bool:
    return _works_in(user, case.patient.clinic_id)


def can_review(user, referral: Referral) -> bool:
    return _serves(user, referral.clinic_id)


# --- Helpers ----------------------------------------------------------------------------------
def target_hours(urgency: str) -> float:
    if urgency == Referral.Urgency.URGENT:
        return settings.SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT
    return settings.SKINPORTAL_REFERRAL_TARGET_HOURS_ROUTINE


def _due(referred_at, urgency: str, source: str = ""):
    if source == Referral.Source.AUDIT:  # an audit is no one's emergency: its own, longer, target
        return referred_at + timedelta(days=settings.SKINPORTAL_AUDIT_DUE_DAYS)
    return referred_at + timedelta(hours=target_hours(urgency))


def _lock(referral: Referral) -> Referral:
    return Referral.objects.select_for_update().select_related("case", "clinic").get(pk=referral.pk)


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
def _referral_row_create(
    *,
    case: Case,
    source: str,
    urgency: str,
    reason: str,
    referred_by,
    request: HttpRequest | None,
    sample_rate: float | None = None,
) -> Referral:
    now = timezone.now()
    referred_at = case.referred_at or now
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                case=case,
                clinic_id=case.patient.clinic_id,
                source=source,
                urgency=urgency,
                reason=reason[:4000],
                referred_by=referred_by if _active(referred_by) else None,
                referred_at=referred_at,
                due_at=_due(referred_at, urgency, source),
                sample_rate=sample_rate if source == Referral.Source.AUDIT else None,
            )
    except IntegrityError:
        raise WorkflowConflict(_("This case is already referred.")) from None
    audit_record(
        actor=referred_by,
        action="referral.create",
        obj=referral,
        request=request,
        clinic=referral.clinic,
        details={
            "case": case.pk,
            "source": source,
            "urgency": urgency,
            "reason": reason[:500],
            **({"sample_rate": sample_rate} if source == Referral.Source.AUDIT else {}),
        },
    )
    notify(
        recipients=specialists_serving(referral.clinic),
        kind=Notification.Kind.REFERRAL_NEW,
        case=case,
        params={"case": case.pk, "clinic": referral.clinic.name, "urgency": str(urgency), "source": str(source)},
        url=referral_url(referral),
    )
    return referral


def referral_from_diagnosis(
    *, case: Case, source: str, urgency: str, reason: str, actor=None, request=None, sample_rate: float | None = None
) -> None:
    """Receiver of ``diagnosis.signals.case_referred``: the case is already referred; add its referral.

    Sources: ``model``, ``checklist``, ``unreadable`` (no photo the model could read) and
    ``audit`` (the audit sample, with the ``sample_rate`` it was drawn at).
    """
    if Referral.objects.filter(case=case).exists():
        return
    _referral_row_create(
        case=case,
        source=source,
        urgency=urgency,
        reason=reason,
        referred_by=actor,
        request=request,
        sample_rate=sample_rate,
    )


def referral_create(*, actor, case: Case, urgency: str, reason: str, request: HttpRequest | None = None) -> Referral:
    """Clinic staff refer a case themselves, whatever the model said (or if it said nothing)."""
    if not can_refer(actor, case):
        raise PermissionDenied(_("Only staff of the case's clinic can refer it."))
    if urgency not in Referral.Urgency.values:
        raise ValidationError({"urgency": _("Choose routine or urgent.")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why you are referring this case.")})
    with transaction.atomic():
        current = Case.objects.select_for_update().get(pk=case.pk)
        if current.referred_at is not None or Referral.objects.filter(case=current).exists():
            raise WorkflowConflict(_("This case is already referred."))
        if current.status not in REFERABLE:
            raise ValidationError(
                {
                    "status": _("A case that is %(status)s cannot be referred.")
                    % {"status": current.get_status_display().lower()}
                },
                code="invalid_transition",
            )
        case_transition(
            case=case,
            to_status=Case.Status.REFERRED,
            actor=actor,
            request=request,
            details={"source": Referral.Source.CLINIC, "urgency": urgency},
        )
        return _referral_row_create(
            case=case, source=Referral.Source.CLINIC, urgency=urgency, reason=reason, referred_by=actor, request=request
        )


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


# --- Claim ------------------------------------------------------------------------------------
def claim_lease() -> timedelta:
    return timedelta(minutes=settings.SKINPORTAL_REFERRAL_CLAIM_MINUTES)


def referral_claim(*, actor, referral: Referral, request: HttpRequest | None = None) -> Referral:
    """Take a referral for review: one specialist at a time, for the lease's length.

    A conditional update decides: it succeeds only on an open referral, on a claim whose
    lease ran out, or on the actor's own claim (renewed). Two specialists claiming at once:
    exactly one update changes the row; the other gets ``WorkflowConflict``.
    """
    if not can_review(actor, referral):
        raise PermissionDenied(_("Only specialists serving the referring clinic can claim this referral."))
    now = timezone.now()
    with transaction.atomic():
        claimable = (
            Q(status=Referral.Status.OPEN)
            | Q(status=Referral.Status.CLAIMED, claim_expires_at__lte=now)
            | Q(status=Referral.Status.CLAIMED, claimed_by=actor)
        )
        previous = Referral.objects.filter(pk=referral.pk).values("status", "claimed_by").first() or {}
        taken = Referral.objects.filter(claimable, pk=referral.pk).update(
            status=Referral.Status.CLAIMED,
            claimed_by=actor,
            claimed_at=now,
            claim_expires_at=now + claim_lease(),
            updated_at=now,
        )
        if taken != 1:
            holder = Referral.objects.filter(pk=referral.pk).values_list("claimed_by__username", "status").first()
            if holder and holder[1] == Referral.Status.CLAIMED:
                raise WorkflowConflict(_("%(username)s is reviewing this referral.") % {"username": holder[0]})
            raise WorkflowConflict(_("This referral is not waiting for a specialist."))
        locked = _lock(referral)
        if locked.case.status == Case.Status.REFERRED:
            case_transition(case=locked.case, to_status=Case.Status.UNDER_REVIEW, actor=actor, request=request)
        audit_record(
            actor=actor,
            action="referral.claim",
            obj=locked,
            request=request,
            details={
                "case": locked.case_id,
                "old": {"status": previous.get("status"), "claimed_by": previous.get("claimed_by")},
                "new": {"status": locked.status, "claimed_by": actor.pk},
                "expires_at": locked.claim_expires_at.isoformat(),
            },
        )
    return _copy(referral, locked)


def _claim_end(locked: Referral, *, to_status: str, **also) -> None:
    """The referral leaves the holder's hands: a new status, no holder, no lease (and ``also``)."""
    locked.status = to_status
    locked.claimed_by = None
    locked.claimed_at = None
    locked.claim_expires_at = None
    for field, value in also.items():
        setattr(locked, field, value)
    locked.save(update_fields=["status", "claimed_by", "claimed_at", "claim_expires_at", *also, "updated_at"])


def _unclaim(locked: Referral, *, actor, action: str, request: HttpRequest | None, to_status=Referral.Status.OPEN):
    holder = locked.claimed_by_id
    _claim_end(locked, to_status=to_status)
    if locked.case.status == Case.Status.UNDER_REVIEW and to_status == Referral.Status.OPEN:
        case_transition(case=locked.case, to_status=Case.Status.REFERRED, actor=actor, request=request)
    audit_record(
        actor=actor,
        action=action,
        obj=locked,
        request=request,
        details={
            "case": locked.case_id,
            "old": {"status": "claimed", "claimed_by": holder},
            "new": {"status": to_status},
        },
    )


def referral_release(*, actor, referral: Referral, request: HttpRequest | None = None) -> Referral:
    """The holder hands the referral back to the queue (its waiting time keeps running)."""
    with transaction.atomic():
        locked = _lock(referral)
        if locked.status != Referral.Status.CLAIMED or locked.claimed_by_id != getattr(actor, "pk", None):
            if not (_active(actor) and actor.is_administrator and locked.status == Referral.Status.CLAIMED):
                raise WorkflowConflict(_("You do not hold this referral."))
        _unclaim(locked, actor=actor, action="referral.release", request=request)
    return _copy(referral, locked)


def referral_claims_expire(*, now=None) -> int:
    """Return to the queue every referral whose claim lease ran out (beat, ``triage.claims_expire``)."""
    now = now or timezone.now()
    returned = 0
    for pk in Referral.objects.filter(status=Referral.Status.CLAIMED, claim_expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            locked = Referral.objects.select_for_update().select_related("case").get(pk=pk)
            if locked.status != Referral.Status.CLAIMED or locked.claim_expires_at > now:
                continue  # renewed or finished meanwhile
            _unclaim(locked, actor=None, action="referral.claim_expired", request=None)
            returned += 1
    return returned


def _hold(actor, referral: Referral) -> Referral:
    """Lock the referral and check that the actor holds its claim (an unexpired one, or one nobody took over)."""
    locked = _lock(referral)
    if not can_review(actor, locked):
        raise PermissionDenied(_("Only specialists serving the referring clinic can do this."))
    if locked.status != Referral.Status.CLAIMED or locked.claimed_by_id != actor.pk:
        raise WorkflowConflict(_("Claim this referral before answering it."))
    return locked


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
    review in force may correct it: a new review that supersedes it; both are kept.
    """
    with transaction.atomic():
        locked = _lock(referral)
        correcting = locked.status == Referral.Status.REVIEWED
        superseded = None
        if correcting:
            superseded = locked.latest_review
            if (
                superseded is None
                or superseded.reviewer_id != getattr(actor, "pk", None)
                or not can_review(actor, locked)
            ):
                raise WorkflowConflict(_("Only the specialist who answered can correct the answer."))
            if locked.case.status != Case.Status.REVIEWED:
                raise WorkflowConflict(_("The clinic has closed this case; it can no longer be corrected."))
        else:
            locked = _hold(actor, referral)
        top_class, version = model_top_class(locked.case)
        review = Review(
            referral=locked,
            reviewer=actor,
            diagnosis=diagnosis,
            diagnosis_text=(diagnosis_text or "").strip(),
            agrees_with_model=agrees_with_model,
            model_top_class=top_class,
            model_version=version,
            outcome=outcome,
            follow_up_months=follow_up_months if outcome == Review.Outcome.MONITOR else None,
            message=(message or "").strip(),
            private_note=(private_note or "").strip(),
            supersedes=superseded,
        )
        if outcome == Review.Outcome.MONITOR and not follow_up_months:
            raise ValidationError(
                {"follow_up_months": _("Say in how many months the lesion should be photographed again.")}
            )
        if not review.message:
            raise ValidationError({"message": _("Write a message to the clinic.")})
        review.full_clean()
        review.save()
        now = timezone.now()
        if not correcting:
            old_status = locked.status
            _claim_end(locked, to_status=Referral.Status.REVIEWED, reviewed_at=now)
            case_transition(case=locked.case, to_status=Case.Status.REVIEWED, actor=actor, request=request)
        audit_record(
            actor=actor,
            action="review.correct" if correcting else "review.create",
            obj=review,
            request=request,
            clinic=locked.clinic,
            details={
                "case": locked.case_id,
                "referral": locked.pk,
                "old": {"review": superseded.pk} if superseded else {"referral_status": old_status},
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
    message = (message or "").strip()
    if not message:
        raise ValidationError({"message": _("Say what information you need.")})
    with transaction.atomic():
        locked = _hold(actor, referral)
        asked = InformationRequest.objects.create(referral=locked, requested_by=actor, message=message[:4000])
        _claim_end(locked, to_status=Referral.Status.INFORMATION_REQUESTED)
        case_transition(case=locked.case, to_status=Case.Status.INFORMATION_REQUESTED, actor=actor, request=request)
        audit_record(
            actor=actor,
            action="referral.information_request",
            obj=locked,
            request=request,
            details={
                "case": locked.case_id,
                "old": {"status": "claimed"},
                "new": {"status": locked.status},
                "message": message[:1000],
            },
        )
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
    message = (message or "").strip()
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
            case_photos_add(actor=actor, case=locked.case, images=images, image_kinds=image_kinds, request=request)
            if images
            else []
        )
        asked.answer = message[:4000]
        asked.answered_by = actor
        asked.answered_at = timezone.now()
        asked.answer_image_ids = [image.pk for image in added]
        asked.save(update_fields=["answer", "answered_by", "answered_at", "answer_image_ids"])
        locked.status = Referral.Status.OPEN
        locked.save(update_fields=["status", "updated_at"])
        case_transition(case=locked.case, to_status=Case.Status.REFERRED, actor=actor, request=request)
        audit_record(
            actor=actor,
            action="referral.information_answer",
            obj=locked,
            request=request,
            details={
                "case": locked.case_id,
                "old": {"status": Referral.Status.INFORMATION_REQUESTED},
                "new": {"status": locked.status},
                "images": asked.answer_image_ids,
                "message": message[:1000],
            },
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
def case_acknowledge(*, actor, case: Case, request: HttpRequest | None = None) -> Case:
    """The clinic has read the specialist's answer and acts on it: the case closes, read-only."""
    if not can_refer(actor, case):
        raise PermissionDenied(_("Only staff of the case's clinic can acknowledge the answer."))
    with transaction.atomic():
        referral = Referral.objects.select_for_update().filter(case=case).first()
        if referral is None or referral.status != Referral.Status.REVIEWED:
            raise WorkflowConflict(_("There is no specialist's answer to acknowledge."))
        if Case.objects.get(pk=case.pk).status != Case.Status.REVIEWED:
            raise WorkflowConflict(_("This case is already closed."))
        referral.acknowledged_by = actor
        referral.acknowledged_at = timezone.now()
        referral.save(update_fields=["acknowledged_by", "acknowledged_at", "updated_at"])
        case_transition(
            case=case,
            to_status=Case.Status.CLOSED,
            actor=actor,
            request=request,
            details={"acknowledged_review": getattr(referral.latest_review, "pk", None)},
        )
    return case


def notification_mark_read(*, actor, notification: Notification) -> Notification:
    if notification.recipient_id != getattr(actor, "pk", None):
        raise PermissionDenied(_("Not your notification."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(*, actor) -> int:
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=timezone.now())
