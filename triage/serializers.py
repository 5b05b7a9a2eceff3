"""API serializers of the referral workflow: input and output kept separate.

Private notes are in ``ReferralOutputSerializer`` for specialists and administrators only;
clinic staff never receive them.
"""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.language import supported
from skinportal.text import CleanTextValidator

from .models import InformationRequest, Notification, Referral, Review
from .selectors import effective_status, is_overdue


class ReferralInputSerializer(serializers.Serializer):
    urgency = serializers.ChoiceField(choices=Referral.Urgency.choices)
    reason = serializers.CharField(
        max_length=4000, validators=[CleanTextValidator(multiline=True)], help_text="Why the clinic refers the case."
    )


class UrgencyInputSerializer(serializers.Serializer):
    urgency = serializers.ChoiceField(choices=Referral.Urgency.choices)
    reason = serializers.CharField(
        max_length=2000,
        validators=[CleanTextValidator(multiline=True)],
        required=False,
        allow_blank=True,
        default="",
        help_text="Why the urgency changes; required to lower a referral the model made urgent.",
    )
    confirmed = serializers.BooleanField(
        required=False,
        default=False,
        help_text="True to confirm lowering a referral the model made urgent (a suspected cancer) to routine.",
    )


class ReviewInputSerializer(serializers.Serializer):
    diagnosis = serializers.ChoiceField(choices=Review.Diagnosis.choices)
    diagnosis_text = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        validators=[CleanTextValidator()],
    )
    agrees_with_model = serializers.BooleanField()
    outcome = serializers.ChoiceField(choices=Review.Outcome.choices)
    follow_up_months = serializers.IntegerField(
        min_value=1,
        max_value=60,
        required=False,
        allow_null=True,
        default=None,
        help_text="Required for monitor; refused for any other outcome.",
    )
    message = serializers.CharField(
        max_length=4000,
        validators=[CleanTextValidator(multiline=True)],
        help_text="What the clinic should know and do.",
    )
    private_note = serializers.CharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        default="",
        validators=[CleanTextValidator(multiline=True)],
        help_text="Never shown to the clinic.",
    )

    # The answer's rules (monitor needs months, other outcomes refuse them, "other" is described)
    # are triage.workflow.review_rules_check, applied by the service; its errors are the API's 400.


class MessageInputSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=4000, validators=[CleanTextValidator(multiline=True)])


class CaseAcknowledgeInputSerializer(serializers.Serializer):
    review = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="The id of the answer the clinic read (the case's `review.id`). If the specialist corrected "
        "the answer since, the acknowledgement is refused (409): read the correction first.",
    )


class InformationAnswerInputSerializer(serializers.Serializer):
    message = serializers.CharField(
        max_length=4000, required=False, allow_blank=True, default="", validators=[CleanTextValidator(multiline=True)]
    )
    images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False), required=False, default=list
    )
    image_kinds = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ReviewOutputSerializer(serializers.ModelSerializer):
    """A review as the clinic reads it: no private note."""

    reviewer = serializers.CharField(source="reviewer.display_name", read_only=True)
    outcome_display = serializers.CharField(source="get_outcome_display", read_only=True)
    diagnosis_display = serializers.CharField(source="diagnosis_label", read_only=True)
    supersedes = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The answer this one corrects; null for a first answer."
    )

    class Meta:
        model = Review
        fields = (
            "id",
            "reviewer",
            "diagnosis",
            "diagnosis_text",
            "diagnosis_display",
            "agrees_with_model",
            "model_top_class",
            "model_version",
            "outcome",
            "outcome_display",
            "follow_up_months",
            "message",
            "supersedes",
            "created_at",
        )
        read_only_fields = fields


class ReviewWithNoteOutputSerializer(ReviewOutputSerializer):
    # Not read-only so that the schema lists it as optional: a referral's ``review`` carries it
    # for specialists and administrators only (ReferralOutputSerializer.get_review).
    private_note = serializers.CharField(
        required=False, help_text="The specialist's own note; shown to specialists and administrators only."
    )

    class Meta(ReviewOutputSerializer.Meta):
        fields = (*ReviewOutputSerializer.Meta.fields, "private_note")
        read_only_fields = fields


class InformationRequestOutputSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    answered_by = serializers.CharField(source="answered_by.username", read_only=True, allow_null=True)

    class Meta:
        model = InformationRequest
        fields = (
            "id",
            "message",
            "requested_by",
            "requested_at",
            "answer",
            "answer_image_ids",
            "answered_by",
            "answered_at",
        )
        read_only_fields = fields


class ReferralOutputSerializer(serializers.ModelSerializer):
    """A referral; ``review`` is the review in force, with the private note for specialists only."""

    status = serializers.SerializerMethodField()
    claimed_by = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    information_requests = InformationRequestOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Referral
        fields = (
            "id",
            "case",
            "clinic",
            "urgency",
            "source",
            "reason",
            "sample_rate",
            "status",
            "claimed_by",
            "claim_expires_at",
            "referred_at",
            "due_at",
            "overdue",
            "reviewed_at",
            "acknowledged_at",
            "review",
            "information_requests",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=Referral.Status.choices))
    def get_status(self, referral: Referral) -> str:
        return effective_status(referral)

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text="Who holds the claim; null when no one does.")
    )
    def get_claimed_by(self, referral: Referral) -> str | None:
        if effective_status(referral) != Referral.Status.CLAIMED:
            return None
        return referral.claimed_by.username

    def get_overdue(self, referral: Referral) -> bool:
        return is_overdue(referral)

    @extend_schema_field(ReviewWithNoteOutputSerializer(allow_null=True))
    def get_review(self, referral: Referral) -> dict | None:
        review = referral.latest_review
        if review is None:
            return None
        user = getattr(self.context.get("request"), "user", None)
        with_note = bool(user and (user.is_specialist or user.is_administrator))
        serializer = ReviewWithNoteOutputSerializer if with_note else ReviewOutputSerializer
        return serializer(review, context=self.context).data


class CaseReferralSerializer(ReferralOutputSerializer):
    """The referral inside a case response (the review is its own field there)."""

    class Meta(ReferralOutputSerializer.Meta):
        fields = tuple(name for name in ReferralOutputSerializer.Meta.fields if name not in ("review", "case"))
        read_only_fields = fields


def _referral_of(case):
    try:
        return case.referral
    except Referral.DoesNotExist:
        return None


@extend_schema_field(CaseReferralSerializer(allow_null=True))
class _CaseReferralField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, case):
        referral = _referral_of(case)
        return None if referral is None else CaseReferralSerializer(referral, context=self.context).data


@extend_schema_field(ReviewOutputSerializer(allow_null=True))
class _CaseReviewField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, case):
        referral = _referral_of(case)
        review = referral.latest_review if referral is not None else None
        return None if review is None else ReviewOutputSerializer(review, context=self.context).data


def case_referral_field() -> serializers.Field:
    return _CaseReferralField(help_text="The case's referral, or null.")


def case_review_field() -> serializers.Field:
    return _CaseReviewField(help_text="The specialist's answer in force (without the private note), or null.")


class NotificationOutputSerializer(serializers.ModelSerializer):
    title = serializers.SerializerMethodField(help_text="In the language of the request (the user's choice).")
    body = serializers.SerializerMethodField(help_text="In the language of the request (the user's choice).")
    unread = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ("id", "kind", "case", "title", "body", "url", "created_at", "read_at", "unread")
        read_only_fields = fields

    def _texts(self, notification: Notification) -> tuple[str, str]:
        """In the reader's own language when they chose one (an API token's request carries no
        session for the language middleware to read), else the request's."""
        request = self.context.get("request")
        code = supported(getattr(getattr(request, "user", None), "language", ""))
        if code is None:
            return notification.texts()
        with translation.override(code):
            return notification.texts()

    def get_title(self, notification: Notification) -> str:
        return self._texts(notification)[0]

    def get_body(self, notification: Notification) -> str:
        return self._texts(notification)[1]

    def get_unread(self, notification: Notification) -> bool:
        return notification.read_at is None


class _OpenCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    urgent = serializers.IntegerField()
    routine = serializers.IntegerField()
    overdue = serializers.IntegerField()
    waiting_for_clinic = serializers.IntegerField()


class _AgreementRowSerializer(serializers.Serializer):
    diagnosis = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="model top class -> count")


class _AgreementSerializer(serializers.Serializer):
    model_classes = serializers.ListField(child=serializers.CharField())
    rows = _AgreementRowSerializer(many=True)
    agree = serializers.IntegerField()
    total = serializers.IntegerField()


class MetricsOutputSerializer(serializers.Serializer):
    """GET /api/v1/triage/metrics/ (documentation of triage.metrics.service_metrics)."""

    window_days = serializers.IntegerField()
    open = _OpenCountsSerializer()
    answered = serializers.IntegerField()
    answered_within_target = serializers.IntegerField()
    hours_to_answer_median = serializers.FloatField(allow_null=True)
    hours_to_answer_p90 = serializers.FloatField(allow_null=True)
    outcomes = serializers.DictField(child=serializers.IntegerField())
    agreement = _AgreementSerializer()
