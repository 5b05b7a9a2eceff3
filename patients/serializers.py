"""REST API v1 serializers of patients."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.fields import empty

from skinportal.text import CleanTextValidator

from .models import Patient


# --- Patients ------------------------------------------------------------------------------
class ExplicitBooleanField(serializers.BooleanField):
    """true or false only: JSON booleans, or the words "true"/"false" in a form.

    DRF's BooleanField also takes "yes", "on", "1" and 1; for a recorded consent the client
    must say exactly what it means.
    """

    default_error_messages = {"invalid": "Must be true or false."}
    # DRF reads a boolean missing from a form as false (an unticked box); for a recorded consent
    # a missing field is a missing answer, never a "no".
    default_empty_html = empty

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid")


class PatientInputSerializer(serializers.Serializer):
    clinic = serializers.IntegerField(required=False, help_text="Optional when you work in exactly one clinic.")
    identifier = serializers.CharField(max_length=64, validators=[CleanTextValidator()])
    full_name = serializers.CharField(max_length=200, validators=[CleanTextValidator()])
    date_of_birth = serializers.DateField(input_formats=["%Y-%m-%d"])
    sex = serializers.ChoiceField(choices=Patient.Sex.choices)
    skin_type = serializers.ChoiceField(choices=Patient.SkinType.choices, required=False, allow_blank=True, default="")
    phone = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default="", validators=[CleanTextValidator()]
    )
    village = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", validators=[CleanTextValidator()]
    )
    consent_given = ExplicitBooleanField(
        help_text="Consent to photograph the lesion and share it for analysis. "
        "A case can only be submitted for a patient who has consented."
    )


class PatientConsentInputSerializer(serializers.Serializer):
    consent_given = ExplicitBooleanField(
        help_text="true: the patient has now given consent to photograph the lesion and share it for "
        "analysis. false: the patient has withdrawn it; no new case can be submitted for them."
    )


class PatientOutputSerializer(serializers.ModelSerializer):
    clinic_name = serializers.CharField(source="clinic.name", read_only=True)
    # "" when not recorded: part of the documented values.
    skin_type = serializers.ChoiceField(
        choices=[("", "Not recorded"), *Patient.SkinType.choices], read_only=True, help_text="Fitzpatrick phototype"
    )

    class Meta:
        model = Patient
        fields = (
            "id",
            "clinic",
            "clinic_name",
            "identifier",
            "full_name",
            "date_of_birth",
            "sex",
            "skin_type",
            "phone",
            "village",
            "consent_given",
            "consent_recorded_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
