"""Model versions are immutable and fully verified, and a case is settled with the thresholds of its scorer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from analysis import services as analysis
from diagnosis.models import Case, LesionImage
from inference.artifact import ARTIFACTS_DIR, ArtifactError, artifact_for_version, load_artifact
from inference.preprocessing import CLASSES
from tests.factories import LesionImageFactory

V1 = "ham10000-mobilenetv2-v1"
Status = LesionImage.AnalysisStatus


@pytest.fixture
def artifact_copy(tmp_path):
    """A copy of the shipped artifact to tamper with."""
    source = load_artifact().path
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    assert load_artifact(folder).sha256 == load_artifact(source).sha256
    return folder


def test_export_refuses_to_write_over_an_existing_version(tmp_path):
    from training.export import export_artifact

    existing = tmp_path / "some-version"
    existing.mkdir()
    (existing / "manifest.json").write_text("{}")

    with pytest.raises(FileExistsError):
        export_artifact(
            keras_model=None,
            destination=existing,
            model_version="some-version",
            temperature=1.0,
            thresholds={"mel": 0.5},
            target_sensitivity=0.95,
            metrics={},
            training={},
        )
    assert (existing / "manifest.json").read_text() == "{}"


def test_finalize_refuses_an_existing_version_before_any_work(tmp_path):
    from training import finalize

    with pytest.raises(SystemExit, match="never overwritten"):
        finalize.main(["--run-dir", str(tmp_path / "no-run"), "--model-version", V1])


@pytest.mark.parametrize("name", ["head.npz", "calibration.npz", "thresholds.json", "model.tflite"])
def test_a_tampered_file_is_refused_at_load(artifact_copy, name):
    file = artifact_copy / name
    if name == "thresholds.json":
        thresholds = json.loads(file.read_text())
        thresholds["mel"] = 0.99
        file.write_text(json.dumps(thresholds))
    else:
        content = bytearray(file.read_bytes())
        content[len(content) // 2] ^= 0xFF
        file.write_bytes(bytes(content))

    with pytest.raises(ArtifactError, match=name):
        load_artifact(artifact_copy)


def test_thresholds_changed_in_the_manifest_alone_are_refused(artifact_copy):
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    manifest["thresholds"]["mel"] = 0.99
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ArtifactError, match="thresholds"):
        load_artifact(artifact_copy)


def test_a_file_the_manifest_does_not_list_is_refused(artifact_copy):
    (artifact_copy / "gate.npz").write_bytes(b"statistics nobody hashed")

    with pytest.raises(ArtifactError, match="gate.npz"):
        load_artifact(artifact_copy)


def test_a_serving_model_whose_input_differs_from_the_manifest_is_refused(artifact_copy):
    from inference.predictor import Predictor

    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    manifest["preprocessing"]["input_size"] = 160
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ArtifactError, match="input"):
        Predictor(load_artifact(artifact_copy))


def test_the_first_version_stays_readable_with_its_own_calibration():
    v1 = artifact_for_version(V1)

    assert v1.model_version == V1 and v1.manifest["format_version"] == 1
    np.testing.assert_allclose(v1.calibration.scale, 1.0 / v1.temperature)
    assert v1.thresholds == v1.manifest["thresholds"]
    with pytest.raises(ArtifactError, match="changed"):
        artifact_for_version(V1, "0" * 64)


def test_a_case_is_settled_with_the_thresholds_of_the_model_that_scored_it(db, served_model):
    v1 = artifact_for_version(V1)
    if served_model.model_version == V1:
        pytest.fail("the served model is still v1; this test needs two versions")
    low, high = sorted((v1.thresholds["mel"], served_model.artifact.thresholds["mel"]))
    if high - low < 0.02:
        pytest.fail("the two versions' melanoma thresholds are too close to tell apart")
    mel = (low + high) / 2  # referred by the version with the lower threshold only
    # basal cell carcinoma and actinic keratosis stay far below either version's thresholds
    probabilities = {"akiec": 0.001, "bcc": 0.001, "bkl": 0.01, "df": 0.01, "mel": mel, "vasc": 0.01}
    probabilities["nv"] = 1.0 - sum(probabilities.values())

    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=V1,
        artifact_sha256=v1.sha256,
        probabilities=probabilities,
        top_class="mel",
        inference_ms=4,
    )

    case = analysis.case_result_update(case_id=image.case_id)

    referred_by_v1 = mel >= v1.thresholds["mel"]
    assert case.status == (Case.Status.REFERRED if referred_by_v1 else Case.Status.ANALYSED)
    assert f"referral threshold {round(v1.thresholds['mel'] * 100)}%" in case.summary or not referred_by_v1


def test_a_case_is_not_settled_with_an_artifact_that_changed_since_it_scored(db, served_model):
    image = LesionImageFactory()
    LesionImage.objects.filter(pk=image.pk).update(analysis_status=Status.ANALYSING)
    analysis.prediction_record(
        image=image,
        model_version=V1,
        artifact_sha256="f" * 64,
        probabilities={name: 1 / 7 for name in CLASSES},
        top_class="nv",
        inference_ms=4,
    )

    case = analysis.case_result_update(case_id=image.case_id)

    # Never settled with another artifact's thresholds: the photo has no result, with the reason,
    # and the case waits for a photo (or "Analyse again") instead of waiting for ever.
    assert case.status == Case.Status.FAILED and case.risk == "" and case.awaiting_photo_since is not None
    image.refresh_from_db()
    assert image.analysis_status == Status.FAILED and image.analysis_error == analysis.MODEL_UNAVAILABLE


def test_predictions_store_the_hash_and_balanced_class_of_their_artifact(db, served_model):
    from tests.factories import image_bytes

    image = LesionImageFactory(content=image_bytes(200, 150, (150, 90, 70)))

    assert analysis.image_analyse(image_id=image.pk) == "scored"

    (prediction,) = image.predictions.all()
    assert prediction.artifact_sha256 == served_model.artifact.sha256 == load_artifact().sha256
    assert prediction.balanced_class in CLASSES
    assert ARTIFACTS_DIR.joinpath(prediction.model_version).is_dir()
