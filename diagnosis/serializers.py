"""REST API serializers: input and output kept separate."""

from __future__ import annotations

import copy
from contextlib import nullcontext

from django.urls import reverse
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.language import supported
from inference.gate import MESSAGES as GATE_MESSAGES
from skinportal.text import NOTES_MAX_LENGTH, CleanTextValidator

from . import extensions
from .models import Case, LesionImage, Prediction
from .summary import case_summary
from .vocabulary import CASE_SIGNS

# --- Cases ---------------------------------------------------------------------------------
# The history and signs ticked (diagnosis.vocabulary.CASE_SIGNS), each false unless sent.
CaseSignsSerializer = type(
    "CaseSignsSerializer",
    (serializers.Serializer,),
    {sign.field: serializers.BooleanField(required=False, default=False) for sign in CASE_SIGNS},
)


class CaseInputSerializer(CaseSignsSerializer):
    patient = serializers.IntegerField()
    body_site = serializers.ChoiceField(choices=Case.BodySite.choices)
    duration = serializers.ChoiceField(choices=Case.Duration.choices, required=False, default=Case.Duration.UNKNOWN)
    diameter_mm = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=500, help_text="Largest diameter in mm."
    )
    notes = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=NOTES_MAX_LENGTH,
        validators=[CleanTextValidator(multiline=True)],
        help_text=f"At most {NOTES_MAX_LENGTH} characters.",
    )
    lesion = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**63 - 1,
        help_text="One of the patient's lesions this case continues; omitted: the case starts a new lesion.",
    )
    lesion_label = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        validators=[CleanTextValidator()],
        help_text="A short name for a new lesion.",
    )
    # Files are judged by decoding in photos.uploads, so empty ones get its message.
    images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        help_text="One or more photos (JPEG, PNG or HEIC), repeated in the field 'images'.",
    )
    image_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=LesionImage.Kind.choices),
        required=False,
        default=list,
        help_text="Optional kind per image, in the same order; missing ones are 'overview'.",
    )


class CasePhotosInputSerializer(serializers.Serializer):
    """New photos for an existing case: a retake after the photo gate turned one back."""

    images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        help_text="One or more photos (JPEG, PNG or HEIC), repeated in the field 'images'.",
    )
    image_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=LesionImage.Kind.choices),
        required=False,
        default=list,
        help_text="Optional kind per image, in the same order; missing ones are 'overview'.",
    )


class FieldsBuiltOnce:
    """A ModelSerializer reads its model to build its fields on every instance: for an output
    serializer made per request, per photo and per prediction, that was a large share of the
    web process's time. The fields are built once per class and copied for each instance
    (a copy is a fresh, unbound field, as DRF makes for declared fields)."""

    def get_fields(self):
        built = type(self).__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            type(self)._fields_built = built
        return copy.deepcopy(built)


class PredictionOutputSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="'rejected' when the photo gate turned the photo back (no result), else the photo's analysis status."
    )
    reason = serializers.SerializerMethodField(help_text="Why the photo was turned back (gate reason code), or null.")
    message = serializers.SerializerMethodField(help_text="What the clinic should do with a turned-back photo.")
    probabilities = serializers.SerializerMethodField(help_text="Class code -> probability; null for a rejected photo.")
    top_class = serializers.SerializerMethodField(help_text="Most likely class; null for a rejected photo.")
    balanced_class = serializers.SerializerMethodField(
        help_text="Most likely class relative to its training prevalence; null for a rejected photo."
    )
    heatmap_url = serializers.SerializerMethodField()
    heatmap_layer = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = (
            "status",
            "reason",
            "message",
            "model_version",
            "probabilities",
            "top_class",
            "balanced_class",
            "artifact_sha256",
            "inference_ms",
            "created_at",
            "heatmap_url",
            "heatmap_layer",
        )
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_status(self, prediction: Prediction) -> str:
        return "rejected" if prediction.rejected else prediction.image.analysis_status

    @extend_schema_field(serializers.ChoiceField(choices=list(GATE_MESSAGES), allow_null=True))
    def get_reason(self, prediction: Prediction) -> str | None:
        return prediction.gate if prediction.rejected else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_message(self, prediction: Prediction) -> str | None:
        if not prediction.rejected:
            return None
        with readers_language(self.context):
            return prediction.gate_message

    @extend_schema_field(serializers.DictField(child=serializers.FloatField(), allow_null=True))
    def get_probabilities(self, prediction: Prediction) -> dict | None:
        return None if prediction.rejected else prediction.probabilities

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_top_class(self, prediction: Prediction) -> str | None:
        return None if prediction.rejected else prediction.top_class

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_balanced_class(self, prediction: Prediction) -> str | None:
        return None if prediction.rejected else prediction.balanced_class

    @extend_schema_field(
        serializers.URLField(allow_null=True, help_text="The heatmap overlay; null when there is none.")
    )
    def get_heatmap_url(self, prediction: Prediction) -> str | None:
        if not prediction.heatmap:
            return None
        return _absolute(self.context, "diagnosis:image-heatmap", prediction.image_id)

    @extend_schema_field(
        serializers.BooleanField(
            allow_null=True,
            help_text=(
                "True: the heatmap is a transparent layer the size of the photo, to lay over it (a PNG with "
                "transparency; WebP from earlier versions); false: the photo with the map blended in (the first "
                "model version's heatmaps); null when there is no heatmap."
            ),
        )
    )
    def get_heatmap_layer(self, prediction: Prediction) -> bool | None:
        return prediction.heatmap_is_layer if prediction.heatmap else None


class ImageOutputSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()

    class Meta:
        model = LesionImage
        fields = (
            "id",
            "url",
            "width",
            "height",
            "kind",
            "analysis_status",
            "analysis_error",
            "prediction",
        )
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, image: LesionImage) -> str:
        return _absolute(self.context, "diagnosis:image-file", image.pk)

    @extend_schema_field(PredictionOutputSerializer(allow_null=True))
    def get_prediction(self, image: LesionImage) -> dict | None:
        prediction = image.current_prediction
        if prediction is None:
            return None
        prediction.image = image  # already loaded: no query for image.analysis_status
        return PredictionOutputSerializer(prediction, context=self.context).data


class CaseOutputSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    """A case with its photos and results; apps built on diagnosis add fields (diagnosis.extensions)."""

    clinic = serializers.IntegerField(source="patient.clinic_id", read_only=True)
    images = ImageOutputSerializer(many=True, read_only=True)
    checklist_score = serializers.IntegerField(
        read_only=True, help_text="Weighted 7-point checklist score (0-10); 3 or more is referred as urgent."
    )
    summary = serializers.CharField(
        read_only=True, help_text="The risk summary in English, as written by the analysis."
    )
    summary_facts = serializers.JSONField(
        read_only=True, help_text='The risk summary as data: a list of {"code", "params"} (inference/risk.py).'
    )
    summary_text = serializers.SerializerMethodField(
        help_text="The risk summary in the requesting user's language (their chosen language, else English)."
    )
    awaiting_photo = serializers.BooleanField(
        read_only=True,
        help_text=(
            "Every photo was turned back by the photo gate or could not be scored, and the case has no result: it "
            "waits for a new photo, and is referred to a specialist if none can be read (or closed by the clinic "
            "with a reason)."
        ),
    )

    @extend_schema_field(serializers.CharField())
    def get_summary_text(self, case: Case) -> str:
        with readers_language(self.context):
            return case_summary(case)

    status = serializers.ChoiceField(
        source="shown_status",
        choices=Case.Status.choices,
        read_only=True,
        help_text="The case's progress; once referred, as its referral reads (a claim whose lease ran out: referred).",
    )

    def get_fields(self):
        fields = super().get_fields()
        for name, factory in extensions.CASE_OUTPUT_FIELDS.items():
            fields[name] = factory()
        return fields

    class Meta:
        model = Case
        fields = (
            "id",
            "patient",
            "lesion",
            "clinic",
            "status",
            "body_site",
            "created_at",
            "updated_at",
            "risk",
            "summary",
            "summary_facts",
            "summary_text",
            "analysed_at",
            "referred_at",
            "awaiting_photo",
            "awaiting_photo_since",
            "closed_reason",
            *Case.HISTORY_FIELDS,
            "checklist_score",
            "notes",
            "images",
        )
        read_only_fields = fields


def readers_language(context: dict):
    """The requesting user's own language for the text a person reads (the request's language
    when they have not chosen one): API clients sign in after the language middleware has run."""
    request = context.get("request")
    code = supported(getattr(getattr(request, "user", None), "language", ""))
    return translation.override(code) if code else nullcontext()


def _absolute(context: dict, view_name: str, pk: int) -> str:
    path = reverse(view_name, args=[pk])
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class CaseCloseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=1000,
        validators=[CleanTextValidator(multiline=True)],
        help_text="Why the case is closed without a model result (required, audited).",
    )
