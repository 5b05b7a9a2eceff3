"""Output of ``GET /api/v1/triage/model-performance/`` (documented in the schema)."""

from __future__ import annotations

from rest_framework import serializers


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="The weighted share; null: not enough answers yet.")
    low = serializers.FloatField(allow_null=True, help_text="Lower end of the 95% interval.")
    high = serializers.FloatField(allow_null=True, help_text="Upper end of the 95% interval.")
    answers = serializers.IntegerField(help_text="Specialists' answers in the denominator.")
    weighted = serializers.FloatField(help_text="The cases they stand for (audited answers weigh 1 / audit rate).")
    enough = serializers.BooleanField(help_text="False: not enough answers yet (the value is not 0%).")


class FiguresSerializer(serializers.Serializer):
    sensitivity = EstimateSerializer(help_text="Malignant answers the model referred.")
    specificity = EstimateSerializer(help_text="Other answers the model did not refer.")
    agreement = EstimateSerializer(help_text="Answers whose diagnosis is the model's most likely class.")
    answers = serializers.IntegerField()
    malignant_answers = serializers.IntegerField()
    audited_answers = serializers.IntegerField()


class GroupFiguresSerializer(FiguresSerializer):
    group = serializers.CharField(help_text="dermoscopic / not_dermoscopic; I-VI / unknown; the clinic's id.")
    label = serializers.CharField()


class VersionFiguresSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    audit_rate = serializers.FloatField(allow_null=True, help_text="The lowest audit rate among its audited answers.")
    overall = FiguresSerializer()
    by_photo_kind = GroupFiguresSerializer(many=True)
    by_skin_type = GroupFiguresSerializer(many=True)
    by_clinic = GroupFiguresSerializer(many=True)


class WeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="The Monday the week starts on.")
    iso_week = serializers.CharField()
    photos = serializers.IntegerField()
    turned_back = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    by_reason = serializers.DictField(child=serializers.IntegerField(), help_text="gate reason -> photos")


class TurnedBackSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    weeks = WeekSerializer(many=True)


class LeftOutSerializer(serializers.Serializer):
    no_result = serializers.IntegerField(help_text="Answered cases with no model result (no photo it could read).")
    clinic = serializers.IntegerField(help_text="Answered cases the clinic referred although the model did not.")


class ModelPerformanceOutputSerializer(serializers.Serializer):
    method = serializers.CharField()
    min_answers = serializers.IntegerField()
    versions = VersionFiguresSerializer(many=True)
    left_out = LeftOutSerializer()
    turned_back = TurnedBackSerializer(many=True)
