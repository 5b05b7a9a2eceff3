"""Pages of continuity of care: a lesion over time, the compare view, follow-ups due, the referral letter.

Reads go through the user-scoped selectors (someone else's record is a 404); every page
that shows patient data is audited and kept out of caches.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.permissions import can_submit_clinical_records
from accounts.services import audit_record
from diagnosis.selectors import case_list_for, lesion_list_for
from patients.disclosure import sees_patient_identity
from skinportal.access import scoped_object_or_404
from skinportal.web import private_no_store

from .history import compare_pair, lesion_visits, photos_by_kind
from .letter import letter_context
from .models import FollowUp
from .selectors import follow_up_list_for

WEEK = datetime.timedelta(days=7)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


def _lesion_and_cases(request: HttpRequest, pk: int):
    lesion = scoped_object_or_404(lesion_list_for(user=request.user), pk=pk, request=request)
    cases = list(case_list_for(user=request.user).filter(lesion=lesion).order_by("created_at", "pk"))
    return lesion, cases


@private_no_store
@login_required
@require_GET
def lesion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lesion, cases = _lesion_and_cases(request, pk)
    audit_record(
        actor=request.user, action="lesion.view", obj=lesion, request=request, details={"cases": [c.pk for c in cases]}
    )
    follow_up = FollowUp.objects.filter(lesion=lesion, status=FollowUp.Status.DUE).first()
    return render(
        request,
        "continuity/lesion_detail.html",
        {
            "lesion": lesion,
            "patient": lesion.patient,
            "visits": lesion_visits(cases),
            "photo_rows": photos_by_kind(cases),
            "follow_up": follow_up,
            "can_submit": can_submit_clinical_records(request.user),
            "can_compare": len(cases) >= 2,
        },
    )


@private_no_store
@login_required
@require_GET
def lesion_compare(request: HttpRequest, pk: int) -> HttpResponse:
    lesion, cases = _lesion_and_cases(request, pk)
    pair = compare_pair(
        cases,
        before_id=_int_or_none(request.GET.get("before")),
        after_id=_int_or_none(request.GET.get("after")),
        kind=request.GET.get("kind"),
    )
    audit_record(
        actor=request.user,
        action="lesion.compare",
        obj=lesion,
        request=request,
        details={"before": getattr(pair["before"], "pk", None), "after": getattr(pair["after"], "pk", None)},
    )
    visits = {row["case"].pk: row for row in lesion_visits(cases)}
    return render(
        request,
        "continuity/lesion_compare.html",
        {
            "lesion": lesion,
            "patient": lesion.patient,
            "cases": cases,
            "pair": pair,
            "before_visit": visits.get(getattr(pair["before"], "pk", None)),
            "after_visit": visits.get(getattr(pair["after"], "pk", None)),
            "show_heatmap": request.GET.get("heatmap") == "1",
        },
    )


@private_no_store
@login_required
@require_GET
def follow_up_list(request: HttpRequest) -> HttpResponse:
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Follow-ups are for clinic staff."))
    today = timezone.localdate()
    due = list(follow_up_list_for(user=request.user).filter(status=FollowUp.Status.DUE).order_by("due_on", "pk"))
    overdue = [f for f in due if f.due_on < today]
    this_week = [f for f in due if today <= f.due_on <= today + WEEK]
    later = [f for f in due if f.due_on > today + WEEK]
    audit_record(
        actor=request.user,
        action="follow_up.list",
        request=request,
        details={"ids": [f.pk for f in due]},
    )
    return render(
        request,
        "continuity/follow_ups.html",
        {"overdue": overdue, "this_week": this_week, "later": later, "today": today},
    )


@private_no_store
@login_required
@require_GET
def case_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """The referral letter as a printable page (A4 print stylesheet)."""
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    audit_record(actor=request.user, action="case.letter_view", obj=case, request=request)
    context = letter_context(case=case, for_pdf=False, shows_patient_identity=sees_patient_identity(request.user))
    return render(request, "continuity/letter_document.html", context)
