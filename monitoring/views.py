"""The "model in the field" page: for administrators (every clinic) and specialists (the clinics
they serve); clinic staff are refused. Read-only; figures from monitoring.selectors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.services import audit_record
from skinportal.web import private_no_store

from . import charts
from .alerts import SENSITIVITY_ALERT_BELOW, TURNED_BACK_ALERT_ABOVE
from .presentation import group_label, reason_labels
from .selectors import field_report_for, may_see_field_figures

FIGURES = ("sensitivity", "specificity", "agreement")


def _figure_names() -> dict[str, str]:
    return {
        "sensitivity": _("Sensitivity: malignant lesions referred"),
        "specificity": _("Specificity: other lesions not referred"),
        "agreement": _("Agreement with the specialist's diagnosis"),
    }


def _short_names() -> tuple[str, str, str]:
    return _("Sensitivity"), _("Specificity"), _("Agreement")


def _version_context(version: dict) -> dict:
    names = _figure_names()
    overall = version["overall"]
    sections = []
    for kind, heading in (
        ("by_photo_kind", _("By kind of photo")),
        ("by_skin_type", _("By Fitzpatrick skin type")),
        ("by_clinic", _("By clinic")),
    ):
        groups = [(group_label(kind, group), summary) for group, summary in version[kind]]
        sections.append(
            {
                "heading": heading,
                "rows": [{"label": label, "cells": [summary[name] for name in FIGURES]} for label, summary in groups],
                "chart": charts.interval_chart(
                    [(label, summary["sensitivity"]) for label, summary in groups],
                    title=_("%(heading)s: sensitivity with its 95%% interval") % {"heading": heading},
                    alert_at=SENSITIVITY_ALERT_BELOW,
                ),
            }
        )
    return {
        "model_version": version["model_version"],
        "audit_rate": version["audit_rate"],
        "overall": overall,
        "overall_rows": [{"name": names[name], "estimate": overall[name]} for name in FIGURES],
        "overall_chart": charts.interval_chart(
            [(short, overall[name]) for name, short in zip(FIGURES, _short_names(), strict=True)],
            title=_("The model in the field: each figure with its 95%% interval") % {},
            alert_at=SENSITIVITY_ALERT_BELOW,
        ),
        "sections": sections,
    }


@private_no_store
@login_required
@require_GET
def field_page(request: HttpRequest) -> HttpResponse:
    if not may_see_field_figures(request.user):
        raise PermissionDenied(_("For specialists and administrators."))
    report = field_report_for(user=request.user)
    labels = reason_labels()
    turned_back = [
        {
            "model_version": version,
            "weeks": weeks,
            "chart": charts.turned_back_chart(
                weeks,
                title=_("Share of photos turned back each week, by reason"),
                reason_labels=labels,
                alert_at=TURNED_BACK_ALERT_ABOVE,
            ),
        }
        for version, weeks in report["turned_back"].items()
    ]
    audit_record(actor=request.user, action="monitoring.field_view", request=request)
    return render(
        request,
        "monitoring/field.html",
        {
            "versions": [_version_context(version) for version in report["versions"]],
            "left_out": report["left_out"],
            "min_answers": report["min_answers"],
            "turned_back": turned_back,
            "reasons": list(labels.items()),
            "reason_colours": charts.REASON_COLOURS,
            "alert_sensitivity": SENSITIVITY_ALERT_BELOW,
            "alert_turned_back": TURNED_BACK_ALERT_ABOVE,
        },
    )
