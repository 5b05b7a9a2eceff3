"""Events of the case workflow that apps built on top of ``diagnosis`` listen to.

``diagnosis`` never imports those apps (the referral workflow in ``triage`` imports this
one); it tells them through these signals, sent inside the transaction that made the change,
so a receiver's rows commit or roll back with it.
"""

from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

# Sent when diagnosis's rules refer a case (``case_refer``); the referral workflow's receiver
# (triage.referral_create, the one way to refer) moves the case to "referred" and adds its
# referral. Arguments: case, source ("model", "checklist", "unreadable": no photo the model could
# read, or "audit": drawn for the audit sample), urgency ("routine" or "urgent"), reason (plain
# words), actor (None for the worker), request, details (for the case's audit event), and for
# "audit" sample_rate (the rate drawn at).
case_referred = Signal()


def case_refer(
    case,
    *,
    source: str,
    urgency: str,
    reason: str,
    actor=None,
    request=None,
    details: dict | None = None,
    sample_rate: float | None = None,
) -> None:
    """Refer a case by diagnosis's rules through the referral workflow (never by a status write here)."""
    answers = case_referred.send(
        sender=type(case),
        case=case,
        source=source,
        urgency=urgency,
        reason=reason,
        actor=actor,
        request=request,
        details=details or {},
        sample_rate=sample_rate,
    )
    if not answers:
        raise ImproperlyConfigured("No referral workflow is connected to diagnosis.signals.case_referred.")


# Sent when the analysis wrote a case's result (risk and summary). Arguments: case, urgent (the
# result flags a class referred urgently: a referral the case already has is raised to urgent).
case_result_written = Signal()

# Sent when a case was submitted (inside case_submit's transaction). Arguments: case, actor.
# A new case on a lesion completes the lesion's follow-up (continuity).
case_submitted = Signal()

# Sent when an administrator moved a patient to another clinic (inside patient_clinic_move's
# transaction). Arguments: patient (already in the new clinic), old_clinic, actor, request.
patient_moved = Signal()
