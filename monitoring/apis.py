"""``GET /api/v1/triage/model-performance/``: the model in the field, as the page shows it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import audit_record
from skinportal.api import ApiView
from triage.permissions import IsSpecialistOrAdministrator

from .presentation import report_as_json
from .selectors import field_report_for
from .serializers import ModelPerformanceOutputSerializer


class ModelPerformanceApi(ApiView):
    permission_classes = [IsSpecialistOrAdministrator]

    @extend_schema(
        summary="The model in the field: sensitivity, specificity and agreement from the specialists' answers",
        description=(
            "Per model version, from the specialists' answers: the sensitivity of the model's referral for "
            "malignant diagnoses (melanoma, basal cell carcinoma, actinic keratosis / intraepithelial carcinoma, "
            "squamous cell carcinoma), its specificity and its agreement with the diagnosis, each with a 95% "
            "interval and its count of answers; by kind of photo, Fitzpatrick skin type and clinic; and the "
            "weekly share of photos the photo gate turned back, by reason. Audited cases (the audit sample of "
            "the cases the model did not refer) weigh 1 / their audit rate. A figure with too few answers has "
            "`value` null and `enough` false: not enough answers yet, not 0%. Specialists see the clinics they "
            "serve; administrators every clinic."
        ),
        responses=ModelPerformanceOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        audit_record(actor=request.user, action="monitoring.field_view", request=request, details={"via": "api"})
        body = report_as_json(field_report_for(user=request.user))
        return Response(ModelPerformanceOutputSerializer(body).data)
