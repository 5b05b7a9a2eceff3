"""The case page's "Analyse again" button (the command is ``manage.py reanalyse``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.permissions import can_submit_clinical_records
from diagnosis.selectors import case_list_for
from skinportal.access import scoped_object_or_404
from skinportal.web import private_no_store

from .services import case_reanalyse


@private_no_store
@login_required
@require_POST
def case_reanalyse_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Only clinic staff and administrators can do this."))
    try:
        case_reanalyse(case=case, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The photos are queued for analysis again."))
    return redirect("web:case-detail", pk=case.pk)
