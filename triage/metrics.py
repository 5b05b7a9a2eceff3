"""Measures of the referral service, as a department reports them to show the service is safe."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import DIAGNOSIS_ORDER, Referral, Review
from .selectors import OPEN_STATUSES

WINDOW_DAYS = 30


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def service_metrics(*, referrals: QuerySet[Referral], now=None) -> dict:
    """Open referrals by urgency and overdue; time from referral to the first answer over the last
    30 days (median and 90th percentile, hours); the outcome mix and the agreement between the
    specialists' diagnoses and the model's top class, over the answers in force in that window."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    open_referrals = referrals.filter(status__in=OPEN_STATUSES)
    by_urgency = Counter(open_referrals.values_list("urgency", flat=True))
    answered = list(referrals.filter(reviewed_at__gte=since).prefetch_related("reviews"))
    hours = [(r.reviewed_at - r.referred_at).total_seconds() / 3600 for r in answered]
    on_time = sum(1 for r in answered if r.reviewed_at <= r.due_at)
    in_force = [r.latest_review for r in answered if r.latest_review is not None]
    outcomes = Counter(review.outcome for review in in_force)
    agreement = Counter((review.diagnosis, review.model_top_class) for review in in_force if review.model_top_class)
    model_classes = sorted({model for _, model in agreement})
    return {
        "window_days": WINDOW_DAYS,
        "open": {
            "total": open_referrals.count(),
            "urgent": by_urgency.get(Referral.Urgency.URGENT, 0),
            "routine": by_urgency.get(Referral.Urgency.ROUTINE, 0),
            "overdue": open_referrals.filter(due_at__lt=now).count(),
            "waiting_for_clinic": open_referrals.filter(status=Referral.Status.INFORMATION_REQUESTED).count(),
        },
        "answered": len(answered),
        "answered_within_target": on_time,
        "hours_to_answer_median": _round(percentile(hours, 50)),
        "hours_to_answer_p90": _round(percentile(hours, 90)),
        "outcomes": {code: outcomes.get(code, 0) for code in Review.Outcome.values},
        "agreement": {
            "model_classes": model_classes,
            "rows": [
                {
                    "diagnosis": diagnosis,
                    "counts": {model: agreement.get((diagnosis, model), 0) for model in model_classes},
                }
                for diagnosis in DIAGNOSIS_ORDER
                if any(agreement.get((diagnosis, model)) for model in model_classes)
            ],
            "agree": sum(count for (diagnosis, model), count in agreement.items() if diagnosis == model),
            "total": sum(agreement.values()),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
