"""Validation and cleaning of uploaded lesion photos.

A file is judged by decoding it, never by its name or declared content type. What is
stored is a lossless (PNG) encoding of the decoded pixels, turned upright by its EXIF
orientation and carrying no metadata at all (no GPS, no camera serial, no original file
name). Lossless, so that the pixels the model scores are the pixels that were uploaded: a
lossy re-encoding changed class probabilities by up to 0.1 and, on some photos, the referral.
Pages show small JPEG previews made from it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import struct
import time
import warnings
from dataclasses import dataclass

import pillow_heif
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

pillow_heif.register_heif_opener()

logger = logging.getLogger(__name__)

# MPO is how Pillow names a camera JPEG that carries extra pictures (depth map, preview);
# its first frame is the photo itself.
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "HEIF"}
# Formats whose further frames belong to one photo; other multi-frame files are animations.
PRIMARY_FRAME_FORMATS = {"MPO", "HEIF"}
# Formats Pillow can decode at a reduced scale (draft mode).
DRAFT_FORMATS = {"JPEG", "MPO"}
PNG_COMPRESS_LEVEL = 1  # lossless at every level; 1 encodes several times faster than 3 for files ~5% larger
_READ_CHUNK = 1024 * 1024
# What decoders of untrusted bytes raise besides OSError: Pillow's parsers raise SyntaxError,
# ValueError, struct.error, IndexError and friends; libheif raises RuntimeError.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    RuntimeError,
    struct.error,
    TypeError,
    IndexError,
    KeyError,
    ZeroDivisionError,
)
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class UploadSizeLimitHandler(FileUploadHandler):
    """Keeps at most UPLOAD_MAX_BYTES + 1 bytes of each uploaded file; drops the rest unread.

    First in FILE_UPLOAD_HANDLERS: the handlers after it store what it passes on, so an
    oversized file never fills memory or the temporary folder, and the one byte over the
    limit makes image_validate report it as too large. A request whose declared or received
    size passes UPLOAD_MAX_REQUEST_BYTES is refused (413) as soon as that is known, before
    the rest is read or spooled.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > settings.UPLOAD_MAX_REQUEST_BYTES:
            raise RequestDataTooBig(f"Request body over UPLOAD_MAX_REQUEST_BYTES ({content_length} bytes).")
        self.received = 0
        return None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.kept = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received = getattr(self, "received", 0) + len(raw_data)
        if self.received > settings.UPLOAD_MAX_REQUEST_BYTES:
            raise RequestDataTooBig("Uploaded files over UPLOAD_MAX_REQUEST_BYTES.")
        room = settings.UPLOAD_MAX_BYTES + 1 - self.kept
        if room <= 0:
            return None
        chunk = raw_data[:room]
        self.kept += len(chunk)
        return chunk

    def file_complete(self, file_size: int) -> None:
        return None


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


def _upright(image: Image.Image) -> Image.Image:
    """Turn the pixels as the EXIF orientation says; broken EXIF means upright as stored.

    The EXIF itself is not kept, so unlike ImageOps.exif_transpose this never re-serialises
    it (which fails on malformed tags).
    """
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        orientation = 1
    method = _ORIENTATION_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    # A new image either way: the decoded file is closed when validation ends.
    return image.transpose(method) if method is not None else image.copy()


def decoded_pixels(width: int, height: int, image_format: str | None) -> int:
    """Pixels the decoder holds for a photo of this size: JPEG decodes at 1/2, 1/4 or 1/8
    scale (draft mode) down to the stored size; PNG and HEIC decode whole."""
    if image_format in DRAFT_FORMATS:
        side = settings.UPLOAD_STORE_MAX_SIDE
        scale = 1
        while scale < 8 and max(width, height) // (scale * 2) >= side:
            scale *= 2
        return -(-width // scale) * -(-height // scale)
    return width * height


def upload_cost(upload: UploadedFile) -> int:
    """The pixels decoding this upload will hold, read from its header only (0 if unreadable
    or over the per-photo limit: image_validate refuses it, without decoding, and says why)."""
    try:
        upload.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None
            with Image.open(upload) as image:
                width, height = image.size
                image_format = image.format
    except (UnidentifiedImageError, *_DECODE_ERRORS):
        return 0
    finally:
        Image.MAX_IMAGE_PIXELS = settings.UPLOAD_MAX_PIXELS
        upload.seek(0)
    if width * height > settings.UPLOAD_MAX_PIXELS:
        return 0  # image_validate refuses it from its header, with its own message
    return decoded_pixels(width, height, image_format)


def request_budget_check(uploads) -> None:
    """Refuse a set of photos whose decoding would hold more than UPLOAD_MAX_REQUEST_PIXELS,
    before any of them is decoded."""
    costs = [upload_cost(upload) for upload in uploads]
    each = settings.UPLOAD_MAX_DECODED_PIXELS
    for position, cost in enumerate(costs, start=1):
        if cost > each:
            raise ValidationError(
                _(
                    "Image %(number)s would decode to %(size)s megapixels (limit %(limit)s; a JPEG "
                    "decodes at a reduced size, PNG and HEIC in full); send it smaller or as a JPEG."
                )
                % {"number": position, "size": number_format(round(cost / 1e6)), "limit": f"{each / 1e6:g}"},
                "decode_too_large",
            )
    total = sum(costs)
    budget = settings.UPLOAD_MAX_REQUEST_PIXELS
    if total > budget:
        raise ValidationError(
            _(
                "These photos are too large together (%(size)s megapixels to decode, limit "
                "%(limit)s); send fewer or smaller photos in one case."
            )
            % {"size": number_format(round(total / 1e6)), "limit": f"{budget / 1e6:g}"},
            "request_too_large",
        )


def upload_allowance_take(*, user, photos: int) -> float | None:
    """Count these photos against the user's hourly allowance (UPLOAD_MAX_PHOTOS_PER_HOUR).

    None when they may be sent, else the seconds until the allowance starts afresh. The
    count lives in the default cache (a shared one with several web processes). Every request
    that sends photos counts them before they are checked (a new case, photos added to one, an
    answer to a specialist), accepted or refused: checking a photo costs the same either way.
    """
    limit = settings.UPLOAD_MAX_PHOTOS_PER_HOUR
    if not limit or photos <= 0:
        return None
    now = time.time()
    window = int(now // 3600)
    key = f"upload-allowance:{user.pk}:{window}"
    try:
        cache.add(key, 0, timeout=3600)
        try:
            used = cache.incr(key, photos)
        except ValueError:  # expired between add and incr
            cache.set(key, photos, timeout=3600)
            used = photos
    except Exception as exc:  # noqa: BLE001 - the cache (Redis) is down: a case is worth more than the count
        logger.warning("upload allowance not counted, the cache is unavailable: %s", exc)
        return None
    if used > limit:
        return (window + 1) * 3600 - now
    return None


def upload_allowance_message(wait: float) -> str:
    """What a person is told when upload_allowance_take refused their photos."""
    minutes = math.ceil(wait / 60)
    return ngettext(
        "Too many photos sent in the last hour; try again in %(count)s minute.",
        "Too many photos sent in the last hour; try again in %(count)s minutes.",
        minutes,
    ) % {"count": minutes}


def _reduce_while_decoding(image: Image.Image) -> None:
    """JPEG: decode at the smallest 1/2, 1/4 or 1/8 scale still at least the stored size."""
    if image.format in DRAFT_FORMATS and image.mode in ("RGB", "L", "CMYK"):
        width, height = image.size
        ratio = settings.UPLOAD_STORE_MAX_SIDE / max(width, height)
        if ratio < 1:
            # The stored size in both directions, or draft picks its scale by the short side.
            image.draft(image.mode, (math.ceil(width * ratio), math.ceil(height * ratio)))


def _bounded(image: Image.Image) -> Image.Image:
    """At most UPLOAD_STORE_MAX_SIDE pixels on the long side: more than the analysis and a
    specialist's screen use, and a bound on what every later step costs."""
    side = settings.UPLOAD_STORE_MAX_SIDE
    if max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def image_validate(upload: UploadedFile) -> CleanImage:
    """Decode, check and re-encode one uploaded photo; raise ValidationError if unusable."""
    max_bytes = settings.UPLOAD_MAX_BYTES
    max_pixels = settings.UPLOAD_MAX_PIXELS
    if upload.size is not None and upload.size > max_bytes:
        raise ValidationError(_("File too large (limit %(size)s).") % {"size": _human_size(max_bytes)}, "too_large")
    data = _read_limited(upload, max_bytes)
    if not data:
        raise ValidationError(_("The file is empty."), "empty")
    if len(data) > max_bytes:
        raise ValidationError(_("File too large (limit %(size)s).") % {"size": _human_size(max_bytes)}, "too_large")

    too_many_pixels = ValidationError(
        _("The image has too many pixels (limit %(limit)s megapixels).") % {"limit": f"{max_pixels / 1e6:g}"},
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
        except (UnidentifiedImageError, *_DECODE_ERRORS):
            raise ValidationError(_("The file is not an image."), "not_an_image") from None

        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise ValidationError(
                    _("Unsupported format %(format)s (JPEG, PNG or HEIC).") % {"format": image.format},
                    "unsupported",
                )
            if image.format not in PRIMARY_FRAME_FORMATS and getattr(image, "n_frames", 1) > 1:
                raise ValidationError(
                    _("Animated images are not accepted; send a single photo."),
                    "animated",
                )
            width, height = image.size
            if width * height > max_pixels:
                raise too_many_pixels
            source_format = image.format
            icc_profile = image.info.get("icc_profile")
            try:
                _reduce_while_decoding(image)
                image.load()  # decodes every byte: truncated files fail here
                # Scaled down before anything copies it, so no step holds two full-size copies.
                upright = _upright(_bounded(image))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
                raise too_many_pixels from None
            except _DECODE_ERRORS:
                raise ValidationError(_("The image is truncated or damaged."), "truncated") from None

    try:
        return _encode(upright, source_format, icc_profile)
    except (ValueError, OSError) as exc:
        logger.warning("could not re-encode an uploaded %s image in mode %s: %s", source_format, upright.mode, exc)
        raise ValidationError(_("The image uses a colour format that cannot be converted."), "unconvertible") from None


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale (PNG) scaled to 8 bits; converting directly would clip to white."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        return image.convert("I").point(lambda value: value / 257).convert("L")
    return image


def _encode(image: Image.Image, source_format: str, icc_profile: bytes | None) -> CleanImage:
    """Re-encode losslessly without metadata: every format becomes PNG, JPEG and HEIC as RGB."""
    keep_png = source_format == "PNG"
    image = _to_8bit(image)
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
    clean.save(buffer, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    extension, content_type = "png", "image/png"
    content = buffer.getvalue()
    return CleanImage(
        content=content,
        extension=extension,
        content_type=content_type,
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(content).hexdigest(),
    )
