"""REST API serializers of continuity of care (output only: these endpoints read)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from diagnosis.models import Lesion
from diagnosis.serializers import CaseOutputSerializer

from .models import FollowUp


class FollowUpOutputSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="lesion.patient_id", read_only=True)
    from_review = serializers.IntegerField(source="review_id", read_only=True)
    case = serializers.IntegerField(source="review.referral.case_id", read_only=True, help_text="The reviewed case.")
    overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = FollowUp
        fields = ("id", "lesion", "patient", "due_on", "overdue", "status", "from_review", "case", "notified_at")
        read_only_fields = fields


class LesionOutputSerializer(serializers.ModelSerializer):
    case_count = serializers.SerializerMethodField()
    follow_up = serializers.SerializerMethodField()

    class Meta:
        model = Lesion
        fields = ("id", "patient", "body_site", "label", "created_at", "case_count", "follow_up")
        read_only_fields = fields

    def get_case_count(self, lesion: Lesion) -> int:
        return len(self.context["cases_by_lesion"].get(lesion.pk, ()))

    @extend_schema_field(FollowUpOutputSerializer(allow_null=True))
    def get_follow_up(self, lesion: Lesion) -> dict | None:
        follow_up = self.context["follow_ups"].get(lesion.pk)
        return None if follow_up is None else FollowUpOutputSerializer(follow_up, context=self.context).data


class LesionDetailOutputSerializer(LesionOutputSerializer):
    cases = serializers.SerializerMethodField()

    class Meta(LesionOutputSerializer.Meta):
        fields = (*LesionOutputSerializer.Meta.fields, "cases")
        read_only_fields = fields

    @extend_schema_field(CaseOutputSerializer(many=True))
    def get_cases(self, lesion: Lesion) -> list[dict]:
        """The lesion's cases the user may see, oldest first."""
        return CaseOutputSerializer(
            self.context["cases_by_lesion"].get(lesion.pk, ()), many=True, context=self.context
        ).data
