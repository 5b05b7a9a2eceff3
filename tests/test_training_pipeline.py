"""The training pipeline end to end on a tiny HAM10000-style folder, and its pieces."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from inference.artifact import ArtifactError, load_artifact
from inference.preprocessing import CLASSES
from tests.inference_fixtures import service_missing
from training import data as data_module

pytestmark = pytest.mark.training

# A distinct colour per diagnosis, so one epoch on a few dozen images has something to learn.
COLOURS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60), (30, 30, 30), (160, 110, 80), (200, 60, 200)]


def make_ham_folder(root, lesions_per_class=6, images_per_lesion=2):
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with (root / "HAM10000_metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"])
        n = 0
        for label, dx in enumerate(CLASSES):
            for lesion in range(lesions_per_class):
                lesion_id = f"HAM_{label}{lesion:04d}"
                for _ in range(images_per_lesion):
                    image_id = f"ISIC_{n:07d}"
                    n += 1
                    image = Image.new("RGB", (200, 150), (225, 180, 170))
                    draw = ImageDraw.Draw(image)
                    x, y = rng.integers(40, 120), rng.integers(30, 70)
                    draw.ellipse((x, y, x + 60, y + 50), fill=COLOURS[label])
                    image.save(root / "images" / f"{image_id}.jpg", quality=90)
                    writer.writerow([lesion_id, image_id, dx, "histo", "50", "female", "back"])
    return root


@pytest.fixture(scope="module")
def ham_folder(tmp_path_factory):
    return make_ham_folder(tmp_path_factory.mktemp("ham"))


def test_split_keeps_every_lesion_in_one_split(ham_folder):
    records = data_module.read_metadata(ham_folder)
    assignment = data_module.grouped_split(records, seed=3)
    split_of_lesion = {}
    for record in records:
        split = assignment[record.image_id]
        assert split_of_lesion.setdefault(record.lesion_id, split) == split
    assert set(assignment.values()) == {"train", "val", "test"}


def test_split_of_the_real_dataset_is_grouped_stratified_and_reproducible():
    if not data_module.DEFAULT_DATA_DIR.exists():
        service_missing(f"HAM10000 not found at {data_module.DEFAULT_DATA_DIR}")
    records = data_module.read_metadata(data_module.DEFAULT_DATA_DIR)
    first = data_module.grouped_split(records, seed=42)
    assert first == data_module.grouped_split(records, seed=42)
    lesions = {}
    for record in records:
        lesions.setdefault(record.lesion_id, set()).add(first[record.image_id])
    assert all(len(splits) == 1 for splits in lesions.values())
    for dx in CLASSES:
        counts = {s: sum(1 for r in records if r.dx == dx and first[r.image_id] == s) for s in data_module.SPLITS}
        total = sum(counts.values())
        assert abs(counts["test"] / total - 0.1) < 0.03 and abs(counts["val"] / total - 0.1) < 0.03, (dx, counts)


def operating_point_shifts():
    from training.shifts import SHIFTS

    return SHIFTS


def test_tiny_training_run_produces_an_artifact_the_worker_code_serves(ham_folder, tmp_path):
    from inference.batch import COLUMNS, score_folder
    from inference.predictor import Predictor
    from training import finalize, train

    run_dir = tmp_path / "run"
    train.main(
        [
            "--arch",
            "mobilenet_v2",
            "--data",
            str(ham_folder),
            "--run-dir",
            str(run_dir),
            "--size",
            "64",
            "--head-epochs",
            "1",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--base-weights",
            "none",
        ]
    )
    assert (run_dir / "split.csv").exists() and (run_dir / "history-finetune.csv").exists()
    artifact_dir = finalize.main(
        [
            "--run-dir",
            str(run_dir),
            "--model-version",
            "tiny-test",
            "--artifact-dir",
            str(tmp_path / "artifact"),
        ]
    )
    artifact = load_artifact(artifact_dir)
    assert artifact.model_version == "tiny-test"
    assert set(artifact.thresholds) == {"mel", "bcc", "akiec"}
    assert artifact.temperature > 0
    intervals = artifact.manifest["metrics"]["test_intervals"]
    low, high = intervals["balanced_accuracy"]
    assert low <= artifact.manifest["metrics"]["test"]["balanced_accuracy"] <= high
    assert "## Uncertainty" in (artifact.report_dir / "report.md").read_text()
    assert (artifact.report_dir / "report.md").exists() and (artifact.report_dir / "confusion_matrix.png").exists()
    assert not (tmp_path / "artifact.part").exists()

    # The operating point refits a finished network's thresholds and gate into a new version.
    from training import operating_point

    derived = operating_point.build(
        source=artifact_dir,
        model_version="tiny-test-op",
        data_dir=ham_folder,
        cache_dir=None,
        describe_cache=None,
        stress_cache=tmp_path / "stress",
        artifacts_dir=tmp_path,
    )
    refit = load_artifact(derived)
    assert refit.manifest["derived_from"]["model_version"] == "tiny-test"
    assert refit.manifest["files"]["model.tflite"] == artifact.manifest["files"]["model.tflite"]
    point = refit.manifest["operating_point"]
    assert point["fitted_on_validation"]["malignant_sensitivity"]["low"] >= 0.95
    assert set(point["shifted_validation"]) == set(operating_point_shifts())
    assert len(refit.gate_thresholds["ood_score_by_class"]) == len(CLASSES)
    report = (refit.report_dir / "report.md").read_text()
    assert "## Operating point" in report and "tiny-test-op" in report and "## Triage thresholds" not in report
    with pytest.raises(SystemExit, match="never overwritten"):
        operating_point.build(
            source=artifact_dir,
            model_version="tiny-test-op",
            data_dir=ham_folder,
            cache_dir=None,
            describe_cache=None,
            stress_cache=None,
            artifacts_dir=tmp_path,
        )

    predictor = Predictor(artifact)
    out = tmp_path / "predictions.csv"
    assert score_folder(ham_folder / "images", out, predictor) == len(list((ham_folder / "images").iterdir()))
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0].keys()) == COLUMNS
    for row in rows:
        assert abs(sum(float(row[c]) for c in CLASSES) - 1) < 1e-4
        assert row["top_class"] in CLASSES and row["refer"] in {"0", "1"}


def test_artifact_with_another_format_version_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format_version": 99, "model_version": "x"}))
    with pytest.raises(ArtifactError, match="format version 99"):
        load_artifact(folder)


def test_artifact_whose_serving_file_was_altered_is_refused(tmp_path):
    from inference.artifact import default_artifact_dir

    try:
        source = default_artifact_dir()
    except ArtifactError:
        pytest.skip("no default artifact installed")
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    with (copy / "model.tflite").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match="does not match"):
        load_artifact(copy)
