"""The photo the model scores is the photo that was uploaded (real worker process, real files)."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from inference.artifact import load_artifact
from inference.predictor import Predictor
from inference.preprocessing import CLASSES, load_image
from inference.triage import flagged_classes
from tests.factories import PatientFactory
from tests.inference_fixtures import wait_for

URL = "/api/v1/cases/"


def test_scoring_the_original_and_scoring_through_the_api_agree(
    worker_factory, client_for, staff, clinic_a, model_dir, ham_images
):
    files = ham_images[:5]  # the committed sample: this test runs wherever the suite does
    worker_factory()
    client = client_for(staff)
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    uploads = [SimpleUploadedFile(f.name, f.read_bytes(), content_type="image/jpeg") for f in files]
    response = client.post(URL, {"patient": patient.pk, "body_site": "back", "images": uploads}, format="multipart")
    assert response.status_code == 201, response.content
    case_id = response.json()["id"]

    def finished():
        body = client.get(f"{URL}{case_id}/").json()
        return body if body["status"] in ("analysed", "referred", "failed") else None

    body = wait_for(finished, timeout=120, message="the case result")

    artifact = load_artifact(model_dir)
    predictor = Predictor(artifact)
    for file, image in zip(files, body["images"], strict=True):
        served = image["prediction"]
        assert served["artifact_sha256"] == artifact.sha256
        original = predictor.predict_image(load_image(file))
        difference = max(abs(served["probabilities"][c] - original.probabilities[c]) for c in CLASSES)
        assert difference < 0.01, (file.name, difference)
        assert bool(flagged_classes(served["probabilities"], artifact.thresholds)) == bool(
            flagged_classes(original.probabilities, artifact.thresholds)
        )
        assert served["top_class"] == original.top_class and served["balanced_class"] == original.balanced_class
