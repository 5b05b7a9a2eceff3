"""Admin for the photos and the model's predictions: read-only, never deleted; a photo of an
answered case is withdrawn through ``services.image_withdraw`` (kept and audited)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from diagnosis.admin import AuditedAdmin
from diagnosis.models import LesionImage, Prediction

from .services import image_withdraw


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    fields = ("model_version", "top_class", "inference_ms", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LesionImageActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=1000, help_text="Why the photo is withdrawn (required).")


@admin.register(LesionImage)
class LesionImageAdmin(AuditedAdmin):
    audit_name = "image"
    list_display = (
        "id",
        "case",
        "kind",
        "width",
        "height",
        "analysis_status",
        "analysis_attempts",
        "created_at",
        "withdrawn_at",
    )
    list_filter = ("analysis_status", "kind")
    exclude = ("file",)
    action_form = LesionImageActionForm
    actions = ("withdraw",)
    # Withdrawing goes through services.image_withdraw (the action below), never by hand.
    readonly_fields = (
        "withdrawn_at",
        "withdrawn_by",
        "withdrawn_reason",
        "case",
        "uploaded_by",
        "photo",
        "sha256",
        "width",
        "height",
        "content_type",
        "analysis_status",
        "analysis_error",
        "analysis_attempts",
        "analysis_started_at",
        "analysis_updated_at",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A photo is part of the clinical record (a case's risk, a specialist's answer rest on it).
        return False

    inlines = (PredictionInline,)

    def get_queryset(self, request: HttpRequest):
        # Withdrawn photos stay in the record: the admin lists them, nothing else counts them.
        return LesionImage.all_objects.select_related("case")

    @admin.action(description="Withdraw the selected photos (reviewed cases; give the reason above)")
    def withdraw(self, request: HttpRequest, queryset) -> None:
        reason = request.POST.get("reason", "")
        withdrawn = 0
        for image in queryset:
            try:
                image_withdraw(actor=request.user, image=image, reason=reason, request=request)
                withdrawn += 1
            except (ValidationError, PermissionDenied) as exc:
                why = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"Photo {image.pk}: {why}", level=messages.ERROR)
        if withdrawn:
            self.message_user(request, f"{withdrawn} photo(s) withdrawn.")

    @admin.display(description="Photo")
    def photo(self, image: LesionImage) -> str:
        # Stored files are private: link the access-checked, audited view, not MEDIA_URL.
        if image.pk is None:
            return "-"
        return format_html('<a href="{}">open photo</a>', reverse("diagnosis:image-file", args=[image.pk]))


@admin.register(Prediction)
class PredictionAdmin(AuditedAdmin):
    audit_name = "prediction"
    list_display = (
        "id",
        "image",
        "model_version",
        "top_class",
        "inference_ms",
        "created_at",
    )
    list_filter = ("model_version", "top_class")

    # A prediction is the model's output: nobody edits or adds one by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the model's output is part of the clinical record
