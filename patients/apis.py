"""REST API v1 of patients: list and register, read, record or withdraw consent.

Every patient is fetched through ``patient_list_for``, so another clinic's patient (and, for a
specialist, any patient) is a 404; every read and write leaves an audit event.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import ReadsOrClinicalSubmitter, can_submit_clinical_records
from accounts.services import audit_record
from clinics.selectors import clinic_list_for
from skinportal.access import scoped_object_or_404
from skinportal.api import ApiView, Pages

from .selectors import patient_list_for
from .serializers import PatientConsentInputSerializer, PatientInputSerializer, PatientOutputSerializer
from .services import patient_consent_record, patient_create


# --- Patients ------------------------------------------------------------------------------
class PatientListCreateApi(ApiView):
    permission_classes = [ReadsOrClinicalSubmitter]
    pagination_class = Pages  # so the schema documents the paginated answer

    @extend_schema(
        parameters=[OpenApiParameter("search", str, description="Identifier or name contains")],
        responses=PatientOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        patients = patient_list_for(user=request.user)
        search = request.query_params.get("search", "").strip()
        if "\x00" in search:  # PostgreSQL refuses NUL in a string: a 500 unless caught here
            raise exceptions.ValidationError({"search": ["Null characters are not allowed."]})
        if search:
            patients = patients.filter(Q(identifier__icontains=search) | Q(full_name__icontains=search))
        paginator = Pages()
        page = paginator.paginate_queryset(patients, request, view=self)
        audit_record(
            actor=request.user,
            action="patient.list",
            request=request,
            details={"search": search, "ids": [patient.pk for patient in page]},
        )
        return paginator.get_paginated_response(PatientOutputSerializer(page, many=True).data)

    @extend_schema(request=PatientInputSerializer, responses={201: PatientOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = PatientInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        clinic = _clinic_for_new_patient(request.user, data.pop("clinic", None))
        patient = patient_create(actor=request.user, clinic=clinic, request=request, **data)
        return Response(PatientOutputSerializer(patient).data, status=status.HTTP_201_CREATED)


def _clinic_for_new_patient(user, clinic_id: int | None):
    clinics = clinic_list_for(user=user)
    if clinic_id is None:
        only = list(clinics[:2])
        if len(only) != 1:
            raise exceptions.ValidationError({"clinic": ["Choose the clinic: you work in more than one (or none)."]})
        return only[0]
    clinic = clinics.filter(pk=clinic_id).first()
    if clinic is None:
        raise exceptions.ValidationError({"clinic": ["Unknown clinic."]})
    return clinic


class PatientDetailApi(ApiView):
    @extend_schema(responses=PatientOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
        audit_record(actor=request.user, action="patient.view", obj=patient, request=request)
        return Response(PatientOutputSerializer(patient).data)


class PatientConsentApi(ApiView):
    @extend_schema(
        summary="Record or withdraw a patient's consent",
        description=(
            "Records that the patient has given consent (true) or withdrawn it (false), with who "
            "recorded it and when. For staff of the patient's clinic and administrators; a patient "
            "the user cannot see is a 404, one they can see but may not change a 403."
        ),
        request=PatientConsentInputSerializer,
        responses={200: PatientOutputSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
        # Checked before the body, so a specialist learns nothing from a validation error.
        if not can_submit_clinical_records(request.user):
            raise exceptions.PermissionDenied(_("Only clinic staff and administrators can record consent."))
        serializer = PatientConsentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        patient = patient_consent_record(
            actor=request.user,
            patient=patient,
            consent_given=serializer.validated_data["consent_given"],
            request=request,
        )
        return Response(PatientOutputSerializer(patient).data)
