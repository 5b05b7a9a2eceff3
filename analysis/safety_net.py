"""Cases the model did not refer still reach a person.

- **Waiting for a photo.** When the photo gate turned back every photo of a case, or none could
  be scored (an unreadable file, the model unavailable), the case has no result (status failed)
  and waits for a new photo (``Case.awaiting_photo_since``). If the
  new photo is turned back too, or no usable photo comes within
  ``SKINPORTAL_UNREADABLE_AFTER_HOURS`` (beat: ``inference.unreadable_cases_refer``), the case
  is referred to the specialists serving its clinic (source ``unreadable``, routine), unless
  clinic staff closed it with a reason first (``diagnosis.services.case_awaiting_photo_close``).
- **The audit sample.** A share ``SKINPORTAL_AUDIT_SAMPLE_RATE`` of the cases the model did
  not refer is referred anyway (source ``audit``), so that the cancers the model misses are
  counted instead of guessed (monitoring/). The draw is a hash of the case id mapped to [0, 1):
  reproducible, the same on every worker, and a case analysed again (a new model version)
  cannot be drawn a second time. The rate in effect is sent with the referral, which keeps it
  for inverse-probability weighting.

``diagnosis`` never imports ``triage``: it refers through ``signals.case_refer`` with the source;
triage's receiver (``referral_create``, the one way to refer) moves the case and adds the referral.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from diagnosis.models import Case
from diagnosis.selectors import unreadable_after
from diagnosis.signals import case_refer

logger = logging.getLogger(__name__)

UNREADABLE = "unreadable"
AUDIT = "audit"
ROUTINE = "routine"
# Stored on the referral in English; pages show them in the reader's language.
UNREADABLE_REASON = gettext_noop("No photo the model could read.")
AUDIT_REASON = gettext_noop(
    "Audit sample: the model did not refer this case; a share of such cases is read by a specialist."
)


# --- The audit sample -------------------------------------------------------------------------
def audit_draw(case_id: int) -> float:
    """The case's fixed draw in [0, 1): the first 64 bits of a SHA-256 of its id."""
    digest = hashlib.sha256(f"skinportal-audit:{int(case_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def audit_sample_rate() -> float:
    """The share of the cases the model did not refer that is audited, from the settings, in [0, 1]."""
    return min(1.0, max(0.0, float(settings.SKINPORTAL_AUDIT_SAMPLE_RATE)))


def audit_selects(case_id: int, rate: float) -> bool:
    return rate > 0 and audit_draw(case_id) < rate


def audit_refer(case: Case, *, rate: float, details: dict | None = None) -> None:
    """Refer this case, drawn for the audit, through the referral workflow.

    Inside the caller's transaction, so the referral commits or rolls back with the case.
    """
    case_refer(
        case,
        source=AUDIT,
        urgency=ROUTINE,
        reason=AUDIT_REASON,
        sample_rate=rate,
        details={**(details or {}), "sample_rate": rate},
    )


# --- Waiting for a photo ----------------------------------------------------------------------
def retake_turned_back(case: Case, turned_back_created: list) -> bool:
    """The case was already waiting for a new photo and a photo added since was turned back too."""
    since = case.awaiting_photo_since
    return since is not None and any(created >= since for created in turned_back_created)


def unreadable_refer(case: Case, *, details: dict | None = None) -> None:
    """Refer this case, because no photo could be read, through the referral workflow."""
    case_refer(case, source=UNREADABLE, urgency=ROUTINE, reason=UNREADABLE_REASON, details=details)


def cases_awaiting_photo_refer(*, now=None) -> int:
    """Refer every case that has waited longer than ``unreadable_after()`` for a usable photo.

    Beat sends it (``inference.unreadable_cases_refer``); safe to run anywhere at any time: each
    case is locked and its status checked again, and ``case_transition`` refuses a case a
    clinic closed or a new photo moved on meanwhile.
    """
    now = now or timezone.now()
    due = Case.objects.filter(status=Case.Status.FAILED, awaiting_photo_since__lte=now - unreadable_after())
    referred = 0
    for case_id in list(due.values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                case = Case.objects.select_for_update().get(pk=case_id)
                if not case.awaiting_photo or case.awaiting_photo_since > now - unreadable_after():
                    continue
                unreadable_refer(case, details={"awaiting_photo_since": case.awaiting_photo_since.isoformat()})
                referred += 1
        except ValidationError:  # moved on meanwhile (a new photo, closed by the clinic)
            logger.info("case %s is no longer waiting for a photo", case_id)
    if referred:
        logger.info("referred %s cases with no photo the model could read", referred)
    return referred
