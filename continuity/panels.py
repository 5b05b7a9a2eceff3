"""What continuity adds to the case page (the lesion, the letter, the FHIR export) and the dashboard."""

from __future__ import annotations

import datetime

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.permissions import can_submit_clinical_records
from diagnosis.models import Case
from diagnosis.selectors import case_list_for, lesion_list_for

from .models import FollowUp
from .selectors import follow_up_list_for


def case_continuity_panel(request: HttpRequest, case: Case) -> str:
    follow_up = FollowUp.objects.filter(lesion_id=case.lesion_id, status=FollowUp.Status.DUE).first()
    visits = case_list_for(user=request.user).filter(lesion_id=case.lesion_id).count()
    context = {"case": case, "lesion": case.lesion, "visits": visits, "follow_up": follow_up}
    return render_to_string("continuity/_case_panel.html", context, request=request)


def dashboard_follow_ups_panel(request: HttpRequest) -> str:
    if not can_submit_clinical_records(request.user):
        return ""
    today = timezone.localdate()
    due = follow_up_list_for(user=request.user).filter(status=FollowUp.Status.DUE)
    counts = {
        "overdue": due.filter(due_on__lt=today).count(),
        "this_week": due.filter(due_on__gte=today, due_on__lte=today + datetime.timedelta(days=7)).count(),
    }
    return render_to_string("continuity/_dashboard_panel.html", {"counts": counts}, request=request)


def patient_lesions_panel(request: HttpRequest, patient) -> str:
    """The patient's lesions, each with its latest photo, its number of visits and any follow-up due."""
    lesions = list(lesion_list_for(user=request.user).filter(patient=patient).order_by("created_at", "pk"))
    if not lesions:
        return ""
    cases = case_list_for(user=request.user).filter(lesion__in=lesions).order_by("created_at", "pk")
    visits: dict[int, list] = {lesion.pk: [] for lesion in lesions}
    for case in cases:
        visits[case.lesion_id].append(case)
    due = {
        f.lesion_id: f
        for f in follow_up_list_for(user=request.user).filter(lesion__in=lesions, status=FollowUp.Status.DUE)
    }
    rows = []
    for lesion in lesions:
        latest_photo = next(
            (image for case in reversed(visits[lesion.pk]) for image in case.images.all()),
            None,
        )
        rows.append(
            {"lesion": lesion, "visits": len(visits[lesion.pk]), "photo": latest_photo, "due": due.get(lesion.pk)}
        )
    return render_to_string("continuity/_patient_lesions.html", {"rows": rows}, request=request)
