"""The photo gate through the API with real worker processes: turned-back photos give no result.

Needs Redis and a database worker processes can open (see tests/inference_fixtures.py), the
shipped (gated) model artifact and a HAM10000 photo from the committed sample.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnosis.models import Case, Prediction
from inference.preprocessing import CLASSES
from tests.factories import PatientFactory
from tests.inference_fixtures import HAM10000_SAMPLE, wait_for

URL = "/api/v1/cases/"
FINISHED = (Case.Status.ANALYSED, Case.Status.REFERRED, Case.Status.FAILED)
# A test-split HAM10000 photo (never used for a gate threshold) that the gate lets through.
# From the committed sample (tests/data), so the test runs wherever the suite does.
LESION = "ISIC_0024314"


def lesion_jpeg() -> bytes:
    return (HAM10000_SAMPLE / "images" / f"{LESION}.jpg").read_bytes()


def not_skin_jpeg() -> bytes:
    """A photograph of a building (scikit-learn's sample image): plainly not skin."""
    from sklearn.datasets import load_sample_image

    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("china.jpg")).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def finished(client, case_id: int) -> dict | None:
    body = client.get(f"{URL}{case_id}/").json()
    pending = any(image["analysis_status"] in ("queued", "analysing") for image in body["images"])
    return body if body["status"] in FINISHED and not pending else None


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def test_a_non_skin_photo_is_turned_back_and_the_risk_comes_from_the_lesion_photo_only(
    worker_factory, client_for, staff, patient
):
    worker_factory()
    client = client_for(staff)
    files = [upload("lesion.jpg", lesion_jpeg()), upload("building.jpg", not_skin_jpeg())]
    response = client.post(
        URL,
        {"patient": patient.pk, "body_site": "back", "images": files, "image_kinds": ["dermoscopic", "overview"]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = wait_for(lambda: finished(client, response.json()["id"]), timeout=90, message="the case result")

    lesion, other = body["images"]
    assert lesion["prediction"]["status"] == "done"
    assert lesion["prediction"]["reason"] is None and lesion["prediction"]["message"] is None
    assert set(lesion["prediction"]["probabilities"]) == set(CLASSES)

    rejected = other["prediction"]
    assert other["analysis_status"] == "done"  # analysed, kept with the case for the specialist
    assert rejected["status"] == "rejected"
    assert rejected["reason"] in ("not_skin", "not_a_lesion")
    assert "take it again" in rejected["message"]
    assert rejected["probabilities"] is None and rejected["top_class"] is None and rejected["heatmap_url"] is None
    assert client.get(other["url"]).status_code == 200

    # The case's risk is the lesion photo's alone: the same as a case with only that photo.
    stored = Prediction.objects.get(image_id=lesion["id"])
    from inference.artifact import load_artifact
    from inference.risk import ImageResult, case_risk

    alone = case_risk(
        [ImageResult(1, stored.probabilities)],
        thresholds=load_artifact(verify=False).thresholds,
    )
    assert body["risk"] == alone.level
    assert "Photo 2 was not read by the model" in body["summary"]
    assert body["status"] == (Case.Status.REFERRED if alone.level == "high" else Case.Status.ANALYSED)
    # The turned-back photo's record keeps the gate's reason and its scores, for the record only.
    kept = Prediction.objects.get(image_id=other["id"])
    assert kept.gate == rejected["reason"] and kept.gate_score is not None and set(kept.probabilities) == set(CLASSES)


def test_a_case_whose_only_photo_is_turned_back_is_not_referred_and_takes_a_new_photo(
    worker_factory, client_for, staff, patient
):
    worker_factory()
    client = client_for(staff)
    response = client.post(
        URL,
        {"patient": patient.pk, "body_site": "back", "images": [upload("building.jpg", not_skin_jpeg())]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    case_id = response.json()["id"]
    body = wait_for(lambda: finished(client, case_id), timeout=90, message="the case result")

    assert body["status"] == Case.Status.FAILED  # no result: never referred by the model
    assert body["risk"] == "" and body["referred_at"] is None
    assert "not read by the model" in body["summary"] and "add a new photo" in body["summary"]
    assert body["images"][0]["prediction"]["status"] == "rejected"

    retake = client.post(
        f"{URL}{case_id}/images/",
        {"images": [upload("retake.jpg", lesion_jpeg())], "image_kinds": ["dermoscopic"]},
        format="multipart",
    )
    assert retake.status_code == 201, retake.content
    body = wait_for(lambda: finished(client, case_id), timeout=90, message="the result with the new photo")

    first, second = body["images"]
    assert first["prediction"]["status"] == "rejected"
    assert second["prediction"]["status"] == "done" and second["prediction"]["probabilities"] is not None
    assert body["status"] in (Case.Status.ANALYSED, Case.Status.REFERRED) and body["risk"] in (
        "low",
        "moderate",
        "high",
    )


def test_noise_and_blank_images_get_no_result(worker_factory, client_for, staff, patient):
    worker_factory()
    client = client_for(staff)
    rng = np.random.default_rng(3)
    images = {
        "noise.png": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        "white.png": np.full((480, 640, 3), 255, np.uint8),
        "dark.png": np.full((480, 640, 3), 6, np.uint8),
    }
    files = []
    for name, array in images.items():
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        files.append(SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png"))
    response = client.post(URL, {"patient": patient.pk, "body_site": "back", "images": files}, format="multipart")
    assert response.status_code == 201, response.content
    body = wait_for(lambda: finished(client, response.json()["id"]), timeout=90, message="the case result")

    reasons = [image["prediction"]["reason"] for image in body["images"]]
    assert reasons[0] in ("not_skin", "not_a_lesion")
    assert reasons[1] == "overexposed" and reasons[2] == "too_dark"
    assert body["status"] == Case.Status.FAILED and body["risk"] == ""
