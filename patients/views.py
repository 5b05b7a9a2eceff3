"""The patient pages: registration, corrections, consent.

The list (with each patient's number of cases) and the patient's own page (with their cases)
belong to ``diagnosis.views``; after a change these pages return to the patient's page by its
route name, ``web:patient-detail`` (the web UI's routes are in ``diagnosis/web_urls.py``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import can_submit_clinical_records
from accounts.services import audit_record
from clinics.selectors import clinic_list_for
from skinportal.access import scoped_object_or_404
from skinportal.web import add_service_errors, private_no_store

from .forms import CONSENT_WORDING, PatientConsentForm, PatientEditForm, PatientForm
from .selectors import patient_list_for
from .services import PATIENT_EDITABLE_FIELDS, patient_consent_record, patient_create, patient_update


@private_no_store
@login_required
@require_http_methods(["GET", "POST"])
def patient_create_view(request: HttpRequest) -> HttpResponse:
    clinics = clinic_list_for(user=request.user)
    if not clinics.exists():
        raise PermissionDenied(_("Only clinic staff and administrators register patients."))
    form = PatientForm(request.POST or None, clinics=clinics)
    if request.method == "POST" and form.is_valid():
        try:
            patient = patient_create(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("%(name)s is registered.") % {"name": patient.full_name})
            return redirect("web:patient-detail", pk=patient.pk)
    existing = None
    if form.is_bound and form.has_error("identifier", code="unique"):
        existing = _same_number_patient(request, form.cleaned_data.get("clinic"), form.data.get("identifier", ""))
    return render(
        request,
        "patients/patient_form.html",
        {"form": form, "consent_wording": CONSENT_WORDING, "existing_patient": existing},
    )


def _same_number_patient(request: HttpRequest, clinic, identifier: str):
    """The patient already registered under this number, if the user may see them (for a link)."""
    if clinic is None:
        return None
    return patient_list_for(user=request.user).filter(clinic=clinic, identifier=identifier.strip()).first()


@private_no_store
@login_required
@require_http_methods(["GET", "POST"])
def patient_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a patient's details; every change is audited with its old and new value."""
    patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Only clinic staff and administrators change patient details."))
    initial = {field: getattr(patient, field) for field in PATIENT_EDITABLE_FIELDS}
    form = PatientEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            patient_update(actor=request.user, patient=patient, request=request, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("The patient's details are saved."))
            return redirect("web:patient-detail", pk=patient.pk)
    if request.method == "GET":
        audit_record(
            actor=request.user, action="patient.view", obj=patient, request=request, details={"page": "patient-edit"}
        )
    existing = None
    if form.is_bound and form.has_error("identifier", code="unique"):
        existing = _same_number_patient(request, patient.clinic, form.data.get("identifier", ""))
    return render(
        request,
        "patients/patient_edit.html",
        {"form": form, "patient": patient, "existing_patient": existing},
    )


@private_no_store
@login_required
@require_POST
def patient_consent_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Record or withdraw the patient's consent (the buttons on the patient page)."""
    patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Only clinic staff and administrators record consent."))
    form = PatientConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose whether to record or to withdraw consent."))
        return redirect("web:patient-detail", pk=patient.pk)
    consent_given = form.cleaned_data["consent_given"]
    if not consent_given and request.POST.get("confirm") != "yes":
        # Withdrawing is asked again on a page of its own, never one tap.
        return render(request, "patients/patient_consent_withdraw.html", {"patient": patient})
    try:
        patient_consent_record(actor=request.user, patient=patient, consent_given=consent_given, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if consent_given:
            messages.success(request, _("Consent is recorded for %(name)s.") % {"name": patient.full_name})
        else:
            messages.success(
                request,
                _("Consent is withdrawn for %(name)s; no new case can be submitted for them.")
                % {"name": patient.full_name},
            )
    return redirect("web:patient-detail", pk=patient.pk)
