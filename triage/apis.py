"""REST API of the referral workflow (/api/v1/...): referrals, reviews, information, notifications, metrics.

Objects come through user-scoped selectors (another clinic's referral or case is a 404);
a step the referral's state does not allow is a 409; every read and write is audited.
"""

from __future__ import annotations

import re

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import audit_record
from diagnosis.apis import photo_allowance_take
from diagnosis.selectors import case_list_for
from diagnosis.serializers import CaseOutputSerializer
from skinportal.access import scoped_object_or_404
from skinportal.api import ApiView, Pages

from . import services, workflow
from .metrics import service_metrics
from .models import Referral
from .permissions import IsClinicalSubmitter, IsSpecialist, IsSpecialistOrAdministrator
from .selectors import OPEN_STATUSES, notification_list_for, referral_list_for, referral_queue_for
from .serializers import (
    CaseAcknowledgeInputSerializer,
    InformationAnswerInputSerializer,
    InformationRequestOutputSerializer,
    MessageInputSerializer,
    MetricsOutputSerializer,
    NotificationOutputSerializer,
    ReferralInputSerializer,
    ReferralOutputSerializer,
    ReviewInputSerializer,
    ReviewWithNoteOutputSerializer,
    UrgencyInputSerializer,
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The referral is not in a state that allows this.")
    default_code = "conflict"


class TriageApiView(ApiView):
    """A step the referral's state does not allow (services.WorkflowConflict) answers 409."""

    def handle_exception(self, exc):
        if isinstance(exc, services.WorkflowConflict):
            exc = Conflict(str(exc))
        return super().handle_exception(exc)


CONFLICT = OpenApiResponse(description="The referral's state does not allow this (JSON detail says why).")
_ID = re.compile(r"-?[0-9]+")
_BIGGEST_ID = 2**63 - 1
TRUE = ("true", "1")
FALSE = ("false", "0", "")


def flag(params, name: str) -> bool:
    """A boolean query parameter: true/1 or false/0 (or absent); anything else is a 400."""
    value = params.get(name, "").lower()
    if value not in TRUE + FALSE:
        raise exceptions.ValidationError({name: ["true or false."]})
    return value in TRUE


# --- Clinic side ------------------------------------------------------------------------------
class CaseReferralApi(TriageApiView):
    permission_classes = [IsClinicalSubmitter]

    @extend_schema(
        summary="Refer a case to a specialist",
        request=ReferralInputSerializer,
        responses={201: ReferralOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        serializer = ReferralInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        referral = services.referral_create(actor=request.user, case=case, request=request, **serializer.validated_data)
        referral = referral_list_for(user=request.user).get(pk=referral.pk)
        return Response(ReferralOutputSerializer(referral, context={"request": request}).data, status=201)


class CaseInformationApi(TriageApiView):
    permission_classes = [IsClinicalSubmitter]

    @extend_schema(
        summary="Answer a specialist's request for information (text and optional photos)",
        request={"multipart/form-data": InformationAnswerInputSerializer},
        responses={201: InformationRequestOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        photo_allowance_take(request)
        serializer = InformationAnswerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answered = services.information_answer(
            actor=request.user, case=case, request=request, **serializer.validated_data
        )
        return Response(InformationRequestOutputSerializer(answered).data, status=201)


class CaseAcknowledgeApi(TriageApiView):
    permission_classes = [IsClinicalSubmitter]

    @extend_schema(
        summary="Acknowledge the specialist's answer; the case closes and becomes read-only",
        request=CaseAcknowledgeInputSerializer,
        responses={200: CaseOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        serializer = CaseAcknowledgeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.case_acknowledge(
            actor=request.user, case=case, review_id=serializer.validated_data["review"], request=request
        )
        case = case_list_for(user=request.user).get(pk=case.pk)
        return Response(CaseOutputSerializer(case, context={"request": request}).data)


# --- Referrals --------------------------------------------------------------------------------
class ReferralListApi(TriageApiView):
    pagination_class = Pages  # so the schema documents the paginated answer

    @extend_schema(
        summary="Referrals of the clinics the user serves (specialists) or works in (clinic staff)",
        description=(
            "Without `status`, open referrals (waiting, being reviewed, waiting for the clinic) in queue "
            "order: urgent first, then overdue, then model risk, then waiting time. With `status=reviewed` "
            "or `status=all`, newest first."
        ),
        parameters=[
            OpenApiParameter("urgency", str, enum=Referral.Urgency.values),
            OpenApiParameter("clinic", int),
            OpenApiParameter("mine", bool, description="Only referrals I hold"),
            OpenApiParameter("overdue", bool, description="Only referrals past their due time"),
            OpenApiParameter("status", str, enum=[*Referral.Status.values, "all"]),
        ],
        responses=ReferralOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        referrals = referral_filter(
            request, referral_queue_for(user=request.user), referral_list_for(user=request.user)
        )
        paginator = Pages()
        page = paginator.paginate_queryset(referrals, request, view=self)
        audit_record(
            actor=request.user,
            action="referral.list",
            request=request,
            details={"query": request.query_params.urlencode()[:300], "ids": [r.pk for r in page]},
        )
        data = ReferralOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)


def referral_filter(request, queue, everything):
    """The list and queue filters shared by the API and the queue page."""
    params = request.query_params if hasattr(request, "query_params") else request.GET
    now = timezone.now()
    wanted = params.get("status")
    if wanted is None:
        referrals = queue
    elif wanted == "all":
        referrals = everything
    elif wanted == Referral.Status.REVIEWED:
        referrals = everything.filter(status=wanted)
    elif wanted == Referral.Status.OPEN:  # a claim whose lease ran out is open again
        referrals = queue.filter(workflow.open_q(now))
    elif wanted == Referral.Status.CLAIMED:
        referrals = queue.filter(workflow.live_claim_q(now))
    elif wanted == Referral.Status.INFORMATION_REQUESTED:
        referrals = queue.filter(status=wanted)
    else:
        raise exceptions.ValidationError({"status": [f"One of {', '.join(Referral.Status.values)} or all."]})
    if (urgency := params.get("urgency")) is not None:
        if urgency not in Referral.Urgency.values:
            raise exceptions.ValidationError({"urgency": ["routine or urgent."]})
        referrals = referrals.filter(urgency=urgency)
    if (clinic := params.get("clinic")) is not None:
        if not _ID.fullmatch(clinic):
            raise exceptions.ValidationError({"clinic": ["A clinic id is a number."]})
        # Any integer the schema allows; one no row can have names no clinic: an empty list.
        clinic_id = int(clinic)
        referrals = referrals.filter(clinic_id=clinic_id) if 0 < clinic_id <= _BIGGEST_ID else referrals.none()
    if flag(params, "mine"):
        referrals = referrals.filter(workflow.live_claim_q(now), claimed_by=request.user)
    if flag(params, "overdue"):
        referrals = referrals.filter(status__in=OPEN_STATUSES, due_at__lt=now)
    return referrals


def _referral(request, pk: int) -> Referral:
    return scoped_object_or_404(referral_list_for(user=request.user), pk=pk, request=request)


def _referral_response(request, referral: Referral, code: int = 200) -> Response:
    fresh = referral_list_for(user=request.user).get(pk=referral.pk)
    return Response(ReferralOutputSerializer(fresh, context={"request": request}).data, status=code)


class ReferralDetailApi(TriageApiView):
    @extend_schema(responses=ReferralOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        referral = _referral(request, pk)
        audit_record(actor=request.user, action="referral.view", obj=referral, request=request)
        return _referral_response(request, referral)


class ReferralUrgencyApi(TriageApiView):
    @extend_schema(
        summary="Change a referral's urgency (only the referring clinic can lower an urgent one)",
        request=UrgencyInputSerializer,
        responses={200: ReferralOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        referral = _referral(request, pk)
        serializer = UrgencyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.referral_urgency_change(
            actor=request.user, referral=referral, request=request, **serializer.validated_data
        )
        return _referral_response(request, referral)


class ReferralClaimApi(TriageApiView):
    permission_classes = [IsSpecialist]

    @extend_schema(
        summary="Claim a referral for review (one specialist at a time, for a lease)",
        request=None,
        responses={200: ReferralOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        referral = _referral(request, pk)
        services.referral_claim(actor=request.user, referral=referral, request=request)
        return _referral_response(request, referral)


class ReferralReleaseApi(TriageApiView):
    permission_classes = [IsSpecialistOrAdministrator]

    @extend_schema(
        summary="Hand a claimed referral back to the queue",
        request=None,
        responses={200: ReferralOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        referral = _referral(request, pk)
        services.referral_release(actor=request.user, referral=referral, request=request)
        return _referral_response(request, referral)


class ReferralReviewApi(TriageApiView):
    permission_classes = [IsSpecialist]

    @extend_schema(
        summary="Answer a referral you hold (or correct your answer before the clinic closes the case)",
        request=ReviewInputSerializer,
        responses={201: ReviewWithNoteOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        referral = _referral(request, pk)
        serializer = ReviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.review_submit(
            actor=request.user, referral=referral, request=request, **serializer.validated_data
        )
        return Response(ReviewWithNoteOutputSerializer(review, context={"request": request}).data, status=201)


class ReferralInformationRequestApi(TriageApiView):
    permission_classes = [IsSpecialist]

    @extend_schema(
        summary="Ask the clinic for more information instead of answering",
        request=MessageInputSerializer,
        responses={201: InformationRequestOutputSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        referral = _referral(request, pk)
        serializer = MessageInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        asked = services.information_request(
            actor=request.user, referral=referral, request=request, **serializer.validated_data
        )
        return Response(InformationRequestOutputSerializer(asked).data, status=201)


# --- Notifications and metrics ----------------------------------------------------------------
class NotificationListApi(TriageApiView):
    pagination_class = Pages  # so the schema documents the paginated answer

    @extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="Only unread notifications")],
        responses=NotificationOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        notifications = notification_list_for(user=request.user)
        if flag(request.query_params, "unread"):
            notifications = notifications.filter(read_at__isnull=True)
        paginator = Pages()
        page = paginator.paginate_queryset(notifications, request, view=self)
        return paginator.get_paginated_response(
            NotificationOutputSerializer(page, many=True, context={"request": request}).data
        )


class NotificationReadApi(TriageApiView):
    @extend_schema(summary="Mark a notification read", request=None, responses=NotificationOutputSerializer)
    def post(self, request: Request, pk: int) -> Response:
        notification = scoped_object_or_404(notification_list_for(user=request.user), pk=pk, request=request)
        services.notification_mark_read(actor=request.user, notification=notification)
        return Response(NotificationOutputSerializer(notification, context={"request": request}).data)


class TriageMetricsApi(TriageApiView):
    permission_classes = [IsSpecialistOrAdministrator]

    @extend_schema(
        summary="Measures of the referral service (open, overdue, time to answer, outcomes, agreement)",
        responses=MetricsOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        audit_record(actor=request.user, action="triage.metrics_view", request=request)
        return Response(service_metrics(referrals=referral_list_for(user=request.user)))
