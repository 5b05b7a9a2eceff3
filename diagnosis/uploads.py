"""Validation and cleaning of uploaded lesion photos.

A file is judged by decoding it, never by its name or declared content type. What is
stored is a re-encoding of the decoded pixels, turned upright by its EXIF orientation and
carrying no metadata at all (no GPS, no camera serial, no original file name).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import pillow_heif
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()

ACCEPTED_FORMATS = {"JPEG", "PNG", "HEIF"}
JPEG_QUALITY = 92
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class CleanImage:
    """A validated, re-encoded image ready to store."""

    content: bytes
    extension: str
    content_type: str
    width: int
    height: int
    sha256: str


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    if size >= 1024:
        return f"{size / 1024:g} KB"
    return f"{size} bytes"


def _read_limited(upload: UploadedFile, max_bytes: int) -> bytes:
    """Read at most max_bytes + 1 bytes, so a lying size header cannot exhaust memory."""
    upload.seek(0)
    chunks: list[bytes] = []
    total = 0
    while total <= max_bytes:
        chunk = upload.read(min(_READ_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    upload.seek(0)
    return b"".join(chunks)


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert pixels from an embedded colour profile (e.g. Display P3) to sRGB.

    The profile itself is not kept, so without this conversion colours would shift.
    """
    if not icc_profile or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image


def image_validate(upload: UploadedFile) -> CleanImage:
    """Decode, check and re-encode one uploaded photo; raise ValidationError if unusable."""
    max_bytes = settings.UPLOAD_MAX_BYTES
    max_pixels = settings.UPLOAD_MAX_PIXELS
    if upload.size is not None and upload.size > max_bytes:
        raise ValidationError(f"File too large (limit {_human_size(max_bytes)}).", "too_large")
    data = _read_limited(upload, max_bytes)
    if not data:
        raise ValidationError("The file is empty.", "empty")
    if len(data) > max_bytes:
        raise ValidationError(f"File too large (limit {_human_size(max_bytes)}).", "too_large")

    too_many_pixels = ValidationError(
        f"The image has too many pixels (limit {max_pixels / 1e6:g} megapixels).",
        "too_many_pixels",
    )
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; both are refusals here.
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise ValidationError("The file is not an image.", "not_an_image") from None

        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise ValidationError(
                    f"Unsupported format {image.format} (JPEG, PNG or HEIC).",
                    "unsupported",
                )
            width, height = image.size
            if width * height > max_pixels:
                raise too_many_pixels
            source_format = image.format
            icc_profile = image.info.get("icc_profile")
            try:
                image.load()  # decodes every byte: truncated files fail here
                upright = ImageOps.exif_transpose(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise too_many_pixels from None
            except (OSError, SyntaxError, ValueError, EOFError):
                raise ValidationError("The image is truncated or damaged.", "truncated") from None

    return _encode(upright, source_format, icc_profile)


def _encode(image: Image.Image, source_format: str, icc_profile: bytes | None) -> CleanImage:
    """Re-encode without metadata: PNG stays PNG, JPEG and HEIC become JPEG."""
    keep_png = source_format == "PNG"
    if keep_png:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGB")
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image = _to_srgb(image, icc_profile)
    # A clean copy carries no info dict, so no EXIF, XMP, ICC or text chunks are written.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)

    buffer = io.BytesIO()
    if keep_png:
        clean.save(buffer, format="PNG", optimize=False)
        extension, content_type = "png", "image/png"
    else:
        clean.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        extension, content_type = "jpg", "image/jpeg"
    content = buffer.getvalue()
    return CleanImage(
        content=content,
        extension=extension,
        content_type=content_type,
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(content).hexdigest(),
    )
