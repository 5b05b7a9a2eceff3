"""The server-rendered web UI: dashboard, patients, cases with their result, the model page.

Views stay thin: every read goes through the user-scoped selectors (someone else's record
is a 404), every write through a service, and every page that shows a patient or a case
leaves an audit event.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from PIL import Image, UnidentifiedImageError

from accounts.services import audit_record
from inference.preprocessing import CLASS_NAMES, CLASSES, MALIGNANT_CLASSES
from inference.risk import UNCERTAIN_BELOW

from .analysis import CASE_AWAITING_RESULT, case_reanalyse
from .analysis import PENDING as PENDING_IMAGES
from .forms import CONSENT_WORDING, CaseForm, PatientConsentForm, PatientForm, PatientSearchForm
from .models import Case, LesionImage
from .permissions import can_submit_clinical_records
from .selectors import case_list_for, clinics_for, image_list_for, patient_list_for
from .services import case_photos_add, case_submit, patient_consent_record, patient_create

logger = logging.getLogger(__name__)

RECENT_CASES = 20
PATIENTS_PER_PAGE = 25
REVIEW_QUEUE_STATUSES = (Case.Status.REFERRED, Case.Status.UNDER_REVIEW)
REPORT_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")
# Long side in pixels of the scaled copies lists and the result card show: a thumbnail
# costs a few KB instead of the stored photo's few hundred on a weak connection.
PREVIEW_SIZES = frozenset({160, 800})


def private_no_store(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For every page that shows patient data: kept in no browser or proxy cache.

    Sets the header outright (not merged) so nothing upstream can leave a max-age beside
    it; the REST API sends the same value (diagnosis.apis.PrivateResponses).
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Cache-Control"] = "private, no-store"
        return response

    return wrapped


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("x-requested-with") == "XMLHttpRequest"


# --- Dashboard -------------------------------------------------------------------------------
@private_no_store
@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    cases = case_list_for(user=user)
    context: dict = {"can_submit": can_submit_clinical_records(user)}
    if user.is_specialist:
        queue = cases.filter(status__in=REVIEW_QUEUE_STATUSES).order_by("referred_at", "pk")
        shown = list(queue[:RECENT_CASES])
        context.update(
            heading="Referred cases",
            intro="Cases referred to a specialist, oldest referral first.",
            cases=shown,
            queue_count=queue.count(),
            recent=list(cases.exclude(status__in=REVIEW_QUEUE_STATUSES).order_by("-referred_at")[:5]),
        )
    else:
        shown = list(cases[:RECENT_CASES])
        context.update(
            heading="Recent cases",
            intro=(
                "The latest cases from every clinic." if user.is_administrator else "The latest cases from your clinic."
            ),
            cases=shown,
            counts=cases.aggregate(
                waiting=Count("pk", filter=Q(status__in=CASE_AWAITING_RESULT)),
                high=Count("pk", filter=Q(risk=Case.Risk.HIGH)),
                referred=Count("pk", filter=Q(status__in=REVIEW_QUEUE_STATUSES)),
                failed=Count("pk", filter=Q(status=Case.Status.FAILED)),
            ),
        )
    context["show_clinic"] = _shows_clinic(user)
    audit_record(
        actor=user,
        action="case.list",
        request=request,
        details={"page": "dashboard", "ids": [case.pk for case in shown]},
    )
    return render(request, "diagnosis/dashboard.html", context)


# --- Patients --------------------------------------------------------------------------------
@private_no_store
@login_required
@require_GET
def patient_list(request: HttpRequest) -> HttpResponse:
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
        "diagnosis/patient_list.html",
        {
            "page": page,
            "query": query,
            "search_errors": search.errors.get("q", []),
            "can_create": clinics_for(user=request.user).exists(),
            "show_clinic": _shows_clinic(request.user),
        },
        status=200 if search_valid else 400,
    )


@private_no_store
@login_required
@require_http_methods(["GET", "POST"])
def patient_create_view(request: HttpRequest) -> HttpResponse:
    clinics = clinics_for(user=request.user)
    if not clinics.exists():
        raise PermissionDenied("Only clinic staff and administrators register patients.")
    form = PatientForm(request.POST or None, clinics=clinics)
    if request.method == "POST" and form.is_valid():
        try:
            patient = patient_create(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            _add_service_errors(form, exc)
        else:
            messages.success(request, f"{patient.full_name} is registered.")
            return redirect("web:patient-detail", pk=patient.pk)
    return render(
        request,
        "diagnosis/patient_form.html",
        {"form": form, "consent_wording": CONSENT_WORDING},
    )


@private_no_store
@login_required
@require_GET
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_list_for(user=request.user), pk=pk)
    cases = case_list_for(user=request.user).filter(patient=patient)
    audit_record(actor=request.user, action="patient.view", obj=patient, request=request)
    can_submit = can_submit_clinical_records(request.user)
    return render(
        request,
        "diagnosis/patient_detail.html",
        {
            "patient": patient,
            "cases": cases,
            "can_submit": can_submit,
            "can_record_consent": can_submit,
            "consent_wording": CONSENT_WORDING,
        },
    )


@private_no_store
@login_required
@require_POST
def patient_consent_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Record or withdraw the patient's consent (the buttons on the patient page)."""
    patient = get_object_or_404(patient_list_for(user=request.user), pk=pk)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied("Only clinic staff and administrators record consent.")
    form = PatientConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to record or to withdraw consent.")
        return redirect("web:patient-detail", pk=patient.pk)
    consent_given = form.cleaned_data["consent_given"]
    try:
        patient_consent_record(actor=request.user, patient=patient, consent_given=consent_given, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if consent_given:
            messages.success(request, f"Consent is recorded for {patient.full_name}.")
        else:
            messages.success(
                request,
                f"Consent is withdrawn for {patient.full_name}; no new case can be submitted for them.",
            )
    return redirect("web:patient-detail", pk=patient.pk)


# --- Cases -----------------------------------------------------------------------------------
@private_no_store
@login_required
@require_http_methods(["GET", "POST"])
def case_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_list_for(user=request.user), pk=pk)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied("Only clinic staff and administrators submit cases.")
    form = CaseForm(request.POST or None, request.FILES or None)
    if request.method == "GET":
        audit_record(
            actor=request.user,
            action="patient.view",
            obj=patient,
            request=request,
            details={"page": "case-create"},
        )
    if request.method == "POST":
        if not patient.consent_given:
            form.add_error(
                None,
                "The patient's consent is not recorded; a case cannot be submitted.",
            )
        elif form.is_valid():
            try:
                case = case_submit(
                    actor=request.user,
                    patient=patient,
                    request=request,
                    **form.service_kwargs(),
                )
            except ValidationError as exc:
                _add_service_errors(form, exc)
            else:
                url = reverse("web:case-detail", args=[case.pk])
                if _wants_json(request):
                    return JsonResponse({"case": case.pk, "redirect": url}, status=201)
                messages.success(request, "The case is submitted; analysis has started.")
                return redirect(url)
        if _wants_json(request):
            return JsonResponse({"errors": _form_errors(form)}, status=400)
    return render(
        request,
        "diagnosis/case_form.html",
        {
            "patient": patient,
            "form": form,
            "max_files": settings.UPLOAD_MAX_FILES,
            "max_bytes": settings.UPLOAD_MAX_BYTES,
        },
    )


@private_no_store
@login_required
@require_GET
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(case_list_for(user=request.user), pk=pk)
    audit_record(actor=request.user, action="case.view", obj=case, request=request)
    context = {"case": case, "patient": case.patient, **_result_context(request, case)}
    context["result_html"], context["result_fingerprint"] = _result_card(request, case, context)
    return render(request, "diagnosis/case_detail.html", context)


@private_no_store
@login_required
@require_GET
def case_result(request: HttpRequest, pk: int) -> JsonResponse:
    """The result card as an HTML fragment, polled by the case page until analysis ends.

    Polls while the result is pending show no clinical result and are not audited; the
    poll that delivers the finished result is audited as a view of the case.
    """
    case = get_object_or_404(case_list_for(user=request.user), pk=pk)
    context = _result_context(request, case)
    if not context["pending"]:
        audit_record(
            actor=request.user,
            action="case.view",
            obj=case,
            request=request,
            details={"via": "result-refresh"},
        )
    html, fingerprint = _result_card(request, case, context)
    status_html = render_to_string("diagnosis/_status.html", {"case": case})
    return JsonResponse(
        {
            "pending": context["pending"],
            "status": case.status,
            "status_html": status_html,
            "html": html,
            "fingerprint": fingerprint,
        }
    )


@private_no_store
@login_required
@require_POST
def case_reanalyse_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(case_list_for(user=request.user), pk=pk)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied("Only clinic staff and administrators can do this.")
    try:
        case_reanalyse(case=case, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The photos are queued for analysis again.")
    return redirect("web:case-detail", pk=case.pk)


@private_no_store
@login_required
@require_POST
def case_photos_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a new photo to a case (the retake after the photo gate turned one back); analysed as usual."""
    case = get_object_or_404(case_list_for(user=request.user), pk=pk)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied("Only clinic staff and administrators can do this.")
    files = request.FILES.getlist("images")
    if not files:
        messages.error(request, "Choose a photo to add.")
        return redirect("web:case-detail", pk=case.pk)
    try:
        case_photos_add(
            actor=request.user,
            case=case,
            images=files,
            image_kinds=request.POST.getlist("image_kinds") or None,
            request=request,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The new photo is added and queued for analysis.")
    return redirect("web:case-detail", pk=case.pk)


def _result_card(request: HttpRequest, case: Case, context: dict) -> tuple[str, str]:
    """The result card's HTML and a fingerprint of it.

    The page only swaps the card when the fingerprint changes, so an unchanged card is not
    redrawn (and its photos not fetched again) on every poll.
    """
    html = render_to_string("diagnosis/_result_card.html", {**context, "case": case}, request=request)
    return html, hashlib.sha256(html.encode()).hexdigest()[:16]


def _result_context(request: HttpRequest, case: Case) -> dict:
    """What the result card shows: per image its state, probability bars and heatmap."""
    images = []
    for image in case.images.all():
        prediction = image.current_prediction
        rejected = prediction is not None and prediction.rejected
        bars = []
        if prediction is not None and not rejected:
            probabilities = prediction.probabilities or {}
            bars = sorted(
                (
                    {
                        "code": code,
                        "name": CLASS_NAMES[code],
                        "probability": float(probabilities.get(code, 0.0)),
                        "malignant": code in MALIGNANT_CLASSES,
                        "top": code == prediction.top_class,
                    }
                    for code in CLASSES
                ),
                key=lambda bar: -bar["probability"],
            )
        top = bars[0]["probability"] if bars else None
        images.append(
            {
                "image": image,
                "prediction": prediction,
                "bars": bars,
                "uncertain": top is not None and top < UNCERTAIN_BELOW,
                "failed": image.analysis_status == LesionImage.AnalysisStatus.FAILED,
                "pending": image.analysis_status in PENDING_IMAGES,
                "rejected": rejected,
                "not_dermoscopic": image.kind != LesionImage.Kind.DERMOSCOPIC,
            }
        )
    pending = case.status in CASE_AWAITING_RESULT or any(row["pending"] for row in images)
    any_failed = case.status == Case.Status.FAILED or any(row["failed"] for row in images)
    model_versions = sorted({row["prediction"].model_version for row in images if row["prediction"]})
    return {
        "images": images,
        "pending": pending,
        "any_failed": any_failed,
        "model_versions": model_versions,
        "can_reanalyse": (any_failed and not pending and can_submit_clinical_records(request.user)),
        "any_rejected": any(row["rejected"] for row in images),
        "can_add_photos": (
            not pending
            and case.status in (Case.Status.ANALYSED, Case.Status.FAILED)
            and can_submit_clinical_records(request.user)
        ),
        "photo_kinds": LesionImage.Kind.choices,
        "uncertain_below": UNCERTAIN_BELOW,
    }


@private_no_store
@login_required
@require_GET
def image_preview(request: HttpRequest, pk: int, size: int) -> HttpResponse:
    """A small JPEG copy of a lesion photo, for thumbnails and the result card.

    Access-checked like the full photo (diagnosis:image-file), which stays one click away.
    """
    if size not in PREVIEW_SIZES:
        raise Http404("No such size.")
    image = get_object_or_404(image_list_for(user=request.user), pk=pk)
    try:
        with image.file.open("rb") as handle, Image.open(handle) as picture:
            picture.draft("RGB", (size, size))  # JPEG: decode at a fraction of full size
            preview = picture.convert("RGB")
    except FileNotFoundError:
        raise Http404("The photo file is missing.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        logger.exception("cannot make a preview of image %s", image.pk)
        raise Http404("The photo cannot be shown.") from None
    preview.thumbnail((size, size), Image.Resampling.LANCZOS)  # never enlarges
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=82, optimize=True)
    audit_record(
        actor=request.user,
        action="image.view",
        obj=image,
        request=request,
        details={"preview": size},
    )
    response = HttpResponse(buffer.getvalue(), content_type="image/jpeg")
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Model report ----------------------------------------------------------------------------
def _load_model_artifact():
    """(artifact, None) for the served model, or (None, reason) when none is installed."""
    from inference.artifact import ArtifactError, load_artifact

    try:
        return load_artifact(settings.SKINPORTAL_MODEL_DIR, verify=False), None
    except (ArtifactError, OSError, KeyError, ValueError) as exc:
        return None, str(exc)


def _report_images(report_dir: Path) -> set[str]:
    """The PNG figures in the report folder, by plain file name."""
    if not report_dir.is_dir():
        return set()
    return {
        entry.name
        for entry in report_dir.iterdir()
        if entry.is_file() and not entry.is_symlink() and REPORT_FILE_NAME.match(entry.name)
    }


def _headline_metrics(metrics: dict) -> list[tuple[str, object]]:
    """The few numbers a clinician asks about first, from the manifest's metrics."""
    triage = metrics.get("malignant_vs_benign") or {}
    per_class = metrics.get("per_class") or {}
    rows = [
        ("Test images", metrics.get("images")),
        ("Accuracy", metrics.get("accuracy")),
        ("Balanced accuracy (mean recall per class)", metrics.get("balanced_accuracy")),
        ("Macro F1", metrics.get("macro_f1")),
        ("Melanoma recall", (per_class.get("mel") or {}).get("recall")),
        ("Malignant sensitivity at the referral thresholds", triage.get("sensitivity")),
        ("Malignant specificity at the referral thresholds", triage.get("specificity")),
        ("Malignant vs benign ROC AUC", triage.get("roc_auc")),
        (
            "Expected calibration error",
            (metrics.get("calibration") or {}).get("ece"),
        ),
    ]
    return [(label, value) for label, value in rows if value is not None]


def _gate_figures(gate: dict) -> list[tuple[str, object]]:
    """The photo gate's figures on images no threshold was chosen on (the manifest's gate section)."""
    test = gate.get("test") or {}
    rows = [
        ("Lesion photos of the test split turned back (target at most 2%)", test.get("test_lesions_turned_back")),
        ("Out-of-domain images turned back (target at least 95%)", test.get("out_of_domain_turned_back")),
        ("Severely blurred photos turned back (target at least 90%)", test.get("severe_blur_turned_back")),
        ("Severely darkened photos turned back (target at least 90%)", test.get("severe_dark_turned_back")),
        ("Severely overexposed photos turned back (target at least 90%)", test.get("severe_overexposed_turned_back")),
    ]
    return [(label, value) for label, value in rows if value is not None]


@login_required
@require_GET
def model_report(request: HttpRequest) -> HttpResponse:
    from .templatetags.report_markdown import render_report_markdown

    artifact, problem = _load_model_artifact()
    context: dict = {"artifact": artifact, "problem": problem}
    if artifact is not None:
        manifest = artifact.manifest
        figures = _report_images(artifact.report_dir)
        report_file = artifact.report_dir / "report.md"
        report_html = None
        if report_file.is_file():
            report_html = render_report_markdown(
                report_file.read_text(encoding="utf-8", errors="replace"),
                image_url=lambda name: reverse("web:model-report-file", args=[name]) if name in figures else None,
            )
        context.update(
            manifest=manifest,
            headline=_headline_metrics(manifest.get("metrics") or {}),
            thresholds=[
                (code, CLASS_NAMES.get(code, code), value) for code, value in (manifest.get("thresholds") or {}).items()
            ],
            report_html=report_html,
            gate_figures=_gate_figures(manifest.get("gate") or {}),
        )
    return render(request, "diagnosis/model_report.html", context)


@login_required
@require_GET
def model_report_file(request: HttpRequest, name: str) -> FileResponse:
    """A PNG figure of the served model's report; only files in that folder, by name."""
    artifact, _ = _load_model_artifact()
    if artifact is None or name not in _report_images(artifact.report_dir):
        raise Http404("No such report figure.")
    response = FileResponse((artifact.report_dir / name).open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Helpers ---------------------------------------------------------------------------------
def _shows_clinic(user) -> bool:
    """Lists name the clinic only for users who see more than one."""
    return not user.is_clinic_staff or user.clinics.count() > 1


def _add_service_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: by field where the form has it."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _form_errors(form) -> dict[str, list[str]]:
    errors = {}
    for field, messages_ in form.errors.items():
        label = "" if field == "__all__" else str(form.fields[field].label or field)
        errors[field] = [f"{label}: {m}" if label else m for m in messages_]
    return errors
