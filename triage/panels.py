"""The referral panel on the case page (registered with diagnosis.extensions).

Clinic staff refer from here, read the specialist's answer, answer a request for
information and acknowledge the answer; specialists get a link to the review page.
"""

from __future__ import annotations

from dateutil.relativedelta import relativedelta
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import timezone

from diagnosis.models import Case
from diagnosis.transitions import REFERABLE

from . import services
from .forms import InformationAnswerForm, ReferralForm
from .models import Referral, Review
from .selectors import effective_status, is_overdue


def follow_up_due(review: Review | None):
    """When a monitored lesion is due to be photographed again."""
    if review is None or review.outcome != Review.Outcome.MONITOR or not review.follow_up_months:
        return None
    return (timezone.localtime(review.created_at) + relativedelta(months=review.follow_up_months)).date()


def case_referral_panel(request: HttpRequest, case: Case) -> str:
    user = request.user
    referral = Referral.objects.filter(case=case).select_related("claimed_by", "referred_by").first()
    clinic_side = services.can_refer(user, case)
    review = referral.latest_review if referral else None
    waiting_question = None
    if referral is not None and referral.status == Referral.Status.INFORMATION_REQUESTED:
        waiting_question = (
            referral.information_requests.filter(answered_at__isnull=True).order_by("-requested_at").first()
        )
    context = {
        "case": case,
        "referral": referral,
        "status": effective_status(referral) if referral else None,
        "status_label": Referral.Status(effective_status(referral)).label if referral else "",
        "overdue": is_overdue(referral) if referral else False,
        "review": review,
        "follow_up_due": follow_up_due(review),
        "exchanges": list(referral.information_requests.all()) if referral else [],
        "waiting_question": waiting_question,
        "can_refer": clinic_side and referral is None and case.status in REFERABLE,
        "can_answer": clinic_side and waiting_question is not None,
        "can_acknowledge": clinic_side and review is not None and case.status == Case.Status.REVIEWED,
        "lowering_needs_reason": referral is not None and services.lowering_needs_reason(referral),
        "can_lower_urgency": clinic_side
        and referral is not None
        and referral.urgency == Referral.Urgency.URGENT
        and referral.status != Referral.Status.REVIEWED,
        "is_specialist_view": referral is not None and (services.can_review(user, referral) or user.is_administrator),
        "referral_form": ReferralForm(),
        "answer_form": InformationAnswerForm(),
        "csrf_token": get_token(request),
    }
    return render_to_string("triage/_case_panel.html", context, request=request)
