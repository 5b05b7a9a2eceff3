"""Photos on S3-compatible object storage: a real S3 server (moto in server mode, started by the
test on a free port), the web side here and a real ``celery worker`` process that share no
media folder, and the bucket private, with every photo still served by the access-checked views.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnosis.models import Case, LesionImage, Prediction
from tests.factories import PatientFactory, image_bytes
from tests.inference_fixtures import HAM10000_SAMPLE, ROOT, service_missing, wait_for

URL = "/api/v1/cases/"
FINISHED = (Case.Status.ANALYSED, Case.Status.REFERRED, Case.Status.FAILED)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "skinportal-test", "AWS_SECRET_ACCESS_KEY": "skinportal-test-secret"}


@pytest.fixture
def s3_server(tmp_path, monkeypatch):
    """A moto S3 server of this test's own, with an empty private bucket: (endpoint URL, bucket)."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        service_missing("moto[server] and boto3 are not installed (requirements-dev.txt)")
    from benchmarks.object_store import ObjectStoreError
    from benchmarks.object_store import s3_server as object_store

    bucket = f"skinportal-{uuid.uuid4().hex[:12]}"
    try:
        with object_store(tmp_path, bucket=bucket, credentials=CREDENTIALS) as env:
            for name, value in CREDENTIALS.items():
                monkeypatch.setenv(name, value)
            yield env["SKINPORTAL_S3_ENDPOINT_URL"], bucket
    except ObjectStoreError as exc:
        pytest.fail(str(exc))


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    import boto3

    listing = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").list_objects_v2(Bucket=bucket)
    return {entry["Key"] for entry in listing.get("Contents", [])}


def storages_for(endpoint: str, bucket: str) -> dict:
    """What skinportal/settings/base.py builds from SKINPORTAL_S3_BUCKET and SKINPORTAL_S3_ENDPOINT_URL."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "skinportal.settings.local",
        "SKINPORTAL_S3_BUCKET": bucket,
        "SKINPORTAL_S3_ENDPOINT_URL": endpoint,
    }
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.STORAGES, default=repr))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def on_s3(s3_server, settings):
    endpoint, bucket = s3_server
    storages = storages_for(endpoint, bucket)
    from boto3.s3.transfer import TransferConfig

    storages["default"]["OPTIONS"]["transfer_config"] = TransferConfig(use_threads=False)
    settings.STORAGES = storages
    return endpoint, bucket


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


def files_under(folder: Path) -> list[Path]:
    return [path for path in Path(folder).rglob("*") if path.is_file()] if Path(folder).exists() else []


def test_settings_put_photos_in_the_bucket_only_when_one_is_named():
    assert storages_for("http://127.0.0.1:9", "photos")["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storages_for("http://127.0.0.1:9", "photos")["default"]["OPTIONS"]
    assert options["bucket_name"] == "photos" and options["endpoint_url"] == "http://127.0.0.1:9"
    assert options["default_acl"] is None  # the bucket's own (private) access applies; nothing made public


def test_uploaded_photo_goes_to_the_private_bucket_and_is_served_only_through_the_checked_view(
    on_s3, client_for, staff, other_staff, patient, media_root, django_capture_on_commit_callbacks, monkeypatch
):
    from diagnosis import dispatch

    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)
    endpoint, bucket = on_s3
    photo = image_bytes(200, 150)
    response = client_for(staff).post(
        URL,
        {"patient": patient.pk, "body_site": "back", "images": [SimpleUploadedFile("l.jpg", photo, "image/jpeg")]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()

    assert bucket_keys(endpoint, bucket) == {image.file.name}
    assert files_under(media_root) == []
    served = client_for(staff).get(f"/media/lesions/{image.pk}/")
    assert served.status_code == 200 and served["Cache-Control"] == "private, no-store"
    with Image.open(io.BytesIO(b"".join(served.streaming_content))) as stored:
        assert stored.size == (200, 150)
    assert client_for(other_staff).get(f"/media/lesions/{image.pk}/").status_code == 404
    # The object itself answers nobody without the storage's credentials.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{endpoint}/{bucket}/{image.file.name}", timeout=5)
    assert refused.value.code == 403


def test_a_missing_object_is_a_404_not_a_500(on_s3, client_for, staff, patient, monkeypatch):
    from diagnosis import dispatch

    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)
    photo = SimpleUploadedFile("l.jpg", image_bytes(200, 150), "image/jpeg")
    client_for(staff).post(URL, {"patient": patient.pk, "body_site": "back", "images": [photo]}, format="multipart")
    image = LesionImage.objects.get()
    image.file.storage.delete(image.file.name)

    assert client_for(staff).get(f"/media/lesions/{image.pk}/").status_code == 404


def test_a_case_is_scored_by_a_worker_that_shares_no_folder_with_the_web_process(
    on_s3, worker_factory, client_for, staff, patient, media_root, model_dir, tmp_path
):
    endpoint, bucket = on_s3
    worker_media = tmp_path / "worker-media"
    worker_factory(
        DJANGO_MEDIA_ROOT=str(worker_media),
        SKINPORTAL_S3_BUCKET=bucket,
        SKINPORTAL_S3_ENDPOINT_URL=endpoint,
        **CREDENTIALS,
    )
    client = client_for(staff)
    photos = sorted((HAM10000_SAMPLE / "images").glob("ISIC_*.jpg"))[:2]
    files = [SimpleUploadedFile(p.name, p.read_bytes(), content_type="image/jpeg") for p in photos]
    created = client.post(URL, {"patient": patient.pk, "body_site": "back", "images": files}, format="multipart")
    assert created.status_code == 201, created.content

    def finished():
        body = client.get(f"{URL}{created.json()['id']}/").json()
        return body if body["status"] in FINISHED else None

    body = wait_for(finished, timeout=90, message="the case result")

    assert body["status"] in (Case.Status.ANALYSED, Case.Status.REFERRED)
    for image in body["images"]:
        assert image["analysis_status"] == "done" and image["prediction"]["probabilities"]
        heatmap = client.get(image["prediction"]["heatmap_url"])
        assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"
        with Image.open(io.BytesIO(b"".join(heatmap.streaming_content))) as overlay:
            assert overlay.size == (image["width"], image["height"])
    keys = bucket_keys(endpoint, bucket)
    assert set(LesionImage.objects.values_list("file", flat=True)) <= keys
    assert set(Prediction.objects.values_list("heatmap", flat=True)) <= keys
    # Neither side wrote a file to a folder of its own: everything is in the bucket.
    assert files_under(media_root) == [] and files_under(worker_media) == []


def test_files_no_row_names_are_cleaned_up_in_the_bucket_too(on_s3, client_for, staff, patient, monkeypatch):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from diagnosis import dispatch
    from diagnosis.services import lesion_files_orphaned_delete

    monkeypatch.setattr(dispatch, "case_analysis_enqueue", lambda *, case_id: None)
    endpoint, bucket = on_s3
    photo = SimpleUploadedFile("l.jpg", image_bytes(200, 150), "image/jpeg")
    client_for(staff).post(URL, {"patient": patient.pk, "body_site": "back", "images": [photo]}, format="multipart")
    orphan = default_storage.save("lesions/left-by-a-rolled-back-upload.png", ContentFile(b"not referenced"))

    # Everything older than a moment from now counts as old enough.
    assert lesion_files_orphaned_delete(older_than=timedelta(seconds=-60)) == 1
    assert bucket_keys(endpoint, bucket) == {LesionImage.objects.get().file.name}
    assert orphan not in bucket_keys(endpoint, bucket)
