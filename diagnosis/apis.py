"""REST API v1 of cases and their photos, and the access-checked image files (patients: ``patients/apis.py``).

The base every endpoint builds on (exception handler, parsers, ``ApiView``, ``Pages``) is
skinportal/api.py.

Every object is fetched through a user-scoped selector, so another clinic's record is a
404; every read and write leaves an audit event.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import ReadsOrClinicalSubmitter
from accounts.services import audit_record
from patients.selectors import patient_list_for
from photos.uploads import upload_allowance_take
from skinportal.access import scoped_object_or_404
from skinportal.api import ApiView, Pages

from . import extensions, idempotency, polling, selectors, services
from .models import Case
from .selectors import case_list_for, image_list_for, lesion_list_for
from .serializers import (
    CaseCloseInputSerializer,
    CaseInputSerializer,
    CaseOutputSerializer,
    CasePhotosInputSerializer,
)
from .services import case_photos_add, case_submit
from .transitions import CASE_AWAITING_RESULT

logger = logging.getLogger(__name__)


# --- Errors --------------------------------------------------------------------------------
class IdempotencyKeyConflict(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency_key_reused"


# --- Cases ---------------------------------------------------------------------------------
_ID = re.compile(r"-?[0-9]+")
_BIGGEST_ID = 2**63 - 1


def photo_allowance_take(request: Request) -> None:
    """Count the request's photos against the user's hourly allowance; 429 with Retry-After beyond it."""
    wait = upload_allowance_take(user=request.user, photos=len(request.FILES.getlist("images")))
    if wait is not None:
        raise exceptions.Throttled(wait, "Too many photos sent in the last hour.")


class CaseListCreateApi(ApiView):
    permission_classes = [ReadsOrClinicalSubmitter]
    pagination_class = Pages  # so the schema documents the paginated answer

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Case.Status.values),
            OpenApiParameter("patient", int),
            OpenApiParameter(
                "needs_attention",
                bool,
                description=(
                    "true: only cases waiting for a photo the model can read (every photo turned back, no "
                    "result); they are referred as unreadable unless a usable photo comes or the clinic closes them"
                ),
            ),
        ],
        responses=CaseOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        cases = case_list_for(user=request.user)
        if (status_filter := request.query_params.get("status")) is not None:
            if status_filter not in Case.Status.values:
                known = ", ".join(Case.Status.values)
                raise exceptions.ValidationError({"status": [f"Unknown status; one of {known}."]})
            cases = cases.filter(status=status_filter)
        if patient_filter := request.query_params.get("patient"):
            # ASCII digits only ("²".isdigit() is true).
            if not _ID.fullmatch(patient_filter):
                raise exceptions.ValidationError({"patient": ["A patient id is a number."]})
            # Any integer the schema allows: one no row can have (negative, or past the
            # database's 64-bit ids) names no patient, so the list is empty.
            patient_id = int(patient_filter)
            cases = cases.filter(patient_id=patient_id) if 0 < patient_id <= _BIGGEST_ID else cases.none()
        needs_attention = request.query_params.get("needs_attention", "").lower()
        if needs_attention not in ("", "true", "false", "1", "0"):
            raise exceptions.ValidationError({"needs_attention": ["true or false."]})
        if needs_attention in ("true", "1"):
            cases = selectors.case_list_awaiting_photo(cases)
        paginator = Pages()
        page = paginator.paginate_queryset(cases, request, view=self)
        audit_record(
            actor=request.user,
            action="case.list",
            request=request,
            details={"ids": [case.pk for case in page]},
        )
        data = CaseOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        request={"multipart/form-data": CaseInputSerializer},
        parameters=[
            OpenApiParameter(
                idempotency.HEADER,
                str,
                location=OpenApiParameter.HEADER,
                description=(
                    "Optional, 1 to 255 visible ASCII characters (a UUID). The same key from the same "
                    "user within 24 hours returns the first response (the same case) and creates "
                    "nothing; the same key with a different request is a 422."
                ),
            )
        ],
        responses={201: CaseOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        key = idempotency.key_from(request)
        if key is None:
            status_code, body, case = self._submit(request)
            # The ETag a poll of the case would get now, so the first poll can wait (diagnosis/polling.py).
            etag = polling.submitted_case_etag(request=request, case=case, images=case.images.all(), kind="api-case")
            return Response(body, status=status_code, headers={"ETag": etag})
        if not isinstance(request.data, Mapping):  # a JSON list or number: nothing to fingerprint or submit
            raise exceptions.ParseError("The request body must be an object of the case's fields.")
        fingerprint = idempotency.request_fingerprint(scope="api", data=request.data, files=request.FILES)
        try:
            answer = idempotency.submission_once(
                user=request.user, key=key, fingerprint=fingerprint, create=lambda: self._submit(request)
            )
        except idempotency.IdempotencyKeyReused:
            raise IdempotencyKeyConflict() from None
        response = Response(answer.body, status=answer.status_code)
        if answer.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    def _submit(self, request: Request) -> tuple[int, dict, Case]:
        # A replay of an earlier submission does not count against the hourly photo allowance.
        photo_allowance_take(request)
        serializer = CaseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        patient = patient_list_for(user=request.user).filter(pk=data.pop("patient")).first()
        if patient is None:
            raise exceptions.ValidationError({"patient": ["Unknown patient."]})
        if (lesion_id := data.pop("lesion", None)) is not None:
            # A lesion the user cannot see (another clinic's) is a 404; another patient's, a 400.
            data["lesion"] = scoped_object_or_404(lesion_list_for(user=request.user), pk=lesion_id, request=request)
        case = case_submit(actor=request.user, patient=patient, request=request, **data)
        # The response is built from the rows just written, with no query to read them back.
        extensions.case_created(case)
        # Through the JSON renderer's encoder and back, so a replay is the same document.
        body = json.loads(JSONRenderer().render(CaseOutputSerializer(case, context={"request": request}).data))
        return status.HTTP_201_CREATED, body, case


class CaseDetailApi(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                str,
                location=OpenApiParameter.HEADER,
                description=(
                    "While the case awaits its result (submitted, analysing) its answer carries an ETag; "
                    "send it back to poll: 304 with no body while nothing changed."
                ),
            ),
            OpenApiParameter(
                "Prefer",
                str,
                location=OpenApiParameter.HEADER,
                description=(
                    "`wait=N` with If-None-Match: a long poll. While the case awaits its result the server "
                    "answers as soon as it changes, or 304 after N seconds (at most "
                    "SKINPORTAL_POLL_MAX_WAIT_SECONDS, default 20)."
                ),
            ),
        ],
        responses={200: CaseOutputSerializer, 304: None},
    )
    def get(self, request: Request, pk: int) -> Response:
        # A poll while the photos are analysed: one small query, and 304 while nothing changed.
        # Only then: later, a referral's own changes (urgency, claim) are not in the version.
        etag, version = polling.result_etag(request=request, pk=pk, kind="api-case")
        wait = polling.wait_requested(request)
        if wait and version is not None and version[0] in CASE_AWAITING_RESULT:
            # A long poll: answer when the result moves, or with 304 when the wait runs out.
            etag, version = polling.wait_for_change(
                request,
                pk=pk,
                kind="api-case",
                etag=etag,
                version=version,
                seconds=wait,
                while_status_in=CASE_AWAITING_RESULT,
            )
        if version is None or version[0] not in CASE_AWAITING_RESULT:
            etag = None
        if polling.unchanged(request, etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        audit_record(actor=request.user, action="case.view", obj=case, request=request)
        response = Response(CaseOutputSerializer(case, context={"request": request}).data)
        if etag is not None:
            response["ETag"] = etag
        return response


class CaseCloseApi(ApiView):
    """Close a case waiting for a photo the model can read, with a reason: it is then not referred."""

    permission_classes = [ReadsOrClinicalSubmitter]

    @extend_schema(
        summary="Close a case waiting for a new photo, with a reason (clinic staff)",
        description=(
            "Only a case whose photos were all turned back by the photo gate or could not be scored, and that "
            "has no result (`awaiting_photo`), can be closed this way; any other case answers 400. Audited with "
            "the reason."
        ),
        request=CaseCloseInputSerializer,
        responses={200: CaseOutputSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        serializer = CaseCloseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.case_awaiting_photo_close(
            actor=request.user, case=case, reason=serializer.validated_data["reason"], request=request
        )
        case = case_list_for(user=request.user).get(pk=case.pk)
        return Response(CaseOutputSerializer(case, context={"request": request}).data)


class CasePhotosAddApi(ApiView):
    """Add photos to a case (a retake after the photo gate turned one back); they are analysed as usual."""

    permission_classes = [ReadsOrClinicalSubmitter]

    @extend_schema(
        request={"multipart/form-data": CasePhotosInputSerializer},
        responses={201: CaseOutputSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
        photo_allowance_take(request)
        serializer = CasePhotosInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case_photos_add(
            actor=request.user,
            case=case,
            images=serializer.validated_data["images"],
            image_kinds=serializer.validated_data["image_kinds"],
            request=request,
        )
        case = case_list_for(user=request.user).get(pk=case.pk)
        return Response(CaseOutputSerializer(case, context={"request": request}).data, status=status.HTTP_201_CREATED)


# --- Image files ---------------------------------------------------------------------------
class _AnyAccept(BaseContentNegotiation):
    """File views answer with the file whatever the Accept header says."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _private_file_response(field_file, content_type: str, download_name: str) -> FileResponse:
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    response = FileResponse(handle, content_type=content_type, filename=download_name)
    response["Content-Disposition"] = f'inline; filename="{download_name}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class ImageFileApi(ApiView):
    """GET /media/lesions/<image_id>/: the stored photo, for users who may see its case."""

    content_negotiation_class = _AnyAccept

    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request: Request, image_id: int) -> FileResponse:
        image = scoped_object_or_404(image_list_for(user=request.user), pk=image_id, request=request)
        audit_record(actor=request.user, action="image.view", obj=image, request=request)
        suffix = PurePosixPath(image.file.name).suffix
        return _private_file_response(image.file, image.content_type, f"lesion-{image.pk}{suffix}")


class ImageHeatmapApi(ApiView):
    """GET /media/lesions/<image_id>/heatmap/: the latest prediction's heatmap overlay."""

    content_negotiation_class = _AnyAccept

    @extend_schema(responses={(200, "image/webp"): bytes, (200, "image/png"): bytes})
    def get(self, request: Request, image_id: int) -> FileResponse:
        image = scoped_object_or_404(image_list_for(user=request.user), pk=image_id, request=request)
        prediction = image.current_prediction
        if prediction is None or not prediction.heatmap:
            raise Http404("No heatmap for this image.")
        audit_record(
            actor=request.user,
            action="image.heatmap_view",
            obj=image,
            request=request,
            details={
                "prediction": prediction.pk,
                "model_version": prediction.model_version,
            },
        )
        suffix = PurePosixPath(prediction.heatmap.name).suffix or ".png"
        content_type = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(suffix, "image/png")
        return _private_file_response(prediction.heatmap, content_type, f"lesion-{image.pk}-heatmap{suffix}")
