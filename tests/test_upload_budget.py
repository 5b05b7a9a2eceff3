"""What one request and one user may cost: a decoded-pixel budget per request checked from
the headers before any decoding, JPEG decoded at reduced size, a bounded stored size, a
request-size cap that stops reading early, and an hourly photo allowance per user."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnosis import services
from diagnosis.models import Case, LesionImage
from photos import uploads
from tests.factories import PatientFactory

CASES_URL = "/api/v1/cases/"


def encode(size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (150, 90, 70)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


@pytest.fixture
def submit(client_for, staff, patient):
    def post(*contents: bytes):
        files = [SimpleUploadedFile(f"p{n}.png", content) for n, content in enumerate(contents)]
        return client_for(staff).post(
            CASES_URL, {"patient": patient.pk, "body_site": "back", "images": files}, format="multipart"
        )

    return post


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


def test_photos_over_the_request_pixel_budget_are_refused_before_any_is_decoded(
    submit, settings, media_root, monkeypatch
):
    settings.UPLOAD_MAX_REQUEST_PIXELS = 100_000
    decoded = []
    monkeypatch.setattr(services, "image_validate", lambda upload: decoded.append(upload) or None)
    photos = [encode((200, 200), "PNG")] * 3  # 120,000 pixels together, each within every other limit

    response = submit(*photos)

    assert response.status_code == 400
    assert "too large together" in response.json()["images"][0]
    assert decoded == []
    assert Case.objects.count() == 0 and stored_files(media_root) == []


def test_photos_within_the_budget_are_accepted(submit, settings):
    settings.UPLOAD_MAX_REQUEST_PIXELS = 100_000

    assert submit(*[encode((200, 200), "PNG")] * 2).status_code == 201


def test_jpeg_counts_at_its_reduced_decoding_size(settings):
    settings.UPLOAD_STORE_MAX_SIDE = 500

    assert uploads.decoded_pixels(4000, 3000, "JPEG") == 500 * 375
    assert uploads.decoded_pixels(4000, 3000, "PNG") == 4000 * 3000
    assert uploads.decoded_pixels(400, 300, "JPEG") == 400 * 300


def test_large_jpeg_is_decoded_at_reduced_scale_and_stored_bounded(submit, settings, monkeypatch):
    settings.UPLOAD_STORE_MAX_SIDE = 300
    loaded_sizes = []
    original_load = Image.Image.load

    def spying_load(image):
        result = original_load(image)
        if getattr(image, "format", None) == "JPEG":
            loaded_sizes.append(image.size)
        return result

    monkeypatch.setattr(Image.Image, "load", spying_load)

    response = submit(encode((2400, 1800), "JPEG"))

    assert response.status_code == 201
    assert loaded_sizes and max(loaded_sizes[0]) <= 600  # decoded at 1/4 or 1/8 scale, not 2400 wide
    image = LesionImage.objects.get()
    assert (image.width, image.height) == (300, 225)


def test_png_above_the_stored_side_is_stored_scaled_down(submit, settings):
    settings.UPLOAD_STORE_MAX_SIDE = 100

    assert submit(encode((400, 200), "PNG")).status_code == 201

    image = LesionImage.objects.get()
    assert (image.width, image.height) == (100, 50)


def test_a_request_declaring_more_than_the_request_cap_is_refused_before_it_is_read(
    client_for, staff, patient, settings, media_root
):
    settings.UPLOAD_MAX_REQUEST_BYTES = 50_000
    big = SimpleUploadedFile("big.jpg", b"\xff" * 60_000)

    response = client_for(staff).post(
        CASES_URL, {"patient": patient.pk, "body_site": "back", "images": [big]}, format="multipart"
    )

    assert response.status_code == 413
    assert Case.objects.count() == 0 and stored_files(media_root) == []


def test_stops_reading_once_the_received_files_pass_the_request_cap(settings):
    settings.UPLOAD_MAX_REQUEST_BYTES = 1000
    handler = uploads.UploadSizeLimitHandler()
    handler.handle_raw_input(None, {}, None, b"boundary")  # no Content-Length (chunked)
    handler.new_file("images", "a.jpg", "image/jpeg", None)
    handler.receive_data_chunk(b"x" * 800, 0)

    with pytest.raises(uploads.RequestDataTooBig):
        handler.receive_data_chunk(b"x" * 800, 800)


def test_hourly_photo_allowance_per_user(submit, settings, client_for, other_staff, clinic_b):
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 3
    photo = encode((40, 30), "PNG")

    assert submit(photo, photo).status_code == 201
    refused = submit(photo, photo)

    assert refused.status_code == 429
    assert "Retry-After" in refused
    assert Case.objects.count() == 1
    # Another user's allowance is their own.
    other_patient = PatientFactory(clinic=clinic_b, created_by=other_staff)
    response = client_for(other_staff).post(
        CASES_URL,
        {"patient": other_patient.pk, "body_site": "back", "images": [SimpleUploadedFile("a.png", photo)]},
        format="multipart",
    )
    assert response.status_code == 201


def test_the_web_form_has_the_same_allowance(web_client, staff, patient, settings):
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 1
    photo = encode((40, 30), "PNG")
    client = web_client(staff)
    url = f"/patients/{patient.pk}/cases/new/"
    data = {"body_site": "back", "duration": Case.Duration.UNKNOWN}

    assert client.post(url, {**data, "images": [SimpleUploadedFile("a.png", photo)]}).status_code == 302
    response = client.post(url, {**data, "images": [SimpleUploadedFile("b.png", photo)]})

    assert response.status_code == 429
    assert b"Too many photos" in response.content


def test_photos_added_to_a_case_and_sent_to_a_specialist_count_against_the_allowance(
    submit, settings, client_for, staff, monkeypatch
):
    monkeypatch.setattr("diagnosis.dispatch.case_analysis_enqueue", lambda *, case_id: None)
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 3
    photo = encode((40, 30), "PNG")
    case_id = submit(photo, photo).json()["id"]
    client = client_for(staff)

    def photos(*names):
        return [SimpleUploadedFile(name, photo) for name in names]

    added = client.post(f"/api/v1/cases/{case_id}/images/", {"images": photos("c.png", "d.png")}, format="multipart")
    answered = client.post(
        f"/api/v1/cases/{case_id}/information/", {"message": "Here.", "images": photos("e.png")}, format="multipart"
    )

    assert added.status_code == 429 and "Retry-After" in added
    assert answered.status_code == 429
    assert LesionImage.objects.filter(case_id=case_id).count() == 2


def test_the_web_pages_that_add_photos_have_the_same_allowance(submit, settings, web_client, staff):
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 1
    photo = encode((40, 30), "PNG")
    case_id = submit(photo).json()["id"]
    client = web_client(staff)

    added = client.post(f"/cases/{case_id}/photos/", {"images": [SimpleUploadedFile("b.png", photo)]}, follow=True)
    answered = client.post(
        f"/cases/{case_id}/information/",
        {"message": "Here.", "images": [SimpleUploadedFile("c.png", photo)]},
        follow=True,
    )

    assert b"Too many photos" in added.content and b"Too many photos" in answered.content
    assert LesionImage.objects.filter(case_id=case_id).count() == 1


def test_a_png_decoding_to_more_than_the_per_photo_limit_is_refused(submit, settings, media_root):
    settings.UPLOAD_MAX_DECODED_PIXELS = 30_000

    response = submit(encode((200, 200), "PNG"))

    assert response.status_code == 400
    assert "would decode to" in response.json()["images"][0]
    assert Case.objects.count() == 0 and stored_files(media_root) == []


def test_with_the_cache_down_photos_are_still_accepted(submit, monkeypatch):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to the cache")

    monkeypatch.setattr(cache, "add", down)

    assert submit(encode((40, 30), "PNG")).status_code == 201


# --- A storage or database that fails mid-submission, and bodies the parsers cannot read ---------
def test_a_full_photo_storage_is_a_503_and_keeps_nothing(submit, monkeypatch, media_root):
    from diagnosis import services as diagnosis_services

    real_save = diagnosis_services.default_storage.save
    calls = []

    def save(name, content, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(diagnosis_services.default_storage, "save", save)

    response = submit(encode((40, 30), "PNG"), encode((30, 40), "PNG"))

    assert response.status_code == 503 and "Retry-After" in response
    assert "photo storage" in response.json()["detail"]
    assert Case.objects.count() == 0 and LesionImage.objects.count() == 0
    assert stored_files(media_root) == []


def test_the_web_form_meets_a_full_photo_storage_with_a_503_too(web_client, staff, patient, monkeypatch, media_root):
    from diagnosis import services as diagnosis_services

    def full(name, content, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(diagnosis_services.default_storage, "save", full)
    photo = SimpleUploadedFile("a.png", encode((40, 30), "PNG"))

    response = web_client(staff).post(
        f"/patients/{patient.pk}/cases/new/",
        {"body_site": "back", "duration": Case.Duration.UNKNOWN, "images": [photo]},
    )

    assert response.status_code == 503 and response["Retry-After"]
    assert Case.objects.count() == 0 and stored_files(media_root) == []


def test_photos_of_a_submission_whose_idempotent_answer_cannot_be_stored_are_removed(
    client_for, staff, patient, monkeypatch, media_root
):
    from django.db import OperationalError

    from diagnosis.models import IdempotencyRecord

    real_save = IdempotencyRecord.save

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields"):  # the answer, after the case and its photos were written
            raise OperationalError("the database connection was lost")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(IdempotencyRecord, "save", save)
    photo = SimpleUploadedFile("a.png", encode((40, 30), "PNG"))

    response = client_for(staff).post(
        CASES_URL,
        {"patient": patient.pk, "body_site": "back", "images": [photo]},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )

    assert response.status_code == 503
    assert Case.objects.count() == 0 and stored_files(media_root) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" * 5000 + b"]" * 5000, "application/json"),  # nested past Python's recursion limit
        (b"username=a&password=b", "application/x-www-form-urlencoded; charset=punycode"),
    ],
)
def test_bodies_the_parsers_cannot_read_are_a_400(api_client, body, content_type, db):
    response = api_client.generic("POST", "/api/v1/auth/token/", body, content_type=content_type)

    assert response.status_code == 400, response.content
    assert isinstance(response.json(), dict)  # a JSON message, not the 500 page


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b'"a case"', b"12"])
def test_a_json_body_that_is_not_an_object_is_a_400_with_or_without_an_idempotency_key(client_for, staff, body):
    client = client_for(staff)
    for headers in ({}, {"HTTP_IDEMPOTENCY_KEY": "key-2"}):
        response = client.generic("POST", CASES_URL, body, content_type="application/json", **headers)
        assert response.status_code == 400, response.content
    assert Case.objects.count() == 0
