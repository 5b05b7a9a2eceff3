"""The shape of the code: dependencies point one way, and no app holds too much of it.

Layers, lowest first (an app may import the ones below it, never one above):

    inference, photos          the model and the photo check: no patients, cases or users
    accounts, clinics          users, roles, clinics, the audit log, sign-in
    patients                   patients: registration, consent, corrections, who sees what of them
    diagnosis                  cases, lesions, their photos and status (dispatch queues them)
    analysis, triage           side by side, neither importing the other:
                                 analysis: scoring, results, the safety net (writes diagnosis's rows)
                                 triage: the specialist's side: referral state machine, queue, answers
    continuity, monitoring     follow-ups and letters; the model in the field

``skinportal`` is the project package (settings, URLs, Celery, the API base) that ties them together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "accounts",
    "analysis",
    "clinics",
    "continuity",
    "diagnosis",
    "monitoring",
    "patients",
    "photos",
    "skinportal",
    "triage",
)
# What each package must never import (directly or inside a function).
PORTAL_APPS = {"accounts", "analysis", "clinics", "continuity", "diagnosis", "monitoring", "patients", "triage"}
NEVER_IMPORTS = {
    "inference": {"django", "photos", *PORTAL_APPS},
    "photos": {"inference", *PORTAL_APPS},
    "accounts": {"analysis", "continuity", "diagnosis", "monitoring", "patients", "triage"},
    "clinics": {"analysis", "continuity", "diagnosis", "monitoring", "patients", "triage"},
    "patients": {"analysis", "continuity", "diagnosis", "monitoring", "triage"},
    "diagnosis": {"analysis", "continuity", "monitoring", "triage"},
    "analysis": {"continuity", "monitoring", "triage"},
    "triage": {"analysis", "continuity", "monitoring"},
}
LARGEST_SHARE = 0.35


def _sources(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _inference_modules(path: Path) -> set[str]:
    """The modules of ``inference`` a file imports, by their full names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "inference")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "inference":
                names.update(f"inference.{alias.name}" for alias in node.names)
            elif node.module.split(".")[0] == "inference":
                names.add(node.module)
    return names


def _code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@pytest.mark.parametrize("package", sorted(NEVER_IMPORTS))
def test_dependencies_point_one_way(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources(package)
        for name in _imported_top_levels(path) & NEVER_IMPORTS[package]
    }
    assert not wrong, sorted(wrong)


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from triage.models import Referral\n    import diagnosis.tasks\n")
    assert _imported_top_levels(module) == {"triage", "diagnosis"}


def test_the_analysis_reaches_the_model_through_one_small_interface():
    """``inference.serving`` is the analysis worker's one door to the model."""
    used = {name for path in _sources("analysis") for name in _inference_modules(path)}
    assert used == {"inference.serving"}, sorted(used)


def test_no_app_holds_more_than_35_percent_of_the_django_code():
    lines = {app: sum(_code_lines(path) for path in _sources(app)) for app in APPS}
    total = sum(lines.values())
    shares = {app: count / total for app, count in lines.items()}
    assert max(shares.values()) <= LARGEST_SHARE, {app: round(share, 3) for app, share in shares.items()}
    assert total > 5000  # the count saw the code (a wrong root would pass any share)
