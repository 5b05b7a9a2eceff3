"""Analysing a case again: the service behind the web button, and ``manage.py reanalyse``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from analysis import services as analysis
from diagnosis import dispatch
from diagnosis.models import Case, LesionImage, Prediction
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory, PredictionFactory

Status = LesionImage.AnalysisStatus


@pytest.fixture
def enqueued(monkeypatch):
    cases: list[int] = []
    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: cases.append(case_id))
    return cases


@pytest.fixture
def failed_case(clinic_a, staff):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.FAILED)
    LesionImageFactory(case=case, analysis_status=Status.FAILED, analysis_error="unreadable", analysis_attempts=8)
    return case


def test_staff_analyses_a_failed_case_again(failed_case, staff, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        analysis.case_reanalyse(case=failed_case, actor=staff)

    failed_case.refresh_from_db()
    assert failed_case.status == Case.Status.ANALYSING
    image = failed_case.images.get()
    assert (image.analysis_status, image.analysis_error, image.analysis_attempts) == (Status.QUEUED, "", 0)
    assert enqueued == [failed_case.pk]
    event = AuditEvent.objects.get(action="case.reanalyse", object_id=str(failed_case.pk))
    assert event.actor == staff


@pytest.mark.parametrize("who", ["other_staff", "specialist"])
def test_only_staff_of_the_clinic_or_an_administrator_may_analyse_again(failed_case, personas, who, enqueued):
    with pytest.raises(PermissionDenied):
        analysis.case_reanalyse(case=failed_case, actor=personas[who])
    failed_case.refresh_from_db()
    assert failed_case.status == Case.Status.FAILED


def test_closed_case_cannot_be_analysed_again(failed_case, staff, enqueued):
    Case.objects.filter(pk=failed_case.pk).update(status=Case.Status.CLOSED)
    failed_case.refresh_from_db()
    with pytest.raises(ValidationError):
        analysis.case_reanalyse(case=failed_case, actor=staff)


@pytest.mark.parametrize(
    "status",
    [Case.Status.REFERRED, Case.Status.UNDER_REVIEW, Case.Status.INFORMATION_REQUESTED, Case.Status.REVIEWED],
)
def test_staff_cannot_pull_a_case_out_of_the_specialists_hands(failed_case, staff, enqueued, status):
    Case.objects.filter(pk=failed_case.pk).update(status=status, risk="high", summary="High risk: referred.")
    failed_case.refresh_from_db()

    with pytest.raises(ValidationError):
        analysis.case_reanalyse(case=failed_case, actor=staff)

    failed_case.refresh_from_db()
    assert (failed_case.status, failed_case.risk, failed_case.summary) == (status, "high", "High risk: referred.")
    assert failed_case.images.get().analysis_status == Status.FAILED
    assert enqueued == []


def test_a_new_model_scores_a_referred_case_without_moving_it(db, served_model, enqueued, ham_images):
    # A real lesion photo: the photo gate turns the factory's flat-colour image back, with no risk.
    image = LesionImageFactory(analysis_status=Status.DONE, content=ham_images[0].read_bytes())
    PredictionFactory(image=image, model_version="older-model")
    Case.objects.filter(pk=image.case_id).update(status=Case.Status.REFERRED, risk="high")

    analysis.case_reanalyse(case=Case.objects.get(pk=image.case_id), actor=None)
    assert analysis.image_analyse(image_id=image.pk) == "scored"

    case = Case.objects.get(pk=image.case_id)
    assert case.status == Case.Status.REFERRED and case.risk in ("low", "moderate", "high")
    versions = set(Prediction.objects.filter(image=image).values_list("model_version", flat=True))
    assert versions == {"older-model", served_model.model_version}


def test_new_model_version_adds_a_prediction_and_keeps_the_earlier_one(db, served_model, enqueued, ham_images):
    image = LesionImageFactory(analysis_status=Status.DONE, content=ham_images[0].read_bytes())
    PredictionFactory(image=image, model_version="older-model")
    Case.objects.filter(pk=image.case_id).update(status=Case.Status.ANALYSED)

    analysis.case_reanalyse(case=Case.objects.get(pk=image.case_id), actor=None)
    assert analysis.image_analyse(image_id=image.pk) == "scored"

    versions = set(Prediction.objects.filter(image=image).values_list("model_version", flat=True))
    assert versions == {"older-model", served_model.model_version}
    image.refresh_from_db()
    assert image.current_prediction.model_version == served_model.model_version
    assert Case.objects.get(pk=image.case_id).status in (Case.Status.ANALYSED, Case.Status.REFERRED)


def test_same_model_version_is_not_scored_again(db, served_model, enqueued):
    image = LesionImageFactory(analysis_status=Status.DONE)
    PredictionFactory(image=image, model_version=served_model.model_version)
    Case.objects.filter(pk=image.case_id).update(status=Case.Status.FAILED)

    analysis.case_reanalyse(case=Case.objects.get(pk=image.case_id), actor=None)

    assert analysis.image_analyse(image_id=image.pk) == "already scored"
    assert Prediction.objects.filter(image=image).count() == 1
    assert Case.objects.get(pk=image.case_id).status != Case.Status.ANALYSING


# --- manage.py reanalyse ----------------------------------------------------------------------
def run(*args) -> str:
    out = StringIO()
    call_command("reanalyse", *args, stdout=out)
    return out.getvalue()


def scored_case(version: str, status=Case.Status.ANALYSED) -> Case:
    image = LesionImageFactory(analysis_status=Status.DONE)
    PredictionFactory(image=image, model_version=version)
    Case.objects.filter(pk=image.case_id).update(status=status)
    return Case.objects.get(pk=image.case_id)


def test_command_queues_chosen_cases_scored_by_an_older_model(db, served_model, enqueued, capture_on_commit):
    old = scored_case("older-model")
    other = scored_case("older-model")

    output = run("--case", str(old.pk))

    assert f"case {old.pk}: queued" in output
    old.refresh_from_db()
    other.refresh_from_db()
    assert old.status == Case.Status.ANALYSING and other.status == Case.Status.ANALYSED


def test_command_all_leaves_current_reviewed_and_busy_cases_alone(db, served_model, enqueued, capture_on_commit):
    old = scored_case("older-model")
    current = scored_case(served_model.model_version)
    reviewed = scored_case("older-model", status=Case.Status.REVIEWED)
    busy = scored_case("older-model", status=Case.Status.ANALYSING)

    output = run("--all")

    assert f"case {old.pk}: queued" in output
    assert f"case {current.pk}: left alone (already scored by {served_model.model_version})" in output
    assert f"case {reviewed.pk}: left alone (reviewed by a specialist)" in output
    assert f"case {busy.pk}: left alone (analysis in progress)" in output
    assert "1 cases queued" in output
    assert Case.objects.get(pk=reviewed.pk).status == Case.Status.REVIEWED


def test_command_dry_run_changes_nothing(db, served_model, enqueued):
    case = scored_case("older-model")

    assert "would be queued" in run("--all", "--dry-run")
    case.refresh_from_db()
    assert case.status == Case.Status.ANALYSED


def test_command_refuses_unknown_cases_and_a_missing_model(db, served_model, monkeypatch, tmp_path):
    with pytest.raises(CommandError, match="no case with id 999"):
        run("--case", "999")
    monkeypatch.setenv("SKINPORTAL_MODEL_DIR", str(tmp_path / "none"))
    with pytest.raises(CommandError, match="no deployed model"):
        run("--all")


@pytest.fixture
def capture_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        yield


def test_command_leaves_alone_a_case_answered_after_it_was_read(db, served_model, enqueued, monkeypatch):
    from analysis.management.commands import reanalyse as command

    case = scored_case("older-model", status=Case.Status.REFERRED)
    image = case.images.get()

    def answered_meanwhile(*, case, **kwargs):
        Case.objects.filter(pk=case.pk).update(status=Case.Status.REVIEWED)  # a specialist answers now
        return analysis.case_reanalyse(case=case, **kwargs)

    monkeypatch.setattr(command, "case_reanalyse", answered_meanwhile)

    output = run("--case", str(case.pk))

    assert f"case {case.pk}: left alone (moved on meanwhile)" in output and "0 cases queued" in output
    image.refresh_from_db()
    assert image.analysis_status == Status.DONE and enqueued == []
    assert not AuditEvent.objects.filter(action="case.reanalyse").exists()
