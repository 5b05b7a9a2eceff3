"""Every read of clinical data, scoped to what the user may see.

Clinic staff see their own clinics' records; specialists see the referred cases of the
clinics they serve (``User.clinics``), with those cases' images and predictions, but no patient
records (what they see of a patient is in ``patients.disclosure``; patients are read through
``patients.selectors.patient_list_for``); administrators see everything;
anonymous and inactive users see nothing. Views and APIs fetch single objects through
these too (``get_object_or_404(case_list_for(user=u), pk=pk)``), so another clinic's record
is a 404.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max, Prefetch, Q, QuerySet

from accounts.permissions import can_read

from . import extensions
from .models import Case, Lesion, LesionImage


def _case_scope(user) -> Q | None:
    """The filter on Case for this user; None means every case."""
    if user.is_administrator:
        return None
    if user.is_specialist:
        # referred_at is set on referral and kept through review and closing.
        return Q(referred_at__isnull=False, patient__clinic__in=user.clinics.filter(is_active=True))
    if user.is_clinic_staff:
        return Q(patient__clinic__in=user.clinics.filter(is_active=True))
    return Q(pk__in=[])


def case_list_for(*, user) -> QuerySet[Case]:
    if not can_read(user):
        return Case.objects.none()
    cases = Case.objects.select_related("patient", "patient__clinic", "submitted_by")
    cases = cases.prefetch_related(Prefetch("images", queryset=LesionImage.objects.prefetch_related("predictions")))
    cases = cases.prefetch_related(*extensions.CASE_PREFETCHES)
    scope = _case_scope(user)
    return cases if scope is None else cases.filter(scope)


def lesion_list_for(*, user) -> QuerySet[Lesion]:
    """Lesions scoped like cases: staff see their clinics' lesions; specialists those with a referred case."""
    if not can_read(user):
        return Lesion.objects.none()
    lesions = Lesion.objects.select_related("patient", "patient__clinic")
    if user.is_administrator:
        return lesions
    if user.is_specialist:
        served = user.clinics.filter(is_active=True)
        return lesions.filter(patient__clinic__in=served, cases__referred_at__isnull=False).distinct()
    if user.is_clinic_staff:
        return lesions.filter(patient__clinic__in=user.clinics.filter(is_active=True))
    return lesions.none()


def image_list_for(*, user) -> QuerySet[LesionImage]:
    if not can_read(user):
        return LesionImage.objects.none()
    images = LesionImage.objects.select_related("case", "case__patient", "case__patient__clinic")
    images = images.prefetch_related("predictions")
    scope = _case_scope(user)
    return images if scope is None else images.filter(case__in=Case.objects.filter(scope))


def photo_kinds_last_used(*, clinic_id: int) -> list[str]:
    """The kinds of the photos of the clinic's latest case, in their order (empty for a new clinic).

    The new-case form starts each photo at the kind the clinic gave the same photo last time, so
    a clinic with a dermatoscope gets "dermoscopic" without changing every photo by hand, and
    one that takes an overview and then a dermoscopic photo keeps that order.
    """
    latest = Case.objects.filter(patient__clinic_id=clinic_id).order_by("-created_at", "-pk").first()
    if latest is None:
        return []
    return list(latest.images.order_by("pk").values_list("kind", flat=True))


def case_result_version(*, user, pk) -> tuple | None:
    """What the case's result depends on, in one small query, or None if the user cannot see it.

    The case's status, risk and last change, its photos' last analysis change (every
    change of a photo's analysis, a prediction stored, a photo added or analysed again, moves
    ``analysis_updated_at``) and how many photos still wait for a result: a poll compares these
    (as an ETag) instead of reading the photos, their predictions and the referral and
    rendering the result again; a long poll waits for the last to fall (diagnosis/polling.py).
    """
    try:
        return (
            case_list_for(user=user)
            .filter(pk=pk)
            .prefetch_related(None)
            .select_related(None)
            .order_by()
            .annotate(
                photos_changed=Max("images__analysis_updated_at"),
                photos_pending=Count(
                    "images",
                    filter=Q(
                        images__analysis_status__in=(
                            LesionImage.AnalysisStatus.QUEUED,
                            LesionImage.AnalysisStatus.ANALYSING,
                        )
                    ),
                ),
            )
            .values_list("status", "risk", "updated_at", "photos_changed", "photos_pending")
            .first()
        )
    except (ValueError, TypeError):
        return None


def case_list_awaiting_photo(cases):
    """The cases of ``cases`` (already scoped to a user) that wait for a photo the model can read."""
    return cases.filter(status=Case.Status.FAILED, awaiting_photo_since__isnull=False)


def unreadable_after() -> timedelta:
    """How long a case waits for a photo the model can read before it goes to a specialist
    (analysis/safety_net.py refers it; the case page says when)."""
    return timedelta(hours=settings.SKINPORTAL_UNREADABLE_AFTER_HOURS)
