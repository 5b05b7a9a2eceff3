"""Nothing falls through, through the API with real worker processes.

- a case whose photo and retake are both turned back reaches a specialist's queue as unreadable;
- a photo the gate calls ``not_skin`` never refers a case, even when its probabilities would;
- with the audit rate at 1.0 a case the model did not refer is in the queue as an audit; at 0.0 not.

Needs Redis and a database worker processes can open (tests/inference_fixtures.py), the shipped
model artifact and the committed HAM10000 sample. The photos are chosen in this process with the
same artifact the workers serve, so the tests hold for whichever model version is shipped.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnosis.models import Case, Prediction
from inference.preprocessing import load_image
from inference.risk import HIGH, ImageResult, case_risk
from tests.factories import PatientFactory
from tests.inference_fixtures import wait_for
from triage.models import Referral

URL = "/api/v1/cases/"
FINISHED = (Case.Status.ANALYSED, Case.Status.REFERRED, Case.Status.FAILED)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def finished(client, case_id: int) -> dict | None:
    body = client.get(f"{URL}{case_id}/").json()
    pending = any(image["analysis_status"] in ("queued", "analysing") for image in body["images"])
    return body if body["status"] in FINISHED and not pending else None


def not_skin_photos(predictor, *, count: int) -> list[bytes]:
    """Photos the served gate calls not_skin; those whose probabilities reach a referral threshold first."""
    from sklearn.datasets import load_sample_image

    picture = load_sample_image("china.jpg")
    candidates = []
    for size in (120, 200):
        for y in range(0, picture.shape[0] - size, 60):
            for x in range(0, picture.shape[1] - size, 60):
                data = png(np.ascontiguousarray(picture[y : y + size, x : x + size]))
                scores = predictor.predict_image(load_image(io.BytesIO(data)))
                if scores.gate is None or scores.gate.reason != "not_skin":
                    continue
                over = any(scores.probabilities[code] >= t for code, t in predictor.artifact.thresholds.items())
                candidates.append((not over, len(candidates), data))
                if len([c for c in candidates if not c[0]]) >= count:
                    break
    assert len(candidates) >= count, "no crop of the sample photograph is called not_skin by this gate"
    return [data for _rank, _order, data in sorted(candidates)[:count]]


def low_risk_lesion(predictor, ham_images) -> bytes:
    """A HAM10000 sample photo the served model reads (gate ok) without referring it."""
    for path in ham_images:
        data = path.read_bytes()
        scores = predictor.predict_image(load_image(io.BytesIO(data)))
        if scores.gate is not None and scores.gate.reason != "ok":
            continue
        risk = case_risk([ImageResult(1, scores.probabilities)], thresholds=predictor.artifact.thresholds)
        if risk.level != HIGH:
            return data
    pytest.fail("no photo of the HAM10000 sample is read without a referral by the served model")


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def test_a_case_whose_photo_and_retake_are_both_turned_back_reaches_the_specialists_queue_as_unreadable(
    worker_factory, served_model, client_for, staff, specialist, specialist_b, patient
):
    first, second = not_skin_photos(served_model, count=2)
    worker_factory()
    clinic = client_for(staff)
    response = clinic.post(
        URL, {"patient": patient.pk, "body_site": "back", "images": [upload("first.png", first)]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    case_id = response.json()["id"]
    body = wait_for(lambda: finished(clinic, case_id), timeout=90, message="the first result")
    assert body["status"] == "failed" and body["awaiting_photo"] is True and body["referred_at"] is None
    waiting = clinic.get(f"{URL}?needs_attention=true").json()["results"]
    assert [row["id"] for row in waiting] == [case_id]

    retake = clinic.post(f"{URL}{case_id}/images/", {"images": [upload("retake.png", second)]}, format="multipart")
    assert retake.status_code == 201, retake.content
    body = wait_for(lambda: finished(clinic, case_id), timeout=90, message="the retake's result")

    assert body["status"] == "referred" and body["awaiting_photo"] is False
    assert [image["prediction"]["status"] for image in body["images"]] == ["rejected", "rejected"]
    queue = client_for(specialist).get("/api/v1/referrals/").json()["results"]
    (row,) = [row for row in queue if row["case"] == case_id]
    assert row["source"] == "unreadable" and row["urgency"] == "routine"
    assert row["reason"] == "No photo the model could read."
    assert client_for(specialist_b).get("/api/v1/referrals/").json()["results"] == []  # serves clinic B only
    assert clinic.get(f"{URL}?needs_attention=true").json()["results"] == []


def test_a_not_skin_photo_never_refers_a_case(worker_factory, served_model, client_for, staff, patient):
    (photo,) = not_skin_photos(served_model, count=1)
    worker_factory()
    clinic = client_for(staff)

    response = clinic.post(
        URL, {"patient": patient.pk, "body_site": "back", "images": [upload("wall.png", photo)]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = wait_for(lambda: finished(clinic, response.json()["id"]), timeout=90, message="the case result")

    assert body["images"][0]["prediction"]["reason"] == "not_skin"
    assert body["status"] == "failed" and body["risk"] == "" and body["referred_at"] is None
    assert not Referral.objects.filter(case_id=body["id"]).exists()
    assert Prediction.objects.get(image_id=body["images"][0]["id"]).gate == "not_skin"


@pytest.mark.parametrize(("rate", "audited"), [("1.0", True), ("0.0", False)])
def test_the_audit_rate_decides_whether_a_case_the_model_did_not_refer_reaches_the_queue(
    worker_factory, served_model, ham_images, client_for, staff, specialist, patient, rate, audited
):
    photo = low_risk_lesion(served_model, ham_images)
    worker_factory(SKINPORTAL_AUDIT_SAMPLE_RATE=rate)
    clinic = client_for(staff)

    response = clinic.post(
        URL,
        {
            "patient": patient.pk,
            "body_site": "back",
            "images": [SimpleUploadedFile("lesion.jpg", photo, content_type="image/jpeg")],
            "image_kinds": ["dermoscopic"],
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    case_id = response.json()["id"]
    body = wait_for(lambda: finished(clinic, case_id), timeout=90, message="the case result")

    assert body["risk"] in ("low", "moderate")
    queue = client_for(specialist).get("/api/v1/referrals/").json()["results"]
    if audited:
        assert body["status"] == "referred"
        (row,) = [row for row in queue if row["case"] == case_id]
        assert row["source"] == "audit" and row["urgency"] == "routine"
        assert row["sample_rate"] == 1.0 and Referral.objects.get(case_id=case_id).sample_rate == 1.0
    else:
        assert body["status"] == "analysed" and body["referred_at"] is None
        assert [row for row in queue if row["case"] == case_id] == []
