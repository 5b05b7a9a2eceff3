"""The analysis services a worker runs, in this process: claim, score, record, settle, sweep.

The real model artifact is served (tests/inference_fixtures.py); the worker process itself
is exercised in test_worker_e2e.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import AuditEvent
from analysis import services as analysis
from diagnosis import dispatch, transitions
from diagnosis.models import Case, LesionImage, Prediction
from inference.preprocessing import CLASSES
from tests.factories import CaseFactory, LesionImageFactory, image_bytes

Status = LesionImage.AnalysisStatus


@pytest.fixture
def sent(monkeypatch):
    """Photo ids handed to the broker, without a broker."""
    ids: list[int] = []

    def fake_send(*, image_ids):
        ids.extend(image_ids)
        LesionImage.objects.filter(pk__in=image_ids).update(analysis_updated_at=timezone.now())
        return len(image_ids)

    monkeypatch.setattr(dispatch, "image_analysis_enqueue", fake_send)
    return ids


def probabilities(**overrides: float) -> dict[str, float]:
    rest = (1.0 - sum(overrides.values())) / (len(CLASSES) - len(overrides))
    return {name: overrides.get(name, rest) for name in CLASSES}


def test_photo_is_scored_once_with_prediction_heatmap_and_case_result(db, served_model, ham_images):
    # A real lesion photo: the photo gate turns a flat-colour image back (no heatmap, no result).
    image = LesionImageFactory(content=ham_images[0].read_bytes())

    assert analysis.image_analyse(image_id=image.pk) == "scored"

    image.refresh_from_db()
    assert image.analysis_status == Status.DONE and image.analysis_attempts == 1
    (prediction,) = image.predictions.all()
    assert prediction.model_version == served_model.model_version
    assert set(prediction.probabilities) == set(CLASSES)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.top_class == max(prediction.probabilities, key=prediction.probabilities.get)
    with prediction.heatmap.open("rb") as handle, Image.open(handle) as heatmap:
        assert heatmap.format == "PNG" and heatmap.mode == "P" and heatmap.size == (200, 150)
        assert "transparency" in heatmap.info  # a layer laid over the photo, not a picture of it
    assert prediction.heatmap_is_layer and prediction.heatmap.name.endswith("-layer.png")
    case = Case.objects.get(pk=image.case_id)
    assert case.status in (Case.Status.ANALYSED, Case.Status.REFERRED)
    assert case.risk in ("low", "moderate", "high")
    assert "not a diagnosis" in case.summary and served_model.model_version in case.summary


def test_second_run_of_the_same_message_writes_nothing(db, served_model):
    image = LesionImageFactory()
    analysis.image_analyse(image_id=image.pk)

    assert analysis.image_analyse(image_id=image.pk) == "skipped"
    assert analysis.image_analyse(image_id=image.pk, resume=True) == "skipped"
    assert Prediction.objects.filter(image=image).count() == 1


def test_duplicate_message_leaves_a_photo_another_worker_is_scoring(db, served_model):
    image = LesionImageFactory()
    assert analysis.image_analysis_claim(image_id=image.pk) is not None

    assert analysis.image_analyse(image_id=image.pk) == "skipped"
    assert not Prediction.objects.filter(image=image).exists()


def test_redelivered_message_takes_over_the_claim_of_a_killed_worker(db, served_model):
    image = LesionImageFactory()
    analysis.image_analysis_claim(image_id=image.pk)  # ... and the worker process died here

    assert analysis.image_analyse(image_id=image.pk, resume=True) == "scored"
    assert Prediction.objects.filter(image=image).count() == 1
    image.refresh_from_db()
    assert image.analysis_attempts == 2


def test_prediction_record_keeps_the_first_result_for_a_model_version(db):
    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    first = analysis.prediction_record(
        image=image, model_version="v1", probabilities=probabilities(nv=0.9), top_class="nv", inference_ms=3
    )
    second = analysis.prediction_record(
        image=image,
        model_version="v1",
        probabilities=probabilities(mel=0.9),
        top_class="mel",
        inference_ms=3,
        heatmap=image_bytes(fmt="PNG"),
    )

    assert second.pk == first.pk and second.top_class == "nv"
    assert Prediction.objects.filter(image=image).count() == 1
    image.refresh_from_db()
    assert image.analysis_status == Status.DONE


def test_unreadable_photo_fails_with_a_reason_and_the_case_fails(db, served_model):
    image = LesionImageFactory(file=ContentFile(b"this is not a picture", name="broken.jpg"))

    assert analysis.image_analyse(image_id=image.pk) == "failed"

    image.refresh_from_db()
    assert image.analysis_status == Status.FAILED
    assert "could not be read" in image.analysis_error
    case = Case.objects.get(pk=image.case_id)
    assert case.status == Case.Status.FAILED and case.risk == ""
    assert "No photo could be analysed" in case.summary


@pytest.mark.parametrize("stage", ["decoding", "scoring"])
def test_failure_details_go_to_the_log_not_to_clinic_users(stage, db, served_model, monkeypatch, client_for, caplog):
    internal_path = "/srv/skinportal/var/media/lesions/2025/ISIC_0024306.jpg"

    def broken(*args, **kwargs):
        raise ValueError(f"cannot identify image file '{internal_path}'")

    if stage == "decoding":
        from inference import serving

        monkeypatch.setattr(serving, "read_photo", broken)
    else:
        monkeypatch.setattr(served_model, "predict_image", broken)
    image = LesionImageFactory()

    assert analysis.image_analyse(image_id=image.pk) == "failed"

    image.refresh_from_db()
    assert image.analysis_error in (analysis.PHOTO_UNREADABLE, analysis.PHOTO_NOT_SCORED)
    user = image.case.submitted_by
    api = client_for(user).get(f"/api/v1/cases/{image.case_id}/").content.decode()
    user_client = Client()
    user_client.force_login(user)
    page = user_client.get(reverse("web:case-detail", args=[image.case_id])).content.decode()
    assert internal_path not in api and image.analysis_error in api
    assert internal_path not in page and image.analysis_error in page
    assert internal_path in caplog.text and f"image {image.pk}" in caplog.text


def test_missing_photo_file_fails_with_a_reason(db, served_model):
    image = LesionImageFactory()
    image.file.storage.delete(image.file.name)

    assert analysis.image_analyse(image_id=image.pk) == "failed"
    image.refresh_from_db()
    assert "missing" in image.analysis_error


def test_model_that_cannot_load_fails_the_photo_with_a_reason(db, monkeypatch, tmp_path):
    from inference.predictor import get_predictor

    monkeypatch.setenv("SKINPORTAL_MODEL_DIR", str(tmp_path / "no-model-here"))
    get_predictor.cache_clear()
    image = LesionImageFactory()

    assert analysis.image_analyse(image_id=image.pk) == "failed"

    image.refresh_from_db()
    assert image.analysis_error == analysis.MODEL_UNAVAILABLE
    assert Case.objects.get(pk=image.case_id).status == Case.Status.FAILED
    get_predictor.cache_clear()


def test_one_failed_photo_of_two_still_gives_a_result_and_says_so(db, served_model, ham_images):
    case = CaseFactory()
    good = LesionImageFactory(case=case, content=ham_images[0].read_bytes())
    bad = LesionImageFactory(case=case, file=ContentFile(b"garbage", name="bad.jpg"))

    analysis.image_analyse(image_id=good.pk)
    case.refresh_from_db()
    assert case.status == Case.Status.ANALYSING  # one photo still waits
    analysis.image_analyse(image_id=bad.pk)

    case.refresh_from_db()
    assert case.status in (Case.Status.ANALYSED, Case.Status.REFERRED)
    assert "Photo 2 could not be analysed" in case.summary


def test_transient_database_error_hands_the_photo_back_for_a_retry(db, served_model, monkeypatch):
    image = LesionImageFactory()

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(analysis, "prediction_record", database_gone)
        with pytest.raises(OperationalError):
            analysis.image_analyse(image_id=image.pk)
    image.refresh_from_db()
    assert image.analysis_status == Status.QUEUED

    assert analysis.image_analyse(image_id=image.pk) == "scored"


def test_high_risk_case_is_referred_with_referred_at(db, served_model):
    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    threshold = served_model.artifact.thresholds["mel"]
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(mel=min(0.95, threshold + 0.05)),
        top_class="mel",
        inference_ms=4,
    )

    case = analysis.case_result_update(case_id=image.case_id)

    case.refresh_from_db()
    assert case.status == Case.Status.REFERRED and case.risk == "high"
    assert case.referred_at is not None and case.analysed_at is not None
    assert "melanoma" in case.summary and "not a diagnosis" in case.summary
    event = AuditEvent.objects.filter(action="case.transition", object_id=str(case.pk)).latest("pk")
    assert event.details["to"] == "referred" and event.details["risk"] == "high"


def test_low_risk_case_is_analysed(db, served_model):
    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(nv=0.97),
        top_class="nv",
        inference_ms=4,
    )

    case = analysis.case_result_update(case_id=image.case_id)

    assert case.status == Case.Status.ANALYSED and case.risk == "low" and case.analysed_at is not None


def test_a_late_result_updates_the_risk_of_a_case_under_review_but_not_its_status(db, served_model):
    case = CaseFactory(status=Case.Status.UNDER_REVIEW, referred_at=timezone.now())
    image = LesionImageFactory(case=case, analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(nv=0.97),
        top_class="nv",
        inference_ms=4,
    )

    analysis.case_result_update(case_id=case.pk)

    case.refresh_from_db()
    assert case.status == Case.Status.UNDER_REVIEW and case.risk == "low"
    assert not AuditEvent.objects.filter(action="case.transition", object_id=str(case.pk)).exists()


@pytest.mark.parametrize("status", [Case.Status.REVIEWED, Case.Status.CLOSED])
def test_an_answered_case_keeps_the_result_it_was_answered_on(db, served_model, status):
    case = CaseFactory(status=status, referred_at=timezone.now(), risk="high", summary="High risk: as reviewed.")
    LesionImageFactory(case=case, analysis_status=Status.DONE)

    analysis.case_result_update(case_id=case.pk)

    case.refresh_from_db()
    assert (case.status, case.risk, case.summary) == (status, "high", "High risk: as reviewed.")


# --- The sweeper ------------------------------------------------------------------------------
def test_sweeper_resends_photos_queued_too_long_and_leaves_fresh_ones(db, sent, settings):
    settings.SKINPORTAL_ANALYSIS_REQUEUE_SECONDS = 60
    old = LesionImageFactory()
    fresh = LesionImageFactory()
    LesionImage.objects.filter(pk=old.pk).update(analysis_updated_at=timezone.now() - timedelta(minutes=5))
    LesionImage.objects.filter(pk=fresh.pk).update(analysis_updated_at=timezone.now())

    analysis.analysis_sweep()
    assert sent == [old.pk]
    analysis.analysis_sweep()  # just sent: not again until another requeue period has passed
    assert sent == [old.pk]


def test_sweeper_takes_back_photos_abandoned_in_analysis(db, sent, settings):
    settings.SKINPORTAL_ANALYSIS_STALE_SECONDS = 120
    abandoned = LesionImageFactory(analysis_status=Status.ANALYSING, analysis_attempts=1)
    busy = LesionImageFactory(analysis_status=Status.ANALYSING, analysis_attempts=1)
    LesionImage.objects.filter(pk=abandoned.pk).update(analysis_updated_at=timezone.now() - timedelta(minutes=10))
    LesionImage.objects.filter(pk=busy.pk).update(analysis_updated_at=timezone.now())

    analysis.analysis_sweep()

    assert sent == [abandoned.pk]
    abandoned.refresh_from_db()
    busy.refresh_from_db()
    assert abandoned.analysis_status == Status.QUEUED and busy.analysis_status == Status.ANALYSING


def test_sweeper_fails_a_photo_that_used_up_its_attempts(db, sent, settings):
    settings.SKINPORTAL_ANALYSIS_MAX_ATTEMPTS = 3
    image = LesionImageFactory(analysis_status=Status.ANALYSING, analysis_attempts=3)
    LesionImage.objects.filter(pk=image.pk).update(analysis_updated_at=timezone.now() - timedelta(hours=1))

    analysis.analysis_sweep()

    image.refresh_from_db()
    assert sent == []
    assert image.analysis_status == Status.FAILED and "after 3 attempts" in image.analysis_error
    assert Case.objects.get(pk=image.case_id).status == Case.Status.FAILED


def test_sweeper_settles_a_case_whose_photos_finished_without_a_result(db, sent, served_model):
    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(nv=0.9),
        top_class="nv",
        inference_ms=2,
    )  # ... and the worker died before case_result_update
    Case.objects.filter(pk=image.case_id).update(
        status=Case.Status.ANALYSING, updated_at=timezone.now() - timedelta(minutes=5)
    )

    assert analysis.analysis_sweep()["cases"] == 1
    assert Case.objects.get(pk=image.case_id).status == Case.Status.ANALYSED


def test_claim_moves_a_submitted_case_to_analysing(db):
    image = LesionImageFactory()
    assert analysis.image_analysis_claim(image_id=image.pk) is not None
    assert Case.objects.get(pk=image.case_id).status == Case.Status.ANALYSING


def test_the_prediction_and_the_case_result_are_written_in_one_transaction(db, served_model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    image = LesionImageFactory()

    with CaptureQueriesContext(connection) as captured:
        assert analysis.image_analyse(image_id=image.pk) == "scored"

    statements = [query["sql"] for query in captured.captured_queries]
    # The claim and the case's move to analysing; then the prediction, the photo done and the case's
    # result in one transaction: no commit or savepoint between the prediction and the result.
    insert = next(n for n, sql in enumerate(statements) if sql.startswith('INSERT INTO "diagnosis_prediction"'))
    result = next(n for n, sql in enumerate(statements) if sql.startswith('UPDATE "diagnosis_case" SET "risk"'))
    between = statements[insert:result]
    assert not any(sql.startswith(("COMMIT", "RELEASE", "BEGIN", "SAVEPOINT")) for sql in between), between
    # The photo's earlier prediction, if any, was looked for in the claim's query, not on its own.
    assert not any(sql.startswith('SELECT "diagnosis_prediction"') for sql in statements[:insert])
    image.refresh_from_db()
    assert image.analysis_status == Status.DONE
    assert image.case.status not in transitions.CASE_AWAITING_RESULT  # settled


def test_a_failing_case_result_still_leaves_the_prediction_stored(db, served_model, monkeypatch):
    image = LesionImageFactory()
    calls = []

    def broken(*, case_id, savepoint=True):
        calls.append(savepoint)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(analysis, "case_result_update", broken)
    with pytest.raises(OperationalError):
        analysis.image_analyse(image_id=image.pk)

    # Tried with the prediction, then on its own after the prediction was stored, as before.
    assert calls == [False, True]
    image.refresh_from_db()
    assert image.analysis_status == Status.DONE
    assert Prediction.objects.filter(image=image).count() == 1
    assert image.case.status == Case.Status.ANALYSING


def test_a_photo_turned_back_as_unusual_that_looks_like_a_cancer_still_refers_the_case(db, served_model):
    from triage.models import Referral

    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    threshold = served_model.artifact.thresholds["bcc"]
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(bcc=min(0.9, threshold + 0.4)),
        top_class="bcc",
        inference_ms=4,
        gate="not_a_lesion",
        gate_score=9.0,
    )

    case = analysis.case_result_update(case_id=image.case_id)

    case.refresh_from_db()
    assert case.status == Case.Status.REFERRED and case.risk == "high"
    referral = Referral.objects.get(case=case)
    assert referral.source == "model"
    assert "could not read this photo reliably" in referral.reason and "basal cell carcinoma" in referral.reason


def test_a_photo_that_is_not_skin_never_refers_the_case_however_it_scores(db, served_model):
    from triage.models import Referral

    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=served_model.model_version,
        probabilities=probabilities(mel=0.9),
        top_class="mel",
        inference_ms=4,
        gate="not_skin",
        gate_score=12.0,
    )

    case = analysis.case_result_update(case_id=image.case_id)

    case.refresh_from_db()
    assert case.status == Case.Status.FAILED and case.risk == ""
    assert not Referral.objects.filter(case=case).exists()
