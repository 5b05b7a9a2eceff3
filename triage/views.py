"""Web pages of the referral workflow: the specialist's queue and review page, the clinic's
referral and answer forms (on the case page, see panels.py), notifications, and the service's
measures. Reads go through the user-scoped selectors; writes through triage.services."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Clinic
from accounts.services import audit_record
from diagnosis.selectors import case_list_for
from diagnosis.views import result_context
from diagnosis.vocabulary import class_name
from inference.preprocessing import MALIGNANT_CLASSES
from photos.uploads import upload_allowance_message, upload_allowance_take
from skinportal.access import scoped_object_or_404
from skinportal.web import private_no_store

from . import services
from .apis import referral_filter
from .forms import (
    InformationAnswerForm,
    InformationRequestForm,
    ReferralFilterForm,
    ReferralForm,
    ReviewForm,
    UrgencyForm,
)
from .metrics import service_metrics
from .models import Referral, Review
from .selectors import (
    claim_is_live,
    effective_status,
    is_overdue,
    notification_list_for,
    referral_list_for,
    referral_queue_for,
)

PER_PAGE = 25


def _years(born: date | None) -> int | None:
    if born is None:
        return None
    today = timezone.localdate()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def top_classes(case, count: int = 2) -> list[dict]:
    """The model's leading classes on the photo it is most worried about (highest malignant probability)."""
    best = None
    for image in case.images.all():
        prediction = image.current_result
        if prediction is None or not prediction.probabilities:
            continue  # a photo the gate turned back gives no result to show
        worry = max(prediction.probabilities.get(code, 0.0) for code in MALIGNANT_CLASSES)
        if best is None or worry > best[0]:
            best = (worry, prediction.probabilities)
    if best is None:
        return []
    ranked = sorted(best[1].items(), key=lambda item: -item[1])[:count]
    return [
        {"code": code, "name": class_name(code), "probability": p, "malignant": code in MALIGNANT_CLASSES}
        for code, p in ranked
    ]


def referral_row(referral: Referral, now) -> dict:
    patient = referral.case.patient
    return {
        "referral": referral,
        "case": referral.case,
        "patient_age": _years(patient.date_of_birth),
        "patient": patient,
        "status": effective_status(referral, now),
        "overdue": is_overdue(referral, now),
        "images": list(referral.case.images.all())[:4],
        "top": top_classes(referral.case),
        "held_by_me": False,
    }


# --- The specialist's queue -----------------------------------------------------------------------
@private_no_store
@login_required
@require_GET
def referral_queue(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_specialist or user.is_administrator or user.is_clinic_staff):
        raise PermissionDenied(_("No referrals for this account."))
    everything = referral_list_for(user=user)
    clinics = Clinic.objects.filter(pk__in=everything.values_list("clinic_id", flat=True)).order_by("name")
    form = ReferralFilterForm(request.GET or None, clinics=clinics)
    # Only what the form validated reaches the filter (an empty choice means "any").
    params: dict[str, str] = {}
    if request.GET.get("status") in (*Referral.Status.values, "all"):
        params["status"] = request.GET["status"]
    if form.is_bound and form.is_valid():
        for name in ("urgency", "clinic"):
            if form.cleaned_data[name]:
                params[name] = str(form.cleaned_data[name])
        for name in ("mine", "overdue"):
            params[name] = "true" if form.cleaned_data[name] else "false"
    referrals = referral_filter(_Params(request, params), referral_queue_for(user=user), everything)
    page = Paginator(referrals, PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [referral_row(referral, now) for referral in page]
    for row in rows:
        row["held_by_me"] = row["status"] == Referral.Status.CLAIMED and row["referral"].claimed_by_id == user.pk
    audit_record(
        actor=user,
        action="referral.list",
        request=request,
        details={"page": "queue", "query": request.GET.urlencode()[:300], "ids": [r["referral"].pk for r in rows]},
    )
    return render(
        request,
        "triage/queue.html",
        {
            "rows": rows,
            "page": page,
            "form": form,
            "query": _without_page(request),
            "open_count": referral_queue_for(user=user).count(),
        },
    )


class _Params:
    """The request as referral_filter reads it, with the form's checkbox values."""

    def __init__(self, request, params):
        self.query_params = params
        self.user = request.user


def _without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# --- The review page --------------------------------------------------------------------------
@private_no_store
@login_required
@require_GET
def referral_detail(request: HttpRequest, pk: int) -> HttpResponse:
    referral = scoped_object_or_404(referral_list_for(user=request.user), pk=pk, request=request)
    audit_record(actor=request.user, action="referral.view", obj=referral, request=request)
    return _review_page(request, referral)


def _review_page(request, referral, *, review_form=None, information_form=None, status=200) -> HttpResponse:
    user = request.user
    now = timezone.now()
    case = referral.case
    holds = referral.status == Referral.Status.CLAIMED and referral.claimed_by_id == user.pk
    latest = referral.latest_review
    can_correct = (
        latest is not None
        and latest.reviewer_id == user.pk
        and referral.status == Referral.Status.REVIEWED
        and case.status == case.Status.REVIEWED
    )
    context = {
        "referral": referral,
        "row": referral_row(referral, now),
        "case": case,
        "patient": case.patient,
        "patient_age": _years(case.patient.date_of_birth),
        "status": effective_status(referral, now),
        "holds": holds,
        "claim_live": claim_is_live(referral, now),
        "can_claim": services.can_review(user, referral)
        and (effective_status(referral, now) == Referral.Status.OPEN or holds),
        "can_review": services.can_review(user, referral) and (holds or can_correct),
        "can_correct": can_correct,
        "reviews": sorted(referral.reviews.all(), key=lambda r: (r.created_at, r.pk), reverse=True),
        "show_private": user.is_specialist or user.is_administrator,
        "review_form": review_form or ReviewForm(),
        "information_form": information_form or InformationRequestForm(),
        "information_requests": list(referral.information_requests.all()),
        **result_context(request, case),
    }
    return render(request, "triage/referral_detail.html", context, status=status)


def _attempt(request, step, success: str) -> bool:
    """Run one workflow step; its refusal or its success is the message on the next page."""
    try:
        step()
    except (services.WorkflowConflict, ValidationError) as exc:
        _workflow_errors(request, exc)
        return False
    messages.success(request, success)
    return True


def _workflow_errors(request, exc: Exception) -> None:
    if isinstance(exc, ValidationError):
        messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, str(exc))


def _serving_referral(request, pk: int) -> Referral:
    referral = scoped_object_or_404(referral_list_for(user=request.user), pk=pk, request=request)
    if not services.can_review(request.user, referral) and not request.user.is_administrator:
        raise PermissionDenied(_("Only specialists serving the referring clinic can do this."))
    return referral


@private_no_store
@login_required
@require_POST
def referral_claim_view(request: HttpRequest, pk: int) -> HttpResponse:
    referral = _serving_referral(request, pk)
    _attempt(
        request,
        lambda: services.referral_claim(actor=request.user, referral=referral, request=request),
        _("You hold this referral. Write your answer, or release it for a colleague."),
    )
    return redirect("triage:referral-detail", pk=referral.pk)


@private_no_store
@login_required
@require_POST
def referral_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    referral = _serving_referral(request, pk)
    _attempt(
        request,
        lambda: services.referral_release(actor=request.user, referral=referral, request=request),
        _("The referral is back in the queue."),
    )
    return redirect("triage:referral-queue")


@private_no_store
@login_required
@require_POST
def review_view(request: HttpRequest, pk: int) -> HttpResponse:
    referral = _serving_referral(request, pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The answer is not complete; see below."))
        return _review_page(request, referral, review_form=form, status=400)
    try:
        services.review_submit(actor=request.user, referral=referral, request=request, **form.cleaned_data)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
            form.add_error(field if field in form.fields else None, errors)
        return _review_page(request, referral, review_form=form, status=400)
    except services.WorkflowConflict as exc:
        _workflow_errors(request, exc)
        return redirect("triage:referral-detail", pk=referral.pk)
    messages.success(request, _("Your answer is sent to the clinic."))
    return redirect("triage:referral-queue")


@private_no_store
@login_required
@require_POST
def information_request_view(request: HttpRequest, pk: int) -> HttpResponse:
    referral = _serving_referral(request, pk)
    form = InformationRequestForm(request.POST)
    if not form.is_valid():
        return _review_page(request, referral, information_form=form, status=400)
    asked = _attempt(
        request,
        lambda: services.information_request(
            actor=request.user, referral=referral, request=request, **form.cleaned_data
        ),
        _("Your question is sent to the clinic; the referral keeps its place in the queue."),
    )
    return redirect("triage:referral-queue") if asked else redirect("triage:referral-detail", pk=referral.pk)


@private_no_store
@login_required
@require_POST
def referral_urgency_view(request: HttpRequest, pk: int) -> HttpResponse:
    referral = scoped_object_or_404(referral_list_for(user=request.user), pk=pk, request=request)
    form = UrgencyForm(request.POST)
    if form.is_valid():
        _attempt(
            request,
            lambda: services.referral_urgency_change(
                actor=request.user, referral=referral, request=request, **form.cleaned_data
            ),
            _("The urgency is changed."),
        )
    return redirect(_back(request, "web:case-detail", referral.case_id))


def _back(request, view_name: str, pk: int):
    from django.urls import reverse

    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse(view_name, args=[pk])


# --- The clinic's side ------------------------------------------------------------------------
@private_no_store
@login_required
@require_POST
def case_refer_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    form = ReferralForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the urgency and say why you are referring the case."))
        return redirect("web:case-detail", pk=case.pk)
    _attempt(
        request,
        lambda: services.referral_create(actor=request.user, case=case, request=request, **form.cleaned_data),
        _("The case is referred; the specialists serving your clinic are told."),
    )
    return redirect("web:case-detail", pk=case.pk)


@private_no_store
@login_required
@require_POST
def information_answer_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    if (wait := upload_allowance_take(user=request.user, photos=len(request.FILES.getlist("images")))) is not None:
        messages.error(request, upload_allowance_message(wait))
        return redirect("web:case-detail", pk=case.pk)
    form = InformationAnswerForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("web:case-detail", pk=case.pk)
    images = form.cleaned_data["images"]
    kinds = [form.cleaned_data.get("image_kind") or "close_up"] * len(images)
    _attempt(
        request,
        lambda: services.information_answer(
            actor=request.user,
            case=case,
            message=form.cleaned_data["message"],
            images=images,
            image_kinds=kinds,
            request=request,
        ),
        _("Your answer is sent; the referral is back in the specialists' queue."),
    )
    return redirect("web:case-detail", pk=case.pk)


@private_no_store
@login_required
@require_POST
def case_acknowledge_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = scoped_object_or_404(case_list_for(user=request.user), pk=pk, request=request)
    _attempt(
        request,
        lambda: services.case_acknowledge(
            actor=request.user, case=case, review_id=_posted_id(request, "review"), request=request
        ),
        _("The answer is acknowledged and the case is closed."),
    )
    return redirect("web:case-detail", pk=case.pk)


def _posted_id(request: HttpRequest, name: str) -> int:
    value = request.POST.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else 0


# --- Notifications ----------------------------------------------------------------------------
@private_no_store
@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = notification_list_for(user=request.user)
    page = Paginator(notifications, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "triage/notifications.html", {"page": page})


@private_no_store
@login_required
@require_POST
def notification_read_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark read, then open what it is about (the "Open" button)."""
    notification = scoped_object_or_404(notification_list_for(user=request.user), pk=pk, request=request)
    services.notification_mark_read(actor=request.user, notification=notification)
    if request.POST.get("open") and notification.url.startswith("/"):
        return redirect(notification.url)
    return redirect("triage:notification-list")


@private_no_store
@login_required
@require_POST
def notifications_read_all_view(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_all_read(actor=request.user)
    return redirect("triage:notification-list")


# --- Measures of the service ------------------------------------------------------------------
@private_no_store
@login_required
@require_http_methods(["GET"])
def service_metrics_page(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_specialist or request.user.is_administrator):
        raise PermissionDenied(_("For specialists and administrators."))
    metrics = service_metrics(referrals=referral_list_for(user=request.user))
    audit_record(actor=request.user, action="triage.metrics_view", request=request)
    outcome_rows = [
        {"code": code, "label": label, "count": metrics["outcomes"].get(code, 0)}
        for code, label in Review.Outcome.choices
    ]
    diagnosis_names = dict(Review.Diagnosis.choices)
    agreement_rows = [
        {
            "label": diagnosis_names.get(row["diagnosis"], row["diagnosis"]),
            "cells": [
                {"count": row["counts"][model], "agree": model == row["diagnosis"]}
                for model in metrics["agreement"]["model_classes"]
            ],
        }
        for row in metrics["agreement"]["rows"]
    ]
    return render(
        request,
        "triage/metrics.html",
        {
            "metrics": metrics,
            "outcome_rows": outcome_rows,
            "agreement_rows": agreement_rows,
            "model_class_names": [class_name(c) for c in metrics["agreement"]["model_classes"]],
        },
    )
