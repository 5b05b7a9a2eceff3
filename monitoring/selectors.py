"""Reads behind the field figures, scoped to the user: administrators see every clinic, specialists
the clinics they serve (through ``triage.selectors.referral_list_for``); nobody else sees any."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncWeek
from django.utils import timezone

from diagnosis.models import GATE_CHOICES, Case, LesionImage, Prediction
from patients.models import Patient
from triage.models import MALIGNANT_DIAGNOSES, Referral
from triage.selectors import referral_list_for

from . import figures
from .figures import Answer

WEEKS_SHOWN = 12
SKIN_TYPES = list(Patient.SkinType.values)
GATE_REASONS = [code for code, _label in GATE_CHOICES if code != "ok"]


def may_see_field_figures(user) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.is_active and (user.is_administrator or user.is_specialist)
    )


def _answer(referral: Referral, left_out: Counter) -> Answer | None:
    """The answered case as the figures count it, or None (and why, in ``left_out``)."""
    review = referral.latest_review
    case = referral.case
    usable = []
    for image in case.images.all():
        prediction = image.current_prediction
        if prediction is not None and not prediction.rejected:
            usable.append((image, prediction))
    if not case.risk or not usable:
        left_out["no_result"] += 1
        return None
    referred = case.risk == Case.Risk.HIGH
    audited = False
    if referred or referral.source == Referral.Source.CHECKLIST:
        weight = 1.0  # every such case is referred: a census
    elif referral.source == Referral.Source.AUDIT and referral.sample_rate:
        weight, audited = 1.0 / referral.sample_rate, True
    else:
        left_out["clinic"] += 1  # the clinic's own choice among the cases the model did not refer
        return None
    surest = max(usable, key=lambda pair: pair[1].probabilities.get(pair[1].top_class, 0.0))[1]
    top = review.model_top_class or surest.top_class
    return Answer(
        model_version=review.model_version or surest.model_version,
        referred=referred,
        malignant=review.diagnosis in MALIGNANT_DIAGNOSES,
        agrees=(review.diagnosis == top) if top else None,
        weight=weight,
        audited=audited,
        dermoscopic=any(image.kind == LesionImage.Kind.DERMOSCOPIC for image, _p in usable),
        skin_type=case.patient.skin_type or "",
        clinic_id=referral.clinic_id,
        clinic=referral.clinic.name,
    )


def field_answers_for(*, user) -> tuple[list[Answer], Counter]:
    """Every answered referral the user may see, as field answers, and the count of those left out by reason."""
    if not may_see_field_figures(user):
        return [], Counter()
    return field_answers(referral_list_for(user=user))


def field_answers(referrals) -> tuple[list[Answer], Counter]:
    """The answered referrals of ``referrals`` (a queryset already scoped, or every one for the alerts)."""
    left_out: Counter = Counter()
    answers = []
    for referral in referrals.filter(reviews__isnull=False).distinct():
        answer = _answer(referral, left_out)
        if answer is not None:
            answers.append(answer)
    return answers, left_out


def turned_back_weeks_for(*, user, weeks: int = WEEKS_SHOWN, now=None) -> dict[str, list[dict]]:
    """Per model version, per week (Monday), the photos scored and the share the gate turned back, by reason."""
    if not may_see_field_figures(user):
        return {}
    predictions = Prediction.objects.filter(image__withdrawn_at__isnull=True)  # withdrawn photos count nowhere
    if not user.is_administrator:
        # Counts only, never a record: every photo of the clinics a specialist serves.
        predictions = predictions.filter(image__case__patient__clinic__in=user.clinics.filter(is_active=True))
    return turned_back_weeks(predictions, weeks=weeks, now=now)


def turned_back_weeks(predictions, *, weeks: int = WEEKS_SHOWN, now=None) -> dict[str, list[dict]]:
    """``turned_back_weeks_for`` over ``predictions`` (already scoped, or every one for the alerts)."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=start.weekday() + 7 * (weeks - 1))
    predictions = predictions.filter(created_at__gte=start)
    rows = (
        predictions.annotate(week=TruncWeek("created_at"))
        .values("model_version", "week", "gate")
        .annotate(photos=Count("pk"))
        .order_by()
    )
    counts: dict[tuple[str, object], Counter] = defaultdict(Counter)
    for row in rows:
        week = row["week"].date() if hasattr(row["week"], "date") else row["week"]
        counts[(row["model_version"], week)][row["gate"]] += row["photos"]
    result: dict[str, list[dict]] = defaultdict(list)
    for (version, week), by_gate in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1])):
        photos = sum(by_gate.values())
        turned_back = photos - by_gate.get("ok", 0)
        result[version].append(
            {
                "week": week,
                "iso_week": "{:04d}-W{:02d}".format(*week.isocalendar()[:2]),
                "photos": photos,
                "turned_back": turned_back,
                "share": turned_back / photos if photos else None,
                "by_reason": {reason: by_gate.get(reason, 0) for reason in GATE_REASONS},
            }
        )
    return dict(result)


def _skin_type_order(group: str) -> int:
    return SKIN_TYPES.index(group) if group in SKIN_TYPES else len(SKIN_TYPES)


def field_report_for(*, user, now=None) -> dict:
    """Everything the field page and ``GET /api/v1/triage/model-performance/`` show, for this user."""
    answers, left_out = field_answers_for(user=user)
    versions = []
    for version, members in figures.by_version(answers).items():
        kinds = figures.breakdown(members, lambda a: "dermoscopic" if a.dermoscopic else "not_dermoscopic")
        skin = figures.breakdown(members, lambda a: a.skin_type or "unknown")
        clinics = figures.breakdown(members, lambda a: (a.clinic_id, a.clinic))
        versions.append(
            {
                "model_version": version,
                "overall": figures.summary(members),
                "audit_rate": _audit_rate(members),
                "by_photo_kind": sorted(kinds, key=lambda item: item[0] != "dermoscopic"),
                "by_skin_type": sorted(skin, key=lambda item: _skin_type_order(item[0])),
                "by_clinic": sorted(clinics, key=lambda item: item[0][1]),
            }
        )
    return {
        "min_answers": figures.MIN_ANSWERS,
        "versions": versions,
        "left_out": {"no_result": left_out.get("no_result", 0), "clinic": left_out.get("clinic", 0)},
        "turned_back": turned_back_weeks_for(user=user, now=now),
    }


def _audit_rate(answers) -> float | None:
    weight = figures.audit_weight_of(answers)
    return None if weight is None else round(1 / weight, 4)
