"""The patient pages: the list and search, registration, corrections, consent.

The patient's own page, which lists their cases, is ``diagnosis.views.patient_detail``; the
routes of all of them are in ``diagnosis/web_urls.py`` (namespace "web").
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import can_submit_clinical_records
from accounts.services import audit_record
from clinics.selectors import clinic_list_for
from skinportal.access import scoped_object_or_404
from skinportal.web import add_service_errors, private_no_store, shows_clinic

from .disclosure import sees_patient_identity
from .forms import CONSENT_WORDING, PatientConsentForm, PatientEditForm, PatientForm, PatientSearchForm
from .selectors import patient_list_for
from .services import PATIENT_EDITABLE_FIELDS, patient_consent_record, patient_create, patient_update

PATIENTS_PER_PAGE = 25


@private_no_store
@login_required
@require_GET
def patient_list(request: HttpRequest) -> HttpResponse:
    if not sees_patient_identity(request.user):
        raise Http404  # specialists have no patient records (patients.disclosure)
    # Aggregating drops the model's default ordering, so it is given again for paging.
    patients = patient_list_for(user=request.user).annotate(case_count=Count("cases")).order_by("-created_at", "-pk")
    search = PatientSearchForm(request.GET)
    search_valid = search.is_valid()
    if search_valid:
        query = search.cleaned_data["q"]
        if query:
            patients = patients.filter(Q(identifier__icontains=query) | Q(full_name__icontains=query))
    else:
        # E.g. a NUL character, which PostgreSQL refuses in a query: nothing is searched or
        # audited, and the form says why.
        query = ""
        patients = patients.none()
    page = Paginator(patients, PATIENTS_PER_PAGE).get_page(request.GET.get("page"))
    if search_valid:
        audit_record(
            actor=request.user,
            action="patient.list",
            request=request,
            details={"search": query, "ids": [patient.pk for patient in page]},
        )
    return render(
        request,
        "patients/patient_list.html",
        {
            "page": page,
            "query": query,
            "search_errors": search.errors.get("q", []),
            "can_create": clinic_list_for(user=request.user).exists(),
            "show_clinic": shows_clinic(request.user),
        },
        status=200 if search_valid else 400,
    )


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
