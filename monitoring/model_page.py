"""The served model's page (/model/): what it is, how well it does on held-out photos beside
the published figures and the other architectures, its photo gate and referral thresholds,
and its evaluation report (report.md, rendered safely) with the report's own figures.
The model in the field (the specialists' answers) is monitoring/views.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from diagnosis.vocabulary import class_name
from inference.artifact import ArtifactError, artifact_for_version
from inference.baselines import baselines_for_artifact

REPORT_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")


# --- Model report ----------------------------------------------------------------------------
def _load_model_artifact():
    """(artifact, None) for the served model, or (None, reason) when none is installed."""
    from inference.artifact import ArtifactError, load_artifact

    try:
        return load_artifact(settings.SKINPORTAL_MODEL_DIR, verify=False), None
    except (ArtifactError, OSError, KeyError, ValueError) as exc:
        return None, str(exc)


def _parse_time(value):
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _report_images(report_dir: Path) -> set[str]:
    """The PNG figures in the report folder, by plain file name."""
    if not report_dir.is_dir():
        return set()
    return {
        entry.name
        for entry in report_dir.iterdir()
        if entry.is_file() and not entry.is_symlink() and REPORT_FILE_NAME.match(entry.name)
    }


# The published system the model is compared with (its paper reports these three figures).
PUBLISHED_SYSTEM = {"accuracy": 0.62, "top_class_accuracy": 0.62, "macro_f1": 0.53, "melanoma_recall": 0.70}
HEADLINE_ROWS = (
    (gettext_lazy("Test images"), "images"),
    (gettext_lazy("Balanced accuracy (mean recall per class)"), "balanced_accuracy"),
    (gettext_lazy("Macro F1"), "macro_f1"),
    (gettext_lazy("Accuracy of the most likely class"), "top_class_accuracy"),
    (gettext_lazy("Melanoma photos referred"), "melanoma_referred"),
    (gettext_lazy("Malignant lesions referred (sensitivity)"), "malignant_sensitivity"),
    (gettext_lazy("Benign lesions not referred (specificity)"), "malignant_specificity"),
    (gettext_lazy("Malignant vs benign ROC AUC"), "malignant_roc_auc"),
    (gettext_lazy("Calibration error, per class (lower is better)"), "classwise_ece"),
    (gettext_lazy("Calibration error, most likely class"), "ece"),
)


def _test_figures(manifest: dict) -> dict:
    """The test-split summary of a manifest; format 1 scored the plain argmax, so its accuracy is the top class'."""
    figures = dict((manifest.get("metrics") or {}).get("test") or {})
    if "top_class_accuracy" not in figures and "accuracy" in figures:
        figures["top_class_accuracy"] = figures["accuracy"]
    intervals = (manifest.get("metrics") or {}).get("test_intervals") or {}
    figures["_intervals"] = {
        key: value for key, value in intervals.items() if isinstance(value, list) and len(value) == 2
    }
    return figures


def _gate_by_class(gate: dict) -> list[tuple[str, dict, dict]]:
    """Per kind of lesion: the share of its validation and test photos the gate turns back."""
    by_class = gate.get("by_class") or {}
    val, test = by_class.get("val") or {}, by_class.get("test") or {}
    rows = [(class_name(code), val.get(code) or {}, test.get(code) or {}) for code in test if code != "all"]
    if "all" in test:
        rows.append((_("All lesion photos"), val.get("all") or {}, test["all"]))
    return rows


def _headline_comparison(artifact) -> tuple[list[dict], list[tuple[str, list]]]:
    """Columns (the published system, earlier shipped versions, the served one) and one row per figure."""
    from inference.artifact import ARTIFACTS_DIR

    columns = [(_("Published"), PUBLISHED_SYSTEM)]
    for folder in sorted(ARTIFACTS_DIR.iterdir()) if ARTIFACTS_DIR.is_dir() else []:
        if folder.is_dir() and folder.name != artifact.model_version and (folder / "manifest.json").is_file():
            try:
                other = artifact_for_version(folder.name)
            except ArtifactError:
                continue
            columns.append((other.model_version, _test_figures(other.manifest)))
    columns.append((artifact.model_version, _test_figures(artifact.manifest)))
    rows = []
    for label, key in HEADLINE_ROWS:
        values = [figures.get(key) for _name, figures in columns]
        if any(value is not None for value in values[1:]):
            # each cell: the figure and, where the manifest has it, its 95% interval
            cells = [(figures.get(key), (figures.get("_intervals") or {}).get(key)) for _n, figures in columns]
            rows.append((label, cells))
    # Short headers ("v1", "v2") so the table fits a phone; the full names are in the title.
    headers = [
        {"short": name.rsplit("-", 1)[-1], "full": name, "in_use": name == artifact.model_version}
        for name, _figures in columns
    ]
    return headers, rows


def _architecture_comparison(artifact) -> dict | None:
    """The served network beside the LeNet-5 and AlexNet baselines trained on its split (inference.baselines)."""
    measured, measured_on = baselines_for_artifact(artifact)
    if not measured or not measured.get("baselines"):
        return None
    served = [{**row, "served": True} for row in measured.get("served", [])]
    return {
        "rows": served + measured["baselines"],
        "calibration": measured.get("calibration", ""),
        "measured_on": measured_on,
    }


def _gate_figures(gate: dict) -> list[tuple[str, object]]:
    """The photo gate's figures on images no threshold was chosen on (the manifest's gate section)."""
    test = gate.get("test") or {}
    rows = [
        (_("Lesion photos of the test split turned back (target at most 2%)"), test.get("test_lesions_turned_back")),
        (_("Out-of-domain images turned back (target at least 95%)"), test.get("out_of_domain_turned_back")),
        (_("Severely blurred photos turned back (target at least 90%)"), test.get("severe_blur_turned_back")),
        (_("Severely darkened photos turned back (target at least 90%)"), test.get("severe_dark_turned_back")),
        (
            _("Severely overexposed photos turned back (target at least 90%)"),
            test.get("severe_overexposed_turned_back"),
        ),
    ]
    return [(label, value) for label, value in rows if value is not None]


@login_required
@require_GET
def model_report(request: HttpRequest) -> HttpResponse:
    from .report_markdown import render_report_markdown

    artifact, problem = _load_model_artifact()
    context: dict = {"artifact": artifact, "problem": problem}
    if artifact is not None:
        manifest = artifact.manifest
        figures = _report_images(artifact.report_dir)
        columns, rows = _headline_comparison(artifact)
        report_file = artifact.report_dir / "report.md"
        report_html = None
        if report_file.is_file():
            report_html = render_report_markdown(
                report_file.read_text(encoding="utf-8", errors="replace"),
                image_url=lambda name: (
                    reverse("monitoring:model-report-file", args=[name]) if name in figures else None
                ),
            )
        context.update(
            manifest=manifest,
            headline_columns=columns,
            headline=rows,
            created_at=_parse_time(manifest.get("created_at")),
            thresholds=[(code, class_name(code), value) for code, value in (manifest.get("thresholds") or {}).items()],
            report_html=report_html,
            gate_figures=_gate_figures(manifest.get("gate") or {}),
            gate_by_class=_gate_by_class(manifest.get("gate") or {}),
            operating_point=manifest.get("operating_point"),
            architectures=_architecture_comparison(artifact),
        )
    return render(request, "monitoring/model_report.html", context)


@login_required
@require_GET
def model_report_file(request: HttpRequest, name: str) -> FileResponse:
    """A PNG figure of the served model's report; only files in that folder, by name."""
    artifact, _error = _load_model_artifact()
    if artifact is None or name not in _report_images(artifact.report_dir):
        raise Http404(_("No such report figure."))
    response = FileResponse((artifact.report_dir / name).open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
