"""Uploaded photos are judged by decoding; rejected cases leave no rows and no files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, ImageOps

from diagnosis.models import Case, LesionImage
from tests.factories import PatientFactory, image_bytes

CASES_URL = "/api/v1/cases/"


def noisy_jpeg(width: int = 256, height: int = 192) -> bytes:
    """A JPEG whose data does not compress away, so cutting it really truncates pixels."""
    image = Image.frombytes("RGB", (width, height), bytes(range(256)) * (width * height * 3 // 256))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def upload(name: str, content: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


@pytest.fixture
def patient(clinic_a):
    return PatientFactory(clinic=clinic_a)


@pytest.fixture
def submit(client_for, staff, patient):
    def post(*files: SimpleUploadedFile):
        return client_for(staff).post(
            CASES_URL,
            {"patient": patient.pk, "body_site": "back", "images": list(files)},
            format="multipart",
        )

    return post


def assert_rejected_without_leftovers(response, message: str, media_root) -> None:
    assert response.status_code == 400, response.content
    errors = response.json()["images"]
    assert any(message in error for error in errors), errors
    assert Case.objects.count() == 0
    assert LesionImage.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(noisy_jpeg()[:3000], "truncated", id="truncated-jpeg"),
        pytest.param(b"these are clinic notes, not a photo\n", "not an image", id="text-as-jpg"),
        pytest.param(b"", "empty", id="empty-file"),
        pytest.param(png_declaring(20000, 20000), "too many pixels", id="decompression-bomb"),
        pytest.param(image_bytes(fmt="GIF"), "JPEG, PNG or HEIC", id="gif"),
    ],
)
def test_bad_upload_is_rejected_and_leaves_nothing(submit, media_root, content, message):
    response = submit(upload("lesion.jpg", content))

    assert_rejected_without_leftovers(response, message, media_root)


def test_decompression_bomb_test_file_is_tiny():
    assert len(png_declaring(20000, 20000)) < 200


def test_file_over_the_size_limit_is_rejected(submit, settings, media_root):
    settings.UPLOAD_MAX_BYTES = 2048

    response = submit(upload("big.jpg", noisy_jpeg()))

    assert_rejected_without_leftovers(response, "too large (limit 2 KB)", media_root)


def test_default_size_limit_is_20_mb(settings):
    assert settings.UPLOAD_MAX_BYTES == 20 * 1024 * 1024


def test_one_bad_image_rejects_the_whole_case(submit, media_root):
    response = submit(upload("good.jpg", image_bytes()), upload("bad.jpg", b"not an image"))

    assert_rejected_without_leftovers(response, "Image 2 (bad.jpg)", media_root)


def test_failed_database_write_removes_files_already_stored(monkeypatch, staff, patient, media_root):
    """A failure after the photos were written rolls back the rows and deletes the files."""
    from diagnosis import services

    def failing_audit(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "audit_record", failing_audit)

    with pytest.raises(RuntimeError):
        services.case_submit(
            actor=staff,
            patient=patient,
            body_site="back",
            images=[upload("a.jpg", image_bytes()), upload("b.png", image_bytes(fmt="PNG"))],
        )

    assert Case.objects.count() == 0
    assert LesionImage.objects.count() == 0
    assert stored_files(media_root) == []


def test_file_type_is_decided_by_content_not_name(submit):
    response = submit(upload("photo.jpg", image_bytes(fmt="PNG"), content_type="image/jpeg"))

    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()
    assert image.content_type == "image/png"
    assert image.file.name.endswith(".png")
    assert "photo" not in image.file.name


def test_stored_name_is_random_and_under_lesions(submit):
    response = submit(upload("Jane Doe mole.jpg", image_bytes()))

    assert response.status_code == 201
    name = LesionImage.objects.get().file.name
    assert name.startswith("lesions/")
    assert "Jane" not in name


def jpeg_with_gps_rotated_six() -> bytes:
    """40x20 pixels, left half red and right half blue, EXIF orientation 6 and a GPS tag."""
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()


def test_exif_orientation_is_applied_and_metadata_removed(submit):
    original = jpeg_with_gps_rotated_six()
    with Image.open(io.BytesIO(original)) as check:  # the test file really carries GPS
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)

    response = submit(upload("phone.jpg", original))

    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()
    assert (image.width, image.height) == (20, 40)
    with image.file.open("rb") as handle:
        stored = handle.read()
    with Image.open(io.BytesIO(stored)) as photo:
        assert photo.size == (20, 40)
        # Turned 90 degrees clockwise: the red left half is now the top half.
        red, green, blue = photo.convert("RGB").getpixel((10, 5))
        assert red > 200 and blue < 60
        red, green, blue = photo.convert("RGB").getpixel((10, 35))
        assert blue > 200 and red < 60
        assert len(photo.getexif()) == 0
        assert "exif" not in photo.info
    assert b"PhoneMaker" not in stored
    assert b"Exif" not in stored


def test_sha256_and_size_describe_the_stored_file(submit):
    import hashlib

    submit(upload("a.jpg", image_bytes(30, 10)))

    image = LesionImage.objects.get()
    with image.file.open("rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == image.sha256
    assert (image.width, image.height) == (30, 10)


def heic_bytes() -> bytes | None:
    try:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 150, 120)).save(buffer, format="HEIF")
    except (KeyError, OSError, ValueError):
        return None
    return buffer.getvalue()


def test_heic_upload_is_accepted_and_stored_losslessly_as_png(submit):
    import photos.uploads  # noqa: F401  (registers the HEIF codec with Pillow)

    content = heic_bytes()
    if content is None:
        pytest.skip("pillow-heif cannot write HEIF on this machine")

    response = submit(upload("IMG_0001.HEIC", content, content_type="image/heic"))

    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()
    assert image.content_type == "image/png"
    assert (image.width, image.height) == (64, 48)


def test_files_left_by_an_outer_rollback_are_swept(staff, patient, media_root):
    from datetime import timedelta

    from django.db import transaction

    from diagnosis.services import case_submit, lesion_files_orphaned_delete
    from tests.factories import LesionImageFactory

    kept = LesionImageFactory(case__patient=patient)
    with pytest.raises(RuntimeError), transaction.atomic():
        case_submit(actor=staff, patient=patient, body_site="back", images=[upload("a.jpg", image_bytes())])
        raise RuntimeError("the caller's own work failed")
    assert len(stored_files(media_root)) == 2  # the orphan and the kept image

    assert lesion_files_orphaned_delete(older_than=timedelta(hours=1)) == 0  # too recent
    assert lesion_files_orphaned_delete(older_than=timedelta(0)) == 1

    assert [path.name for path in stored_files(media_root)] == [kept.file.name.split("/")[-1]]


def test_a_jpeg_upload_is_stored_with_exactly_its_decoded_pixels(submit):
    """What the model scores is what was uploaded: decoded and turned upright, never re-compressed."""
    original = jpeg_with_gps_rotated_six()

    response = submit(upload("phone.jpg", original))

    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()
    with Image.open(io.BytesIO(original)) as decoded:
        expected = ImageOps.exif_transpose(decoded).convert("RGB")
    with image.file.open("rb") as handle, Image.open(handle) as stored:
        assert stored.format == "PNG"
        assert np.array_equal(np.asarray(stored.convert("RGB")), np.asarray(expected))
