"""Events of the referral workflow that apps built on top of ``triage`` listen to.

``triage`` never imports those apps; it tells them through these signals, sent inside the
transaction that made the change, so a receiver's rows commit or roll back with it.
"""

from django.dispatch import Signal

# Sent after a specialist's review was written (a first answer or a correction that supersedes
# the review in force). Arguments: review, superseded (the review it replaces, or None), actor, request.
# Continuity of care sets the lesion's follow-up from a "monitor" outcome.
review_submitted = Signal()
