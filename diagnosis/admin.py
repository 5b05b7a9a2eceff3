from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.services import audit_record

from .models import Case, LesionImage, Patient, Prediction


class AuditedAdmin(admin.ModelAdmin):
    """Clinical records changed in the admin leave an audit event like any other change."""

    audit_name = ""

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=f"{self.audit_name}.{'admin_change' if change else 'admin_create'}",
            obj=obj,
            request=request,
            details={"fields": sorted(form.changed_data)} if form is not None else {},
        )

    def delete_model(self, request: HttpRequest, obj) -> None:
        audit_record(
            actor=request.user,
            action=f"{self.audit_name}.admin_delete",
            obj=obj,
            request=request,
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            audit_record(
                actor=request.user,
                action=f"{self.audit_name}.admin_delete",
                obj=obj,
                request=request,
            )
        super().delete_queryset(request, queryset)


@admin.register(Patient)
class PatientAdmin(AuditedAdmin):
    audit_name = "patient"
    list_display = (
        "identifier",
        "full_name",
        "clinic",
        "date_of_birth",
        "consent_given",
        "created_at",
    )
    list_filter = ("clinic", "consent_given", "sex")
    search_fields = ("identifier", "full_name")
    raw_id_fields = ("created_by", "consent_recorded_by")
    readonly_fields = ("created_at", "updated_at")


class LesionImageInline(admin.TabularInline):
    model = LesionImage
    extra = 0
    fields = ("kind", "width", "height", "analysis_status", "analysis_attempts")
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(AuditedAdmin):
    audit_name = "case"
    list_display = (
        "id",
        "patient",
        "body_site",
        "status",
        "risk",
        "created_at",
        "referred_at",
    )
    list_filter = ("status", "risk", "body_site", "patient__clinic")
    search_fields = ("patient__identifier", "patient__full_name")
    raw_id_fields = ("patient", "submitted_by")
    list_select_related = ("patient",)
    readonly_fields = ("created_at", "updated_at", "analysed_at", "referred_at")
    inlines = (LesionImageInline,)


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    fields = ("model_version", "top_class", "inference_ms", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


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
    )
    list_filter = ("analysis_status", "kind")
    raw_id_fields = ("case", "uploaded_by")
    exclude = ("file",)
    readonly_fields = ("photo", "sha256", "width", "height", "content_type", "created_at")
    inlines = (PredictionInline,)

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
    raw_id_fields = ("image",)
    readonly_fields = ("created_at",)
