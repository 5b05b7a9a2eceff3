"""REST API v1 of continuity of care: lesions, follow-ups, the referral letter (PDF), FHIR export.

Objects come through user-scoped selectors (another clinic's record is a 404) and every
read of patient data is audited, as for the case itself.
"""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import audit_record
from diagnosis.selectors import case_list_for, lesion_list_for
from patients.disclosure import sees_patient_identity
from patients.selectors import patient_list_for
from skinportal.access import scoped_object_or_404
from skinportal.api import ApiView, Pages
from triage.permissions import IsClinicalSubmitter

from .fhir import bundle_json, case_bundle
from .letter import LetterUnavailable, letter_pdf
from .models import FollowUp
from .selectors import follow_up_list_for
from .serializers import FollowUpOutputSerializer, LesionDetailOutputSerializer, LesionOutputSerializer

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _lesion_context(request: Request, lesions) -> dict:
    """The cases (oldest first) and open follow-ups of these lesions that the user may see."""
    ids = [lesion.pk for lesion in lesions]
    cases_by_lesion: dict[int, list] = defaultdict(list)
    for case in case_list_for(user=request.user).filter(lesion_id__in=ids).order_by("created_at", "pk"):
        cases_by_lesion[case.lesion_id].append(case)
    follow_ups = {
        f.lesion_id: f
        for f in follow_up_list_for(user=request.user).filter(lesion_id__in=ids, status=FollowUp.Status.DUE)
    }
    return {"request": request, "cases_by_lesion": cases_by_lesion, "follow_ups": follow_ups}


class PatientLesionListApi(ApiView):
    pagination_class = Pages  # so the schema documents the paginated answer

    @extend_schema(summary="A patient's lesions", responses=LesionOutputSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
        lesions = lesion_list_for(user=request.user).filter(patient=patient).order_by("created_at", "pk")
        paginator = Pages()
        page = paginator.paginate_queryset(lesions, request, view=self)
        audit_record(
            actor=request.user,
            action="lesion.list",
            obj=patient,
            request=request,
            details={"ids": [lesion.pk for lesion in page]},
        )
        data = LesionOutputSerializer(page, many=True, context=_lesion_context(request, page)).data
        return paginator.get_paginated_response(data)


class LesionDetailApi(ApiView):
    @extend_schema(summary="A lesion with its cases in date order", responses=LesionDetailOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        lesion = scoped_object_or_404(lesion_list_for(user=request.user), pk=pk, request=request)
        context = _lesion_context(request, [lesion])
        audit_record(
            actor=request.user,
            action="lesion.view",
            obj=lesion,
            request=request,
            details={"cases": [case.pk for case in context["cases_by_lesion"].get(lesion.pk, ())]},
        )
        return Response(LesionDetailOutputSerializer(lesion, context=context).data)


class FollowUpListApi(ApiView):
    pagination_class = Pages  # so the schema documents the paginated answer
    permission_classes = [IsClinicalSubmitter]

    @extend_schema(
        summary="Lesions due to be photographed again (their clinics' for clinic staff)",
        parameters=[
            OpenApiParameter("overdue", bool, description="true: only overdue; false: only not yet overdue"),
            OpenApiParameter("due_before", OpenApiTypes.DATE, description="Due on or before this date (YYYY-MM-DD)"),
        ],
        responses=FollowUpOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        follow_ups = follow_up_list_for(user=request.user).filter(status=FollowUp.Status.DUE).order_by("due_on", "pk")
        today = timezone.localdate()
        overdue = request.query_params.get("overdue", "").lower()
        if overdue in TRUE:
            follow_ups = follow_ups.filter(due_on__lt=today)
        elif overdue in FALSE:
            follow_ups = follow_ups.filter(due_on__gte=today)
        elif overdue:
            raise exceptions.ValidationError({"overdue": [_("Must be true or false.")]})
        if (due_before := request.query_params.get("due_before")) is not None:
            try:
                follow_ups = follow_ups.filter(due_on__lte=datetime.date.fromisoformat(due_before))
            except ValueError:
                raise exceptions.ValidationError({"due_before": [_("A date as YYYY-MM-DD.")]}) from None
        paginator = Pages()
        page = paginator.paginate_queryset(follow_ups, request, view=self)
        audit_record(
            actor=request.user,
            action="follow_up.list",
            request=request,
            details={"ids": [f.pk for f in page], "overdue": overdue, "due_before": due_before or ""},
        )
        return paginator.get_paginated_response(FollowUpOutputSerializer(page, many=True).data)


class _AnyAccept(BaseContentNegotiation):
    """The PDF is answered whatever the Accept header says (errors stay JSON)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class LetterServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = _("The PDF of the letter cannot be made on this server now.")
    default_code = "letter_unavailable"


class CaseLetterPdfApi(ApiView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        summary="The referral letter of a case as PDF",
        description="Rendered on demand and never stored; access-checked and audited like the case.",
        responses={
            (200, "application/pdf"): OpenApiResponse(response=OpenApiTypes.BINARY),
            503: OpenApiResponse(description="The PDF renderer cannot run on this server now."),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        try:
            pdf = letter_pdf(case=case, shows_patient_identity=sees_patient_identity(request.user))
        except LetterUnavailable as exc:
            raise LetterServiceUnavailable(str(exc)) from None
        audit_record(actor=request.user, action="case.letter_pdf", obj=case, request=request)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="case-{case.pk}-letter.pdf"'
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


class CaseFhirApi(ApiView):
    @extend_schema(
        summary="The case as a FHIR R4 Bundle (type collection)",
        description=(
            "Patient, Organization, Consent, ServiceRequest and Task for the referral, one Media per "
            "photo (content as a URL to the access-checked file), one Observation per model result "
            "with its Device and Provenance, and a DiagnosticReport for the specialist's answer."
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: int) -> Response:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        # Written for other systems in the site's language, as its fixed English texts are,
        # not in the language of whoever exports it.
        with translation.override(settings.LANGUAGE_CODE):
            bundle = bundle_json(
                case_bundle(
                    case=case,
                    absolute=request.build_absolute_uri,
                    shows_patient_identity=sees_patient_identity(request.user),
                )
            )
        audit_record(actor=request.user, action="case.fhir_export", obj=case, request=request)
        return Response(bundle)
