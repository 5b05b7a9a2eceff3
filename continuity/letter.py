"""The referral letter: one printable page per case (A4), and the same as a PDF made in memory.

The PDF is rendered on demand by WeasyPrint from the letter's HTML; photos travel into it as
data URIs made from the stored files, so nothing is fetched over the network and nothing is
written to disk.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ObjectDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from clinics.uv import clinic_uv
from diagnosis.models import Case, LesionImage
from diagnosis.vocabulary import class_name
from inference.preprocessing import CLASSES, MALIGNANT_CLASSES

from .history import case_model_versions

logger = logging.getLogger(__name__)

DISCLAIMER = _(
    "The model's result is decision support for clinicians, not a diagnosis. A result below the "
    "referral thresholds does not rule cancer out."
)
PHOTO_SIZE = 800


def thresholds_for(model_version: str) -> dict[str, float] | None:
    """The referral thresholds of the model version that scored the case, when its artifact is installed."""
    from inference.artifact import ARTIFACTS_DIR, ArtifactError, load_artifact

    folders = [ARTIFACTS_DIR / model_version]
    if settings.SKINPORTAL_MODEL_DIR:
        served = Path(settings.SKINPORTAL_MODEL_DIR)
        folders += [served.parent / model_version, served]
    for folder in folders:
        if "/" in model_version or not (folder / "manifest.json").exists():
            continue
        try:
            artifact = load_artifact(folder, verify=False)
        except (ArtifactError, OSError, KeyError, ValueError):
            continue
        if artifact.model_version == model_version:
            return artifact.thresholds
    return None


def _photo_data_uri(image: LesionImage) -> str | None:
    """A scaled JPEG of the photo as a data URI, made in memory; None when the file cannot be read."""
    try:
        with image.file.open("rb") as handle, Image.open(handle) as picture:
            picture.draft("RGB", (PHOTO_SIZE, PHOTO_SIZE))
            preview = picture.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        logger.warning("letter: cannot read the photo of image %s", image.pk, exc_info=True)
        return None
    preview.thumbnail((PHOTO_SIZE, PHOTO_SIZE))
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def letter_context(*, case: Case, for_pdf: bool, shows_patient_identity: bool = True) -> dict:
    """What the letter shows. Without ``shows_patient_identity`` (a specialist's copy,
    ``patients.disclosure``) it names the patient by number, age, sex and skin type only."""
    try:
        referral = case.referral
    except ObjectDoesNotExist:
        referral = None
    review = referral.latest_review if referral is not None else None
    photos = []
    for image in case.images.all():
        prediction = image.current_result  # none for a photo the gate turned back
        bars = []
        if prediction is not None:
            bars = [
                {
                    "name": class_name(code),
                    "probability": float((prediction.probabilities or {}).get(code, 0.0)),
                    "malignant": code in MALIGNANT_CLASSES,
                }
                for code in CLASSES
            ]
            bars.sort(key=lambda bar: -bar["probability"])
        src = _photo_data_uri(image) if for_pdf else reverse("web:image-preview", args=[image.pk, PHOTO_SIZE])
        photos.append({"image": image, "src": src, "prediction": prediction, "bars": bars[:3]})
    versions = case_model_versions(case)
    return {
        "case": case,
        "patient": case.patient,
        "clinic": case.patient.clinic,
        "lesion": case.lesion,
        "referral": referral,
        "review": review,
        "photos": photos,
        "model_versions": versions,
        "thresholds": [
            {
                "version": version,
                "values": [(class_name(code), value) for code, value in (thresholds_for(version) or {}).items()],
            }
            for version in versions
        ],
        "disclaimer": DISCLAIMER,
        # Today's UV band at the clinic and the WHO advice for the patient (None without a location).
        "uv": clinic_uv(case.patient.clinic),
        "for_pdf": for_pdf,
        "shows_patient_identity": shows_patient_identity,
    }


class LetterUnavailable(RuntimeError):
    """The PDF renderer cannot run here (WeasyPrint or the Pango library it needs is missing)."""


def _weasyprint():
    """Import WeasyPrint without letting it loosen Pillow for the whole process.

    ``weasyprint.images`` sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` when imported,
    which would let truncated photos through the upload check (photos.uploads). The flag
    is put back at once; the letter's own images are complete JPEGs made in memory. The web
    server's workers are synchronous, so no upload is checked while the import runs.
    """
    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import weasyprint
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:  # OSError: a system library (Pango) is missing
        logger.error("the PDF renderer cannot be loaded: %s", exc)
        raise LetterUnavailable(
            gettext("The PDF of the letter cannot be made on this server now; the printable letter page works.")
        ) from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    return weasyprint.CSS, weasyprint.HTML, URLFetcher


def letter_pdf(*, case: Case, shows_patient_identity: bool = True) -> bytes:
    """The letter as PDF bytes, rendered in memory."""
    CSS, HTML, URLFetcher = _weasyprint()  # noqa: N806

    context = letter_context(case=case, for_pdf=True, shows_patient_identity=shows_patient_identity)
    html = render_to_string("continuity/letter_document.html", context)
    # Everything the letter shows is inline (data URIs): no file and no network is ever read.
    fetcher = URLFetcher(allowed_protocols={"data"})
    stylesheet = CSS(string=Path(finders.find("css/letter.css")).read_text(), url_fetcher=fetcher)
    return HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=[stylesheet])
