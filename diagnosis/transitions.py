"""A case's status: the legal changes, and the one function that makes them.

Every way in (the web pages, the API, the analysis worker, the referral workflow in
``triage``, management commands and Django admin) changes a case's status through
``case_transition``, so a rule such as "a case in a specialist's hands is not analysed
again" holds in every door at once.

    submitted ──▶ analysing ──▶ analysed ──▶ closed ◀─ (waiting for a photo: the clinic closes
        │             │   │         │                 with a reason; analysis/safety_net.py)
        │             │   └▶ failed ┤ (the clinic can always refer; a photo turned back twice,
        │             │             │  or none usable in 24 h: referred as unreadable)
        └─────────────┴──────▶ referred ◀──────────────┐
                                  │ claim   ▲ release,  │ the clinic answers
                                  ▼         │ lease out │
                             under_review ──┴──▶ information_requested
                                  │ review
                                  ▼
                              reviewed ──acknowledge──▶ closed (read-only)
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import audit_record

from .models import Case, LesionImage

Status = Case.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.SUBMITTED: frozenset({Status.ANALYSING, Status.ANALYSED, Status.FAILED, Status.REFERRED}),
    Status.ANALYSING: frozenset({Status.ANALYSING, Status.ANALYSED, Status.FAILED, Status.REFERRED}),
    Status.ANALYSED: frozenset({Status.ANALYSING, Status.REFERRED, Status.CLOSED}),
    # failed -> closed: only a case waiting for a photo, closed by its clinic with a reason
    # (services.case_awaiting_photo_close).
    Status.FAILED: frozenset({Status.ANALYSING, Status.REFERRED, Status.CLOSED}),
    Status.REFERRED: frozenset({Status.UNDER_REVIEW}),
    Status.UNDER_REVIEW: frozenset({Status.REFERRED, Status.INFORMATION_REQUESTED, Status.REVIEWED}),
    Status.INFORMATION_REQUESTED: frozenset({Status.REFERRED}),
    Status.REVIEWED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}

# The case statuses the analysis (analysis/) moves on from; later ones belong to people.
CASE_AWAITING_RESULT = (Status.SUBMITTED, Status.ANALYSING)
# A photo the worker has yet to finish.
PENDING = (LesionImage.AnalysisStatus.QUEUED, LesionImage.AnalysisStatus.ANALYSING)

# From referral on, the case is in a specialist's hands or answered: the analysis may add a
# prediction of a new model version, but never moves the case or clears its result.
IN_SPECIALIST_HANDS = frozenset(
    {Status.REFERRED, Status.UNDER_REVIEW, Status.INFORMATION_REQUESTED, Status.REVIEWED, Status.CLOSED}
)
# The clinic may refer a case in these statuses (a photo without a result never blocks it).
REFERABLE = frozenset(status for status, targets in TRANSITIONS.items() if Status.REFERRED in targets) - {
    Status.UNDER_REVIEW,
    Status.INFORMATION_REQUESTED,
}

# New photos. Until a specialist has claimed the case the clinic adds them (a retake of a photo
# the gate turned back, another view), a referred case waiting in the queue too; once a
# specialist has it, only as the answer to the specialist's question (triage's
# information_answer); an answered or closed case takes none. The case page's "add photos" and
# ``case_photos_add`` both read this (the page also waits until the photos sent are analysed).
PHOTOS_WELCOME = frozenset({Status.SUBMITTED, Status.ANALYSING, Status.ANALYSED, Status.FAILED, Status.REFERRED})
PHOTOS_ON_REQUEST = frozenset({Status.INFORMATION_REQUESTED})


def photos_accepted(status: str, *, requested: bool = False) -> bool:
    """May photos be added to a case in this status (``requested``: a specialist asked for them)?"""
    return status in PHOTOS_WELCOME or (requested and status in PHOTOS_ON_REQUEST)


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def case_transition(
    *,
    case: Case,
    to_status: str,
    actor=None,
    request: HttpRequest | None = None,
    details: dict | None = None,
) -> Case:
    """Move a case to another status if ``TRANSITIONS`` allows it; audited with old and new status.

    The row is locked and the change is a conditional update on the status read under the
    lock, so two concurrent transitions cannot both start from the same status. The first
    referral sets ``referred_at``; a referral returning to the queue keeps it (its waiting
    time runs from the first referral).
    """
    if to_status not in Status.values:
        raise ValidationError({"status": f"Unknown status {to_status!r}."})
    with transaction.atomic():
        current = Case.objects.select_for_update().only("status", "referred_at").get(pk=case.pk)
        from_status = current.status
        if not can_transition(from_status, to_status):
            raise ValidationError(
                {"status": f"A case cannot go from {from_status} to {to_status}."},
                code="invalid_transition",
            )
        now = timezone.now()
        changes: dict = {"status": to_status, "updated_at": now}
        if to_status == Status.REFERRED and current.referred_at is None:
            changes["referred_at"] = now
        updated = Case.objects.filter(pk=case.pk, status=from_status).update(**changes)
        if updated != 1:
            raise ValidationError(
                {"status": _("The case changed at the same time; reload it and try again.")},
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
