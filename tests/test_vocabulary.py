"""Each clinical list is declared once: the lesion classes with their names, and the history and
signs ticked on a case. Everything else reads them from inference/classes.py and
diagnosis/vocabulary.py; a second copy in the source fails here."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from diagnosis import vocabulary
from diagnosis.forms import CaseForm
from diagnosis.models import Case
from diagnosis.serializers import CaseInputSerializer
from inference.classes import CLASS_NAMES, CLASSES
from triage.models import Review

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {
    ".venv",
    "tests",
    "docs",
    "migrations",
    "locale",
    "node_modules",
    "staticfiles",
    "var",
    ".git",
    "runs",
    "__pycache__",
}
REQUIREMENTS = {"requirements.txt", "requirements-dev.txt"}
CLASSES_HOME = "inference/classes.py"
VOCABULARY_HOME = "diagnosis/vocabulary.py"


@functools.cache
def _sources() -> dict[str, str]:
    """The project's code and templates, by path relative to the repository (read once).

    Skipped folders are not entered at all: the virtual environment alone holds tens of
    thousands of files, and ignored work folders (runs/) can hold gigabytes."""
    found = {}
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED)
        for name in files:
            path = Path(folder) / name
            relative = path.relative_to(ROOT)
            if path.suffix not in {".py", ".html", ".js", ".txt"} or relative.as_posix() in REQUIREMENTS:
                continue
            found[relative.as_posix()] = path.read_text(encoding="utf-8", errors="replace")
    return found


def test_lesion_class_names_are_written_only_in_inference_classes():
    sources = _sources()

    for name in CLASS_NAMES.values():
        quoted = re.compile(rf"[\"']{re.escape(name)}[\"']")
        holders = {path for path, text in sources.items() if quoted.search(text)}
        assert holders == {CLASSES_HOME}, name


def test_lesion_class_codes_are_listed_only_in_the_two_vocabularies():
    sources = _sources()

    listing = {path for path, text in sources.items() if all(re.search(rf"[\"']{code}[\"']", text) for code in CLASSES)}

    assert listing <= {CLASSES_HOME, VOCABULARY_HOME}


@pytest.mark.parametrize("field", vocabulary.SIGN_FIELDS)
def test_each_sign_ticked_on_a_case_is_declared_only_in_the_vocabulary(field):
    # A declaration (field = ..., field: bool), a quoted name, or a template reading case.field.
    pattern = re.compile(rf"\b{field}\s*(=|:\s*bool)|[\"']{field}[\"']|\bcase\.{field}\b")
    holders = {path for path, text in _sources().items() if pattern.search(text)}

    assert holders == {VOCABULARY_HOME}


def test_the_model_the_form_the_serializer_and_case_submit_take_the_same_signs():
    fields = set(vocabulary.SIGN_FIELDS)

    assert len(fields) == 11
    assert fields <= {field.name for field in Case._meta.get_fields()}
    assert fields <= set(CaseForm.base_fields)
    assert fields <= set(CaseInputSerializer().fields)
    assert fields <= set(Case.HISTORY_FIELDS)


def test_a_specialists_diagnoses_are_the_models_classes_and_two_more():
    assert Review.Diagnosis.values == [*CLASSES, "scc", "other"]
    with translation.override("fr"):
        assert vocabulary.class_name("mel") == "Mélanome"
        assert str(Review.Diagnosis("nv").label) == vocabulary.class_name("nv") != CLASS_NAMES["nv"]


def test_the_class_codes_import_without_django():
    code = "import sys, inference.classes, inference.preprocessing; print('django' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"
