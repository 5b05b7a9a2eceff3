"""Cases, lesions, lesion images and model predictions (the patient is patients.models.Patient)."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Clinic
from inference.gate import MESSAGES as GATE_MESSAGES
from patients.models import Patient

from .vocabulary import (
    ABCDE_SIGNS,
    CASE_SIGNS,
    CHECKLIST_REFERRAL_SCORE,
    HISTORY_SIGNS,
    SEVEN_POINT_CHECKLIST,
    SIGN_FIELDS,
)

GATE_CHOICES = [
    ("ok", _("Passed")),
    ("not_skin", _("Not skin")),
    ("not_a_lesion", _("Not a lesion")),
    ("blurred", _("Blurred")),
    ("too_dark", _("Too dark")),
    ("overexposed", _("Overexposed")),
]
assert {code for code, _label in GATE_CHOICES[1:]} == set(GATE_MESSAGES)


class Case(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        ANALYSING = "analysing", _("Analysing")
        ANALYSED = "analysed", _("Analysed")
        FAILED = "failed", _("Analysis failed")
        REFERRED = "referred", _("Referred to specialist")
        UNDER_REVIEW = "under_review", _("Under specialist review")
        INFORMATION_REQUESTED = "information_requested", _("More information requested")
        REVIEWED = "reviewed", _("Reviewed")
        CLOSED = "closed", _("Closed")

    class BodySite(models.TextChoices):
        # HAM10000 "localization" values, stored exactly as the dataset spells them.
        ABDOMEN = "abdomen", _("Abdomen")
        ACRAL = "acral", _("Acral (palms, soles, nails)")
        BACK = "back", _("Back")
        CHEST = "chest", _("Chest")
        EAR = "ear", _("Ear")
        FACE = "face", _("Face")
        FOOT = "foot", _("Foot")
        GENITAL = "genital", _("Genital")
        HAND = "hand", _("Hand")
        LOWER_EXTREMITY = "lower extremity", _("Lower extremity (leg)")
        NECK = "neck", _("Neck")
        SCALP = "scalp", _("Scalp")
        TRUNK = "trunk", _("Trunk")
        UPPER_EXTREMITY = "upper extremity", _("Upper extremity (arm)")
        UNKNOWN = "unknown", _("Unknown")

    class Duration(models.TextChoices):
        UNDER_1_MONTH = "under_1_month", _("Under 1 month")
        MONTHS_1_6 = "1_6_months", _("1–6 months")
        MONTHS_6_12 = "6_12_months", _("6–12 months")
        OVER_1_YEAR = "over_1_year", _("Over 1 year")
        UNKNOWN = "unknown", _("Unknown")

    class Risk(models.TextChoices):
        NONE = "", _("Not assessed")
        LOW = "low", _("Low")
        MODERATE = "moderate", _("Moderate")
        HIGH = "high", _("High")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cases")
    # The lesion this case photographs; a new case starts one or continues one of the patient's.
    lesion = models.ForeignKey("Lesion", on_delete=models.PROTECT, related_name="cases")
    body_site = models.CharField(_("body site"), max_length=20, choices=BodySite.choices)
    duration = models.CharField(_("duration"), max_length=20, choices=Duration.choices, default=Duration.UNKNOWN)
    # One boolean per sign ticked (recently_changed, abcde_border, ...): added below from
    # vocabulary.CASE_SIGNS, where the form, the API and the pages read them too.
    diameter_mm = models.PositiveSmallIntegerField(
        _("largest diameter (mm)"), null=True, blank=True, validators=[MaxValueValidator(500)]
    )
    notes = models.TextField(_("notes"), blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="cases_submitted",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status = models.CharField(
        _("status"), max_length=32, choices=Status.choices, default=Status.SUBMITTED, db_index=True
    )
    risk = models.CharField(_("risk"), max_length=10, choices=Risk.choices, blank=True)
    summary = models.TextField(blank=True)  # in English; pages show summary_facts in the reader's language
    summary_facts = models.JSONField(
        _("summary facts"),
        default=list,
        db_default=models.Value([], output_field=models.JSONField()),  # rows written by older code
        blank=True,
        help_text=_("The risk summary as data (inference/risk.py), written in the reader's language when shown."),
    )
    analysed_at = models.DateTimeField(null=True, blank=True)
    referred_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set when the photo gate turned back every photo and the case has no model result; cleared
    # when a photo gives a result. Such a case never goes silent (analysis/safety_net.py): a
    # retake turned back again, or SKINPORTAL_UNREADABLE_AFTER_HOURS, refers it to a specialist
    # unless the clinic closes it with a reason.
    awaiting_photo_since = models.DateTimeField(
        _("waiting for a new photo since"), null=True, blank=True, db_index=True
    )
    closed_reason = models.TextField(
        _("reason for closing"),
        max_length=1000,
        blank=True,
        help_text=_("Why the clinic closed the case without a result."),
    )

    # What the clinic records about the lesion besides its photos.
    HISTORY_FIELDS: tuple[str, ...] = ("duration", *SIGN_FIELDS, "diameter_mm")
    # Weighted 7-point checklist (NICE NG12): a score of this or more is referred as urgent.
    CHECKLIST_REFERRAL_SCORE = CHECKLIST_REFERRAL_SCORE

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.get_body_site_display()}, {self.get_status_display()})"

    @property
    def shown_status(self) -> str:
        """The status a reader sees: once referred, derived from the referral by the app that owns
        it (a specialist's claim whose lease ran out reads "referred", as its referral reads open)."""
        from .extensions import case_status_shown

        return case_status_shown(self)

    def get_shown_status_display(self) -> str:
        return str(self.Status(self.shown_status).label)

    @property
    def clinic(self) -> Clinic:
        return self.patient.clinic

    @property
    def awaiting_photo(self) -> bool:
        """No model result because every photo was turned back or failed: the clinic is asked for a new one."""
        return self.status == self.Status.FAILED and self.awaiting_photo_since is not None

    @property
    def checklist_findings(self) -> list[str]:
        """The weighted 7-point checklist items present, with their points, in plain words."""
        return [f"{item.name} ({item.points})" for item in SEVEN_POINT_CHECKLIST if item.present(self)]

    @property
    def checklist_score(self) -> int:
        """Weighted 7-point checklist: 2 points per major item, 1 per minor item (0-10)."""
        return sum(item.points for item in SEVEN_POINT_CHECKLIST if item.present(self))

    @property
    def history_signs(self) -> list[tuple[str, bool]]:
        """(label, ticked) for the patient's history, as the case page and the letter list it."""
        return [(str(sign.shown), getattr(self, sign.field)) for sign in HISTORY_SIGNS]

    @property
    def abcde_signs_seen(self) -> list[str]:
        """The ABCDE signs ticked, by name."""
        return [str(sign.shown) for sign in ABCDE_SIGNS if getattr(self, sign.field)]


for _sign in CASE_SIGNS:
    Case.add_to_class(_sign.field, models.BooleanField(_sign.verbose_name, default=False))
del _sign


class Lesion(models.Model):
    """One lesion of a patient, followed over visits: each case is a visit that photographs it."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lesions")
    body_site = models.CharField(_("body site"), max_length=20, choices=Case.BodySite.choices)
    label = models.CharField(
        _("label"),
        max_length=100,
        blank=True,
        help_text=_('A short name the clinic gives it, e.g. "mole left shoulder".'),
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        site = self.get_body_site_display()
        if self.label:
            return f"{self.label} ({site})"
        return _("Lesion %(number)s (%(site)s)") % {"number": self.pk, "site": site}


def lesion_upload_to(instance: LesionImage, filename: str) -> str:
    """A random name under lesions/: the uploader's file name is never stored."""
    suffix = PurePosixPath(filename).suffix.lower() or ".jpg"
    return f"lesions/{uuid.uuid4().hex}{suffix}"


def heatmap_upload_to(instance: Prediction, filename: str) -> str:
    """A random name under heatmaps/, marked ``-layer`` for a transparent layer stored as PNG."""
    path = PurePosixPath(filename)
    marker = "-layer" if path.stem == "layer" else ""
    return f"heatmaps/{uuid.uuid4().hex}{marker}{path.suffix.lower() or '.png'}"


class ShownImageManager(models.Manager):
    """Photos not withdrawn."""

    def get_queryset(self):
        return super().get_queryset().filter(withdrawn_at__isnull=True)


class LesionImage(models.Model):
    class Kind(models.TextChoices):
        OVERVIEW = "overview", _("Overview")
        CLOSE_UP = "close_up", _("Close-up")
        DERMOSCOPIC = "dermoscopic", _("Dermoscopic")

    class AnalysisStatus(models.TextChoices):
        QUEUED = "queued", _("Queued")
        ANALYSING = "analysing", _("Analysing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=lesion_upload_to, max_length=255)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.OVERVIEW)
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    content_type = models.CharField(max_length=50)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="images_uploaded",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    analysis_status = models.CharField(
        _("analysis status"),
        max_length=20,
        choices=AnalysisStatus.choices,
        default=AnalysisStatus.QUEUED,
        db_index=True,
    )
    analysis_error = models.TextField(blank=True)
    analysis_attempts = models.PositiveIntegerField(default=0)
    analysis_started_at = models.DateTimeField(null=True, blank=True)
    analysis_updated_at = models.DateTimeField(null=True, blank=True)
    # An administrator withdrew the photo from a reviewed case (services.image_withdraw): the
    # row, its file and its predictions are kept for the record, but nothing shown counts it.
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("withdrawn by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    withdrawn_reason = models.TextField(_("reason for withdrawing"), max_length=1000, blank=True)

    # The photos that count: every read through the default manager (``case.images``, the
    # selectors, prefetches) leaves withdrawn ones out; ``all_objects`` keeps them (admin, files).
    all_objects = models.Manager()
    objects = ShownImageManager()

    class Meta:
        ordering = ["created_at", "id"]
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(withdrawn_at__isnull=True) | ~models.Q(withdrawn_reason=""),
                name="image_withdrawn_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"Image {self.pk} of case {self.case_id}"

    @property
    def current_prediction(self) -> Prediction | None:
        """The latest prediction; uses prefetch_related("predictions") when present."""
        predictions = list(self.predictions.all())
        if not predictions:
            return None
        return max(predictions, key=lambda p: (p.created_at, p.pk))

    @property
    def current_result(self) -> Prediction | None:
        """The latest prediction when the photo gate let the photo through: a turned-back photo has no result."""
        prediction = self.current_prediction
        return None if prediction is None or prediction.rejected else prediction

    @property
    def turned_back(self) -> bool:
        """The photo gate turned the latest analysis of this photo back (a retake is needed)."""
        prediction = self.current_prediction
        return prediction is not None and prediction.rejected


class Prediction(models.Model):
    image = models.ForeignKey(LesionImage, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.CharField(max_length=100)
    probabilities = models.JSONField(help_text="Class code -> probability, summing to 1.")
    top_class = models.CharField(max_length=16, help_text="The most likely class (calibrated argmax).")
    balanced_class = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="The class the photo resembles most relative to how common it is; blank before model v2.",
    )
    artifact_sha256 = models.CharField(
        max_length=64, blank=True, default="", help_text="Hash of the model artifact that scored the photo."
    )
    inference_ms = models.FloatField()
    heatmap = models.FileField(upload_to=heatmap_upload_to, max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The photo gate (inference/gate.py): "ok", or why the model must not be read on this photo.
    # A turned-back photo keeps its probabilities here for the record and for analysis, but they
    # are never shown as a result and never count toward the case's risk.
    gate = models.CharField(max_length=20, choices=GATE_CHOICES, default="ok")
    gate_score = models.FloatField(null=True, blank=True, help_text="Out-of-domain score; higher is less lesion-like.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "model_version"],
                name="prediction_unique_per_model_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.top_class} for image {self.image_id} ({self.model_version})"

    @property
    def heatmap_is_layer(self) -> bool:
        """A transparent layer to lay over the photo (``-layer.png``, or ``.webp`` from earlier
        versions), not a photo with the map blended in (``.png``, the first version)."""
        return bool(self.heatmap) and self.heatmap.name.endswith((".webp", "-layer.png"))

    @property
    def rejected(self) -> bool:
        return self.gate != "ok"

    @property
    def gate_message(self) -> str:
        """Why the photo gate turned the photo back, in the active language."""
        from .summary import gate_message

        return gate_message(self.gate)


class IdempotencyRecord(models.Model):
    """The first answer to a submission sent with an Idempotency-Key header.

    The same key from the same user within diagnosis.idempotency.KEY_LIFETIME gets this
    answer again instead of a second case; see diagnosis/idempotency.py.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request's fields and files.")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(default=dict)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.key} by {self.user_id}"
