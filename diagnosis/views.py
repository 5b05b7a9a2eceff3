"""The server-rendered web UI: dashboard, patients, cases with their result, the model page.

Views stay thin: every read goes through the user-scoped selectors (someone else's record
is a 404), every write through a service, and every page that shows a patient or a case
leaves an audit event.
"""

from __future__ import annotations

import hashlib
import io
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from PIL import Image, UnidentifiedImageError

from accounts.permissions import can_submit_clinical_records
from accounts.services import audit_record
from clinics.selectors import clinic_list_for
from clinics.uv import dashboard_uv_readings
from inference.artifact import ArtifactError, artifact_for_version
from inference.preprocessing import CLASSES, MALIGNANT_CLASSES
from inference.risk import UNCERTAIN_BELOW
from patients.disclosure import sees_patient_identity
from patients.forms import CONSENT_WORDING, PatientSearchForm
from patients.selectors import patient_list_for
from photos.uploads import upload_allowance_message, upload_allowance_take
from skinportal.access import scoped_object_or_404
from skinportal.web import add_service_errors, form_errors, private_no_store, shows_clinic, wants_json

from . import extensions, idempotency, polling
from .case_filters import CaseFilterForm, case_list_filter
from .forms import CaseForm
from .models import Case, LesionImage
from .selectors import (
    case_list_awaiting_photo,
    case_list_for,
    image_list_for,
    lesion_list_for,
    photo_kinds_last_used,
    unreadable_after,
)
from .services import (
    case_awaiting_photo_close,
    case_photos_add,
    case_submit,
)
from .transitions import CASE_AWAITING_RESULT, IN_SPECIALIST_HANDS, photos_accepted
from .transitions import PENDING as PENDING_IMAGES
from .vocabulary import class_name

logger = logging.getLogger(__name__)

RECENT_CASES = 20
PATIENTS_PER_PAGE = 25
REVIEW_QUEUE_STATUSES = (Case.Status.REFERRED, Case.Status.UNDER_REVIEW)
# Long side in pixels of the scaled copies lists and the result card show: a thumbnail
# costs a few KB instead of the stored photo's few hundred on a weak connection.
PREVIEW_SIZES = frozenset({160, 800})


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
            heading=_("Referred cases"),
            intro=_("Cases referred to a specialist, oldest referral first."),
            cases=shown,
            queue_count=queue.count(),
            recent=list(cases.exclude(status__in=REVIEW_QUEUE_STATUSES).order_by("-referred_at")[:5]),
        )
    else:
        shown = list(cases[:RECENT_CASES])
        context.update(
            heading=_("Recent cases"),
            intro=(
                _("The latest cases from every clinic.")
                if user.is_administrator
                else _("The latest cases from your clinic.")
            ),
            cases=shown,
            # Nothing falls through: cases with no photo the model could read, until a new photo,
            # a referral (safety_net.py) or the clinic closing them.
            awaiting_photo=list(case_list_awaiting_photo(cases).order_by("awaiting_photo_since")[:RECENT_CASES]),
            counts=cases.aggregate(
                waiting=Count("pk", filter=Q(status__in=CASE_AWAITING_RESULT)),
                high=Count("pk", filter=Q(risk=Case.Risk.HIGH)),
                referred=Count("pk", filter=Q(status__in=REVIEW_QUEUE_STATUSES)),
                failed=Count("pk", filter=Q(status=Case.Status.FAILED)),
            ),
        )
    context["show_clinic"] = shows_clinic(user)
    context["uv_readings"] = dashboard_uv_readings(user=user)
    # Beyond the first RECENT_CASES, the case list pages through the rest.
    total = context["queue_count"] if user.is_specialist else cases.count()
    context["more_cases"] = total if total > len(shown) else 0
    # What apps built on diagnosis show on the dashboard (follow-ups due).
    context["panels"] = [mark_safe(panel(request)) for panel in extensions.DASHBOARD_PANELS]  # noqa: S308
    listed = [case.pk for case in shown] + [case.pk for case in context.get("awaiting_photo", [])]
    audit_record(
        actor=user,
        action="case.list",
        request=request,
        details={"page": "dashboard", "ids": list(dict.fromkeys(listed))},
    )
    return render(request, "diagnosis/dashboard.html", context)


# --- The case list ----------------------------------------------------------------------------
CASES_PER_PAGE = 25


@private_no_store
@login_required
@require_GET
def case_list_view(request: HttpRequest) -> HttpResponse:
    """Every case the user may see, filtered (status, risk, referral, dates, patient) and paged."""
    form = CaseFilterForm(request.GET or None)
    cases = case_list_for(user=request.user)
    valid = form.is_valid() if form.is_bound else True
    if form.is_bound and valid:
        cases = case_list_filter(cases, form, by_name=sees_patient_identity(request.user))
    elif not valid:
        cases = cases.none()
    page = Paginator(cases, CASES_PER_PAGE).get_page(request.GET.get("page"))
    filters = form.active() if form.is_bound else {}
    audit_record(
        actor=request.user,
        action="case.list",
        request=request,
        details={"page": "case-list", "filters": filters, "ids": [case.pk for case in page]},
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "diagnosis/case_list.html",
        {
            "form": form,
            "page": page,
            "filtered": bool(filters),
            "query_string": query.urlencode(),
            "show_clinic": shows_clinic(request.user),
        },
        status=200 if valid else 400,
    )


# --- Patients --------------------------------------------------------------------------------
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
        "diagnosis/patient_list.html",
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
@require_GET
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
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
            # What apps built on diagnosis show on the patient page (the patient's lesions).
            "panels": [mark_safe(panel(request, patient)) for panel in extensions.PATIENT_PAGE_PANELS],  # noqa: S308
        },
    )


# --- Cases -----------------------------------------------------------------------------------
@private_no_store
@login_required
@require_http_methods(["GET", "POST"])
def case_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    patient = scoped_object_or_404(patient_list_for(user=request.user), pk=pk, request=request)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Only clinic staff and administrators submit cases."))
    lesions = lesion_list_for(user=request.user).filter(patient=patient)
    # ?lesion=<id> (from a lesion page or the follow-up list) picks that lesion in advance.
    initial = {"lesion": request.GET.get("lesion")} if request.method == "GET" else None
    bound = request.method == "POST"  # an empty POST is a bound, invalid form, never a blank one
    form = CaseForm(request.POST if bound else None, request.FILES if bound else None, lesions=lesions, initial=initial)
    if request.method == "GET":
        audit_record(
            actor=request.user,
            action="patient.view",
            obj=patient,
            request=request,
            details={"page": "case-create"},
        )
    status = 200
    if request.method == "POST":
        if wants_json(request) and request.headers.get(idempotency.HEADER) is not None:
            # A resend of a case already created gets its first answer back, whatever changed since
            # (consent withdrawn, the hourly allowance used up); a first send is checked as below.
            return _case_create_once(request, patient, form)
        if (refusal := _case_create_refusal(request, patient)) is not None:
            code, message = refusal
            status = 429 if code == 429 else status  # the page itself is shown again, with the message
            form.add_error(None, message)
        elif form.is_valid():
            try:
                case = case_submit(
                    actor=request.user,
                    patient=patient,
                    request=request,
                    **form.service_kwargs(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                url = reverse("web:case-detail", args=[case.pk])
                if wants_json(request):
                    return JsonResponse({"case": case.pk, "redirect": url}, status=201)
                messages.success(request, _("The case is submitted; analysis has started."))
                return redirect(url)
        if wants_json(request):
            return JsonResponse({"errors": form_errors(form)}, status=429 if status == 429 else 400)
    return render(
        request,
        "diagnosis/case_form.html",
        {
            "patient": patient,
            "form": form,
            "max_files": settings.UPLOAD_MAX_FILES,
            "max_bytes": settings.UPLOAD_MAX_BYTES,
            "photo_kinds_last_used": photo_kinds_last_used(clinic_id=patient.clinic_id),
        },
        status=status,
    )


def _case_create_refusal(request: HttpRequest, patient) -> tuple[int, str] | None:
    """(status, message) when a new case may not be created now: the hourly photo allowance used
    up (429; the photos are counted here) or no consent recorded (400)."""
    wait = upload_allowance_take(user=request.user, photos=len(request.FILES.getlist("images")))
    if wait is not None:
        return 429, upload_allowance_message(wait)
    if not patient.consent_given:
        return 400, _("The patient's consent is not recorded; a case cannot be submitted.")
    return None


def _case_create_once(request: HttpRequest, patient, form) -> JsonResponse:
    """The new-case page's upload with an Idempotency-Key: a resend gets the first case back."""
    try:
        key = idempotency.key_from(request)
    except ValidationError as exc:
        return JsonResponse({"errors": {"__all__": exc.messages}}, status=400)
    # A case kept on the phone carries whose it is: sent later while someone else is signed
    # in, it waits for its own user instead of being submitted under another name.
    owner = request.headers.get("X-Portal-User")
    if owner is not None and owner != request.user.get_username():
        return JsonResponse({"errors": {"__all__": [_("This case was saved by another user.")]}}, status=409)

    def create():
        if (refusal := _case_create_refusal(request, patient)) is not None:
            form.add_error(None, refusal[1])
            raise _FormRefused(refusal[0])
        if not form.is_valid():
            raise _FormRefused()
        try:
            case = case_submit(actor=request.user, patient=patient, request=request, **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc)
            raise _FormRefused() from None
        return 201, {"case": case.pk, "redirect": reverse("web:case-detail", args=[case.pk])}, case

    fingerprint = idempotency.request_fingerprint(
        scope=f"web:patient:{patient.pk}", data=request.POST, files=request.FILES
    )
    try:
        answer = idempotency.submission_once(user=request.user, key=key, fingerprint=fingerprint, create=create)
    except _FormRefused as refused:
        return JsonResponse({"errors": form_errors(form)}, status=refused.status)
    except idempotency.IdempotencyKeyReused:
        message = _("This upload was already used for a different case; reload the page and submit again.")
        return JsonResponse({"errors": {"__all__": [message]}}, status=422)
    except Http404:
        # Its case was created and is gone since (deleted), or is no longer this user's to see:
        # final, so the phone stops sending it (and never creates it again once the key expires).
        message = _("This case was sent before and can no longer be shown to you; it is not sent again.")
        return JsonResponse({"errors": {"__all__": [message]}}, status=410)
    return JsonResponse(answer.body, status=answer.status_code)


class _FormRefused(Exception):
    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


@private_no_store
@login_required
@require_GET
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    audit_record(actor=request.user, action="case.view", obj=case, request=request)
    context = {"case": case, "patient": case.patient, **result_context(request, case)}
    context["result_html"], context["result_fingerprint"] = _result_card(request, case, context)
    # What apps built on diagnosis show on the case page (the referral and the specialist's answer).
    context["panels"] = [mark_safe(panel(request, case)) for panel in extensions.CASE_PAGE_PANELS]  # noqa: S308
    return render(request, "diagnosis/case_detail.html", context)


@private_no_store
@login_required
@require_GET
def case_result(request: HttpRequest, pk: int) -> JsonResponse:
    """The result card as an HTML fragment, polled by the case page until analysis ends.

    Polls while the result is pending show no clinical result and are not audited; the
    poll that delivers the finished result is audited as a view of the case. A poll that
    sends the ETag of the card it holds gets 304 while nothing changed (diagnosis.polling), and
    with ``Prefer: wait=N``, while the case awaits its result, the answer waits for the change.
    """
    etag, version = polling.result_etag(request=request, pk=pk, kind="web-result")
    wait = polling.wait_requested(request)
    if wait and version is not None and version[0] in CASE_AWAITING_RESULT:
        # A long poll (``Prefer: wait=N``): answer when the card would change, 304 when the wait runs out.
        etag, version = polling.wait_for_change(
            request,
            pk=pk,
            kind="web-result",
            etag=etag,
            version=version,
            seconds=wait,
            while_status_in=CASE_AWAITING_RESULT,
        )
    if polling.unchanged(request, etag):
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    context = result_context(request, case)
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
    response = JsonResponse(
        {
            "pending": context["pending"],
            "status": case.shown_status,
            "status_html": status_html,
            "html": html,
            "fingerprint": fingerprint,
        }
    )
    if etag is not None:
        response["ETag"] = etag
    return response


@private_no_store
@login_required
@require_POST
def case_photos_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a new photo to a case (the retake after the photo gate turned one back); analysed as usual."""
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Only clinic staff and administrators can do this."))
    files = request.FILES.getlist("images")
    if not files:
        messages.error(request, _("Choose a photo to add."))
        return redirect("web:case-detail", pk=case.pk)
    if (wait := upload_allowance_take(user=request.user, photos=len(files))) is not None:
        messages.error(request, upload_allowance_message(wait))
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
        messages.success(request, _("The new photo is added and queued for analysis."))
    return redirect("web:case-detail", pk=case.pk)


@private_no_store
@login_required
@require_POST
def case_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Close a case waiting for a photo the model can read, with a reason (the form on the result card)."""
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    if not can_submit_clinical_records(request.user):
        raise PermissionDenied(_("Only clinic staff and administrators can do this."))
    try:
        case_awaiting_photo_close(actor=request.user, case=case, reason=request.POST.get("reason", ""), request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The case is closed without a result; it will not be referred."))
    return redirect("web:case-detail", pk=case.pk)


def _result_card(request: HttpRequest, case: Case, context: dict) -> tuple[str, str]:
    """The result card's HTML and a fingerprint of it.

    The page only swaps the card when the fingerprint changes, so an unchanged card is not
    redrawn (and its photos not fetched again) on every poll.
    """
    html = render_to_string("diagnosis/_result_card.html", {**context, "case": case}, request=request)
    return html, hashlib.sha256(html.encode()).hexdigest()[:16]


def _thresholds_of(prediction) -> dict[str, float]:
    """The referral thresholds of the model version that scored the prediction (empty if it is gone)."""
    try:
        return artifact_for_version(prediction.model_version, prediction.artifact_sha256).thresholds
    except ArtifactError:
        logger.warning("no thresholds for model %s of prediction %s", prediction.model_version, prediction.pk)
        return {}


def result_context(request: HttpRequest, case: Case) -> dict:
    """What the result card shows: per image its state, probability bars and heatmap."""
    images = []
    for image in case.images.all():
        prediction = image.current_prediction
        rejected = prediction is not None and prediction.rejected
        bars, over = [], []
        if prediction is not None and not rejected:
            probabilities = prediction.probabilities or {}
            thresholds = _thresholds_of(prediction)
            bars = sorted(
                (
                    {
                        "code": code,
                        "name": class_name(code),
                        "probability": float(probabilities.get(code, 0.0)),
                        "malignant": code in MALIGNANT_CLASSES,
                        "top": code == prediction.top_class,
                        "threshold": thresholds.get(code),
                        "over": code in thresholds and float(probabilities.get(code, 0.0)) >= thresholds[code],
                    }
                    for code in CLASSES
                ),
                key=lambda bar: -bar["probability"],
            )
            over = [bar for bar in bars if bar["over"]]
        top = bars[0]["probability"] if bars else None
        images.append(
            {
                "image": image,
                "prediction": prediction,
                "bars": bars,
                "over_threshold": over,
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
        "can_reanalyse": (
            any_failed
            and not pending
            and case.status not in IN_SPECIALIST_HANDS
            and can_submit_clinical_records(request.user)
        ),
        "any_rejected": any(row["rejected"] for row in images),
        "can_add_photos": (not pending and photos_accepted(case.status) and can_submit_clinical_records(request.user)),
        "photo_kinds": LesionImage.Kind.choices,
        # A retake is usually of the same kind as the photo it replaces.
        "retake_kind": next(
            (row["image"].kind for row in images if row["rejected"]),
            images[-1]["image"].kind if images else LesionImage.Kind.DERMOSCOPIC,
        ),
        "uncertain_below": UNCERTAIN_BELOW,
        # No photo the model could read: when the case goes to a specialist unless a usable photo
        # comes first or the clinic closes it (safety_net.py).
        "awaiting_photo_refer_at": (
            case.awaiting_photo_since + unreadable_after() if case.awaiting_photo and not pending else None
        ),
        "can_close_awaiting_photo": case.awaiting_photo and not pending and can_submit_clinical_records(request.user),
    }


@private_no_store
@login_required
@require_GET
def image_preview(request: HttpRequest, pk: int, size: int) -> HttpResponse:
    """A small JPEG copy of a lesion photo, for thumbnails and the result card.

    Access-checked like the full photo (diagnosis:image-file), which stays one click away.
    """
    if size not in PREVIEW_SIZES:
        raise Http404(_("No such size."))
    image = scoped_object_or_404(image_list_for(user=request.user), pk=pk, request=request)
    try:
        with image.file.open("rb") as handle, Image.open(handle) as picture:
            picture.draft("RGB", (size, size))  # JPEG: decode at a fraction of full size
            preview = picture.convert("RGB")
    except FileNotFoundError:
        raise Http404(_("The photo file is missing.")) from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        logger.exception("cannot make a preview of image %s", image.pk)
        raise Http404(_("The photo cannot be shown.")) from None
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
