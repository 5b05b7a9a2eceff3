"""Events of the case workflow that apps built on top of ``diagnosis`` listen to.

``diagnosis`` never imports those apps (the referral workflow in ``triage`` imports this
one); it tells them through these signals, sent inside the transaction that made the change,
so a receiver's rows commit or roll back with it.
"""

from django.dispatch import Signal

# Sent after diagnosis itself referred a case, once the case is in status "referred".
# Arguments: case, source ("model", "checklist", "unreadable": no photo the model could read,
# or "audit": drawn for the audit sample), urgency ("routine" or "urgent"), reason (plain
# words), actor (None for the worker), request, and for "audit" sample_rate (the rate drawn at).
case_referred = Signal()

# Sent when the analysis wrote a case's result (risk and summary). Arguments: case.
case_result_written = Signal()

# Sent when a case was submitted (inside case_submit's transaction). Arguments: case, actor.
# A new case on a lesion completes the lesion's follow-up (continuity).
case_submitted = Signal()
