from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from accounts.models import Clinic
from accounts.services import audit_record
from patients.models import Patient
from patients.services import patient_consent_record

from .models import Case, LesionImage
from .services import patient_clinic_move


def _plain(value):
    """A value as the audit log keeps it (JSON): model instances by primary key, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return getattr(value, "pk", None) if hasattr(value, "_meta") else str(value)


def _administrator(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_administrator", False))


class AuditedAdmin(admin.ModelAdmin):
    """Clinical records in the admin: administrators only, every read and change audited.

    The admin does not go through the user-scoped selectors, so it is closed to everyone who
    may not see every clinic's records, whatever model permissions their account was given.
    """

    audit_name = ""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _administrator(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _administrator(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _administrator(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return _administrator(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return _administrator(request) and super().has_delete_permission(request, obj)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_record(
                actor=request.user,
                action=f"{self.audit_name}.admin_list",
                request=request,
                details={"query": request.GET.urlencode()[:500]},
            )
        return response

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, unquote(object_id))
            audit_record(actor=request.user, action=f"{self.audit_name}.admin_view", obj=obj, request=request)
        return response

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        fields = sorted(form.changed_data) if form is not None else []
        before = type(obj).objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        changes = {
            field: {"old": _plain(getattr(before, field, None)) if before else None, "new": _plain(getattr(obj, field))}
            for field in fields
            if hasattr(obj, field)
        }
        audit_record(
            actor=request.user,
            action=f"{self.audit_name}.{'admin_change' if change else 'admin_create'}",
            obj=obj,
            request=request,
            details={"fields": fields, "changes": changes},
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


class PatientActionForm(ActionForm):
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.filter(is_active=True), required=False)


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
    raw_id_fields = ("created_by",)
    # Whose patient it is and their consent change only through the services (the actions
    # below): a move is refused while a specialist handles one of the patient's cases, and
    # consent is recorded with who and when.
    readonly_fields = (
        "clinic",
        "consent_given",
        "consent_recorded_by",
        "consent_recorded_at",
        "created_by",
        "created_at",
        "updated_at",
    )
    action_form = PatientActionForm
    actions = ("move_to_clinic", "consent_given_record", "consent_withdrawn_record")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a patient's records are kept

    def _each(self, request: HttpRequest, queryset, step, done: str) -> None:
        changed = 0
        for patient in queryset:
            try:
                step(patient)
                changed += 1
            except (ValidationError, PermissionDenied) as exc:
                reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"{patient.identifier}: {reason}", level=messages.ERROR)
        if changed:
            self.message_user(request, done % {"count": changed})

    @admin.action(description="Move the selected patients to the clinic chosen above")
    def move_to_clinic(self, request: HttpRequest, queryset) -> None:
        chosen = request.POST.get("clinic", "")
        clinic = Clinic.objects.filter(pk=int(chosen), is_active=True).first() if chosen.isdigit() else None
        if clinic is None:
            self.message_user(request, "Choose the clinic to move the patients to.", level=messages.ERROR)
            return
        self._each(
            request,
            queryset,
            lambda patient: patient_clinic_move(actor=request.user, patient=patient, clinic=clinic, request=request),
            "%(count)s patient(s) moved.",
        )

    @admin.action(description="Record that the selected patients gave consent")
    def consent_given_record(self, request: HttpRequest, queryset) -> None:
        self._each(
            request,
            queryset,
            lambda p: patient_consent_record(actor=request.user, patient=p, consent_given=True, request=request),
            "Consent recorded for %(count)s patient(s).",
        )

    @admin.action(description="Record that the selected patients withdrew consent")
    def consent_withdrawn_record(self, request: HttpRequest, queryset) -> None:
        self._each(
            request,
            queryset,
            lambda p: patient_consent_record(actor=request.user, patient=p, consent_given=False, request=request),
            "Withdrawal of consent recorded for %(count)s patient(s).",
        )


class LesionImageInline(admin.TabularInline):
    model = LesionImage
    extra = 0
    fields = ("kind", "width", "height", "analysis_status", "analysis_attempts", "withdrawn_at")
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def get_queryset(self, request: HttpRequest):
        return LesionImage.all_objects.all()  # withdrawn photos too: the record is whole here

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
    list_select_related = ("patient",)
    # The workflow's fields change only through its services (diagnosis.transitions, the
    # analysis, the referral workflow), never by hand here: status, risk and the result are
    # read-only, and so is whose case it is.
    readonly_fields = (
        "patient",
        "submitted_by",
        "status",
        "risk",
        "summary",
        "summary_facts",
        "created_at",
        "updated_at",
        "analysed_at",
        "referred_at",
        "awaiting_photo_since",
        "closed_reason",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # cases are submitted by clinic staff, with photos, through case_submit

    inlines = (LesionImageInline,)
