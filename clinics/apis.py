"""GET /api/v1/clinics/ and GET /api/v1/clinics/{id}/uv/: the user's clinics and today's UV index.

Another clinic is a 404, as everywhere in the API.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Clinic

from .selectors import clinic_list_for
from .uv import BANDS, ESTIMATE, FORECAST, clinic_uv


class ClinicOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Clinic
        fields = ["id", "name", "latitude", "longitude"]


class UVOutputSerializer(serializers.Serializer):
    uv_index_now = serializers.FloatField()
    uv_index_max_today = serializers.FloatField()
    band = serializers.ChoiceField(choices=[code for _upper, code, _label in BANDS])
    band_label = serializers.CharField()
    advice = serializers.CharField()
    source = serializers.ChoiceField(choices=[FORECAST, ESTIMATE])
    computed_at = serializers.DateTimeField()


class _Private(APIView):
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response.setdefault("Cache-Control", "private, no-store")
        return response


class ClinicListApi(_Private):
    @extend_schema(responses=ClinicOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ClinicOutputSerializer(clinic_list_for(user=request.user), many=True).data)


class ClinicUVApi(_Private):
    @extend_schema(
        summary="Today's UV index at the clinic",
        description=(
            "The UV index now and today's maximum, the WHO band of the maximum and the WHO "
            "sun-protection advice for it. source is `forecast` (Open-Meteo) or "
            "`clear-sky-estimate` (computed from the sun's position when the forecast cannot "
            "be reached). 404 for a clinic the user does not belong to, or one with no location."
        ),
        responses=UVOutputSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        clinic = get_object_or_404(clinic_list_for(user=request.user), pk=pk)
        reading = clinic_uv(clinic)
        if reading is None:
            return Response({"detail": _("The clinic has no location.")}, status=404)
        return Response(UVOutputSerializer(reading.as_dict()).data)
