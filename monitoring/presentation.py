"""The field report as the API sends it and as the page shows it (labels in the reader's language)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from diagnosis.models import GATE_CHOICES
from patients.models import Patient

from .figures import Estimate

METHOD = (
    "Horvitz-Thompson: cases the model referred weigh 1, audited cases 1 / audit rate; 95% Wilson interval "
    "on the design-effective number of answers, widened by exact Poisson limits on the audited counts "
    "(monitoring/figures.py)."
)


def group_label(kind: str, group) -> str:
    if kind == "by_photo_kind":
        return _("Dermoscopic photo") if group == "dermoscopic" else _("No dermoscopic photo")
    if kind == "by_skin_type":
        if group in Patient.SkinType.values:
            return _("Fitzpatrick %(type)s") % {"type": group}
        return _("Skin type not recorded")
    return group[1]


def _estimate(estimate: Estimate) -> dict:
    return estimate.as_dict()


def _figures(summary: dict) -> dict:
    return {
        **{name: _estimate(summary[name]) for name in ("sensitivity", "specificity", "agreement")},
        **{name: summary[name] for name in ("answers", "malignant_answers", "audited_answers")},
    }


def report_as_json(report: dict) -> dict:
    versions = []
    for version in report["versions"]:
        row = {
            "model_version": version["model_version"],
            "audit_rate": version["audit_rate"],
            "overall": _figures(version["overall"]),
        }
        for kind in ("by_photo_kind", "by_skin_type", "by_clinic"):
            row[kind] = [
                {
                    "group": str(group[0]) if kind == "by_clinic" else group,
                    "label": group_label(kind, group),
                    **_figures(summary),
                }
                for group, summary in version[kind]
            ]
        versions.append(row)
    return {
        "method": METHOD,
        "min_answers": report["min_answers"],
        "versions": versions,
        "left_out": report["left_out"],
        "turned_back": [{"model_version": name, "weeks": weeks} for name, weeks in report["turned_back"].items()],
    }


def reason_labels() -> dict[str, str]:
    return {code: str(label) for code, label in GATE_CHOICES if code != "ok"}
