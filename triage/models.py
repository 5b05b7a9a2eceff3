"""Referrals, specialists' reviews, requests for more information, and notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Clinic
from diagnosis.models import Case
from inference.preprocessing import CLASS_NAMES, CLASSES


class Referral(models.Model):
    """A case sent to the specialists serving its clinic; one per case."""

    class Urgency(models.TextChoices):
        ROUTINE = "routine", "Routine"
        URGENT = "urgent", "Urgent (suspected cancer)"

    class Source(models.TextChoices):
        MODEL = "model", "The model's result"
        CHECKLIST = "checklist", "The 7-point checklist"
        CLINIC = "clinic", "The clinic"

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for a specialist"
        CLAIMED = "claimed", "Being reviewed"
        INFORMATION_REQUESTED = "information_requested", "Waiting for the clinic's answer"
        REVIEWED = "reviewed", "Answered"

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="referral")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="referrals")
    source = models.CharField(max_length=16, choices=Source.choices)
    urgency = models.CharField(max_length=16, choices=Urgency.choices, db_index=True)
    reason = models.TextField(max_length=4000, blank=True)
    referred_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals_made"
    )
    referred_at = models.DateTimeField(db_index=True)
    due_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.OPEN, db_index=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="referrals_claimed"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-referred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="claimed", claimed_by__isnull=False, claim_expires_at__isnull=False)
                | (~Q(status="claimed") & Q(claimed_by__isnull=True)),
                name="referral_claimed_iff_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"Referral of case {self.case_id} ({self.get_urgency_display()}, {self.get_status_display()})"

    @property
    def latest_review(self) -> Review | None:
        """The review in force: the newest one (uses prefetch_related("reviews") when present)."""
        reviews = list(self.reviews.all())
        return max(reviews, key=lambda r: (r.created_at, r.pk)) if reviews else None


class Review(models.Model):
    """A specialist's answer. Final: a correction is a new review that supersedes it; both are kept."""

    class Diagnosis(models.TextChoices):
        AKIEC = "akiec", CLASS_NAMES["akiec"]
        BCC = "bcc", CLASS_NAMES["bcc"]
        BKL = "bkl", CLASS_NAMES["bkl"]
        DF = "df", CLASS_NAMES["df"]
        MEL = "mel", CLASS_NAMES["mel"]
        NV = "nv", CLASS_NAMES["nv"]
        VASC = "vasc", CLASS_NAMES["vasc"]
        SCC = "scc", "Squamous cell carcinoma"
        OTHER = "other", "Other (described)"

    class Outcome(models.TextChoices):
        DISCHARGE = "discharge", "Discharge: reassure the patient"
        CLINIC_MANAGES = "clinic_manages", "The clinic manages it, with the advice given"
        MONITOR = "monitor", "Monitor: photograph it again later"
        ROUTINE_APPOINTMENT = "routine_appointment", "Routine dermatology appointment"
        URGENT_APPOINTMENT = "urgent_appointment", "Urgent dermatology appointment"
        BIOPSY = "biopsy", "Excision or biopsy"

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_written")
    diagnosis = models.CharField(max_length=16, choices=Diagnosis.choices)
    diagnosis_text = models.CharField(max_length=500, blank=True)
    agrees_with_model = models.BooleanField()
    # What the model said when the review was written, for the agreement table.
    model_top_class = models.CharField(max_length=16, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices)
    follow_up_months = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField(max_length=4000)
    private_note = models.TextField(max_length=4000, blank=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(outcome="monitor") & Q(follow_up_months__gte=1) & Q(follow_up_months__lte=60))
                | (~Q(outcome="monitor") & Q(follow_up_months__isnull=True)),
                name="review_follow_up_only_for_monitor",
            ),
            models.CheckConstraint(
                condition=~Q(diagnosis="other") | ~Q(diagnosis_text=""),
                name="review_other_diagnosis_described",
            ),
        ]

    def __str__(self) -> str:
        return f"Review of case {self.referral.case_id}: {self.diagnosis}, {self.outcome}"

    @property
    def model_top_class_name(self) -> str:
        return CLASS_NAMES.get(self.model_top_class, self.model_top_class)

    @property
    def diagnosis_label(self) -> str:
        if self.diagnosis == self.Diagnosis.OTHER:
            return self.diagnosis_text
        label = self.get_diagnosis_display()
        return f"{label} ({self.diagnosis_text})" if self.diagnosis_text else label


# The seven model classes and the specialists' extra answers, in the order the agreement table shows.
DIAGNOSIS_ORDER = (*CLASSES, "scc", "other")


class InformationRequest(models.Model):
    """A specialist asks the clinic for more (history, photos); the clinic answers once."""

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="information_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    message = models.TextField(max_length=4000)
    requested_at = models.DateTimeField(auto_now_add=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answer = models.TextField(max_length=4000, blank=True)
    answer_image_ids = models.JSONField(default=list, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"Information request on case {self.referral.case_id}"


class Notification(models.Model):
    """Something a user should know about: shown in the portal and sent by email (notifications queue)."""

    class Kind(models.TextChoices):
        REFERRAL_NEW = "referral_new", "New referral"
        REFERRAL_RETURNED = "referral_returned", "Referral back with more information"
        REVIEW = "review", "Specialist's answer"
        INFORMATION_REQUESTED = "information_requested", "Specialist asks for more information"
        FOLLOW_UP_DUE = "follow_up_due", "A lesion is due to be photographed again"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return f"{self.title} for {self.recipient_id}"
