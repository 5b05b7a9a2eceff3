"""The referral's state machine: its states, the steps between them, who may take each step and
what it writes. Every change of a referral's status goes through ``referral_transition``, under
a row lock, with its audit event and the case's status in the same transaction.

The services in ``triage/services.py`` (web pages, API, admin, commands and tasks all call them)
add what a step carries (a review, a question, an answer, notifications) around that one call.

States, as the machine reads them (``machine_state``): the stored ``Referral.status``, with two
refinements that depend on time or on a second field:

- ``lapsed``: claimed, but the claim's lease ran out. Readers see it as open at once
  (``effective_status``); beat's ``referral_claims_expire`` tidies it up with ``expire``.
- ``acknowledged``: answered, and the clinic has read the answer (the case is closed).

::

    (new) ──refer──▶ open ──claim──▶ claimed ──review──▶ reviewed ──acknowledge──▶ acknowledged
                      ▲  ▲             │ │ ▲ renew         │ ▲ correct
                      │  └─release────┘ │ └──              └─┘
                      │    expire (lapsed)
                      └─answer_information── information_requested ◀──request_information─┘

The case's status follows the referral (``Step.case_status``): ``case_transition`` is called by
this module only, for every step that moves it. What the case page shows while a lease has run
out is derived from the referral (``case_status_shown``), so case and referral never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.services import audit_record
from diagnosis.models import Case
from diagnosis.transitions import IN_SPECIALIST_HANDS, case_transition

from .models import Referral, Review

Status = Referral.Status
CaseStatus = Case.Status

NEW = "new"  # no referral yet
LAPSED = "lapsed"  # claimed, lease run out: open to every reader
ACKNOWLEDGED = "acknowledged"  # answered and read by the clinic

# Who may take a step.
CLINIC = "clinic"  # staff of the referring clinic, or an administrator
SPECIALIST = "specialist"  # a specialist serving the referring clinic
HOLDER = "holder"  # the specialist who holds the claim (and still serves the clinic)
REVIEWER = "reviewer"  # the specialist who wrote the answer in force
ADMINISTRATOR = "administrator"
SYSTEM = "system"  # the analysis rules (model, checklist, unreadable, audit sample) or beat


class WorkflowConflict(Exception):
    """The referral is not in a state that allows this (already referred, claimed by someone else...)."""


@dataclass(frozen=True)
class Step:
    name: str
    source: frozenset[str]
    target: str
    who: frozenset[str]
    case_status: str | None  # the case's status after the step; None: unchanged
    action: str  # the audit event's action
    refused: Promise  # the conflict's message when the referral is not in a source state


def _step(name, source, target, who, case_status, action, refused) -> Step:
    return Step(name, frozenset(source), target, frozenset(who), case_status, action, refused)


# The table. Read one line as: from these states, these people may take this step; the referral
# becomes ``target``, the case ``case_status``, and the audit event is ``action``.
STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        _step("refer", {NEW}, Status.OPEN, {CLINIC, SYSTEM}, CaseStatus.REFERRED, "referral.create",
              gettext_lazy("This case is already referred.")),
        _step("claim", {Status.OPEN, LAPSED}, Status.CLAIMED, {SPECIALIST}, CaseStatus.UNDER_REVIEW, "referral.claim",
              gettext_lazy("This referral is not waiting for a specialist.")),
        _step("renew", {Status.CLAIMED, LAPSED}, Status.CLAIMED, {HOLDER}, CaseStatus.UNDER_REVIEW, "referral.claim",
              gettext_lazy("This referral is not waiting for a specialist.")),
        _step("release", {Status.CLAIMED, LAPSED}, Status.OPEN, {HOLDER, ADMINISTRATOR}, CaseStatus.REFERRED,
              "referral.release", gettext_lazy("You do not hold this referral.")),
        _step("expire", {LAPSED}, Status.OPEN, {SYSTEM}, CaseStatus.REFERRED, "referral.claim_expired",
              gettext_lazy("This claim has not run out.")),
        _step("request_information", {Status.CLAIMED, LAPSED}, Status.INFORMATION_REQUESTED, {HOLDER},
              CaseStatus.INFORMATION_REQUESTED, "referral.information_request",
              gettext_lazy("Claim this referral before answering it.")),
        _step("answer_information", {Status.INFORMATION_REQUESTED}, Status.OPEN, {CLINIC}, CaseStatus.REFERRED,
              "referral.information_answer", gettext_lazy("No question from the specialist is waiting for an answer.")),
        _step("review", {Status.CLAIMED, LAPSED}, Status.REVIEWED, {HOLDER}, CaseStatus.REVIEWED, "review.create",
              gettext_lazy("Claim this referral before answering it.")),
        _step("correct", {Status.REVIEWED}, Status.REVIEWED, {REVIEWER}, None, "review.correct",
              gettext_lazy("The clinic has closed this case; it can no longer be corrected.")),
        _step("acknowledge", {Status.REVIEWED}, Status.REVIEWED, {CLINIC}, CaseStatus.CLOSED, "referral.acknowledge",
              gettext_lazy("There is no specialist's answer to acknowledge.")),
    )
}  # fmt: skip

# Referrals still waiting for someone (the queue, the overdue count).
OPEN_STATUSES = (Status.OPEN, Status.CLAIMED, Status.INFORMATION_REQUESTED)


# --- The lease: "a claim whose lease ran out is open again", stated once ----------------------
def claim_lease() -> timedelta:
    return timedelta(minutes=settings.SKINPORTAL_REFERRAL_CLAIM_MINUTES)


def claim_is_live(referral: Referral, now=None) -> bool:
    now = now or timezone.now()
    return (
        referral.status == Status.CLAIMED and referral.claim_expires_at is not None and referral.claim_expires_at > now
    )


def live_claim_q(now=None) -> Q:
    """Referrals held by a specialist right now (a filter)."""
    return Q(status=Status.CLAIMED, claim_expires_at__gt=now or timezone.now())


def lapsed_q(now=None) -> Q:
    """Claims whose lease ran out (beat's ``expire`` step returns them to the queue)."""
    return Q(status=Status.CLAIMED, claim_expires_at__lte=now or timezone.now())


def open_q(now=None) -> Q:
    """Referrals any serving specialist may claim right now: open, or a claim whose lease ran out."""
    return Q(status=Status.OPEN) | lapsed_q(now)


def machine_state(referral: Referral | None, now=None) -> str:
    if referral is None:
        return NEW
    if referral.status == Status.CLAIMED and not claim_is_live(referral, now):
        return LAPSED
    if referral.status == Status.REVIEWED and referral.acknowledged_at is not None:
        return ACKNOWLEDGED
    return referral.status


def effective_status(referral: Referral, now=None) -> str:
    """The status a reader should see: a claim whose lease ran out is open again."""
    state = machine_state(referral, now)
    if state == LAPSED:
        return Status.OPEN
    if state == ACKNOWLEDGED:
        return Status.REVIEWED
    return state


# The case's status for each state of its referral: what the case page and the API show.
CASE_STATUS_OF = {
    Status.OPEN: CaseStatus.REFERRED,
    LAPSED: CaseStatus.REFERRED,
    Status.CLAIMED: CaseStatus.UNDER_REVIEW,
    Status.INFORMATION_REQUESTED: CaseStatus.INFORMATION_REQUESTED,
    Status.REVIEWED: CaseStatus.REVIEWED,
    ACKNOWLEDGED: CaseStatus.CLOSED,
}


def case_status_shown(case: Case, now=None) -> str | None:
    """The status a referred case reads as, derived from its referral (None: the case has none)."""
    if case.status not in IN_SPECIALIST_HANDS:
        return None
    try:
        referral = case.referral
    except Referral.DoesNotExist:
        return None
    if case.status == CaseStatus.CLOSED:
        return CaseStatus.CLOSED
    return CASE_STATUS_OF.get(machine_state(referral, now))


# --- Who may take a step --------------------------------------------------------------------
def _active(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def works_in(user, clinic_id: int) -> bool:
    """Clinic staff of this clinic, or an administrator: the referring side."""
    if not _active(user):
        return False
    if user.is_administrator:
        return True
    return user.is_clinic_staff and user.clinics.filter(pk=clinic_id, is_active=True).exists()


def serves(user, clinic_id: int) -> bool:
    """A specialist serving this clinic: the reviewing side."""
    return _active(user) and user.is_specialist and user.clinics.filter(pk=clinic_id, is_active=True).exists()


def _may(who: str, actor, referral: Referral | None, *, clinic_id: int, source: str) -> bool:
    if who == CLINIC:
        return works_in(actor, clinic_id)
    if who == SPECIALIST:
        return serves(actor, clinic_id)
    if who == HOLDER:
        return serves(actor, clinic_id) and referral is not None and referral.claimed_by_id == actor.pk
    if who == REVIEWER:
        latest = referral.latest_review if referral is not None else None
        return serves(actor, clinic_id) and latest is not None and latest.reviewer_id == actor.pk
    if who == ADMINISTRATOR:
        return _active(actor) and actor.is_administrator
    if who == SYSTEM:
        if referral is None:  # the analysis rules refer on their own account (a checklist names its nurse)
            return source != Referral.Source.CLINIC
        return actor is None  # beat
    return False


def _check_who(step: Step, actor, referral: Referral | None, *, clinic_id: int, source: str = "") -> None:
    if any(_may(who, actor, referral, clinic_id=clinic_id, source=source) for who in step.who):
        return
    if step.who & {HOLDER, REVIEWER} and serves(actor, clinic_id):
        # A serving specialist who does not hold it: the referral's state, not the person, says no.
        if step.name == "correct":
            raise WorkflowConflict(_("Only the specialist who answered can correct the answer."))
        raise WorkflowConflict(str(step.refused))
    if step.who & {SPECIALIST, HOLDER, REVIEWER}:
        raise PermissionDenied(_("Only specialists serving the referring clinic can do this."))
    raise PermissionDenied(_("Only staff of the case's clinic can do this."))


# --- The one door -----------------------------------------------------------------------------
def _due(referred_at, urgency: str, source: str = ""):
    if source == Referral.Source.AUDIT and urgency == Referral.Urgency.ROUTINE:
        # An audit is no one's emergency: its own, longer, target, until someone makes it urgent.
        return referred_at + timedelta(days=settings.SKINPORTAL_AUDIT_DUE_DAYS)
    hours = (
        settings.SKINPORTAL_REFERRAL_TARGET_HOURS_URGENT
        if urgency == Referral.Urgency.URGENT
        else settings.SKINPORTAL_REFERRAL_TARGET_HOURS_ROUTINE
    )
    return referred_at + timedelta(hours=hours)


def referral_open(
    *,
    case: Case,
    actor,
    source: str,
    urgency: str,
    reason: str,
    sample_rate: float | None = None,
    request: HttpRequest | None = None,
    case_details: dict | None = None,
) -> Referral:
    """The ``refer`` step: the case moves to referred and gets its referral, in one transaction."""
    step = STEPS["refer"]
    with transaction.atomic():
        current = Case.objects.select_for_update().select_related("patient").get(pk=case.pk)
        clinic_id = current.patient.clinic_id
        _check_who(step, actor, None, clinic_id=clinic_id, source=source)
        if Referral.objects.filter(case_id=case.pk).exists():
            raise WorkflowConflict(str(step.refused))
        if case.patient.clinic_id != current.patient.clinic_id:
            # Moved to another clinic meanwhile: the case's audit names the clinic as locked.
            case.patient = current.patient
        case_transition(
            case=case,
            to_status=step.case_status,
            actor=actor,
            request=request,
            details={"source": source, "urgency": urgency, **(case_details or {})},
        )
        referred_at = case.referred_at or timezone.now()
        try:
            with transaction.atomic():
                referral = Referral.objects.create(
                    case=case,
                    clinic_id=clinic_id,
                    source=source,
                    urgency=urgency,
                    reason=reason[:4000],
                    referred_by=actor if _active(actor) else None,
                    referred_at=referred_at,
                    due_at=_due(referred_at, urgency, source),
                    sample_rate=sample_rate if source == Referral.Source.AUDIT else None,
                )
        except IntegrityError:
            raise WorkflowConflict(str(step.refused)) from None
        audit_record(
            actor=actor,
            action=step.action,
            obj=referral,
            request=request,
            clinic=referral.clinic,
            details={
                "case": case.pk,
                "step": step.name,
                "old": {"status": NEW},
                "new": {"status": referral.status},
                "source": source,
                "urgency": urgency,
                "reason": reason[:500],
                **({"sample_rate": sample_rate} if source == Referral.Source.AUDIT else {}),
            },
        )
    return referral


def referral_lock(referral_id: int) -> Referral:
    return Referral.objects.select_for_update().select_related("case", "clinic").get(pk=referral_id)


def referral_transition(
    *,
    referral: Referral,
    step: str,
    actor,
    request: HttpRequest | None = None,
    writes: dict | None = None,
    details: dict | None = None,
    audit_obj=None,
    expect_review: int | None = None,
    now=None,
) -> Referral:
    """Take ``step`` on the referral: lock it, check the table (state and who), write the new
    status (and ``writes``), move the case, audit old and new values; one transaction.

    Returns the locked, updated row. Raises ``WorkflowConflict`` when the referral is not in a
    state the step starts from (or changed meanwhile), ``PermissionDenied`` when the actor may
    not take it. ``expect_review``: the answer the actor read (acknowledge): a correction
    posted since is refused rather than closed unread.
    """
    spec = STEPS[step]
    now = now or timezone.now()
    with transaction.atomic():
        locked = referral_lock(referral.pk)
        state = machine_state(locked, now)
        _check_who(spec, actor, locked, clinic_id=locked.clinic_id, source=locked.source)
        if state not in spec.source:
            if step == "claim" and state == Status.CLAIMED:
                holder = locked.claimed_by.username if locked.claimed_by_id else ""
                raise WorkflowConflict(_("%(username)s is reviewing this referral.") % {"username": holder})
            if step == "acknowledge" and state == ACKNOWLEDGED:
                raise WorkflowConflict(_("This case is already closed."))
            raise WorkflowConflict(str(spec.refused))
        if expect_review is not None:
            latest = locked.latest_review
            if latest is None or latest.pk != expect_review:
                raise WorkflowConflict(
                    _("The specialist corrected the answer since you opened the page: read the correction first.")
                )
        old = {"status": state, "claimed_by": locked.claimed_by_id}
        changes: dict = {"status": spec.target, **(writes or {})}
        if spec.target == Status.CLAIMED:
            changes.update(claimed_by=actor, claimed_at=now, claim_expires_at=now + claim_lease())
        else:
            changes.update(claimed_by=None, claimed_at=None, claim_expires_at=None)
        # A conditional update on what was read under the lock: two steps at once cannot both
        # start from the same state (SQLite has no row locks; the condition still decides).
        updated = Referral.objects.filter(
            pk=locked.pk,
            status=locked.status,
            claimed_by=locked.claimed_by_id,
            claim_expires_at=locked.claim_expires_at,
        ).update(**changes, updated_at=now)
        if updated != 1:
            raise WorkflowConflict(_("The referral changed at the same time; reload it and try again."))
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.updated_at = now
        case = locked.case
        if spec.case_status and case.status != spec.case_status:
            case_transition(case=case, to_status=spec.case_status, actor=actor, request=request)
        audit_record(
            actor=actor,
            action=spec.action,
            obj=audit_obj if audit_obj is not None else locked,
            request=request,
            clinic=locked.clinic,
            details={
                "case": locked.case_id,
                "referral": locked.pk,
                "step": step,
                "old": old,
                "new": {"status": machine_state(locked, now), "claimed_by": locked.claimed_by_id},
                **(details or {}),
            },
        )
    return locked


# --- The answer's rules -----------------------------------------------------------------------
MAX_FOLLOW_UP_MONTHS = 60


def review_rules_check(*, diagnosis: str, diagnosis_text: str, outcome: str, follow_up_months, message: str) -> None:
    """The rules of a specialist's answer, in one place: the service refuses what breaks them, and
    the review form and the API serializer show these errors as they are.

    A ``monitor`` outcome needs the months until the next photo (1 to 60); any other outcome
    refuses months rather than dropping them silently; ``other`` needs the diagnosis described;
    the clinic always gets a message.
    """
    errors: dict[str, list[str]] = {}
    if outcome == Review.Outcome.MONITOR:
        if not follow_up_months:
            errors["follow_up_months"] = [_("Say in how many months the lesion should be photographed again.")]
        elif not 1 <= int(follow_up_months) <= MAX_FOLLOW_UP_MONTHS:
            errors["follow_up_months"] = [_("Between 1 and 60 months.")]
    elif follow_up_months not in (None, ""):
        errors["follow_up_months"] = [_("Only for the outcome monitor.")]
    if diagnosis == Review.Diagnosis.OTHER and not (diagnosis_text or "").strip():
        errors["diagnosis_text"] = [_("Describe the diagnosis.")]
    if not (message or "").strip():
        errors["message"] = [_("Write a message to the clinic.")]
    if errors:
        raise ValidationError(errors)
