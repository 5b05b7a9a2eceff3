"""Referrals, specialists' reviews, requests for more information, and notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import formats
from django.utils.dateparse import parse_date
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Clinic
from diagnosis.models import Case
from diagnosis.vocabulary import DIAGNOSIS_LABELS, Diagnosis, class_name
from inference.classes import MALIGNANT_CLASSES


class Referral(models.Model):
    """A case sent to the specialists serving its clinic; one per case."""

    class Urgency(models.TextChoices):
        ROUTINE = "routine", _("Routine")
        URGENT = "urgent", _("Urgent (suspected cancer)")

    class Source(models.TextChoices):
        MODEL = "model", _("The model's result")
        CHECKLIST = "checklist", _("The 7-point checklist")
        CLINIC = "clinic", _("The clinic")
        # No model result: every photo, and the retake, turned back by the photo gate (analysis/safety_net.py).
        UNREADABLE = "unreadable", _("No photo the model could read")
        # A case the model did not refer, drawn for the audit sample (analysis/safety_net.py).
        AUDIT = "audit", _("Audit sample")

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting for a specialist")
        CLAIMED = "claimed", _("Being reviewed")
        INFORMATION_REQUESTED = "information_requested", _("Waiting for the clinic's answer")
        REVIEWED = "reviewed", _("Answered")

    case = models.OneToOneField(Case, verbose_name=_("case"), on_delete=models.PROTECT, related_name="referral")
    clinic = models.ForeignKey(Clinic, verbose_name=_("clinic"), on_delete=models.PROTECT, related_name="referrals")
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    urgency = models.CharField(_("urgency"), max_length=16, choices=Urgency.choices, db_index=True)
    reason = models.TextField(_("reason"), max_length=4000, blank=True)
    referred_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("referred by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="referrals_made",
    )
    referred_at = models.DateTimeField(_("referred at"), db_index=True)
    # An audit referral's probability of being drawn (SKINPORTAL_AUDIT_SAMPLE_RATE at the time):
    # its answer weighs 1 / sample_rate in the field figures (monitoring/).
    sample_rate = models.FloatField(
        _("audit sample rate"),
        null=True,
        blank=True,
        help_text=_("The share of the cases the model did not refer that was audited when this case was drawn."),
    )
    due_at = models.DateTimeField(_("answer due at"), db_index=True)
    status = models.CharField(_("status"), max_length=32, choices=Status.choices, default=Status.OPEN, db_index=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("claimed by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="referrals_claimed",
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claim_expires_at = models.DateTimeField(_("claim expires at"), null=True, blank=True)
    reviewed_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acknowledged by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-referred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="claimed", claimed_by__isnull=False, claim_expires_at__isnull=False)
                | (~Q(status="claimed") & Q(claimed_by__isnull=True)),
                name="referral_claimed_iff_holder",
            ),
            models.CheckConstraint(
                condition=Q(source="audit", sample_rate__gt=0, sample_rate__lte=1)
                | (~Q(source="audit") & Q(sample_rate__isnull=True)),
                name="referral_audit_has_sample_rate",
            ),
        ]

    def __str__(self) -> str:
        return f"Referral of case {self.case_id} ({self.get_urgency_display()}, {self.get_status_display()})"

    @property
    def is_audit(self) -> bool:
        return self.source == self.Source.AUDIT

    @property
    def latest_review(self) -> Review | None:
        """The review in force: the newest one (uses prefetch_related("reviews") when present)."""
        reviews = list(self.reviews.all())
        return max(reviews, key=lambda r: (r.created_at, r.pk)) if reviews else None


class Review(models.Model):
    """A specialist's answer. Final: a correction is a new review that supersedes it; both are kept."""

    # The model's classes, squamous cell carcinoma and "other", named in diagnosis.vocabulary.
    Diagnosis = Diagnosis

    class Outcome(models.TextChoices):
        DISCHARGE = "discharge", _("Discharge: reassure the patient")
        CLINIC_MANAGES = "clinic_manages", _("The clinic manages it, with the advice given")
        MONITOR = "monitor", _("Monitor: photograph it again later")
        ROUTINE_APPOINTMENT = "routine_appointment", _("Routine dermatology appointment")
        URGENT_APPOINTMENT = "urgent_appointment", _("Urgent dermatology appointment")
        BIOPSY = "biopsy", _("Excision or biopsy")

    referral = models.ForeignKey(Referral, verbose_name=_("referral"), on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("specialist"), on_delete=models.PROTECT, related_name="reviews_written"
    )
    diagnosis = models.CharField(_("diagnosis"), max_length=16, choices=Diagnosis.choices)
    diagnosis_text = models.CharField(_("diagnosis details"), max_length=500, blank=True)
    agrees_with_model = models.BooleanField(_("agrees with the model"))
    # What the model said when the review was written, for the agreement table.
    model_top_class = models.CharField(_("model's most likely class"), max_length=16, blank=True)
    model_version = models.CharField(_("model version"), max_length=100, blank=True)
    outcome = models.CharField(_("management"), max_length=32, choices=Outcome.choices)
    follow_up_months = models.PositiveSmallIntegerField(_("photograph again in (months)"), null=True, blank=True)
    message = models.TextField(_("message to the clinic"), max_length=4000)
    private_note = models.TextField(_("private note"), max_length=4000, blank=True)
    supersedes = models.OneToOneField(
        "self",
        verbose_name=_("corrects"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("specialist's answer")
        verbose_name_plural = _("specialist's answers")
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
        return class_name(self.model_top_class)

    @property
    def diagnosis_label(self) -> str:
        if self.diagnosis == self.Diagnosis.OTHER:
            return self.diagnosis_text
        label = self.get_diagnosis_display()
        return f"{label} ({self.diagnosis_text})" if self.diagnosis_text else label


# The seven model classes and the specialists' extra answers, in the order the agreement table shows.
DIAGNOSIS_ORDER = tuple(DIAGNOSIS_LABELS)
# The specialists' diagnoses that count as cancer in the field figures: the model's malignant
# classes and squamous cell carcinoma. "Other" (described in words) counts as not malignant.
MALIGNANT_DIAGNOSES = frozenset({*MALIGNANT_CLASSES, Review.Diagnosis.SCC.value})


class InformationRequest(models.Model):
    """A specialist asks the clinic for more (history, photos); the clinic answers once."""

    referral = models.ForeignKey(
        Referral, verbose_name=_("referral"), on_delete=models.PROTECT, related_name="information_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("asked by"), on_delete=models.PROTECT, related_name="+"
    )
    message = models.TextField(_("question"), max_length=4000)
    requested_at = models.DateTimeField(_("asked at"), auto_now_add=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("answered by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    answer = models.TextField(_("answer"), max_length=4000, blank=True)
    answer_image_ids = models.JSONField(_("photos added with the answer"), default=list, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("request for information")
        verbose_name_plural = _("requests for information")
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"Information request on case {self.referral.case_id}"


class Notification(models.Model):
    """Something a user should know about: shown in the portal and sent by email (notifications queue).

    ``params`` holds the facts the sentence needs (case number, clinic, urgency...), so the title
    and body are written at display time in the reader's language (:meth:`texts`); ``title`` and
    ``body`` keep the site-language wording, read as they are for rows made before ``params``.
    """

    class Kind(models.TextChoices):
        REFERRAL_NEW = "referral_new", _("New referral")
        REFERRAL_RETURNED = "referral_returned", _("Referral back with more information")
        REVIEW = "review", _("Specialist's answer")
        INFORMATION_REQUESTED = "information_requested", _("Specialist asks for more information")
        FOLLOW_UP_DUE = "follow_up_due", _("A lesion is due to be photographed again")
        # To administrators, from the model in the field (monitoring/alerts.py).
        FIELD_SENSITIVITY_LOW = "field_sensitivity_low", _("The model may be missing cancers in the field")
        FIELD_TURNED_BACK_HIGH = "field_turned_back_high", _("Many photos turned back by the photo gate")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    case = models.ForeignKey(
        Case, verbose_name=_("case"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    params = models.JSONField(
        _("facts"),
        default=dict,
        db_default=models.Value({}, output_field=models.JSONField()),  # rows written by older code
        blank=True,
        help_text=_("What the title and body say, written in the reader's language."),
    )
    url = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return f"{self.title} for {self.recipient_id}"

    def texts(self) -> tuple[str, str]:
        """(title, body) in the active language; the stored wording for rows without facts."""
        if self.params:
            try:
                return notification_texts(self.kind, self.params)
            except (AttributeError, KeyError, TypeError, ValueError):
                pass
        return self.title, self.body

    @property
    def display_title(self) -> str:
        return self.texts()[0]

    @property
    def display_body(self) -> str:
        return self.texts()[1]


def _label(choices, code) -> str:
    return str(choices(code).label) if code in choices.values else str(code)


def notification_texts(kind: str, params: dict) -> tuple[str, str]:
    """The title and body of a notification of ``kind`` in the active language. No patient details:
    the title is also an email's subject."""
    case = params.get("case")
    if kind == Notification.Kind.REFERRAL_NEW:
        values = {"case": case, "clinic": params["clinic"], "source": _label(Referral.Source, params["source"]).lower()}
        if params["urgency"] == Referral.Urgency.URGENT:
            title = gettext("New urgent referral (suspected cancer): case %(case)s") % values
        else:
            title = gettext("New routine referral: case %(case)s") % values
        return title, gettext("%(clinic)s referred case %(case)s (%(source)s).") % values
    if kind == Notification.Kind.REVIEW:
        values = {"case": case, "outcome": _label(Review.Outcome, params["outcome"])}
        if params.get("corrected"):
            title = gettext("Case %(case)s: the specialist's corrected answer") % values
        else:
            title = gettext("Case %(case)s: the specialist's answer") % values
        return title, gettext("Outcome: %(outcome)s.") % values
    if kind == Notification.Kind.INFORMATION_REQUESTED:
        return (
            gettext("Case %(case)s: the specialist asks for more information") % {"case": case},
            gettext("Open the case to read the question and answer it."),
        )
    if kind == Notification.Kind.REFERRAL_RETURNED:
        photos = int(params.get("photos") or 0)
        values = {"case": case, "clinic": params["clinic"], "count": photos}
        if photos:
            body = ngettext(
                "%(clinic)s sent more information and %(count)s photo.",
                "%(clinic)s sent more information and %(count)s photos.",
                photos,
            )
        else:
            body = gettext("%(clinic)s sent more information.")
        return gettext("Case %(case)s: the clinic answered your question") % values, body % values
    if kind == Notification.Kind.FOLLOW_UP_DUE:
        due_on = parse_date(params["due_on"])
        if due_on is None:
            raise ValueError(params["due_on"])
        values = {"lesion": params["lesion"], "date": formats.date_format(due_on, "j F Y")}
        return (
            gettext("Lesion %(lesion)s: a follow-up photo is due") % values,
            gettext("Due on %(date)s. Submit a new case on this lesion to complete it.") % values,
        )
    if kind == Notification.Kind.FIELD_SENSITIVITY_LOW:
        values = {
            "version": params["version"],
            "low": formats.number_format(100 * float(params["low"]), 1),
            "count": int(params["count"]),
        }
        return (
            gettext("Model %(version)s may be missing cancers in the field") % values,
            gettext(
                "The lower end of the 95%% interval of its field sensitivity is %(low)s%%, from %(count)s "
                "malignant answers; the alert level is 90%%. See the model in the field page."
            )
            % values,
        )
    if kind == Notification.Kind.FIELD_TURNED_BACK_HIGH:
        values = {
            "version": params["version"],
            "week": params["week"],
            "share": formats.number_format(100 * float(params["share"]), 1),
            "count": int(params["count"]),
            "photos": int(params["photos"]),
        }
        return (
            gettext("Week %(week)s: %(share)s%% of photos turned back by the photo gate") % values,
            gettext(
                "Model %(version)s turned back %(count)s of %(photos)s photos; the alert level is 10%%. "
                "See the model in the field page."
            )
            % values,
        )
    raise ValueError(kind)
