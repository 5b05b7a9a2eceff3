"""Hostile and unusual photo uploads: a clear 400 or a faithful copy, never a 500 or a lost case."""

from __future__ import annotations

import io
import struct

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from diagnosis import services
from diagnosis.models import Case, LesionImage
from tests.factories import PatientFactory, image_bytes

CASES_URL = "/api/v1/cases/"


@pytest.fixture
def patient(clinic_a, staff):
    return PatientFactory(clinic=clinic_a, created_by=staff)


@pytest.fixture
def submit(client_for, staff, patient):
    def post(*contents: bytes, name: str = "lesion.jpg"):
        files = [SimpleUploadedFile(name, content, content_type="image/jpeg") for content in contents]
        return client_for(staff).post(
            CASES_URL, {"patient": patient.pk, "body_site": "back", "images": files}, format="multipart"
        )

    return post


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


def stored_image() -> Image.Image:
    image = LesionImage.objects.get()
    with image.file.open("rb") as handle:
        return Image.open(io.BytesIO(handle.read()))


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg_with_malformed_exif() -> bytes:
    """Orientation 6 plus a tag whose stored type does not match its definition.

    ImageOps.exif_transpose re-serialises the EXIF and raises struct.error on such a tag;
    phones and editors do write files like this.
    """

    def entry(tag: int, kind: int, count: int, value: bytes) -> bytes:
        return struct.pack(">HHI", tag, kind, count) + value

    ifd = (
        struct.pack(">H", 2)
        + entry(0x0108, 2, 2, b"X\0\0\0")  # CellWidth is a SHORT; stored as ASCII here
        + entry(0x0112, 3, 1, struct.pack(">HH", 6, 0))  # Orientation: turn 90 degrees
        + struct.pack(">I", 0)
    )
    exif = b"Exif\0\0MM\0*" + struct.pack(">I", 8) + ifd
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    return encode(image, "JPEG", exif=exif, quality=95)


def test_photo_with_malformed_exif_is_accepted_and_turned_upright(submit):
    response = submit(jpeg_with_malformed_exif())

    assert response.status_code == 201, response.content
    photo = stored_image()
    assert photo.size == (20, 40)
    assert len(photo.getexif()) == 0


def test_camera_jpeg_with_extra_pictures_is_accepted_as_its_first_picture(submit):
    """Phones save depth maps and previews as extra frames (Pillow reads these as MPO)."""
    main, depth = Image.new("RGB", (32, 24), (200, 40, 40)), Image.new("RGB", (16, 12), (0, 0, 0))
    content = encode(main, "MPO", save_all=True, append_images=[depth])
    with Image.open(io.BytesIO(content)) as check:
        assert (check.format, check.n_frames) == ("MPO", 2)

    response = submit(content)

    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()
    assert (image.width, image.height, image.content_type) == (32, 24, "image/png")
    red, _, _ = stored_image().convert("RGB").getpixel((5, 5))
    assert red > 150


def test_animated_png_is_refused_and_leaves_nothing(submit, media_root):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    content = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])

    response = submit(content, name="lesion.png")

    assert response.status_code == 400
    assert "Animated images are not accepted" in response.json()["images"][0]
    assert Case.objects.count() == 0 and stored_files(media_root) == []


def test_16_bit_greyscale_png_keeps_its_tones_instead_of_turning_white(submit):
    content = encode(Image.new("I;16", (8, 8), 30000), "PNG")

    response = submit(content, name="scan.png")

    assert response.status_code == 201, response.content
    tone = stored_image().convert("L").getpixel((0, 0))
    assert 100 < tone < 130  # 30000 / 65535 of full scale, not clipped to 255


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("1", "PNG"), ("P", "PNG"), ("LA", "PNG"), ("RGBA", "PNG"), ("L", "JPEG"), ("CMYK", "JPEG")],
)
def test_other_colour_modes_are_stored(submit, mode, fmt):
    content = encode(Image.new(mode, (8, 8)), fmt)

    assert submit(content).status_code == 201


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_large_jpeg_is_decoded_at_a_reduced_scale_in_every_mode_it_counts_for(mode, settings):
    """decoded_pixels counts every JPEG at its reduced scale, so every JPEG mode must decode at it
    (a CMYK JPEG decoded whole held about three times the memory it was counted for)."""
    import io

    from photos.uploads import _reduce_while_decoding, decoded_pixels

    settings.UPLOAD_STORE_MAX_SIDE = 500
    with Image.open(io.BytesIO(encode(Image.new(mode, (2400, 1200)), "JPEG"))) as image:
        _reduce_while_decoding(image)
        image.load()
        assert image.size == (600, 300)
        assert image.width * image.height == decoded_pixels(2400, 1200, "JPEG")


def test_png_text_xmp_and_colour_profile_are_not_stored(submit):
    from PIL import ImageCms, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Jane Doe, ward 4")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>GPS 51.5 -0.1</x:xmpmeta>")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    content = encode(Image.new("RGB", (8, 8), (10, 200, 10)), "PNG", pnginfo=info, icc_profile=profile)

    response = submit(content, name="lesion.png")

    assert response.status_code == 201, response.content
    with LesionImage.objects.get().file.open("rb") as handle:
        stored = handle.read()
    assert b"Jane Doe" not in stored and b"xmpmeta" not in stored
    assert b"iCCP" not in stored and b"tEXt" not in stored and b"iTXt" not in stored


def test_decoder_runtime_error_is_a_400_not_a_500(submit, monkeypatch, media_root):
    """libheif refuses some files with RuntimeError (e.g. its own size limits) while decoding."""
    from PIL import PngImagePlugin

    def refuse(self):
        raise RuntimeError("Memory allocation error: Security limit exceeded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", refuse)

    response = submit(image_bytes(fmt="PNG"), name="lesion.png")

    assert response.status_code == 400
    assert "truncated or damaged" in response.json()["images"][0]
    assert Case.objects.count() == 0 and stored_files(media_root) == []


def test_oversized_file_is_not_stored_whole_while_the_request_is_read(submit, settings, monkeypatch, media_root):
    settings.UPLOAD_MAX_BYTES = 2048
    seen_sizes = []
    validate = services.image_validate

    def recording_validate(upload):
        seen_sizes.append(upload.size)
        return validate(upload)

    monkeypatch.setattr(services, "image_validate", recording_validate)

    response = submit(b"\xff\xd8" + b"\0" * 200_000)

    assert response.status_code == 400
    assert "too large (limit 2 KB)" in response.json()["images"][0]
    assert seen_sizes == [2049]  # one byte over the limit kept, the other ~198 KB dropped
    assert stored_files(media_root) == []


def test_more_files_than_the_request_limit_is_a_400(submit, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3

    response = submit(*[image_bytes()] * 4)

    assert response.status_code == 400
    assert "Too many files" in response.json()["detail"]
    assert Case.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_failure_to_queue_after_commit_keeps_the_case_and_its_files(
    clinic_a, staff, client_for, monkeypatch, media_root
):
    """The analysis hand-off runs after the commit; if it fails, the committed case keeps its photos."""
    patient = PatientFactory(clinic=clinic_a, created_by=staff)

    def broker_down(*, case_id):
        raise RuntimeError("broker unreachable")

    monkeypatch.setattr("diagnosis.dispatch.case_analysis_enqueue", broker_down)

    response = client_for(staff).post(
        CASES_URL,
        {"patient": patient.pk, "body_site": "back", "images": [SimpleUploadedFile("a.jpg", image_bytes())]},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    image = LesionImage.objects.get()
    assert image.file.storage.exists(image.file.name)
    assert len(stored_files(media_root)) == 1
